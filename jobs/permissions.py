"""Who may see and stop jobs: a project's roles (routines.permissions) applied to its jobs."""

from accelerator.errors import NotFound
from jobs.models import Job
from routines.permissions import READ, RUN, WRITE, has_role


def visible_jobs(user):
    if not user or not user.is_authenticated:
        return Job.objects.none()
    return Job.objects.filter(project__memberships__user=user)


def can_read_job(user, job) -> bool:
    return has_role(user, job.project, READ)


def can_cancel_job(user, job) -> bool:
    """The job's owner, a maintainer of its project, or an operator with the admin's change permission."""
    if user.is_staff and user.has_perm("workers.change_job"):
        return True
    return (job.user_id == user.id and has_role(user, job.project, RUN)) or has_role(user, job.project, WRITE)


def readable_job(user, pk) -> Job:
    """Job `pk` if `user` may read it. One they may not read is reported exactly like one that does not exist."""
    related = ("project", "user", "routine_version__routine", "reused_from", "flow_run")
    job = Job.objects.select_related(*related).filter(pk=pk).first()
    if job is None or not can_read_job(user, job):
        raise NotFound("Job not found, or you have no access to it.")
    return job
