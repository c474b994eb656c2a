"""Translate option files of BasicSR 1.4, the published MCIR code, NAFNet and Restormer into mcir option trees."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from mcir.errors import OptionError
from mcir.options.foreign.edit import ABSENT, Change, ModelAlias, OptionEdit, lookup
from mcir.options.foreign.mclir import translate_mclir
from mcir.options.foreign.rules import (
    translate_fixed_clip,
    translate_grids,
    translate_nafnet,
    translate_restormer,
    translate_schedulers,
)

BASICSR = "BasicSR"
MCLIR = "published MCIR code"
NAFNET = "NAFNet"
RESTORMER = "Restormer"
# Where each code base lives (for the converted file's header).
ORIGIN_REPOS: Mapping[str, str] = MappingProxyType({
    BASICSR: "XPixelGroup/BasicSR 1.4.x", MCLIR: "Aitical/MCLIR", NAFNET: "megvii-research/NAFNet",
    RESTORMER: "swz30/Restormer",
})

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
        MCLIR, "it updates a negative whenever the output error's std exceeds neg_t; mcir's follow fixed steps"),
    "SRGANModel": (BASICSR, _GAN), "ESRGANModel": (BASICSR, _GAN), "RealESRGANModel": (BASICSR, _GAN),
    "HiFaceGANModel": (BASICSR, _GAN), "StyleGAN2Model": (BASICSR, "image generation is not part of mcir"),
    "RealESRNetModel": (BASICSR, "Real-ESRGAN's on-the-fly second-order degradations have no mcir equivalent"),
    "EDVRModel": (BASICSR, _VIDEO), "VideoBaseModel": (BASICSR, _VIDEO), "VideoGANModel": (BASICSR, _VIDEO),
    "VideoRecurrentModel": (BASICSR, _VIDEO), "VideoRecurrentGANModel": (BASICSR, _VIDEO),
})

# Keys only the published MCIR code's models read: under an mcir model type they mean a half-ported file.
MCLIR_ONLY_KEYS = ("path_neg", "train.neg_iter", "train.neg_decay")


@dataclass(frozen=True)
class Translation:
    """The result of :func:`translate`: the mcir option tree and every change made to get it."""

    options: Dict[str, Any]
    changes: List[Change]
    origin: str
    model_type: str


def foreign_alias(opt: Mapping[str, Any]) -> Optional[str]:
    """The code base a foreign option file comes from, judged by its ``model_type`` (None: mcir's own)."""
    model_type = opt.get("model_type")
    if not isinstance(model_type, str):
        return None
    if model_type in MODEL_ALIASES:
        return MODEL_ALIASES[model_type].origin
    return UNSUPPORTED_MODELS[model_type][0] if model_type in UNSUPPORTED_MODELS else None


def mclir_keys(opt: Mapping[str, Any]) -> List[str]:
    """The keys of ``MCLIR_ONLY_KEYS`` that ``opt`` has."""
    return [k for k in MCLIR_ONLY_KEYS if lookup(opt, k, ABSENT) is not ABSENT]


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
    edit = OptionEdit(opt, file)
    name = model_type or opt.get("model_type")
    if name in UNSUPPORTED_MODELS:
        origin, why = UNSUPPORTED_MODELS[name]
        raise edit.fail("model_type", f"{origin}'s '{name}' has no mcir equivalent: {why}")
    alias = MODEL_ALIASES.get(name) if isinstance(name, str) else None
    if alias is None:
        return Translation(edit.opt, [], "mcir", str(name))
    if edit.get("model_type") != alias.target:
        edit.set("model_type", alias.target, f"{alias.origin}: {alias.reason}")
    translate_schedulers(edit)
    if alias.origin in (NAFNET, RESTORMER):
        if edit.has("path.param_key"):
            edit.move("path.param_key", "path.param_key_g", "their name for the weights' container key")
        translate_fixed_clip(edit, default_on=alias.origin == NAFNET)
    if alias.origin == NAFNET:
        translate_nafnet(edit)
    elif alias.origin == RESTORMER:
        translate_restormer(edit)
    elif alias.origin == MCLIR:
        translate_mclir(edit, alias)
    if alias.origin in (NAFNET, MCLIR):
        translate_grids(edit, int(edit.get("scale") or 1))
    return Translation(edit.opt, edit.changes, alias.origin, str(name))


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
        found = mclir_keys(opt)
        if found and notify is not None:
            notify(f"{file}: {', '.join(found)}: keys of the published MCIR code under model_type '{model_type}'; "
                   f"`mcir-convert-options {file} OUT.yml --from_model_type NAME` translates them")
        return opt
    if strict and model_type in MODEL_ALIASES:
        raise OptionError(f"{origin}'s model type '{model_type}': --strict_options refuses to translate it; convert "
                          f"the file with `mcir-convert-options {file} OUT.yml`", file=file, key="model_type")
    result = translate(opt, file)
    if notify is not None:
        for change in result.changes:
            notify(f"{file}: translated ({origin}): {change.line()}")
    return result.options
