"""The job page's actions on an interactive session: stop it now, or extend it (workers.interactive)."""

from __future__ import annotations

from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accelerator.errors import Conflict, InvalidInput
from web.views import _job_for, page
from workers import interactive


@page
@require_POST
def session_stop(request, pk: int):
    job = _job_for(request.user, pk)
    try:
        interactive.session_of(job)
        interactive.stop_session(job=job, user=request.user)
    except (InvalidInput, Conflict) as exc:  # NotFound and Forbidden: @page's error pages
        return render(request, "web/error.html", {"detail": exc.detail, "back": job}, status=400)
    return redirect("web-job", pk=job.pk)


@page
@require_POST
def session_extend(request, pk: int):
    job = _job_for(request.user, pk)
    try:
        interactive.session_of(job)
        interactive.extend_session(job=job, user=request.user)
    except (InvalidInput, Conflict) as exc:  # NotFound and Forbidden: @page's error pages
        return render(request, "web/error.html", {"detail": exc.detail, "back": job}, status=400)
    return redirect("web-job", pk=job.pk)
