"""End-to-end tests of test.py: golden Bicubic values through the whole pipeline and the result files."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from mcir.test import main as run_test_cli

REPO = Path(__file__).resolve().parents[1]
BICUBIC = REPO / "options" / "test" / "SR" / "test_Bicubic_x4.yml"


def _args(tmp_path: Path, *extra: str) -> list:
    sets = [
        f"path.results_root={tmp_path / 'res'}",
        f"datasets.test_1.dataroot_gt={REPO / 'datasets/Set5/HR'}",
        f"datasets.test_1.dataroot_lq={REPO / 'datasets/Set5/LR_bicubic/X4'}",
        "num_gpu=0",
        *extra,
    ]
    args = ["-opt", str(BICUBIC)]
    for s in sets:
        args += ["--set", s]
    return args


def test_bicubic_row_golden_values_and_outputs(tmp_path):
    assert run_test_cli(_args(tmp_path, "val.save_img=true")) == 0
    res = json.loads((tmp_path / "res" / "metrics.json").read_text())
    avg = res["Set5"]["average"]
    assert round(avg["psnr"], 4) == 28.4305
    assert round(avg["ssim"], 4) == 0.8113
    assert sorted(res["Set5"]["images"]) == ["baby", "bird", "butterfly", "head", "woman"]
    csv_lines = (tmp_path / "res" / "metrics.csv").read_text().splitlines()
    assert csv_lines[0] == "dataset,image,psnr,ssim" and len(csv_lines) == 7
    assert "| Bicubic_x4 | 28.43/0.8113 |" in (tmp_path / "res" / "metrics.md").read_text()
    assert len(list((tmp_path / "res" / "visualization" / "Set5").glob("*.png"))) == 5


def test_matlab_rounded_y_convention(tmp_path):
    assert run_test_cli(_args(tmp_path, "val.metrics.psnr.round_y=true")) == 0
    res = json.loads((tmp_path / "res" / "metrics.json").read_text())
    assert round(res["Set5"]["average"]["psnr"], 4) == 28.4176


def test_several_test_sets_from_shared_data(tmp_path, shared_data):
    sr = shared_data / "sr" / "Set14"
    extra = [
        "datasets.test_2.name=Set14",
        f"datasets.test_2.dataroot_gt={sr / 'HR'}",
        f"datasets.test_2.dataroot_lq={sr / 'LR_bicubic/X4'}",
        "datasets.test_2.filename_tmpl='{}x4'",
    ]
    assert run_test_cli(_args(tmp_path, *extra)) == 0
    res = json.loads((tmp_path / "res" / "metrics.json").read_text())
    assert list(res) == ["Set5", "Set14"] and len(res["Set14"]["images"]) == 14
    # Bicubic x4 on Set14 is about 26 dB in the literature (BasicSR convention)
    assert 25.5 < res["Set14"]["average"]["psnr"] < 26.5
    assert "| Avg. |" in (tmp_path / "res" / "metrics.md").read_text()


@pytest.mark.parametrize(
    "override, expected",
    [
        ("datasets.test_1.dataroot_lq=/no/such/dir", "/no/such/dir"),
        ("path.pretrain_network_g=/no/such/weights.pth", "/no/such/weights.pth"),
        ("val.metrics.psnr.crop_bordr=4", "val.metrics.psnr.crop_bordr"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, override, expected):
    assert run_test_cli(_args(tmp_path, override)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert not (tmp_path / "res").exists()


def test_tiled_and_ensembled_evaluation(tmp_path):
    """A tile covering the image changes nothing; small tiles and x8 ensemble stay close to the whole-image result."""
    assert run_test_cli(_args(tmp_path, "val.tile=256")) == 0
    whole_tile = json.loads((tmp_path / "res" / "metrics.json").read_text())["Set5"]["average"]["psnr"]
    assert round(whole_tile, 4) == 28.4305
    assert run_test_cli(_args(tmp_path, "val.tile=32", "val.tile_overlap=16", "val.self_ensemble=true")) == 0
    tiled = json.loads((tmp_path / "res" / "metrics.json").read_text())["Set5"]["average"]["psnr"]
    assert tiled != whole_tile and abs(tiled - whole_tile) < 0.05


# ---- several models in one table ----------------------------------------------------------------


def _edsr_weights(path: Path, seed: int) -> str:
    from mcir.archs.edsr_arch import EDSR
    from mcir.core.checkpoint_io import atomic_save

    torch.manual_seed(seed)
    net = EDSR(num_feat=8, num_block=1, upscale=4)
    atomic_save({"params": net.state_dict()}, str(path))
    return str(path)


def _two_sets(tmp_path: Path) -> list:
    """Set5 plus a second real set (3 of its images copied), so the table gets an Avg. column."""
    sub = tmp_path / "Set3"
    for stem in ("baby", "bird", "head"):
        (sub / "HR").mkdir(parents=True, exist_ok=True)
        (sub / "LR").mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "datasets/Set5/HR" / f"{stem}.png", sub / "HR")
        shutil.copy(REPO / "datasets/Set5/LR_bicubic/X4" / f"{stem}x4.png", sub / "LR")
    return [
        "datasets.test_2={name: Set3, type: PairedImageDataset, filename_tmpl: '{}x4', "
        f"dataroot_gt: {sub / 'HR'}, dataroot_lq: {sub / 'LR'}}}",
    ]


def test_models_in_one_table_reproduce_the_per_image_values(tmp_path):
    w_a, w_b = _edsr_weights(tmp_path / "a.pth", 0), _edsr_weights(tmp_path / "b.pth", 1)
    models = (
        "models={Bicubic: ~, "
        f"baseline: {{pretrain_network_g: {w_a}, network_g: {{type: EDSR, num_feat: 8, num_block: 1, upscale: 4}}}}}}"
    )
    args = _args(tmp_path, *_two_sets(tmp_path), models, "val.save_img=true",
                 "models.SPN.network_g={type: EDSR, num_feat: 8, num_block: 1}")
    assert run_test_cli(args + ["--weights", f"SPN={w_b}"]) == 0
    res_dir = tmp_path / "res"
    res = json.loads((res_dir / "metrics.json").read_text())
    assert list(res) == ["Bicubic", "baseline", "SPN"]
    assert round(res["Bicubic"]["Set5"]["average"]["psnr"], 4) == 28.4305  # the golden row, unchanged
    assert res["baseline"]["Set5"]["images"] != res["SPN"]["Set5"]["images"]

    rows = list(csv.reader((res_dir / "metrics.csv").read_text().splitlines()))
    assert rows[0] == ["model", "dataset", "image", "psnr", "ssim"]
    table = (res_dir / "metrics.md").read_text().splitlines()
    assert table[0] == "| Model | Set5 | Set3 | Avg. |"
    for model in res:
        dataset_means = []
        for dataset, n in (("Set5", 5), ("Set3", 3)):
            per_image = [r for r in rows if r[0] == model and r[1] == dataset and r[2] != "average"]
            assert len(per_image) == n
            means = [sum(float(r[i]) for r in per_image) / n for i in (3, 4)]
            dataset_means.append(means)
            assert means[0] == pytest.approx(res[model][dataset]["average"]["psnr"], abs=1e-12)
        row = next(line for line in table if line.startswith(f"| {model} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        for cell, (psnr, ssim) in zip(cells[1:3], dataset_means):
            assert cell == f"{psnr:.2f}/{ssim:.4f}"
        avg_psnr = (dataset_means[0][0] + dataset_means[1][0]) / 2
        avg_ssim = (dataset_means[0][1] + dataset_means[1][1]) / 2
        assert cells[3] == f"{avg_psnr:.2f}/{avg_ssim:.4f}"
        avg_row = next(r for r in rows if r[0] == model and r[1] == "Avg.")
        assert float(avg_row[3]) == pytest.approx(avg_psnr, abs=1e-12)
        image_mean = sum(float(r[3]) for r in rows if r[0] == model and r[2] not in ("average",) and r[1] != "Avg.") / 8
        assert abs(image_mean - avg_psnr) > 1e-6  # Avg. is not the mean over images
    assert len(list((res_dir / "visualization" / "SPN" / "Set3").glob("*.png"))) == 3


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--weights", "noequals"], "--weights"),
        (["--weights", "a.b=x.pth"], "--weights"),
        (["--set", "models.x.network_g.upscalee=4"], "models.x.network_g.upscalee"),
        (["--set", "models.x.pretrain_network_g=/no/such/w.pth"], "/no/such/w.pth"),
        (["--set", "models.x.network_g={type: EDSR, num_feat: 8}",
          "--set", "models.x.network_g.num_feat=eight"], "models.x.network_g.num_feat"),
    ],
)
def test_bad_model_entries_are_one_line(tmp_path, capsys, extra, expected):
    assert run_test_cli(_args(tmp_path) + extra) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert not (tmp_path / "res").exists()


def _test_rank(rank: int, args: list, out: str) -> None:
    """One process of a 2-process test.py run; rank 1 must neither log nor write the result files."""
    import contextlib

    from mcir.engine import test_runner

    if rank != 0:
        def refuse(*_a, **_k):
            raise AssertionError("rank 1 wrote the result files")

        test_runner.write_results = refuse
    with open(Path(out) / f"rank{rank}.log", "w") as log, contextlib.redirect_stdout(log):
        assert run_test_cli(args + ["--launcher", "pytorch"]) == 0


def test_two_processes_write_what_one_process_writes(spawn_ranks, tmp_path):
    # two test sets (Avg. column), images saved by both ranks
    again = [f"datasets.test_2.{k}={v}" for k, v in (("name", "Set5_again"), ("dataroot_gt", REPO / "datasets/Set5/HR"),
             ("dataroot_lq", REPO / "datasets/Set5/LR_bicubic/X4"), ("filename_tmpl", "'{}x4'"))]
    extra = [*again, "val.save_img=true", "val.suffix=x4"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_test_cli(_args(one, *extra)) == 0
    spawn_ranks(_test_rank, 2, _args(two, *extra), str(tmp_path))
    for name in ("metrics.json", "metrics.csv", "metrics.md"):
        assert (two / "res" / name).read_bytes() == (one / "res" / name).read_bytes(), name
    res = json.loads((two / "res" / "metrics.json").read_text())
    assert list(res) == ["Set5", "Set5_again"]
    assert list(res["Set5"]["images"]) == ["baby", "bird", "butterfly", "head", "woman"]
    assert round(res["Set5"]["average"]["psnr"], 4) == 28.4305
    saved = sorted(p.relative_to(two / "res") for p in (two / "res" / "visualization").rglob("*.png"))
    assert len(saved) == 10 and saved == sorted(p.relative_to(one / "res")
                                                for p in (one / "res" / "visualization").rglob("*.png"))
    for rel in saved:
        assert (two / "res" / rel).read_bytes() == (one / "res" / rel).read_bytes()
    assert "| Bicubic_x4 |" in (tmp_path / "rank0.log").read_text()
    assert (tmp_path / "rank1.log").read_text() == ""
