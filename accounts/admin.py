from django.contrib import admin

from accounts.models import AccessToken, AuthCode, RefreshToken


@admin.register(AuthCode)
class AuthCodeAdmin(admin.ModelAdmin):
    list_display = ["user", "created_at", "expires_at", "used_at"]
    exclude = ["code_hash"]
    readonly_fields = ["user", "created_at", "expires_at", "used_at"]


@admin.register(RefreshToken)
class RefreshTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "family", "created_at", "expires_at", "used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    exclude = ["token_hash"]
    readonly_fields = ["user", "family", "created_at", "expires_at", "used_at"]


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "family", "created_at", "expires_at", "revoked_at"]
    exclude = ["token_hash"]
    readonly_fields = ["user", "family", "created_at", "expires_at"]
