"""Who may see, launch and manage a hosted model. Views, pages and services start here.

- The author, and owners and maintainers of the model's project, manage it
  (and so see and launch it under every policy).
- `private`: nobody else. `project`: members of its project, any role.
  `public`: every signed-in user. `link`: whoever presents the current link
  token (signed in: the run needs an owner for its outputs).
- People and groups the author shares the model with (guardian's
  `view_hostedmodel` and `launch_hostedmodel`) see and launch it whatever the
  policy.

Anonymous clients get nothing. A model someone may not see is reported
exactly like one that does not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.contrib.auth.models import Group
from django.db.models import Q
from guardian.shortcuts import (
    assign_perm,
    get_groups_with_perms,
    get_objects_for_user,
    get_perms,
    get_users_with_perms,
    remove_perm,
)

from accelerator.crypto import decrypt_json, encrypt_json
from accelerator.errors import Forbidden, NotFound
from hosting.models import HostedModel, HostedRun, Policy
from routines import permissions
from routines.models import Membership, Role

SHARE_PERMS = ("view_hostedmodel", "launch_hostedmodel")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_link_token(model: HostedModel) -> str:
    """Set a fresh link token on `model` (not saved) and return it; the old one stops working."""
    token = secrets.token_urlsafe(24)
    model.link_token_hash = token_hash(token)
    model.link_token_encrypted = encrypt_json(token)
    return token


def link_token_of(model: HostedModel) -> str | None:
    return decrypt_json(model.link_token_encrypted) if model.link_token_hash else None


def _holds_link(model: HostedModel, token: str | None) -> bool:
    return bool(token and model.link_token_hash and hmac.compare_digest(token_hash(token), model.link_token_hash))


def can_manage(user, model: HostedModel) -> bool:
    if not user or not user.is_authenticated:
        return False
    return model.author_id == user.id or permissions.has_role(user, model.project, Role.MAINTAINER)


def _policy_allows(user, model: HostedModel, token: str | None) -> bool:
    if model.policy == Policy.PROJECT:
        return permissions.role_of(user, model.project) is not None
    if model.policy == Policy.PUBLIC:
        return True
    if model.policy == Policy.LINK:
        return _holds_link(model, token)
    return False


def can_view(user, model: HostedModel, *, token: str | None = None) -> bool:
    if not user or not user.is_authenticated:
        return False
    return can_manage(user, model) or _policy_allows(user, model, token) or "view_hostedmodel" in get_perms(user, model)


def can_launch(user, model: HostedModel, *, token: str | None = None) -> bool:
    """Whoever may see the model may launch it, except people it is shared with for viewing only."""
    if not user or not user.is_authenticated:
        return False
    return (
        can_manage(user, model) or _policy_allows(user, model, token) or "launch_hostedmodel" in get_perms(user, model)
    )


def not_found_message(slug: str, token: str | None) -> str:
    hint = " If you were given a link, it may have been revoked or replaced; ask the author for a new one."
    return f"Hosted model '{slug}' was not found, or you have no access to it." + (hint if token else "")


def get_model(user, slug: str, *, token: str | None = None, manage: bool = False) -> HostedModel:
    """The model `slug` if `user` may see it (and manage it, with `manage`); else NotFound / Forbidden."""
    model = HostedModel.objects.select_related("project", "author", "default_version").filter(slug=slug).first()
    if model is None or not can_view(user, model, token=token):
        raise NotFound(not_found_message(slug, token))
    if manage and not can_manage(user, model):
        raise Forbidden("Only the author and the maintainers of its project can change this hosted model.")
    return model


def visible_models(user):
    """Every hosted model `user` may see without a link token: own, project, public and shared."""
    if not user or not user.is_authenticated:
        return HostedModel.objects.none()
    managed_projects = Membership.objects.filter(user=user, role__in=[Role.MAINTAINER, Role.OWNER]).values("project")
    member_projects = Membership.objects.filter(user=user).values("project")
    shared = get_objects_for_user(user, "hosting.view_hostedmodel", klass=HostedModel, accept_global_perms=False)
    return HostedModel.objects.filter(
        Q(author=user)
        | Q(project__in=managed_projects)
        | Q(policy=Policy.PUBLIC)
        | Q(policy=Policy.PROJECT, project__in=member_projects)
        | Q(pk__in=shared.values("pk"))
    ).distinct()


# --- sharing ------------------------------------------------------------------------------
def share(model: HostedModel, *, user=None, group: Group | None = None, launch: bool = True) -> None:
    target = user or group
    assign_perm("view_hostedmodel", target, model)
    if launch:
        assign_perm("launch_hostedmodel", target, model)
    else:
        remove_perm("launch_hostedmodel", target, model)


def unshare(model: HostedModel, *, user=None, group: Group | None = None) -> None:
    for perm in SHARE_PERMS:
        remove_perm(perm, user or group, model)


def forget_shares(model: HostedModel) -> None:
    """Remove every object permission on `model` (guardian keeps them by id, not by foreign key)."""
    from django.contrib.contenttypes.models import ContentType
    from guardian.models import GroupObjectPermission, UserObjectPermission

    kind = ContentType.objects.get_for_model(HostedModel)
    for table in (UserObjectPermission, GroupObjectPermission):
        table.objects.filter(content_type=kind, object_pk=str(model.pk)).delete()


def shares_of(model: HostedModel) -> list[dict]:
    """[{"user" | "group": name, "launch": bool}] for the people and groups the model is shared with."""
    rows = []
    users = get_users_with_perms(model, attach_perms=True, with_group_users=False)
    for user, perms in sorted(users.items(), key=lambda item: item[0].username):
        if "view_hostedmodel" in perms:
            rows.append({"user": user.username, "launch": "launch_hostedmodel" in perms})
    groups = get_groups_with_perms(model, attach_perms=True)
    for group, perms in sorted(groups.items(), key=lambda item: item[0].name):
        if "view_hostedmodel" in perms:
            rows.append({"group": group.name, "launch": "launch_hostedmodel" in perms})
    return rows


def session_access(user, job) -> bool | None:
    """Who may use an interactive session of a hosted run (registered with `interactive.services` at start):
    besides the launcher, only the people and groups the model is shared with. None for other jobs."""
    carriers = [job.pk] + ([job.flow_run.root_id] if job.flow_run_id else [])
    run = HostedRun.objects.select_related("model").filter(job_id__in=carriers).first()
    if run is None:
        return None
    groups = set(user.groups.values_list("name", flat=True))
    return any(row.get("user") == user.username or row.get("group") in groups for row in shares_of(run.model))
