"""Training curves of every run of a study on one figure (validation PSNR and losses vs iteration)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

from mcir.cli.run_history import read_run
from mcir.errors import DataError
from mcir.repro.study import Study, run_dir

Series = Dict[str, List[Tuple[int, float]]]


def run_series(folder: Path) -> Series:
    """``{"l_pix": [(iter, value)], "val/Set5/psnr": [...], ...}`` of a run folder (empty when it has no log)."""
    try:
        history = read_run(folder)
    except DataError:
        return {}
    series: Series = dict(history.train)
    for dataset, metrics in history.val.items():
        for metric, points in metrics.items():
            series[f"val/{dataset}/{metric}"] = points
    return series


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
