"""Training curves of every run of a study on one figure (validation PSNR and losses vs iteration)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Tuple

from mcir.repro.study import Study, run_dir

_TRAIN_RE = re.compile(r"\[epoch \d+ iter (\d+)\] (.*)")
_VAL_RE = re.compile(r"validation (\S+) @ iter (\d+): (.*)")
_PAIR_RE = re.compile(r"([\w/]+): ([-+0-9.eE]+|nan|inf)")

Series = Dict[str, List[Tuple[int, float]]]


def parse_train_log(text: str) -> Series:
    """Series from an mcir training log: ``{"l_pix": [(iter, value)], "val/Set5/psnr": [...], ...}``."""
    series: Series = {}
    for line in text.splitlines():
        if m := _VAL_RE.search(line):
            dataset, it, rest = m.group(1), int(m.group(2)), m.group(3)
            for key, value in _PAIR_RE.findall(rest):
                series.setdefault(f"val/{dataset}/{key}", []).append((it, float(value)))
        elif m := _TRAIN_RE.search(line):
            it, rest = int(m.group(1)), m.group(2)
            for key, value in _PAIR_RE.findall(rest):
                if key.startswith("l_") or key in ("neg_ratio", "lambda"):
                    series.setdefault(key, []).append((it, float(value)))
    return series


def run_series(folder: Path) -> Series:
    """Series of a run folder, joining its logs in time order (a resumed run has several)."""
    merged: Series = {}
    for log in sorted((folder / "logs").glob("train_*.log")):
        for key, points in parse_train_log(log.read_text(errors="replace")).items():
            merged.setdefault(key, []).extend(points)
    # A resumed run repeats the iterations since its last checkpoint: keep the latest value per iteration.
    return {k: sorted(dict(v).items()) for k, v in merged.items()}


def plot_study_curves(study: Study, path: Path) -> bool:
    """Plot validation PSNR and the loss terms of every run; one colour per method, one line per seed.

    Returns:
        Whether a figure was written (False when no run has a log yet).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {(m.name, s): run_series(run_dir(study, m, s)) for m in study.methods for s in study.seeds}
    keys = sorted({k for series in runs.values() for k in series if k.startswith("val/") and k.endswith("/psnr")})
    keys += [k for k in ("l_pix", "l_rec", "l_neg", "l_contrast", "neg_ratio")
             if any(k in series for series in runs.values())]
    if not keys:
        return False
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key in zip(axes[0], keys):
        for i, m in enumerate(study.methods):
            for j, s in enumerate(study.seeds):
                points = runs[(m.name, s)].get(key)
                if points:
                    xs, ys = zip(*points)
                    ax.plot(xs, ys, color=colours[i % len(colours)], alpha=0.8, lw=1.2,
                            label=m.name if j == 0 else None)
        ax.set_title(key.replace("val/", "validation ").replace("/psnr", " PSNR (dB)"))
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return True


def curves_section(study: Study) -> Dict[str, str]:
    """The report's curves section (empty when there is nothing to plot)."""
    if plot_study_curves(study, study.report_dir / "curves.png"):
        return {"Training curves": "![training curves](curves.png)\n\nOne colour per method, one line per seed.\n"}
    return {}
