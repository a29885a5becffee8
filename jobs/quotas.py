"""Project quotas: which limit applies to a project, what its jobs use now, and the sentences that say so.

A project's own `Quota` row applies; a project without one gets the
default row (project empty), if there is one. A job counts against its
project's quota from the moment its start task is sent (`admitted_at`)
until it leaves MAPPING_OUTPUTS; a jobflow's root runs nothing and never
counts. Refusing a job that could never fit is `refuse_if_never_fits`, the
scheduler's "does it fit now" is `blocking_reason`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Max, Q, Sum

from accelerator.errors import InvalidInput
from jobs.models import Job, Quota
from jobs.states import ACTIVE, Status

GIB = 1024**3
MIB = 1024**2

# a job in use by its project: started (admitted, not yet picked up) or in a phase that holds resources
IN_USE = Q(status__in=ACTIVE) | Q(status=Status.QUEUED, admitted_at__isnull=False)

# what a job asks for when its resources do not say (the model's defaults)
DEFAULT_CORES = Job._meta.get_field("required_cores").default
DEFAULT_RAM = Job._meta.get_field("required_ram").default


@dataclass
class Usage:
    """What one project's (or one user's) jobs in use hold."""

    jobs: int = 0
    cores: float = 0.0
    ram: int = 0
    last_admitted: datetime | None = None
    users: dict[int, Usage] = field(default_factory=dict)

    def add(self, *, jobs: int, cores: float, ram: int, last: datetime | None) -> None:
        self.jobs += jobs
        self.cores += cores or 0.0
        self.ram += ram or 0
        if last is not None and (self.last_admitted is None or last > self.last_admitted):
            self.last_admitted = last


def quotas_for(project_ids) -> dict[int, Quota]:
    """project id -> the quota that applies to it (its own, else the default); absent: no quota at all."""
    rows = list(Quota.objects.filter(Q(project_id__in=project_ids) | Q(project__isnull=True)))
    default = next((q for q in rows if q.project_id is None), None)
    own = {q.project_id: q for q in rows if q.project_id is not None}
    return {pid: own.get(pid, default) for pid in project_ids if own.get(pid, default) is not None}


def quota_for(project_id: int) -> Quota | None:
    return quotas_for([project_id]).get(project_id)


def usage_of(project_ids) -> dict[int, Usage]:
    """project id -> what its jobs in use hold, with a breakdown per user (one grouped query)."""
    rows = (
        Job.objects.filter(IN_USE, project_id__in=project_ids, routine_version__isnull=False)
        .order_by()
        .values("project_id", "user_id")
        .annotate(n=Count("pk"), cores=Sum("required_cores"), ram=Sum("required_ram"), last=Max("admitted_at"))
    )
    usage: dict[int, Usage] = {pid: Usage() for pid in project_ids}
    for row in rows:
        project = usage.setdefault(row["project_id"], Usage())
        project.add(jobs=row["n"], cores=row["cores"], ram=row["ram"], last=row["last"])
        project.users.setdefault(row["user_id"], Usage()).add(
            jobs=row["n"], cores=row["cores"], ram=row["ram"], last=row["last"]
        )
    return usage


# --- the sentences ----------------------------------------------------------------------------------------------
def number(value: float) -> str:
    """8.0 -> '8', 3.5 -> '3.5', 0.3333 -> '0.33'."""
    return f"{round(float(value), 2):g}"


def ram_unit(limit: int) -> tuple[int, str]:
    return (GIB, "GiB") if limit >= GIB else (MIB, "MiB")


def size(value: int, unit: tuple[int, str] | None = None) -> str:
    """Bytes in MiB or GiB: 4294967296 -> '4 GiB'."""
    scale, name = unit or ram_unit(value)
    return f"{number(value / scale)} {name}"


def blocking_reason(quota: Quota | None, usage: Usage, *, cores: float, ram: int, slug: str) -> str:
    """Why a job asking for `cores` and `ram` cannot start now in a project using `usage`; '' when it fits."""
    if quota is None:
        return ""
    never = never_fits(quota, cores=cores, ram=ram, slug=slug)
    if never:
        return f"waiting for quota: {never[0]} Ask an operator to raise the quota, or cancel this job."
    if quota.max_running_jobs is not None and usage.jobs + 1 > quota.max_running_jobs:
        return f"waiting for quota: project {slug} runs {usage.jobs} of {quota.max_running_jobs} jobs"
    if quota.max_cores is not None and usage.cores + cores > quota.max_cores + 1e-9:
        return f"waiting for quota: project {slug} uses {number(usage.cores)} of {number(quota.max_cores)} cores"
    if quota.max_ram is not None and usage.ram + ram > quota.max_ram:
        unit = ram_unit(quota.max_ram)
        return (
            f"waiting for quota: project {slug} uses {number(usage.ram / unit[0])} of {size(quota.max_ram, unit)} RAM"
        )
    return ""


def never_fits(quota: Quota | None, *, cores: float, ram: int, slug: str) -> tuple[str, str] | None:
    """(what is over, how to fix it) for a job that could not start even in an idle project; None if it could."""
    if quota is None:
        return None
    if quota.max_running_jobs == 0:
        return (f"Project {slug} may run no jobs: its quota allows 0 at once.", "Ask an operator to raise the quota.")
    if quota.max_cores is not None and cores > quota.max_cores + 1e-9:
        return (
            f"This job asks for {number(cores)} cores but project {slug} may use at most "
            f"{number(quota.max_cores)} at once ({number(cores - quota.max_cores)} over its quota).",
            "Ask an operator to raise the quota or ask for fewer cores.",
        )
    if quota.max_ram is not None and ram > quota.max_ram:
        unit = ram_unit(quota.max_ram)
        return (
            f"This job asks for {size(ram, unit)} of RAM but project {slug} may use at most "
            f"{size(quota.max_ram, unit)} at once ({size(ram - quota.max_ram, unit)} over its quota).",
            "Ask an operator to raise the quota or ask for less RAM.",
        )
    return None


def refuse_if_never_fits(*, project, cores: float | None, ram: int | None) -> None:
    """At dispatch: raise InvalidInput (400, code `over_quota`) for a job its project's quota can never start."""
    quota = quota_for(project.pk)
    cores = DEFAULT_CORES if cores is None else cores
    ram = DEFAULT_RAM if ram is None else ram
    never = never_fits(quota, cores=cores, ram=ram, slug=project.slug)
    if never:
        raise InvalidInput(" ".join(never), code="over_quota")
