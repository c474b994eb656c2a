"""λ·L_neg / L_rec over training for model-contrastive (MCIRModel) runs, with λ below it.

    python scripts/plot_neg_ratio.py experiments/EDSR_x4_SPN [more runs] --out neg_ratio.png

MCIRModel logs ``neg_ratio`` (= λ·L_neg / L_rec), ``lambda``, ``l_rec`` and ``l_neg`` (means over each
print interval). When a log has no ``neg_ratio`` the ratio is computed from the other three. The
authors keep the ratio around 0.01–0.1; a ratio growing towards 1 signals the collapse the paper reports
for λ ≥ 1e-3.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcir.cli import run_main  # noqa: E402
from mcir.cli.run_history import RunHistory, Series  # noqa: E402
from mcir.errors import MCIRError  # noqa: E402
from mcir.cli.plotting import add_run_arguments, pyplot, read_runs, save_figure  # noqa: E402


def neg_ratio_series(run: RunHistory) -> Series:
    """λ·L_neg / L_rec by iteration: the logged ``neg_ratio``, else computed from ``lambda``, ``l_neg``, ``l_rec``.

    Args:
        run: A run history.

    Returns:
        ``[(iteration, ratio)]`` (empty for runs without a negative term).
    """
    if run.series("neg_ratio"):
        return run.series("neg_ratio")
    lam, neg, rec = (dict(run.series(k)) for k in ("lambda", "l_neg", "l_rec"))
    return [(it, lam[it] * neg[it] / rec[it]) for it in sorted(lam) if it in neg and rec.get(it)]


def plot_neg_ratio(runs: Sequence[RunHistory], out: Path, band: Sequence[float] = (0.01, 0.1)) -> None:
    """Top: λ·L_neg / L_rec per run (log axis) with the authors' band shaded; bottom: λ per run.

    Args:
        runs: Histories (one colour each).
        out: PNG file.
        band: Ratio range to shade (the authors' recommendation).
    """
    plt = pyplot()
    fig, (ax_r, ax_l) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    drawn = 0
    for run in runs:
        ratio = neg_ratio_series(run)
        if not ratio:
            continue
        its, vals = zip(*ratio)
        line, = ax_r.plot(its, vals, marker="o", ms=3, label=run.name)
        if run.series("lambda"):
            its_l, lam = zip(*run.series("lambda"))
            ax_l.plot(its_l, lam, color=line.get_color(), label=run.name)
        drawn += 1
    if not drawn:
        plt.close(fig)
        names = ", ".join(r.name for r in runs)
        raise MCIRError(f"no λ·L_neg / L_rec in {names}: plot MCIRModel runs "
                        "(they log neg_ratio, lambda, l_neg, l_rec)")
    ax_r.axhspan(band[0], band[1], color="tab:green", alpha=0.12, label=f"{band[0]:g}–{band[1]:g}")
    ax_r.set(ylabel="λ·L_neg / L_rec", title="strength of the negative term relative to the reconstruction loss")
    ax_l.set(xlabel="iteration", ylabel="λ")
    for ax in (ax_r, ax_l):
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, out)


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(p, "MCIRModel run folders (experiments/<name>), logs/ folders or log files")
    return p


def run(args: argparse.Namespace) -> None:
    """Draw the figure the command line asks for.

    Args:
        args: Parsed command line.
    """
    plot_neg_ratio(read_runs(args.runs, args.labels), Path(args.out))
    print(f"wrote {args.out}")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; user errors print one line and return 1."""
    return run_main(run, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
