"""Pairing rules: how the LQ file names of each public benchmark layout map to their GT file names.

A rule maps the *stem* of an LQ file (its path relative to ``dataroot_lq``, without the image extension) to
candidate GT stems (relative to ``dataroot_gt``); the GT may have another image extension. Layouts:

============== ======================================================================================
rule           layout (LQ ↔ GT)
============== ======================================================================================
filename_tmpl  ``<tmpl.format(stem)>`` ↔ ``<stem>`` (BasicSR SR: ``LR_bicubic/X4/babyx4.png`` ↔ ``HR/baby.png``)
same_name      same relative path (Rain100H ``rain/1.png`` ↔ ``norain/1.png``, Rain13K ``input/`` ↔ ``target/``,
               DehazeFormer's SOTS ``hazy/`` ↔ ``GT/``, GoPro ``blur/<scene>/x.png`` ↔ ``sharp/<scene>/x.png``)
id_prefix      ``<id>_<k>[_<beta>]`` ↔ ``<id>``, several LQ per GT (RESIDE ITS/OTS/SOTS ``hazy/1400_1.png`` ↔
               ``gt/1400.png``; DDN-Data/Rain1400 ``rainy_image/1_1.jpg`` ↔ ``ground_truth/1.jpg``); a GT larger
               than its LQ is centre-cropped to the LQ size, as FFA-Net's RESIDE loader does.
               Aliases: ``reside``, ``ddn``, ``rain1400``
rain_prefix    ``rain-<n>`` ↔ ``norain-<n>`` (Rain100L/H, Rain200L/H, Rain12, also ``rain-x<n>``), and JORDER's
               ``rain/X2/norain-<n>x2.png`` ↔ ``norain/norain-<n>.png``; one shared folder works too
               (RainTrainL: ``rain-1.png``, ``norain-1.png``, ``rainstreak-1.png`` side by side)
spa            SPA-Data test ``rain/<name>.png`` ↔ ``gt/<name>gt.png``; training
               ``real_world/<v>/<v>-<f>/<v>-<f>_<x>_<y>.png`` ↔ ``real_world_gt/<v>/<v>_<x>_<y>.png`` (many per GT)
gopro          ``<scene>/blur/<n>.png`` ↔ ``<scene>/sharp/<n>.png`` with both roots the GoPro split folder
scale_suffix   ``<stem>x<s>`` ↔ ``<stem>`` (SR sets without ``filename_tmpl``: DIV2K ``0001x4.png``, ``babyx4.png``)
did            DID-Data (DID-MDN): one folder of side-by-side images, rainy left half | clean right half;
               only when set explicitly (file names cannot tell)
============== ======================================================================================

Sub-images keep pairing: ``<lq>_s001`` pairs with ``<gt>_s001`` (``scripts/extract_subimages.py`` names).
With ``pairing: auto`` the first rule (in the order above, ``filename_tmpl`` only when the template is not
``{}``, ``did`` never) that pairs *every* LQ file wins; one-to-one rules also need every GT file used.
When ``dataroot_lq`` and ``dataroot_gt`` are the same folder, only rules that can tell LQ from GT by name
apply (``filename_tmpl``, ``rain_prefix``, ``gopro``, ``id_prefix``, ``did``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from mcir.errors import OptionError

Candidates = Optional[Tuple[str, ...]]


@dataclass(frozen=True)
class PairingRule:
    """One layout: how LQ stems map to GT stems.

    Args:
        name: Option value (``pairing: <name>``).
        to_gt: LQ stem -> candidate GT stems, or None when the LQ name does not follow the layout.
        to_lq: GT stem -> the LQ stem it expects, or None when the GT name is not one (for messages and,
            for one-to-one rules, to require that every GT is used).
        one_to_one: Each GT has exactly one LQ.
        shared_root: LQ and GT files can share one folder (``to_gt`` returning None then means "a GT file").
        side_by_side: Each file holds LQ (left half) and GT (right half).
        center_crop_gt: Centre-crop a larger GT to the LQ size (scale 1).
        gt_names_samples: Name samples after the GT (else after the LQ, for rules with several LQ per GT).
    """

    name: str
    to_gt: Callable[[str], Candidates]
    to_lq: Callable[[str], Optional[str]]
    one_to_one: bool = True
    shared_root: bool = False
    side_by_side: bool = False
    center_crop_gt: bool = False
    gt_names_samples: bool = True



def _split(stem: str) -> Tuple[str, str]:
    head, _, base = stem.rpartition("/")
    return (head + "/" if head else ""), base


def _template_rule(tmpl: str) -> PairingRule:
    prefix, _, suffix = tmpl.partition("{}")
    pattern = re.compile(re.escape(prefix) + r"(.+)" + re.escape(suffix) + r"$")

    def to_gt(stem: str) -> Candidates:
        head, base = _split(stem)
        m = pattern.match(base)
        return (head + m.group(1),) if m else None

    def to_lq(stem: str) -> Optional[str]:
        head, base = _split(stem)
        return head + tmpl.format(base)

    return PairingRule("filename_tmpl", to_gt, to_lq, shared_root=tmpl != "{}")


def _same_name() -> PairingRule:
    return PairingRule("same_name", lambda s: (s,), lambda s: s)


_ID_LQ = re.compile(r"^([^_]+)_[^_]+(?:_[^_]+)?$")


def _id_prefix() -> PairingRule:
    def to_gt(stem: str) -> Candidates:
        head, base = _split(stem)
        m = _ID_LQ.match(base)
        return (head + m.group(1),) if m else None

    def to_lq(stem: str) -> Optional[str]:
        return None if "_" in _split(stem)[1] else f"{stem}_<k>"

    return PairingRule(
        "id_prefix", to_gt, to_lq, one_to_one=False, shared_root=True, center_crop_gt=True, gt_names_samples=False
    )


_RAIN = re.compile(r"^rain-(.+)$")
_RAIN_X2 = re.compile(r"^(norain-.+?)x\d+$")
_NORAIN = re.compile(r"^norain-(.+)$")


def _rain_prefix() -> PairingRule:
    def to_gt(stem: str) -> Candidates:
        head, base = _split(stem)
        m = _RAIN.match(base)
        if m:
            return (f"{head}norain-{m.group(1)}",)
        m = _RAIN_X2.match(base)
        return (head + m.group(1),) if m else None

    def to_lq(stem: str) -> Optional[str]:
        head, base = _split(stem)
        m = _NORAIN.match(base)
        return f"{head}rain-{m.group(1)}" if m else None

    return PairingRule("rain_prefix", to_gt, to_lq, shared_root=True)


_SPA_TRAIN = re.compile(r"^(.*/)?([^/]+)/\2-[^/_]+/\2-[^/_]+_(\d+)_(\d+)$")
_SPA_TRAIN_GT = re.compile(r"^(.*/)?([^/]+)/\2_(\d+)_(\d+)$")


def _spa() -> PairingRule:
    def to_gt(stem: str) -> Candidates:
        m = _SPA_TRAIN.match(stem)
        if m:
            head, video, x, y = m.group(1) or "", m.group(2), m.group(3), m.group(4)
            return (f"{head}{video}/{video}_{x}_{y}", stem + "gt")
        return (stem + "gt",)

    def to_lq(stem: str) -> Optional[str]:
        m = _SPA_TRAIN_GT.match(stem)
        if m:
            head, video = m.group(1) or "", m.group(2)
            return f"{head}{video}/{video}-<f>/{video}-<f>_{m.group(3)}_{m.group(4)}"
        return stem[:-2] if stem.endswith("gt") else None

    return PairingRule("spa", to_gt, to_lq, one_to_one=False, gt_names_samples=False)


def _gopro() -> PairingRule:
    def swap(stem: str, src: str, dst: str) -> Optional[str]:
        parts = stem.split("/")
        if len(parts) < 2 or parts[-2] != src:
            return None
        return "/".join(parts[:-2] + [dst, parts[-1]])

    def to_gt(stem: str) -> Candidates:
        gt = swap(stem, "blur", "sharp")
        return (gt,) if gt else None

    return PairingRule("gopro", to_gt, lambda s: swap(s, "sharp", "blur"), shared_root=True)


_SCALE_SUFFIX = re.compile(r"^(.+)x\d+$")


def _scale_suffix() -> PairingRule:
    def to_gt(stem: str) -> Candidates:
        head, base = _split(stem)
        m = _SCALE_SUFFIX.match(base)
        return (head + m.group(1),) if m else None

    return PairingRule("scale_suffix", to_gt, lambda s: s + "x<s>")


def _did() -> PairingRule:
    return PairingRule("did", lambda s: (s,), lambda s: s, shared_root=True, side_by_side=True)


RULE_NAMES: Tuple[str, ...] = (
    "filename_tmpl", "same_name", "id_prefix", "rain_prefix", "spa", "gopro", "scale_suffix", "did"
)
ALIASES: Dict[str, str] = {"reside": "id_prefix", "ddn": "id_prefix", "rain1400": "id_prefix"}
PAIRING_CHOICES: Tuple[str, ...] = ("auto",) + RULE_NAMES + tuple(ALIASES)


def get_rule(name: str, filename_tmpl: str = "{}") -> PairingRule:
    """The rule called ``name`` (or one of its aliases).

    Args:
        name: A rule name from :data:`PAIRING_CHOICES` other than ``auto``.
        filename_tmpl: Template of the ``filename_tmpl`` rule.

    Returns:
        The rule.
    """
    name = ALIASES.get(name, name)
    makers = {
        "filename_tmpl": lambda: _template_rule(filename_tmpl),
        "same_name": _same_name,
        "id_prefix": _id_prefix,
        "rain_prefix": _rain_prefix,
        "spa": _spa,
        "gopro": _gopro,
        "scale_suffix": _scale_suffix,
        "did": _did,
    }
    if name not in makers:
        close = difflib.get_close_matches(str(name), PAIRING_CHOICES, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise OptionError(f"unknown pairing rule '{name}'{hint} (choose {', '.join(PAIRING_CHOICES)})", key="pairing")
    return makers[name]()


def check_pairing_option(pairing: str) -> None:
    """Raise an ``OptionError`` (key ``pairing``) unless ``pairing`` is ``auto`` or a known rule."""
    if pairing != "auto":
        get_rule(pairing)


def auto_rules(filename_tmpl: str, shared_root: bool) -> List[PairingRule]:
    """Rules tried by ``pairing: auto``, in order.

    Args:
        filename_tmpl: The dataset's template (the template rule is tried first unless it is ``{}``).
        shared_root: LQ and GT roots are the same folder.

    Returns:
        The rules.
    """
    names = ["same_name", "id_prefix", "rain_prefix", "spa", "gopro", "scale_suffix"]
    names = (["filename_tmpl"] if filename_tmpl != "{}" else []) + names
    rules = [get_rule(n, filename_tmpl) for n in names]
    return [r for r in rules if r.shared_root] if shared_root else rules

