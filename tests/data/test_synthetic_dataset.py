"""Tests for SyntheticDegradationDataset: sources, phases, seeding across runs and workers, and option errors."""

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch

from mcir.data import build_dataset, build_loader
from mcir.data.dataloader import build_dataloader
from mcir.data.meta_info import MetaEntry, write_meta_info
from mcir.data.synthetic_dataset import SyntheticDegradationDataset
from mcir.options import build_checked
from mcir.registry import DATASET_REGISTRY
from mcir.errors import DataError, OptionError
from mcir.utils.img_util import img2tensor, imwrite

REPO = Path(__file__).resolve().parents[2]
SIZES = {"a": (72, 64), "b": (66, 80), "c": (64, 70)}
NOISE = [{"type": "gaussian_noise", "sigma": [10, 30]}]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A folder of three real image crops (skimage astronaut), and the crops themselves (BGR uint8)."""
    root = tmp_path_factory.mktemp("clean")
    src = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    imgs = {k: src[50 * i : 50 * i + h, 90 * i : 90 * i + w].copy() for i, (k, (h, w)) in enumerate(SIZES.items())}
    for k, img in imgs.items():
        imwrite(img, root / f"{k}.png")
    return root, imgs


def _ds(root, degradations=NOISE, **kw):
    return SyntheticDegradationDataset(str(root), degradations, **kw)


def test_registered_and_gt_is_the_clean_image(clean):
    root, imgs = clean
    assert "SyntheticDegradationDataset" in DATASET_REGISTRY
    ds = _ds(root, phase="test")
    assert len(ds) == 3 and Path(ds[1]["gt_path"]).name == "b.png" == Path(ds[1]["lq_path"]).name
    item = ds[1]
    torch.testing.assert_close(item["gt"], img2tensor(imgs["b"].astype(np.float32) / 255))
    residual = item["lq"] - item["gt"]
    assert 10 / 255 < residual.std() < 30 / 255 and item["lq"].dtype == torch.float32


def test_test_time_degradations_repeat_across_constructions_and_depend_on_seed(clean):
    root, _ = clean
    first = [_ds(root, phase="test")[i]["lq"] for i in range(3)]
    again = [_ds(root, phase="test")[i]["lq"] for i in range(3)]
    other = [_ds(root, phase="test", seed=1)[i]["lq"] for i in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    assert not any(torch.equal(x, y) for x, y in zip(first, other))
    gts = [_ds(root, phase="test")[i]["gt"] for i in (0, 2)]
    noise_a, noise_c = first[0] - gts[0], first[2] - gts[1]
    assert not torch.allclose(noise_a[:, :64, :64], noise_c[:, :64, :64])  # each image has its own noise


def test_test_time_noise_is_keyed_by_image_name_not_position(clean, tmp_path):
    root, _ = clean
    shutil.copy(root / "c.png", tmp_path / "c.png")
    alone = _ds(tmp_path, phase="val")[0]
    assert torch.equal(alone["lq"], _ds(root, phase="val")[2]["lq"])


def test_same_test_images_with_0_and_2_workers(clean):
    root, _ = clean
    ds = _ds(root, [{"type": "motion_blur", "kernel_size": [3, 9], "kind": "trajectory"}], phase="test")
    runs = []
    for workers in (0, 2):
        loader = build_dataloader(ds, "test", num_worker_per_gpu=workers, seed=workers)
        runs.append([b["lq"] for b in loader])
    assert all(torch.equal(x, y) for x, y in zip(*runs)) and len(runs[0]) == 3


def test_training_draws_come_from_the_loader_seed(clean):
    root, _ = clean
    ds = _ds(root, phase="train", gt_size=32, use_hflip=True, use_rot=True)

    def epoch(loader, e):
        loader.sampler.set_epoch(e)
        return [(b["lq"] - b["gt"]) for b in loader]  # the noise alone, independent of the crop

    kw = dict(batch_size_per_gpu=3, num_worker_per_gpu=2, seed=5)
    run = [epoch(build_dataloader(ds, "train", **kw), e) for e in (0, 1)]
    resumed = epoch(build_dataloader(ds, "train", **kw), 1)
    assert torch.equal(run[1][0], resumed[0])
    assert not torch.equal(run[0][0], run[1][0])
    torch.manual_seed(3)
    a = ds[0]
    torch.manual_seed(3)
    b = ds[0]
    assert torch.equal(a["lq"], b["lq"]) and a["gt"].shape == (3, 32, 32)
    assert not torch.equal(ds[0]["lq"] - ds[0]["gt"], a["lq"] - a["gt"])  # the RNG advanced


def test_mid_epoch_resume_without_workers_is_exact_given_torch_rng(clean):
    root, _ = clean
    ds = _ds(root, phase="train", gt_size=32, use_hflip=True)
    kw = dict(batch_size_per_gpu=1, num_worker_per_gpu=0, dataset_enlarge_ratio=2, seed=4)
    loader = build_dataloader(ds, "train", **kw)
    torch.manual_seed(0)
    loader.sampler.set_epoch(1)
    original, saved = [], None
    for i, batch in enumerate(loader):
        original.append(batch["lq"])
        if i == 1:
            saved = torch.get_rng_state()  # what a checkpoint after two batches stores
    resumed = build_dataloader(ds, "train", **kw)
    torch.set_rng_state(saved)
    resumed.sampler.set_epoch(1, start=2)
    rest = [batch["lq"] for batch in resumed]
    assert len(rest) == 4 and all(torch.equal(a, b) for a, b in zip(original[2:], rest))


def test_bicubic_step_makes_lq_scale_times_smaller(clean):
    root, _ = clean
    cfg = [{"type": "bicubic", "scale": 2}, {"type": "jpeg", "quality": 50}]
    train = _ds(root, cfg, phase="train", scale=2, gt_size=32)
    assert train[0]["lq"].shape == (3, 16, 16) and train[0]["gt"].shape == (3, 32, 32)
    val = _ds(root, cfg, phase="val", scale=2)[2]  # c.png is 64x70
    assert val["gt"].shape == (3, 64, 70) and val["lq"].shape == (3, 32, 35)
    with pytest.raises(OptionError, match="downscale by 2 but scale is 1") as info:
        _ds(root, cfg, phase="val", scale=1)
    assert info.value.key == "degradations"


def test_gray_colour_mode_degrades_one_channel(clean):
    root, _ = clean
    item = _ds(root, [{"type": "jpeg", "quality": 20}], phase="test", color="gray")[0]
    assert item["gt"].shape == (1, 72, 64) and item["lq"].shape == (1, 72, 64)
    assert 0 < (item["lq"] - item["gt"]).abs().mean() < 0.1


def test_meta_info_and_lmdb_give_the_same_test_images_as_the_folder(clean, tmp_path):
    root, imgs = clean
    spec = importlib.util.spec_from_file_location("create_lmdb", REPO / "scripts" / "create_lmdb.py")
    create_lmdb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(create_lmdb)
    db = tmp_path / "clean.lmdb"
    create_lmdb.make_lmdb(create_lmdb.list_images(root), db)
    folder = _ds(root, phase="test")
    lmdb_ds = _ds(db, phase="test")
    meta = tmp_path / "meta.txt"
    write_meta_info(meta, [MetaEntry("c.png"), MetaEntry("a.png")])
    listed = _ds(root, phase="test", meta_info_file=str(meta))
    assert lmdb_ds.backend_kind == "lmdb" and lmdb_ds[0]["gt_path"] == "a"
    for i in range(3):
        assert torch.equal(folder[i]["lq"], lmdb_ds[i]["lq"])
    assert len(listed) == 2 and torch.equal(listed[0]["lq"], folder[2]["lq"])


def test_option_errors_name_the_key_through_build_dataset(clean):
    root, _ = clean
    base = {"type": "SyntheticDegradationDataset", "dataroot_gt": str(root), "phase": "val"}
    with pytest.raises(OptionError) as info:
        build_dataset({**base, "degradations": [{"type": "gaussian_noise", "sigma": -1}]}, "datasets.val")
    assert info.value.key == "datasets.val.degradations[0].sigma"
    with pytest.raises(OptionError) as info:
        build_dataset({**base, "degradations": [{"type": "haze", "depht": "ramp"}]}, "datasets.val")
    assert info.value.key == "datasets.val.degradations[0].depht" and "did you mean 'depth'" in str(info.value)
    with pytest.raises(OptionError, match="at least one degradation"):
        build_dataset({**base, "degradations": []}, "datasets.val")
    with pytest.raises(OptionError, match=r"missing required key\(s\) degradations"):
        build_checked(DATASET_REGISTRY, base, "datasets.val")
    with pytest.raises(OptionError, match="expected one of .rgb., .gray., .y. or null, got .hsv."):
        build_checked(DATASET_REGISTRY, {**base, "degradations": NOISE, "color": "hsv"}, "datasets.val")


def test_data_errors_name_the_file(clean, tmp_path):
    root, _ = clean
    with pytest.raises(DataError, match=r"a\.png: gt_size 70 is larger than the image 72x64"):
        _ds(root, phase="train", gt_size=70)
    with pytest.raises(DataError, match="does not exist"):
        _ds(tmp_path / "missing", phase="val")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        _ds(tmp_path / "empty", phase="val")


def test_build_loader_uses_the_run_scale_and_phase(clean):
    root, _ = clean
    cfg = {"type": "SyntheticDegradationDataset", "dataroot_gt": str(root), "degradations": NOISE,
           "gt_size": 32, "batch_size_per_gpu": 2}
    ds, loader = build_loader(cfg, "datasets.train", "train", scale=1, seed=0)
    batch = next(iter(loader))
    assert ds.phase == "train" and batch["lq"].shape == (2, 3, 32, 32)
