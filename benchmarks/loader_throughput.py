"""Training DataLoader throughput (patches/s; disk PNG vs LMDB, 0 vs 2 workers) against what the model consumes.

Two training inputs on the real bundled T91 images, each read from PNG files on disk and from an LMDB made
in a temporary folder with ``scripts/create_lmdb.py``'s ``make_lmdb``:

* ``sr_x4``: PairedImageDataset with ``lq_from_gt: bicubic`` (GT patch 192 -> LR 48, flips/rotations),
  batch 16, against one EDSR-light x4 step (64 features, 16 blocks; forward + backward + Adam);
* ``dehaze``: SyntheticDegradationDataset with on-the-fly ``haze`` (GT patch 128, flips/rotations), batch 4,
  against one FFA-Net step (``FFANet`` / ``FFA`` from ARCH_REGISTRY with its defaults; the row is skipped
  with a message when no such arch is registered).

Only images at least as large as the patch are used (copied to a temporary folder, which is also packed
into the LMDB).
Loader rates are steady state: each timed run starts a fresh iterator, skips the batches that include worker
start-up or were prefetched meanwhile, then times the next ``--batches`` batches; runs of all variants are
interleaved and the median kept. The models' steps run on random tensors of the same shapes (median of
``--steps``), in the main process with torch's default threads. The goal is loader >= 3x consumption. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import median_times  # noqa: E402
from mcir.data.dataloader import build_dataloader  # noqa: E402
from mcir.data.paired_dataset import PairedImageDataset  # noqa: E402
from mcir.data.synthetic_dataset import SyntheticDegradationDataset  # noqa: E402
from mcir.registry import ARCH_REGISTRY  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
T91 = REPO / "datasets" / "T91" / "HR"
GOAL = 3.0


def _create_lmdb_module() -> Any:
    spec = importlib.util.spec_from_file_location("create_lmdb", REPO / "scripts" / "create_lmdb.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare(tmp: Path, min_side: int, tag: str) -> Dict[str, Any]:
    """A folder and an LMDB with the T91 images whose shorter side is at least ``min_side``.

    Args:
        tmp: Temporary folder.
        min_side: Smallest allowed image side (the GT patch size).
        tag: Name of this subset (folder names).

    Returns:
        ``{'folder': PNG folder, 'lmdb': LMDB folder, 'count': images}``.
    """
    from PIL import Image

    folder = tmp / tag
    folder.mkdir()
    for p in sorted(T91.glob("*.png")):
        with Image.open(p) as im:
            if min(im.size) >= min_side:
                shutil.copy(p, folder)
    db = tmp / f"{tag}.lmdb"
    create_lmdb = _create_lmdb_module()
    create_lmdb.make_lmdb(create_lmdb.list_images(folder), db)
    return {"folder": str(folder), "lmdb": str(db), "count": len(list(folder.iterdir()))}


def loader_timer(dataset: torch.utils.data.Dataset, batch: int, workers: int, batches: int) -> Callable[[], None]:
    """A function that times ``batches`` steady-state batches of a fresh training loader.

    Args:
        dataset: Training dataset.
        batch: Batch size.
        workers: DataLoader worker processes.
        batches: Batches to time.

    Returns:
        A zero-argument function; its attribute ``seconds`` collects the timed seconds of each call.
    """
    loader = build_dataloader(dataset, "train", batch_size_per_gpu=batch, num_worker_per_gpu=workers,
                              dataset_enlarge_ratio=200, seed=0)
    # Skip each worker's first batch (start-up) and the batches the workers prefetch meanwhile (2 each, the
    # DataLoader default), so the timed window starts with an empty queue and measures production.
    warm = 1 if workers == 0 else 3 * workers

    def run() -> None:
        it = iter(loader)
        for _ in range(warm):
            next(it)
        t0 = time.perf_counter()
        for _ in range(batches):
            next(it)
        run.seconds.append(time.perf_counter() - t0)
        del it

    run.seconds = []
    return run


def step_time(net: torch.nn.Module, lq_shape: tuple, gt_shape: tuple, repeats: int) -> float:
    """Median seconds of one training step (forward, L1, backward, Adam) on random tensors.

    Args:
        net: The network.
        lq_shape: Input batch shape.
        gt_shape: Target batch shape.
        repeats: Timed steps (after one warm-up step).

    Returns:
        Median seconds per step.
    """
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    lq, gt = torch.rand(lq_shape), torch.rand(gt_shape)

    def step() -> None:
        loss = torch.nn.functional.l1_loss(net(lq), gt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    return median_times({"step": step}, repeats)["step"]


def ffa_net() -> Optional[torch.nn.Module]:
    """FFA-Net from the registry with its default arguments, or None when it is not registered."""
    import mcir.archs  # noqa: F401  (registers the built-in archs)

    for name in ("FFANet", "FFA"):
        if name in ARCH_REGISTRY:
            return ARCH_REGISTRY.get(name)()
    return None


def measure_loaders(datasets: Dict[str, Any], batch: int, batches: int, repeats: int) -> Dict[str, float]:
    """Patches/s of each ``<backend>_w<workers>`` variant, interleaved repeats, median.

    Args:
        datasets: Backend name -> dataset.
        batch: Batch size.
        batches: Timed batches per run.
        repeats: Runs per variant.

    Returns:
        Variant -> patches per second.
    """
    runs = {f"{b}_w{w}": loader_timer(ds, batch, w, batches) for b, ds in datasets.items() for w in (0, 2)}
    for _ in range(repeats):
        for run in runs.values():
            run()
    return {k: batch * batches / statistics.median(r.seconds) for k, r in runs.items()}


def main() -> None:
    """Run the comparison and print the JSON result as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10, help="timed batches per loader run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per loader variant (median)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per model (median)")
    args = parser.parse_args()
    torch.manual_seed(0)
    result: Dict[str, Any] = {"threads": torch.get_num_threads(), "batches": args.batches,
                              "repeats": args.repeats, "steps": args.steps}
    with tempfile.TemporaryDirectory() as tmp:
        sr_data = prepare(Path(tmp), 192, "t91_192")
        haze_data = prepare(Path(tmp), 128, "t91_128")
        common = dict(phase="train", use_hflip=True, use_rot=True)

        def sr_set(backend: str) -> PairedImageDataset:
            root = sr_data["lmdb"] if backend == "lmdb" else sr_data["folder"]
            return PairedImageDataset(root, lq_from_gt="bicubic", scale=4, gt_size=192, **common)

        def haze_set(backend: str) -> SyntheticDegradationDataset:
            root = haze_data["lmdb"] if backend == "lmdb" else haze_data["folder"]
            return SyntheticDegradationDataset(root, [{"type": "haze"}], gt_size=128, **common)

        rows: List[Dict[str, Any]] = [
            {"name": "sr_x4", "images": sr_data["count"], "batch": 16, "gt_patch": 192,
             "loader": measure_loaders({b: sr_set(b) for b in ("disk", "lmdb")}, 16, args.batches, args.repeats)},
        ]
        from mcir.archs.edsr_arch import EDSR

        edsr = EDSR(num_feat=64, num_block=16, upscale=4)
        rows[0]["model"] = "EDSR-light x4"
        rows[0]["consume"] = 16 / step_time(edsr, (16, 3, 48, 48), (16, 3, 192, 192), args.steps)
        ffa = ffa_net()
        haze_row: Dict[str, Any] = {"name": "dehaze", "images": haze_data["count"], "batch": 4, "gt_patch": 128,
                                    "loader": measure_loaders({b: haze_set(b) for b in ("disk", "lmdb")}, 4,
                                                              args.batches, args.repeats)}
        if ffa is None:
            print("FFA-Net is not registered (FFANet / FFA): no consumption row for the dehazing loader",
                  file=sys.stderr)
            haze_row["model"] = None
            haze_row["consume"] = None
        else:
            haze_row["model"] = type(ffa).__name__
            haze_row["consume"] = 4 / step_time(ffa, (4, 3, 128, 128), (4, 3, 128, 128), args.steps)
        rows.append(haze_row)

    for row in rows:
        if row["consume"]:
            row["loader_over_consume"] = {k: v / row["consume"] for k, v in row["loader"].items()}
            row["goal_met"] = min(row["loader_over_consume"].values()) >= GOAL
        print(f"{row['name']}: loader patches/s " + ", ".join(f"{k} {v:.1f}" for k, v in row["loader"].items())
              + (f"; {row['model']} consumes {row['consume']:.2f} patches/s" if row["consume"] else ""), flush=True)
    result["rows"] = {r.pop("name"): r for r in rows}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
