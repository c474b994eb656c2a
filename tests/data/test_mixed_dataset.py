"""Tests for MixedDataset: weighted proportions, task tags, determinism, batch-shape checks, option validation."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
import yaml

from mcir.data import build_dataset, build_loader
from mcir.data.mixed_dataset import MixedDataset, apportion
from mcir.errors import OptionError
from mcir.options import load_options
from mcir.options.schema import dataset_spec
from mcir.options.validate import validate
from mcir.utils.img_util import imwrite

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def tasks(tmp_path):
    """Two tiny paired sets: 'derain' (3 pairs, rain-/norain- names) and 'dehaze' (5 pairs, RESIDE names)."""
    img = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    for i in range(3):
        clean = img[40 * i : 40 * i + 48, 0:40]
        imwrite(clean, tmp_path / "derain" / "norain" / f"norain-{i}.png")
        imwrite(255 - clean, tmp_path / "derain" / "rain" / f"rain-{i}.png")
    for i in range(5):
        clean = img[200:256, 30 * i : 30 * i + 64]
        imwrite(clean, tmp_path / "dehaze" / "gt" / f"{i}.png")
        imwrite(clean // 2 + 100, tmp_path / "dehaze" / "hazy" / f"{i}_1.png")
    return {
        "derain": {
            "dataroot_gt": str(tmp_path / "derain/norain"),
            "dataroot_lq": str(tmp_path / "derain/rain"),
            "gt_size": 32,
        },
        "dehaze": {
            "dataroot_gt": str(tmp_path / "dehaze/gt"),
            "dataroot_lq": str(tmp_path / "dehaze/hazy"),
            "gt_size": 32,
            "use_hflip": True,
        },
    }


def test_apportion_is_proportional_and_exact():
    assert apportion(20, [3, 1]) == [15, 5]
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    assert sum(apportion(7, [0.2, 0.5, 0.3])) == 7


def test_default_length_covers_every_sample_at_the_given_weights(tasks):
    ds = MixedDataset(tasks, weights={"derain": 1, "dehaze": 3})
    # dehaze (5 samples) needs 5 / (3/4) -> 7 samples per pass; derain (3) needs 3 / (1/4) = 12
    assert len(ds) == 12 and ds.counts == [3, 9]
    located = [ds.locate(i) for i in range(len(ds))]
    assert Counter(t for t, _ in located) == {0: 3, 1: 9}
    assert sorted(s for t, s in located if t == 0) == [0, 1, 2]
    dehaze = Counter(s for t, s in located if t == 1)
    assert set(dehaze) == set(range(5)) and max(dehaze.values()) - min(dehaze.values()) <= 1


def test_samples_carry_their_task_and_a_task_prefixed_name(tasks):
    ds = MixedDataset(tasks, weights=[1, 1], length=10, phase="val")
    tags = [ds[i]["task"] for i in range(len(ds))]
    assert Counter(tags) == {"derain": 5, "dehaze": 5}
    item = ds[0]
    assert item["task"] == "derain" and item["name"].startswith("derain/norain-")
    assert item["lq"].shape == (3, 48, 40)  # val: whole images, sizes may differ between tasks


def test_assignment_is_deterministic_given_seed(tasks):
    a, b = MixedDataset(tasks, seed=1), MixedDataset(tasks, seed=1)
    assert [a.locate(i) for i in range(len(a))] == [b.locate(i) for i in range(len(b))]
    others = [MixedDataset(tasks, seed=s) for s in range(2, 6)]
    assert any([o.locate(i) for i in range(len(o))] != [a.locate(i) for i in range(len(a))] for o in others)
    torch.manual_seed(0)
    x = a[7]
    torch.manual_seed(0)
    assert torch.equal(x["lq"], b[7]["lq"]) and x["task"] == b[7]["task"]


def test_training_batches_mix_tasks_with_equal_patch_shapes(tasks):
    cfg = {"type": "MixedDataset", "datasets": tasks, "weights": {"derain": 1, "dehaze": 1}, "batch_size_per_gpu": 4}
    dataset, loader = build_loader(cfg, "datasets.train", "train", scale=1, seed=0)
    batch = next(iter(loader))
    assert batch["lq"].shape == batch["gt"].shape == (4, 3, 32, 32)
    assert len(dataset) == 10 and dataset.counts == [5, 5]
    seen = Counter(t for b in loader for t in b["task"])
    assert sum(seen.values()) == 8 and set(seen) == {"derain", "dehaze"}  # the last partial batch is dropped


@pytest.mark.parametrize(
    "edit, key, match",
    [
        (
            lambda t: t["dehaze"].update(gt_size=48),
            "datasets.dehaze.gt_size",
            r"same gt_size \(got derain: 32, dehaze: 48\)",
        ),
        (lambda t: t["dehaze"].pop("gt_size"), "datasets.dehaze.gt_size", "needs a gt_size"),
        (lambda t: t["dehaze"].update(color="gray"), "datasets.dehaze.color", "same color"),
        (lambda t: t["derain"].update(batch_size_per_gpu=2), "datasets.derain.batch_size_per_gpu", "data-loader keys"),
    ],
)
def test_bad_task_sections_name_the_task_key(tasks, edit, key, match):
    edit(tasks)
    with pytest.raises(OptionError, match=match) as err:
        MixedDataset(tasks)
    assert err.value.key == key


def test_a_misspelt_task_key_is_named_by_the_option_schema(tasks):
    tasks["derain"]["gt_szie"] = 32
    with pytest.raises(OptionError, match="did you mean 'gt_size'") as err:
        validate(dataset_spec(), {"type": "MixedDataset", "datasets": tasks}, "datasets.train")
    assert err.value.key == "datasets.train.datasets.derain.gt_szie"


@pytest.mark.parametrize(
    "weights, match",
    [
        ({"derain": 1}, "no weight for dehaze"),
        ({"derain": 1, "dehaze": 1, "denoise": 1}, "unknown task"),
        ([1], "1 weights for 2 tasks"),
        ({"derain": 0, "dehaze": 1}, "positive number"),
    ],
)
def test_bad_weights(tasks, weights, match):
    with pytest.raises(OptionError, match=match) as err:
        MixedDataset(tasks, weights=weights)
    assert err.value.key == "weights"


def test_option_file_validates_each_task_like_a_dataset_section(tasks, tmp_path):
    opt = yaml.safe_load((REPO / "options/train/SR/demo_EDSR_tiny_x4_T91.yml").read_text())
    opt["scale"] = 1
    opt["network_g"] = {"type": "EDSR", "upscale": 1}
    opt["datasets"] = {
        "train": {
            "type": "MixedDataset",
            "datasets": tasks,
            "weights": {"derain": 2, "dehaze": 1},
            "batch_size_per_gpu": 2,
        }
    }
    path = tmp_path / "mixed.yml"
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    resolved = load_options(str(path), ["train.total_iter=1"])
    section = resolved["datasets"]["train"]
    assert section["datasets"]["derain"]["type"] == "PairedImageDataset"  # sub-section defaults filled
    dataset = build_dataset(dict(section, phase="train"), "datasets.train")
    assert isinstance(dataset, MixedDataset) and dataset.tasks == ("derain", "dehaze")
    with pytest.raises(OptionError, match="did you mean 'use_hflip'") as err:
        load_options(str(path), ["datasets.train.datasets.dehaze.use_flip=true"])
    assert err.value.key == "datasets.train.datasets.dehaze.use_flip" and err.value.file == str(path)
    with pytest.raises(OptionError, match="unknown dataset 'PairedImageDatset'"):
        load_options(str(path), ["datasets.train.datasets.dehaze.type=PairedImageDatset"])
    with pytest.raises(OptionError) as err:
        build_dataset(dict(section, phase="train", weights={"derain": -1, "dehaze": 1}), "datasets.train")
    assert err.value.key == "datasets.train.weights"
