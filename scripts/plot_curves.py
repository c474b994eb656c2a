"""Training curves of several runs on one figure: validation metric and losses vs iteration.

    python scripts/plot_curves.py experiments/EDSR_x4 experiments/EDSR_x4_SPN --out curves.png

Each argument is a run folder (``experiments/<name>``), its ``logs/`` folder or one log file; values come
from the text log, or from the TensorBoard events when there is no text log (``mcir.cli.run_history``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcir.cli import run_main  # noqa: E402
from mcir.cli.run_history import RunHistory  # noqa: E402
from mcir.errors import MCIRError  # noqa: E402
from mcir.cli.plotting import add_run_arguments, pyplot, read_runs, save_figure  # noqa: E402

#: Reconstruction-loss keys plotted by default (plain models log l_pix, MCIRModel logs l_rec).
DEFAULT_LOSSES = ("l_pix", "l_rec")


def plot_curves(
    runs: Sequence[RunHistory],
    out: Path,
    metric: str = "psnr",
    datasets: Optional[Sequence[str]] = None,
    losses: Sequence[str] = DEFAULT_LOSSES,
    log_loss: bool = True,
) -> None:
    """Left: validation ``metric`` per run and dataset; right: the chosen losses per run.

    Args:
        runs: Histories to draw (one colour each).
        out: PNG file.
        metric: Validation metric name.
        datasets: Validation sets to draw (default: all).
        losses: Training keys to draw on the right.
        log_loss: Logarithmic loss axis.
    """
    plt = pyplot()
    fig, (ax_val, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-", "--", ":", "-."]
    drawn_val = drawn_loss = 0
    for i, run in enumerate(runs):
        colour = colours[i % len(colours)]
        for j, (dataset, metrics) in enumerate(sorted(run.val.items())):
            if (datasets and dataset not in datasets) or metric not in metrics:
                continue
            its, vals = zip(*metrics[metric])
            ax_val.plot(its, vals, styles[j % len(styles)], color=colour, marker="o", ms=3,
                        label=f"{run.name} ({dataset})")
            drawn_val += 1
        for j, key in enumerate(k for k in losses if run.series(k)):
            its, vals = zip(*run.series(key))
            ax_loss.plot(its, vals, styles[j % len(styles)], color=colour, label=f"{run.name} {key}")
            drawn_loss += 1
    if not drawn_val and not drawn_loss:
        plt.close(fig)
        raise MCIRError(f"nothing to plot: no validation '{metric}' and none of the losses {', '.join(losses)}")
    ax_val.set(xlabel="iteration", ylabel=metric, title=f"validation {metric}")
    ax_loss.set(xlabel="iteration", ylabel="loss (mean over the print interval)", title="training loss")
    if log_loss and drawn_loss:
        ax_loss.set_yscale("log")
    for ax, n in ((ax_val, drawn_val), (ax_loss, drawn_loss)):
        ax.grid(alpha=0.3)
        if n:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    save_figure(fig, out)


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(p, "run folders (experiments/<name>), logs/ folders or log files")
    p.add_argument("--metric", default="psnr", help="validation metric (default psnr)")
    p.add_argument("--datasets", default=None, help="comma-separated validation sets (default: all)")
    p.add_argument("--losses", default=",".join(DEFAULT_LOSSES), help="comma-separated loss keys")
    p.add_argument("--linear", action="store_true", help="linear loss axis (default logarithmic)")
    return p


def run(args: argparse.Namespace) -> None:
    """Draw the figure the command line asks for.

    Args:
        args: Parsed command line.
    """
    plot_curves(read_runs(args.runs, args.labels), Path(args.out), args.metric,
                args.datasets.split(",") if args.datasets else None,
                [k for k in args.losses.split(",") if k], log_loss=not args.linear)
    print(f"wrote {args.out}")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; user errors print one line and return 1."""
    return run_main(run, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
