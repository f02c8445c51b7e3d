"""The best-so-far curves of a run as plain SVG geometry for the template (no plotting library in the server).

The numbers are those of ``report.curves`` (the lines of ``promptsearch report``'s PNG), computed in one pass:
``report.curves`` takes the maximum over every candidate after each logged rung, which is quadratic and took
35 s on a log of 5,000 candidates; here each line keeps its running best (see ``best_so_far``)."""

from __future__ import annotations

import math

from ..store import tie_value

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
FIXED = {"overall": "#111111", "seed": "#7f7f7f", "templates": "#1f77b4", "clarify": "#ff7f0e",
         "autoprompt": "#2ca02c", "evolution": "#d62728", "soft-prompt": "#9467bd", "refine": "#8c564b",
         "ensemble": "#e377c2", "ape": "#17becf"}


def best_so_far(records: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """``report.curves(run)`` for a run's log records, in one pass. A candidate's rank key (rung size, score,
    tie-break, age) only grows as it climbs to larger rungs, so a line's best is the larger of its old best and
    the key just logged; only when a re-logged rung of the same size lowers the key of the line's current best
    is the line's maximum taken again over its candidates."""
    known: dict[str, tuple] = {}  # candidate id -> (size, score, tie, -order, strategy)
    best: dict[str, tuple] = {}  # line -> (key, candidate id) of its incumbent
    members: dict[str, list[str]] = {}
    out: dict[str, list[tuple[int, float]]] = {}
    for rec in records:
        cand = rec["candidate"]
        cid, size = cand["id"], rec["size"]
        if cid in known and size < known[cid][0]:
            continue
        old = known.get(cid)
        order = old[3] if old else -len(known)
        strategy = cand.get("strategy") or "seed"
        key = (size, rec["score"]["score"], tie_value(rec.get("tie")), order, strategy)
        known[cid] = key
        if old is None:
            members.setdefault(strategy, []).append(cid)
        for line in ("overall", key[4]):
            incumbent = best.get(line)
            if incumbent is None or key[:4] > incumbent[0][:4]:
                best[line] = (key, cid)
            elif incumbent[1] == cid:  # the incumbent itself moved down: look again
                pool = members[line] if line != "overall" else list(known)
                top = max(pool, key=lambda c: known[c][:4])
                best[line] = (known[top], top)
            points = out.setdefault(line, [])
            value = best[line][0][1]
            if not points or points[-1][1] != value:
                points.append((rec["evals_used"], value))
    return out


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round numbers spanning [low, high]."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda s: abs(s - raw))  # the round step nearest the raw one
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


def curve_chart(lines: dict[str, list[tuple[int, float]]], end: int, width: int = 760, height: int = 320) -> dict:
    """Step lines of (evaluations, dev score) points: the overall line (what the search returns) drawn last
    and thickest, one per strategy; axes with round ticks."""
    left, right, top, bottom = 56, width - 150, 14, height - 40
    ys = [y for pts in lines.values() for _, y in pts if isinstance(y, (int, float)) and not math.isnan(y)]
    if not ys:
        return {"empty": True, "width": width, "height": height}
    lo, hi = min(ys), max(ys)
    pad = max((hi - lo) * 0.08, 0.01)
    lo, hi = lo - pad, hi + pad
    end = max(end, max((x for pts in lines.values() for x, _ in pts), default=1), 1)

    def px(x):
        return left + (right - left) * x / end

    def py(y):
        return bottom - (bottom - top) * (y - lo) / (hi - lo)

    series = []
    names = [n for n in lines if n != "overall"] + (["overall"] if "overall" in lines else [])
    for i, name in enumerate(names):
        pts = [(x, y) for x, y in lines[name] if not math.isnan(y)]
        if not pts:
            continue
        path = []
        for k, (x, y) in enumerate(pts):
            if k:
                path.append((px(x), py(pts[k - 1][1])))
            path.append((px(x), py(y)))
        path.append((px(end), py(pts[-1][1])))
        series.append({"name": name, "color": FIXED.get(name, PALETTE[i % len(PALETTE)]),
                       "width": 3 if name == "overall" else 1.6,
                       "points": " ".join(f"{a:.1f},{b:.1f}" for a, b in path),
                       "last": f"{pts[-1][1]:.3f}"})
    return {"empty": False, "width": width, "height": height, "left": left, "right": right, "top": top,
            "bottom": bottom, "series": series,
            "xticks": [(px(t), f"{t:g}") for t in nice_ticks(0, end) if t <= end],
            "yticks": [(py(t), f"{t:.2f}") for t in nice_ticks(lo, hi) if lo <= t <= hi],
            "legend": [(top + 14 + 18 * k, s["name"], s["color"], s["last"]) for k, s in enumerate(series)]}
