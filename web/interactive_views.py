"""The job page's actions on an interactive session: stop it now, or extend it (interactive.services)."""

from __future__ import annotations

from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accelerator.errors import Conflict, InvalidInput
from interactive import services as interactive_services
from jobs.permissions import readable_job
from web.views import page


@page
@require_POST
def session_stop(request, pk: int):
    job = readable_job(request.user, pk)
    try:
        interactive_services.session_of(job)
        interactive_services.stop_session(job=job, user=request.user)
    except (InvalidInput, Conflict) as exc:  # NotFound and Forbidden: @page's error pages
        return render(request, "web/error.html", {"detail": exc.detail, "back": job}, status=400)
    return redirect("web-job", pk=job.pk)


@page
@require_POST
def session_extend(request, pk: int):
    job = readable_job(request.user, pk)
    try:
        interactive_services.session_of(job)
        interactive_services.extend_session(job=job, user=request.user)
    except (InvalidInput, Conflict) as exc:  # NotFound and Forbidden: @page's error pages
        return render(request, "web/error.html", {"detail": exc.detail, "back": job}, status=400)
    return redirect("web-job", pk=job.pk)
