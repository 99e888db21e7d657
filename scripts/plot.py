"""PNG plots of measured results (needs matplotlib; the library itself never needs Python).

    python3 scripts/plot.py recall OUT.png EVAL.json...       recall vs beam size (avg-eval JSON)
    python3 scripts/plot.py ablations OUT.png EVAL.json...    beam-20 R@1/5/10 per run (avg-eval JSON)
    python3 scripts/plot.py sweeps OUT.png EVAL.json...       the same, titled for the N / M sweeps
    python3 scripts/plot.py speed OUT.png SEARCH_BENCH.txt    queries/s vs index size
                                                              (the output of cargo bench --bench search)
"""
import json
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(paths):
    return [json.load(open(p)) for p in paths]


def beams(run):
    """(beam, row) for each plain 'libavg beam N' row, by beam."""
    out = []
    for row in run["rows"]:
        m = re.fullmatch(r"libavg beam (\d+)", row["method"])
        if m:
            out.append((int(m.group(1)), row))
    return sorted(out)


def dense(run):
    return next(r for r in run["rows"] if r["method"].startswith("dense"))


def save(fig, ax, out, ylabel, title, legend_size):
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def recall(out, paths):
    fig, ax = plt.subplots(figsize=(6, 4))
    for run in load(paths):
        pts = beams(run)
        for key, style in (("r1", "o-"), ("r5", "s--"), ("r10", "^:")):
            ax.plot([b for b, _ in pts], [r[key] for _, r in pts], style, label=f"{run['label']} R@{key[1:]}")
        for key in ("r1", "r5", "r10"):
            ax.axhline(dense(run)[key], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("beam size")
    save(fig, ax, out, "recall (%)", "libavg recall vs beam size (grey: dense baseline R@1/5/10)", 7)


def bars(out, paths, title):
    """Beam-20 R@1/5/10 of each run, side by side."""
    runs = load(paths)
    labels = [r["label"] for r in runs]
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.25
    for i, key in enumerate(("r1", "r5", "r10")):
        vals = [dict(beams(r))[20][key] for r in runs]
        xs = [j + (i - 1) * width for j in range(len(runs))]
        bars = ax.bar(xs, vals, width, label=f"R@{key[1:]}")
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(runs)), labels, fontsize=8)
    save(fig, ax, out, "recall (%), beam 20", title, 8)


def speed(out, path):
    rows = []
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        # images | f32 p50, p99, q/s | int8 p50, p99, q/s | int8/f32 | dense p50, p99, q/s
        if len(cells) == 11 and cells[0].isdigit():
            rows.append([float(c) for c in cells])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r[0] for r in rows], [r[3] for r in rows], "o-", label="libavg beam 20, f32 weights")
    ax.plot([r[0] for r in rows], [r[6] for r in rows], "^-", label="libavg beam 20, int8 weights")
    ax.plot([r[0] for r in rows], [r[10] for r in rows], "s--", label="dense baseline (exact)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("images in the index")
    save(fig, ax, out, "queries/s (one at a time)", "query speed vs index size", 10)


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("recall", "ablations", "sweeps", "speed"):
        sys.exit(__doc__)
    kind, out, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]
    if kind == "speed":
        speed(out, inputs[0])
    elif kind == "recall":
        recall(out, inputs)
    else:
        bars(out, inputs, {"ablations": "ablations", "sweeps": "codebook size N and code length M"}[kind])


if __name__ == "__main__":
    main()
