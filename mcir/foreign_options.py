"""Translate option files of BasicSR 1.4, the published MCIR code, NAFNet and Restormer into mcir option trees."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from mcir.errors import OptionError

BASICSR = "BasicSR"
MCLIR = "published MCIR code"
NAFNET = "NAFNet"
RESTORMER = "Restormer"
# Where each code base lives (for the converted file's header).
ORIGIN_REPOS: Mapping[str, str] = MappingProxyType({
    BASICSR: "XPixelGroup/BasicSR 1.4.x", MCLIR: "Aitical/MCLIR", NAFNET: "megvii-research/NAFNet",
    RESTORMER: "swz30/Restormer",
})

_ABSENT = object()


@dataclass(frozen=True)
class ModelAlias:
    """A foreign ``model_type`` and the mcir model that trains the same way.

    Args:
        origin: The code base it comes from.
        target: mcir's model type.
        reason: Why the two are equivalent (shown with the change).
        negatives: ``""`` (no negatives), ``"one"`` (scalar neg_iter / neg_decay) or ``"many"`` (lists).
        input_norm: The foreign model normalises the input with the RESIDE mean/std (FFANet's ``input_norm``).
        val_uses_ema: The foreign model validates the EMA copy when there is one.
    """

    origin: str
    target: str
    reason: str
    negatives: str = ""
    input_norm: bool = False
    val_uses_ema: bool = True


MODEL_ALIASES: Mapping[str, ModelAlias] = MappingProxyType({
    "SwinIRModel": ModelAlias(
        BASICSR, "SRModel", "SRModel plus reflect padding to window_size at test time; mcir's SwinIR pads inside"),
    "ImageRestorationModel": ModelAlias(
        NAFNET, "RestorationModel", "one network, pixel loss; its clipping and test grids are translated"),
    "ImageCleanModel": ModelAlias(
        RESTORMER, "RestorationModel", "one network, pixel loss, EMA; its clipping and test padding are translated"),
    "ImageRestorationModel_FFANet_Neg_Multi": ModelAlias(
        MCLIR, "MCIRModel", "N EMA negatives pushed away in VGG space, RESIDE-normalised FFA-Net input",
        negatives="many", input_norm=True, val_uses_ema=False),
    "SRNegModel_Multi": ModelAlias(MCLIR, "MCIRModel", "N EMA negatives pushed away in VGG space", negatives="many"),
    "SRNegModel": ModelAlias(MCLIR, "MCIRModel", "one EMA negative pushed away in VGG space", negatives="one"),
})

_GAN = "adversarial training (a discriminator, network_d) is not part of mcir"
_VIDEO = "video restoration (frame sequences) is not part of mcir"
UNSUPPORTED_MODELS: Mapping[str, Tuple[str, str]] = MappingProxyType({
    "ImageRestorationModel_FFANet_Neg_Multi_Adaptive_DDP": (
        MCLIR, "it updates a negative whenever the output error's std exceeds neg_t; mcir's negatives follow fixed steps"),
    "SRGANModel": (BASICSR, _GAN), "ESRGANModel": (BASICSR, _GAN), "RealESRGANModel": (BASICSR, _GAN),
    "HiFaceGANModel": (BASICSR, _GAN), "StyleGAN2Model": (BASICSR, "image generation is not part of mcir"),
    "RealESRNetModel": (BASICSR, "Real-ESRGAN's on-the-fly second-order degradations have no mcir equivalent"),
    "EDVRModel": (BASICSR, _VIDEO), "VideoBaseModel": (BASICSR, _VIDEO), "VideoGANModel": (BASICSR, _VIDEO),
    "VideoRecurrentModel": (BASICSR, _VIDEO), "VideoRecurrentGANModel": (BASICSR, _VIDEO),
})

# Scheduler names of these code bases that mcir registers under another name, and ones with no equivalent.
SCHEDULER_ALIASES: Mapping[str, Tuple[str, str]] = MappingProxyType({
    "TrueCosineAnnealingLR": ("CosineAnnealingLR", "torch's CosineAnnealingLR under their name"),
})
NO_EQUIVALENT_SCHEDULERS = frozenset({"LinearLR", "VibrateLR"})
# NAFNet's and Restormer's models clip the gradient norm at this value when use_grad_clip is on.
FIXED_CLIP_NORM = 0.01


@dataclass(frozen=True)
class Change:
    """One edit of the option tree: a value set, a key moved or added, or a key dropped.

    Args:
        key: Dotted key in the original file (or the new key, for an added one).
        action: ``set``, ``move``, ``add`` or ``drop``.
        reason: Why.
        old: The original value (``set``).
        new: The new value (``set``, ``move``, ``add``).
        new_key: Where the value went (``move``).
    """

    key: str
    action: str
    reason: str
    old: Any = None
    new: Any = None
    new_key: Optional[str] = None

    def line(self) -> str:
        """The change as one line of text."""
        if self.action == "drop":
            return f"dropped {self.key}: {self.reason}"
        if self.action == "move":
            value = "" if isinstance(self.new, dict) else f": {_show(self.new)}"
            return f"{self.key} -> {self.new_key}{value} ({self.reason})"
        if self.action == "add":
            return f"added {self.key}: {_show(self.new)} ({self.reason})"
        return f"{self.key}: {_show(self.old)} -> {_show(self.new)} ({self.reason})"


@dataclass(frozen=True)
class Translation:
    """The result of :func:`translate`: the mcir option tree and every change made to get it."""

    options: Dict[str, Any]
    changes: List[Change]
    origin: str
    model_type: str


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return "~" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


class _Edit:
    """The option tree being translated and the list of changes made to it."""

    def __init__(self, opt: Mapping[str, Any], file: Optional[str]):
        self.opt: Dict[str, Any] = copy.deepcopy(dict(opt))
        self.file = file
        self.changes: List[Change] = []

    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self.opt
        for k in path.split("."):
            if not isinstance(node, dict) or k not in node:
                return default
            node = node[k]
        return node

    def has(self, path: str) -> bool:
        return self.get(path, _ABSENT) is not _ABSENT

    def _section(self, path: str) -> Dict[str, Any]:
        node = self.opt
        for k in [p for p in path.split(".") if p]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        return node

    def set(self, path: str, value: Any, reason: str) -> None:
        old = self.get(path, _ABSENT)
        self._section(_parent(path))[path.rsplit(".", 1)[-1]] = value
        if old is _ABSENT:
            self.changes.append(Change(path, "add", reason, new=value))
        else:
            self.changes.append(Change(path, "set", reason, old=old, new=value))

    def pop(self, path: str) -> Any:
        return self._section(_parent(path)).pop(path.rsplit(".", 1)[-1], None)

    def drop(self, path: str, reason: str) -> None:
        if self.has(path):
            self.pop(path)
            self.changes.append(Change(path, "drop", reason))

    def move(self, path: str, new_path: str, reason: str, value: Any = _ABSENT, key: Optional[str] = None) -> None:
        """Move ``path`` to ``new_path`` (optionally with a new value); ``key`` names it in the change."""
        old = self.pop(path)
        new = old if value is _ABSENT else value
        self._section(_parent(new_path))[new_path.rsplit(".", 1)[-1]] = new
        self.changes.append(Change(key or path, "move", reason, old=old, new=new, new_key=new_path))

    def fail(self, path: str, message: str) -> OptionError:
        return OptionError(message, file=self.file, key=path)


def foreign_alias(opt: Mapping[str, Any]) -> Optional[str]:
    """The code base a foreign option file comes from, judged by its ``model_type`` (None: mcir's own)."""
    model_type = opt.get("model_type")
    if not isinstance(model_type, str):
        return None
    if model_type in MODEL_ALIASES:
        return MODEL_ALIASES[model_type].origin
    return UNSUPPORTED_MODELS[model_type][0] if model_type in UNSUPPORTED_MODELS else None


def translate(opt: Mapping[str, Any], file: Optional[str] = None, model_type: Optional[str] = None) -> Translation:
    """Rewrite a foreign option tree into mcir's (the input is not modified).

    Args:
        opt: Parsed option file.
        file: Its name, for error messages.
        model_type: Treat the file as having this foreign ``model_type`` (default: its own).

    Returns:
        The translated tree and the changes; no changes when the model type is not a foreign one.

    Raises:
        OptionError: A key with no mcir equivalent (naming the key and why).
    """
    edit = _Edit(opt, file)
    name = model_type or opt.get("model_type")
    if name in UNSUPPORTED_MODELS:
        origin, why = UNSUPPORTED_MODELS[name]
        raise edit.fail("model_type", f"{origin}'s '{name}' has no mcir equivalent: {why}")
    alias = MODEL_ALIASES.get(name) if isinstance(name, str) else None
    if alias is None:
        return Translation(edit.opt, [], "mcir", str(name))
    if edit.get("model_type") != alias.target:
        edit.set("model_type", alias.target, f"{alias.origin}: {alias.reason}")
    _schedulers(edit)
    if alias.origin in (NAFNET, RESTORMER):
        if edit.has("path.param_key"):
            edit.move("path.param_key", "path.param_key_g", "their name for the weights' container key")
        _grad_clip_fixed(edit, default_on=alias.origin == NAFNET)
    if alias.origin == NAFNET:
        _nafnet(edit)
    elif alias.origin == RESTORMER:
        _restormer(edit)
    elif alias.origin == MCLIR:
        from mcir.foreign_mclir import translate_mclir  # here: it builds on this module's _Edit

        translate_mclir(edit, alias)
    if alias.origin in (NAFNET, MCLIR):
        _grids(edit, int(edit.get("scale") or 1))
    return Translation(edit.opt, edit.changes, alias.origin, str(name))


def _schedulers(edit: _Edit) -> None:
    kind = edit.get("train.scheduler.type")
    if kind in SCHEDULER_ALIASES:
        target, why = SCHEDULER_ALIASES[kind]
        edit.set("train.scheduler.type", target, why)
    elif kind == "MultiStepLR" and (edit.has("train.scheduler.restarts") or edit.has("train.scheduler.restart_weights")):
        edit.set("train.scheduler.type", "MultiStepRestartLR", "their MultiStepLR is BasicSR's MultiStepRestartLR")
    elif kind in NO_EQUIVALENT_SCHEDULERS:
        raise edit.fail("train.scheduler.type", f"'{kind}' (a schedule over total_iter) has no mcir equivalent; "
                        "use MultiStepLR, CosineAnnealingLR or CosineAnnealingRestartLR")


def _grad_clip_fixed(edit: _Edit, default_on: bool) -> None:
    """NAFNet / Restormer: ``use_grad_clip`` switches clipping of the gradient norm at 0.01."""
    explicit = edit.has("train.use_grad_clip")
    on = edit.get("train.use_grad_clip") if explicit else default_on
    if not edit.has("train") or not on:
        edit.drop("train.use_grad_clip", "off: no clipping, as mcir's default" if edit.has("train") else "not used in testing")
    elif explicit:
        why = f"on: their model clips the gradient norm at {FIXED_CLIP_NORM}"
        edit.move("train.use_grad_clip", "train.clip_grad_norm", why, value=FIXED_CLIP_NORM)
    else:
        why = f"their model clips the gradient norm at {FIXED_CLIP_NORM} unless use_grad_clip: false"
        edit.set("train.clip_grad_norm", FIXED_CLIP_NORM, why)


def _datasets(edit: _Edit) -> List[str]:
    sets = edit.get("datasets") or {}
    return [f"datasets.{k}" for k, v in sets.items() if isinstance(v, dict)]


def _nafnet(edit: _Edit) -> None:
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


def _restormer(edit: _Edit) -> None:
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


def _progressive(edit: _Edit, ds: str) -> None:
    """Restormer's progressive patches: one stage is a fixed patch and batch; several have no equivalent."""
    keys = [k for k in ("mini_batch_sizes", "iters", "gt_sizes") if edit.has(f"{ds}.{k}")]
    if not keys:
        return
    sizes, batches = edit.get(f"{ds}.gt_sizes") or [], edit.get(f"{ds}.mini_batch_sizes") or []
    if len(sizes) != 1 or len(batches) != 1:
        raise edit.fail(f"{ds}.{keys[0]}", "progressive training (patch and batch sizes changing over the "
                        "iters stages) has no mcir equivalent; give one stage (one value in each list)")
    gt_size, batch = edit.get(f"{ds}.gt_size"), edit.get(f"{ds}.batch_size_per_gpu")
    patch = min(sizes[0], gt_size) if isinstance(gt_size, int) else sizes[0]
    per_gpu = min(batches[0], batch) if isinstance(batch, int) else batches[0]
    edit.set(f"{ds}.gt_size", patch, "one progressive stage: a fixed patch of its gt_sizes entry")
    edit.set(f"{ds}.batch_size_per_gpu", per_gpu, "one progressive stage: a fixed batch of its mini_batch_sizes entry")
    for key in keys:
        edit.drop(f"{ds}.{key}", "one progressive stage: replaced by gt_size and batch_size_per_gpu")


def _val_display_keys(edit: _Edit) -> None:
    edit.drop("val.rgb2bgr", "mcir always writes images in file (BGR) order")
    edit.drop("val.use_image", "mcir always scores the saved 8-bit images")
    edit.drop("val.max_minibatch", "mcir runs the tiles of an image one at a time")


def _grids(edit: _Edit, scale: int) -> None:
    """Their test-time grids (crops of the ground-truth size, averaged) as mcir's tiling where equivalent."""
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


def translate_for_loading(
    opt: Dict[str, Any], file: Optional[str], strict: bool = False, notify: Optional[Callable[[str], None]] = None
) -> Dict[str, Any]:
    """What ``load_options`` does with a parsed file: translate a foreign one (a notice per change) or refuse it.

    Args:
        opt: Parsed option file.
        file: Its name.
        strict: Refuse a foreign file instead of translating it (``--strict_options``).
        notify: Receives one line per change (None: silent).

    Returns:
        ``opt`` itself for an mcir file, else the translated tree.
    """
    model_type = opt.get("model_type")
    origin = foreign_alias(opt)
    if origin is None:
        return opt
    if strict and model_type in MODEL_ALIASES:
        raise OptionError(f"{origin}'s model type '{model_type}': --strict_options refuses to translate it; convert "
                          f"the file with `mcir-convert-options {file} OUT.yml`", file=file, key="model_type")
    result = translate(opt, file)
    if notify is not None:
        for change in result.changes:
            notify(f"{file}: translated ({origin}): {change.line()}")
    return result.options
