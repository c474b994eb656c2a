"""Pairing rules: which GT file belongs to each LQ file in the public layouts of the restoration benchmarks.

A rule maps the *stem* of an LQ file (its path relative to ``dataroot_lq``, without the image extension) to
candidate GT stems (relative to ``dataroot_gt``); the GT may have another image extension. Layouts:

============== ======================================================================================
rule           layout (LQ ↔ GT)
============== ======================================================================================
filename_tmpl  ``<tmpl.format(stem)>`` ↔ ``<stem>`` (BasicSR SR: ``LR_bicubic/X4/babyx4.png`` ↔ ``HR/baby.png``)
same_name      same relative path (Rain100H ``rain/1.png`` ↔ ``norain/1.png``, Rain13K ``input/`` ↔ ``target/``,
               DehazeFormer's SOTS ``hazy/`` ↔ ``GT/``, GoPro ``blur/<scene>/x.png`` ↔ ``sharp/<scene>/x.png``)
id_prefix      ``<id>_<k>[_<beta>]`` ↔ ``<id>``, several LQ per GT; the GT is centre-cropped to the LQ size when it
               is larger (RESIDE ITS/OTS/SOTS ``hazy/1400_1.png`` ↔ ``gt/1400.png``, whose indoor GT keep the
               640x480 NYU frame; DDN-Data/Rain1400 ``rainy_image/1_1.jpg`` ↔ ``ground_truth/1.jpg``).
               Aliases: ``reside``, ``ddn``
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
import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mcir.data.meta_info import is_image_file
from mcir.errors import DataError, OptionError

Candidates = Optional[Tuple[str, ...]]
_SUB_IMAGE = re.compile(r"^(.*)(_s\d{3,})$")


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


@dataclass(frozen=True)
class Pairing:
    """The result of pairing two file lists.

    Args:
        rule: The rule that paired them.
        pairs: ``(lq_name, gt_name)`` in GT order, then LQ order.
        sample_names: A unique name per pair (relative stem, ``/`` kept), used to name results.
    """

    rule: PairingRule
    pairs: Tuple[Tuple[str, str], ...]
    sample_names: Tuple[str, ...]


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


def split_ext(name: str) -> Tuple[str, str]:
    """``('sub/a', '.png')`` for ``sub/a.png``; names without an image extension (LMDB keys) are kept whole.

    Args:
        name: File name relative to its root, or an LMDB key.

    Returns:
        ``(stem, extension)``.
    """
    if is_image_file(name):
        stem, ext = os.path.splitext(name)
        return stem, ext
    return name, ""


def list_images(root: str) -> List[str]:
    """Image files under ``root`` (recursively, following links) as sorted ``/``-separated relative paths.

    Args:
        root: Folder.

    Returns:
        Relative names, e.g. ``['GOPR0384_11_00/blur/000001.png', ...]``.
    """
    names = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        rel = os.path.relpath(folder, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        names += [prefix + f for f in files if is_image_file(f) and not f.startswith(".")]
    return sorted(names)


class _Index:
    """GT names by stem, so a rule's candidate stems resolve to files of any image extension."""

    def __init__(self, names: Sequence[str]):
        self.by_stem: Dict[str, List[str]] = {}
        for name in names:
            self.by_stem.setdefault(split_ext(name)[0], []).append(name)

    def find(self, stem: str, ext: str, where: Callable[[str], str]) -> Optional[str]:
        names = self.by_stem.get(stem)
        if not names:
            return None
        if len(names) == 1:
            return names[0]
        same_ext = [n for n in names if split_ext(n)[1] == ext]
        if len(same_ext) == 1:
            return same_ext[0]
        raise DataError(f"ambiguous GT: {', '.join(where(n) for n in names)} share the stem '{stem}'")


def _candidates(rule: PairingRule, stem: str) -> Candidates:
    """``rule.to_gt`` plus the same rule applied below a ``_sNNN`` sub-image suffix."""
    direct = rule.to_gt(stem)
    m = _SUB_IMAGE.match(stem)
    sub = rule.to_gt(m.group(1)) if m else None
    if sub is not None:
        sub = tuple(c + m.group(2) for c in sub)
    if direct is None:
        return sub
    return direct + (sub or ())


def _try_rule(
    rule: PairingRule,
    lq_names: Sequence[str],
    gt_names: Sequence[str],
    shared_root: bool,
    gt_listed: bool,
    lq_where: Callable[[str], str],
    gt_where: Callable[[str], str],
) -> Tuple[List[Tuple[str, str]], Optional[str]]:
    """Pair with one rule; returns the pairs found and the first problem (None when every file pairs)."""
    index = _Index(gt_names)
    pairs: List[Tuple[str, str]] = []
    problem: Optional[str] = None
    lq_like = set()
    for lq in lq_names:
        stem, ext = split_ext(lq)
        if rule.side_by_side:
            pairs.append((lq, lq))
            continue
        cands = _candidates(rule, stem)
        if cands is not None:
            lq_like.add(lq)
        else:
            if not (shared_root or gt_listed) and problem is None:
                problem = f"{lq_where(lq)} does not follow the '{rule.name}' layout"
            continue
        gt = next((g for g in (index.find(c, ext, gt_where) for c in cands) if g is not None), None)
        if gt is None or (shared_root and gt == lq):
            if not gt_listed and problem is None:
                problem = f"no GT for {lq_where(lq)} (looked for {gt_where(cands[0] + ext)})"
            continue
        pairs.append((lq, gt))
    if problem is None and rule.one_to_one and not rule.side_by_side:
        first: Dict[str, str] = {}
        for lq, gt in pairs:
            if gt in first:
                problem = f"{lq_where(first[gt])} and {lq_where(lq)} both pair with {gt_where(gt)}"
                break
            first[gt] = lq
    if problem is None and (rule.one_to_one or gt_listed):
        used = {g for _, g in pairs}
        for gt in gt_names:
            if gt in used or (shared_root and gt in lq_like):
                continue
            stem, ext = split_ext(gt)
            lq_stem = rule.to_lq(stem)
            if lq_stem is None and shared_root and not gt_listed:
                continue  # another kind of file in a shared folder (e.g. rainstreak-1.png)
            looked = lq_where(lq_stem + ext) if lq_stem else "a name of this layout"
            problem = f"no LQ for {gt_where(gt)} (looked for {looked})"
            break
    if problem is None and not pairs:
        problem = f"the '{rule.name}' rule found no pairs"
    return pairs, problem


def _sample_names(rule: PairingRule, pairs: Sequence[Tuple[str, str]]) -> Tuple[str, ...]:
    if rule.name == "gopro":
        parts = [split_ext(gt)[0].split("/") for _, gt in pairs]
        names = ["/".join(p[:-2] + p[-1:]) for p in parts]  # <scene>/<n>: drop the "sharp" folder
    elif rule.gt_names_samples and not rule.side_by_side:
        names = [split_ext(gt)[0] for _, gt in pairs]
    else:
        names = [split_ext(lq)[0] for lq, _ in pairs]
    if len(set(names)) != len(names):  # e.g. one GT listed for several LQ under a one-to-one layout
        names = [split_ext(lq)[0] for lq, _ in pairs]
    return tuple(names)


def find_pairs(
    lq_names: Sequence[str],
    gt_names: Sequence[str],
    rule: str = "auto",
    filename_tmpl: str = "{}",
    shared_root: bool = False,
    gt_listed: bool = False,
    lq_where: Callable[[str], str] = str,
    gt_where: Callable[[str], str] = str,
) -> Pairing:
    """Pair LQ with GT names by ``rule``, or by the first rule that pairs every file (``auto``).

    Args:
        lq_names: LQ file names relative to the LQ root (or LMDB keys).
        gt_names: GT file names relative to the GT root (or LMDB keys), in the order samples should follow.
        rule: ``auto``, a rule name or an alias (see the module docstring).
        filename_tmpl: Template of the ``filename_tmpl`` rule.
        shared_root: LQ and GT names come from the same folder.
        gt_listed: ``gt_names`` is a selection (meta_info file): LQ files of other GT are skipped, and every
            listed GT needs an LQ.
        lq_where: Turns an LQ name into what messages show (e.g. the full path).
        gt_where: The same for GT names.

    Returns:
        The pairing; a ``DataError`` names the first file that does not pair (for ``auto``: under the rule
        that paired the most files).
    """
    if rule == "auto":
        rules = auto_rules(filename_tmpl, shared_root)
    else:
        chosen = get_rule(rule, filename_tmpl)
        if shared_root and not chosen.shared_root:
            raise DataError(
                f"{lq_where('')}: dataroot_lq and dataroot_gt are the same folder, which the '{chosen.name}' "
                "layout cannot pair; point them at the LQ and GT folders"
            )
        if chosen.side_by_side and not shared_root:
            raise DataError(
                f"{lq_where('')}: the '{chosen.name}' layout keeps LQ and GT in one image; set dataroot_lq and "
                "dataroot_gt to the same folder"
            )
        rules = [chosen]
    best: Optional[Tuple[int, str]] = None
    for candidate in rules:
        pairs, problem = _try_rule(candidate, lq_names, gt_names, shared_root, gt_listed, lq_where, gt_where)
        if problem is None:
            order = {g: i for i, g in enumerate(gt_names)}
            pairs.sort(key=lambda p: (order[p[1]], p[0]))
            return Pairing(candidate, tuple(pairs), _sample_names(candidate, pairs))
        if best is None or len(pairs) > best[0]:
            best = (len(pairs), problem)
    assert best is not None
    hint = ""
    if rule == "auto" and best[0] == 0:
        hint = (
            " (no pairing rule matched every file; set filename_tmpl for other LQ names, e.g. '{}_LR', or "
            "'pairing:' to force a rule, e.g. did for side-by-side DID-Data images)"
        )
    raise DataError(best[1] + hint)
