"""Small server-drawn charts for the job page (pure; the template draws the SVG paths given here)."""

from __future__ import annotations

WIDTH, HEIGHT, PAD = 320, 80, 4


def usage_charts(usage: dict | None, *, cores_requested: float, ram_requested: int) -> list[dict] | None:
    """Two line charts from a job's usage summary: cores used and memory over time.

    Each chart's scale reaches at least what the job requested, so a line near
    the top means the job used about all it asked for.
    """
    points = (usage or {}).get("points") or []
    if len(points) < 2:
        return None
    times = [p[0] for p in points]
    cores = [p[1] for p in points]
    memory = [p[2] for p in points]
    return [
        _chart("CPU", cores, times, top=max(max(cores), cores_requested, 0.01), unit="cores"),
        _chart("Memory", memory, times, top=max(max(memory), ram_requested, 1), unit="bytes"),
    ]


def _chart(title: str, values: list[float], times: list[float], *, top: float, unit: str) -> dict:
    start, span = times[0], (times[-1] - times[0]) or 1.0
    coords = []
    for t, v in zip(times, values, strict=True):
        x = PAD + (t - start) / span * (WIDTH - 2 * PAD)
        y = HEIGHT - PAD - (v / top) * (HEIGHT - 2 * PAD)
        coords.append(f"{x:.1f},{y:.1f}")
    return {
        "title": title,
        "unit": unit,
        "points": " ".join(coords),
        "peak": max(values),
        "top": top,
        "seconds": round(times[-1], 1),
        "width": WIDTH,
        "height": HEIGHT,
    }
