"""Run one study cell (method × seed): train in a subprocess with auto-resume, then evaluate with test.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import yaml

from mcir.errors import DataError
from mcir.options import load_options, thaw
from mcir.repro.study import (
    Method,
    Prep,
    Study,
    benchmark_exists,
    prep_dir,
    prep_name,
    prep_overrides,
    run_dir,
    run_name,
    study_overrides,
)
from mcir.utils.atomic import atomic_write_text

REPO = Path(__file__).resolve().parents[2]
STATUS_FILE = "repro_status.json"
# The guard's two stopping messages: bad steps in a row (action stop), or a non-finite loss (action watch).
COLLAPSE_MARKS = ("training collapsed", "the loss is not finite")


def read_status(folder: Path) -> Optional[Dict[str, Any]]:
    """The harness's record of a run (``finished`` / ``collapsed`` / ``failed``), or None."""
    path = folder / STATUS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def _command(opt_file: str, overrides: List[str]) -> List[str]:
    """A resumable (``--auto_resume``) ``mcir/train.py`` command line."""
    cmd = [sys.executable, str(REPO / "mcir" / "train.py"), "-opt", opt_file, "--auto_resume"]
    for s in overrides:
        cmd += ["--set", s]
    return cmd


def train_command(study: Study, method: Method, seed: int) -> List[str]:
    """The ``mcir/train.py`` command line of one run (resumable: ``--auto_resume``)."""
    return _command(method.opt, study_overrides(study, method, seed))


def prep_command(study: Study, prep: Prep) -> List[str]:
    """The ``mcir/train.py`` command line of a prep run."""
    return _command(prep.opt, prep_overrides(study, prep))


def train_run(study: Study, method: Method, seed: int, echo: Callable[[str], None] = print) -> Dict[str, Any]:
    """Train one run unless it already finished (or collapsed) with this budget; record the outcome.

    Args:
        study: The study.
        method: The method.
        seed: The seed.
        echo: Where progress lines go.

    Returns:
        The status record ``{"status", "message", "total_iter"}``.
    """
    return _train(train_command(study, method, seed), run_dir(study, method, seed), run_name(study, method, seed),
                  study.total_iter, echo)


def train_prep(study: Study, prep: Prep, echo: Callable[[str], None] = print) -> Dict[str, Any]:
    """Train a prep run unless it already finished with its budget (see :func:`train_run`)."""
    return _train(prep_command(study, prep), prep_dir(study, prep.name), prep_name(study, prep.name),
                  prep.total_iter, echo)


def _train(cmd: List[str], folder: Path, label: str, total_iter: Optional[int],
           echo: Callable[[str], None]) -> Dict[str, Any]:
    """Run ``cmd`` unless ``folder`` records a finished (or collapsed) run of ``total_iter``; record the outcome."""
    status = read_status(folder)
    if status and status["status"] in ("finished", "collapsed") and status.get("total_iter") == total_iter:
        echo(f"skip {label}: {status['status']}")
        return status
    echo(f"train {label}")
    proc = subprocess.run(cmd, cwd=Path.cwd(), capture_output=True, text=True)
    err_lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")]
    message = err_lines[-1] if err_lines else (proc.stderr.strip().splitlines() or [""])[-1]
    if proc.returncode == 0:
        status = {"status": "finished", "message": "", "total_iter": total_iter}
    elif any(mark in message for mark in COLLAPSE_MARKS):
        status = {"status": "collapsed", "message": message, "total_iter": total_iter}
    else:
        status = {"status": "failed", "message": message, "total_iter": total_iter}
    if folder.is_dir():
        atomic_write_text(json.dumps(status, indent=2) + "\n", str(folder / STATUS_FILE))
    echo(f"  -> {status['status']} {status['message']}".rstrip())
    return status


def test_options(study: Study, method: Method, seed: int) -> Dict[str, Any]:
    """A test option tree evaluating one run's final weights on the study's benchmarks.

    The network, scale and EMA choice come from the run's own (validated) training options.
    """
    return _test_tree(study, method.opt, study_overrides(study, method, seed), run_name(study, method, seed),
                      run_dir(study, method, seed), eval_dir(study, method, seed))


def _test_tree(study: Study, opt_file: str, overrides: List[str], name: str, folder: Path,
               out: Path) -> Dict[str, Any]:
    """Test options evaluating ``folder``'s final weights (trained from ``opt_file`` + ``overrides``)."""
    opt = load_options(opt_file, overrides, is_train=True)
    scale = opt["scale"]
    crop = study.crop_border if study.crop_border is not None else scale
    datasets = {}
    for i, bench in enumerate((b for b in study.benchmarks if benchmark_exists(b)), start=1):
        datasets[f"test_{i}"] = {"name": bench.name, "type": "PairedImageDataset", "dataroot_gt": bench.dataroot_gt,
                                 "dataroot_lq": bench.dataroot_lq, "filename_tmpl": bench.filename_tmpl,
                                 "io_backend": {"type": "disk"}}
    if not datasets:
        raise DataError(f"{study.file}: none of the benchmarks' folders exist")
    use_ema = opt["train"].get("ema_decay", 0) > 0
    metric = {"crop_border": crop, "test_y_channel": study.test_y_channel}
    return {
        "name": name,
        "model_type": "RestorationModel",
        "scale": scale,
        "num_gpu": opt["num_gpu"],
        "datasets": datasets,
        "network_g": thaw(opt["network_g"]),
        "path": {
            "pretrain_network_g": str(folder / "models" / "net_g_latest.pth"),
            "param_key_g": "params_ema" if use_ema else "params",
            "strict_load_g": True,
            "results_root": str(out),
        },
        "val": {"save_img": False, "metrics": {"psnr": {"type": "calculate_psnr", **metric},
                                               "ssim": {"type": "calculate_ssim", **metric}}},
    }


def eval_dir(study: Study, method: Method, seed: int) -> Path:
    """Where the evaluation of one run is written (inside the report folder)."""
    return study.report_dir / "eval" / run_name(study, method, seed)


def evaluate_run(study: Study, method: Method, seed: int, echo: Callable[[str], None] = print) -> Dict[str, Any]:
    """Evaluate a finished run with test.py (skipped when its metrics already exist).

    Returns:
        ``metrics.json`` of the run: ``{dataset: {"average": {...}, "images": {...}}}``.
    """
    return _evaluate(eval_dir(study, method, seed), lambda: test_options(study, method, seed),
                     run_name(study, method, seed), echo)


def evaluate_prep(study: Study, prep: Prep, echo: Callable[[str], None] = print) -> Dict[str, Any]:
    """Evaluate a finished prep run on the study's benchmarks (how strong a negative it makes)."""
    name = prep_name(study, prep.name)
    out = study.report_dir / "eval" / name
    return _evaluate(out, lambda: _test_tree(study, prep.opt, prep_overrides(study, prep), name,
                                             prep_dir(study, prep.name), out), name, echo)


def _evaluate(out: Path, tree: Callable[[], Dict[str, Any]], label: str, echo: Callable[[str], None]) -> Dict[str, Any]:
    """Run test.py on the options ``tree()`` writing into ``out`` (skipped when ``out`` has metrics)."""
    metrics = out / "metrics.json"
    if metrics.is_file():
        return json.loads(metrics.read_text())
    out.mkdir(parents=True, exist_ok=True)
    opt_file = out / "test_options.yml"
    atomic_write_text(yaml.safe_dump(tree(), sort_keys=False), str(opt_file))
    echo(f"evaluate {label}")
    proc = subprocess.run([sys.executable, str(REPO / "mcir" / "test.py"), "-opt", str(opt_file)],
                          cwd=Path.cwd(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise DataError(f"{opt_file}: evaluation failed: {(proc.stderr.strip().splitlines() or [''])[-1]}")
    return json.loads(metrics.read_text())
