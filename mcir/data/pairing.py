"""Pair LQ and GT file lists with the rules of :mod:`mcir.data.pairing_rules` (``pairing: auto`` or a forced
rule), and list the image files of a dataset folder."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mcir.data.meta_info import is_image_file
from mcir.data.pairing_rules import (  # noqa: F401  (re-exported: the pairing API lives here)
    ALIASES,
    PAIRING_CHOICES,
    RULE_NAMES,
    Candidates,
    PairingRule,
    auto_rules,
    check_pairing_option,
    get_rule,
)
from mcir.errors import DataError

_SUB_IMAGE = re.compile(r"^(.*)(_s\d{3,})$")


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
