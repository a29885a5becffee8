"""What a running job uses: CPU and memory, sampled while it runs, for the chart on its page (no Django).

Backends report `(cpu_seconds, memory_bytes)`: the CPU time the job's
processes have used so far and the memory they hold now. The supervisor feeds
those readings to a `UsageRecorder` about once a second; the recorder keeps at
most `max_points` of them (merging neighbours, keeping the larger memory, so
the peak survives) and summarises them as cores used per interval.
"""

from __future__ import annotations

import os
from pathlib import Path


class UsageRecorder:
    def __init__(self, *, every: float = 1.0, max_points: int = 120):
        self.every = every
        self.max_points = max_points
        self.samples: list[tuple[float, float, int]] = []  # (seconds since start, cpu seconds so far, memory)
        self.peak = 0

    def add(self, t: float, cpu_seconds: float, memory: int) -> None:
        self.peak = max(self.peak, memory)
        self.samples.append((round(t, 3), cpu_seconds, memory))
        if len(self.samples) > self.max_points:
            merged = [self.samples[0]]
            rest = self.samples[1:]
            for i in range(0, len(rest) - 1, 2):
                (_, _, m1), (t2, c2, m2) = rest[i], rest[i + 1]
                merged.append((t2, c2, max(m1, m2)))
            if len(rest) % 2:
                merged.append(rest[-1])
            self.samples = merged

    def summary(self) -> dict:
        """`points`: [seconds, cores used since the previous point, memory bytes]; totals for the facts."""
        points = []
        for (t0, c0, _), (t1, c1, m1) in zip(self.samples, self.samples[1:], strict=False):
            span = t1 - t0
            points.append([t1, round(max(c1 - c0, 0.0) / span, 3) if span > 0 else 0.0, m1])
        return {
            "points": points,
            "cpu_seconds": round(self.samples[-1][1], 3) if self.samples else None,
            "peak_memory_bytes": self.peak or None,
            "samples": len(self.samples),
        }


# --- the local backend: a process group read from /proc --------------------------------------
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def proc_stats():
    """(pid, stat fields from field 3 on) of every process now on this host; ended ones are passed over."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        yield int(entry.name), fields


def process_group_usage(pgid: int) -> tuple[float, int] | None:
    """CPU seconds (including reaped children) and resident memory of every process in group `pgid`."""
    return groups_usage({pgid}).get(pgid)


def groups_usage(pgids: set[int]) -> dict[int, tuple[float, int]]:
    """`process_group_usage` of many groups from one pass over /proc; groups with no process are left out."""
    found: dict[int, tuple[float, int]] = {}
    for _pid, fields in proc_stats():
        # fields[i] is stat field i + 3: pgrp (5), utime (14), stime (15), cutime (16), cstime (17), rss (24)
        group = int(fields[2])
        if group not in pgids:
            continue
        cpu, rss = found.get(group, (0.0, 0))
        found[group] = (cpu + sum(int(fields[i]) for i in (11, 12, 13, 14)) / _TICK, rss + int(fields[21]) * _PAGE)
    return found


def docker_stats_usage(stats: dict) -> tuple[float, int] | None:
    """(cpu seconds, memory) from one `docker stats` reading; memory without the page cache, as `docker stats`."""
    cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
    memory = stats.get("memory_stats") or {}
    if cpu is None or "usage" not in memory:
        return None
    detail = memory.get("stats") or {}
    cache = detail.get("inactive_file", detail.get("total_inactive_file", 0))
    return cpu / 1e9, max(int(memory["usage"]) - int(cache), 0)
