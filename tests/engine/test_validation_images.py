"""Training validation writes its first restored images to TensorBoard and visualization/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

from mcir.train import main as train_main
from mcir.utils.img_util import imread

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml"


def _run(tmp_path: Path, short_run_args, name: str, *extra: str) -> Path:
    args = short_run_args(DEMO, tmp_path, name, "datasets.train.batch_size_per_gpu=2", "train.total_iter=4",
                          "val.val_freq=2", "logger.save_checkpoint_freq=4", *extra)
    assert train_main(args) == 0
    return tmp_path / name


def test_first_images_go_to_tensorboard_and_visualization(tmp_path, short_run_args):
    root = _run(tmp_path, short_run_args, "tb", "logger.use_tb_logger=true", "val.num_tb_img=2")
    vis = root / "visualization" / "Set5"
    assert sorted(p.name for p in (vis / "2").iterdir()) == ["baby_2.png", "bird_2.png"]
    assert sorted(p.name for p in (vis / "4").iterdir()) == ["baby_4.png", "bird_4.png"]
    assert imread(vis / "4" / "bird_4.png").shape == imread(REPO / "datasets/Set5/HR/bird.png").shape
    events = EventAccumulator(str(root / "logs" / "tb"), size_guidance={IMAGES: 0})
    events.Reload()
    assert sorted(events.Tags()[IMAGES]) == ["val_images/Set5/baby", "val_images/Set5/bird"]
    steps = [e.step for e in events.Images("val_images/Set5/bird")]
    assert steps == [2, 4]
    # the PNG logged to TensorBoard is the saved image
    import cv2

    logged = cv2.imdecode(np.frombuffer(events.Images("val_images/Set5/bird")[-1].encoded_image_string, np.uint8),
                          cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(logged, imread(vis / "4" / "bird_4.png"))


def test_zero_turns_it_off_and_save_img_keeps_every_image(tmp_path, short_run_args):
    root = _run(tmp_path, short_run_args, "no_images", "val.num_tb_img=0", "train.total_iter=2")
    assert not any((root / "visualization").iterdir())
    root = _run(tmp_path, short_run_args, "all", "val.save_img=true", "val.num_save_img=1", "val.num_tb_img=3",
                "train.total_iter=2")
    assert sorted(p.name for p in (root / "visualization" / "Set5" / "2").iterdir()) == [
        "baby_2.png", "bird_2.png", "butterfly_2.png"]
