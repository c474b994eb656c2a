"""Translation rules for the keys of BasicSR-derived code (NAFNet, Restormer): schedulers, clipping, data, grids."""

from __future__ import annotations

from types import MappingProxyType
from typing import List, Mapping, Tuple

from mcir.options.foreign.edit import Change, OptionEdit

# Scheduler names of these code bases that mcir registers under another name, and ones with no equivalent.
SCHEDULER_ALIASES: Mapping[str, Tuple[str, str]] = MappingProxyType({
    "TrueCosineAnnealingLR": ("CosineAnnealingLR", "torch's CosineAnnealingLR under their name"),
})
NO_EQUIVALENT_SCHEDULERS = frozenset({"LinearLR", "VibrateLR"})
# NAFNet's and Restormer's models clip the gradient norm at this value when use_grad_clip is on.
FIXED_CLIP_NORM = 0.01


def translate_schedulers(edit: OptionEdit) -> None:
    """Scheduler names: their TrueCosineAnnealingLR, MultiStepLR with restarts; an error where mcir has none.

    Args:
        edit: The option tree being translated.
    """
    kind = edit.get("train.scheduler.type")
    if kind in SCHEDULER_ALIASES:
        target, why = SCHEDULER_ALIASES[kind]
        edit.set("train.scheduler.type", target, why)
    elif kind == "MultiStepLR" and any(edit.has(f"train.scheduler.{k}") for k in ("restarts", "restart_weights")):
        edit.set("train.scheduler.type", "MultiStepRestartLR", "their MultiStepLR is BasicSR's MultiStepRestartLR")
    elif kind in NO_EQUIVALENT_SCHEDULERS:
        raise edit.fail("train.scheduler.type", f"'{kind}' (a schedule over total_iter) has no mcir equivalent; "
                        "use MultiStepLR, CosineAnnealingLR or CosineAnnealingRestartLR")


def translate_fixed_clip(edit: OptionEdit, default_on: bool) -> None:
    """NAFNet / Restormer: ``use_grad_clip`` switches clipping of the gradient norm at 0.01.

    Args:
        edit: The option tree being translated.
        default_on: Whether their model clips when the key is absent (NAFNet: yes).
    """
    explicit = edit.has("train.use_grad_clip")
    on = edit.get("train.use_grad_clip") if explicit else default_on
    if not edit.has("train") or not on:
        why = "off: no clipping, as mcir's default" if edit.has("train") else "not used in testing"
        edit.drop("train.use_grad_clip", why)
    elif explicit:
        why = f"on: their model clips the gradient norm at {FIXED_CLIP_NORM}"
        edit.move("train.use_grad_clip", "train.clip_grad_norm", why, value=FIXED_CLIP_NORM)
    else:
        why = f"their model clips the gradient norm at {FIXED_CLIP_NORM} unless use_grad_clip: false"
        edit.set("train.clip_grad_norm", FIXED_CLIP_NORM, why)


def _datasets(edit: OptionEdit) -> List[str]:
    sets = edit.get("datasets") or {}
    return [f"datasets.{k}" for k, v in sets.items() if isinstance(v, dict)]


def translate_nafnet(edit: OptionEdit) -> None:
    """NAFNet's dataset flip key, mixup, EMA and validation display keys.

    Args:
        edit: The option tree being translated.
    """
    for ds in _datasets(edit):
        if edit.has(f"{ds}.use_flip"):
            edit.move(f"{ds}.use_flip", f"{ds}.use_hflip", "their name for random horizontal flips")
    mixup = edit.get("train.mixup")
    if mixup:
        raise edit.fail("train.mixup", "NAFNet's mixup of training pairs has no mcir equivalent; set it to false")
    edit.drop("train.mixup", "off, as in mcir")
    if edit.get("train.ema_decay"):
        edit.drop("train.ema_decay", "NAFNet's ImageRestorationModel keeps no EMA copy")
    _val_display_keys(edit)


def translate_restormer(edit: OptionEdit) -> None:
    """Restormer's dataset (type, augmentations, progressive stages), mixing augmentations and test padding.

    Args:
        edit: The option tree being translated.
    """
    for ds in _datasets(edit):
        if edit.get(f"{ds}.type") == "Dataset_PairedImage":
            edit.set(f"{ds}.type", "PairedImageDataset", "Restormer's paired dataset (crop, then augment)")
        if edit.has(f"{ds}.geometric_augs"):
            on = bool(edit.pop(f"{ds}.geometric_augs"))
            why = "one of the 8 flips/rotations uniformly, as mcir's hflip + rot draw"
            edit.changes.append(Change(f"{ds}.geometric_augs", "move", why, new=on, new_key=f"{ds}.use_hflip, use_rot"))
            edit.opt["datasets"][ds.split(".", 1)[1]].update(use_hflip=on, use_rot=on)
        _progressive(edit, ds)
    mixing = edit.get("train.mixing_augs") or {}
    if mixing.get("mixup"):
        raise edit.fail("train.mixing_augs.mixup", "Restormer's mixup of training pairs has no mcir equivalent; "
                        "set it to false")
    edit.drop("train.mixing_augs", "mixup off: the section has no effect")
    edit.drop("val.window_size", "mcir pads every input to the network's size multiple itself (reflect)")
    edit.drop("val.max_minibatch", "never read by Restormer's model")
    _val_display_keys(edit)


def _progressive(edit: OptionEdit, ds: str) -> None:
    """Restormer's progressive patches become mcir's ``progressive`` section (``mini_batch_sizes`` per process)."""
    keys = [k for k in ("mini_batch_sizes", "iters", "gt_sizes") if edit.has(f"{ds}.{k}")]
    if not keys:
        return
    if len(keys) != 3:
        missing = sorted({"mini_batch_sizes", "iters", "gt_sizes"} - set(keys))
        raise edit.fail(f"{ds}.{keys[0]}", f"progressive training needs iters, gt_sizes and mini_batch_sizes "
                        f"together; missing {', '.join(missing)}")
    section = {"iters": edit.pop(f"{ds}.iters"), "gt_sizes": edit.pop(f"{ds}.gt_sizes"),
               "batch_sizes": edit.pop(f"{ds}.mini_batch_sizes")}
    edit.set(f"{ds}.progressive", section, "Restormer's progressive stages (iters = phase lengths; "
             "mini_batch_sizes = per-process batch of each phase, as batch_size_per_gpu)")


def _val_display_keys(edit: OptionEdit) -> None:
    edit.drop("val.rgb2bgr", "mcir always writes images in file (BGR) order")
    edit.drop("val.use_image", "mcir always scores the saved 8-bit images")
    edit.drop("val.max_minibatch", "mcir runs the tiles of an image one at a time")


def translate_grids(edit: OptionEdit, scale: int) -> None:
    """Their test-time grids (crops of the ground-truth size, averaged) as mcir's tiling where equivalent.

    Args:
        edit: The option tree being translated.
        scale: Upscaling factor (their crop sizes are in ground-truth pixels, mcir's tiles in input pixels).
    """
    keys = ["val.crop_size_h", "val.crop_size_w", "val.crop_size_h_ratio", "val.crop_size_w_ratio"]
    grids = edit.get("val.grids")
    h, w = edit.get("val.crop_size_h"), edit.get("val.crop_size_w")
    if grids and isinstance(h, int) and h == w and h >= scale:
        why = ("square crops averaged where they overlap; their steps spread the overlap evenly, mcir's last "
               "tile in each direction takes it")
        edit.move("val.crop_size_h", "val.tile", f"{why} (tile in input pixels: crop / scale)", value=h // scale)
        edit.set("val.tile_overlap", 0, "tiles side by side")
        edit.drop("val.crop_size_w", "same as crop_size_h")
        edit.drop("val.grids", "replaced by val.tile")
        return
    reason = "on: ratio or non-square crops have no mcir tiling equivalent; whole images are restored"
    edit.drop("val.grids", reason if grids else "off: whole images, as mcir's default")
    for key in keys:
        edit.drop(key, "used only by their grids")
