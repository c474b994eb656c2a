"""A reproduction study: which option files (methods) to train, with which seeds, budget and benchmarks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from mcir.errors import OptionError

_STUDY_KEYS = ("name", "runs_root", "report_dir", "seeds", "total_iter", "baseline", "common_set", "methods",
               "sweeps", "benchmarks", "crop_border", "test_y_channel", "description", "prep")
# ``${prep.<name>}`` in a method's overrides: the final weights of that prep run (see :class:`Prep`).
PREP_REF = re.compile(r"\$\{prep\.([^}]*)\}")


@dataclass(frozen=True)
class Method:
    """One row of the results table: an option file plus ``--set`` overrides."""

    name: str
    opt: str
    overrides: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Prep:
    """A one-off run that other rows depend on (e.g. a weaker network used as a negative), not a table row.

    It is trained once (one seed, its own budget) before the methods, with the study's ``common_set`` and
    its own overrides; a method refers to its final weights as ``${prep.<name>}`` in its overrides.
    """

    name: str
    opt: str
    seed: int
    total_iter: int
    overrides: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Benchmark:
    """A paired test set (folder layout as in ``PairedImageDataset``)."""

    name: str
    dataroot_gt: str
    dataroot_lq: str
    filename_tmpl: str = "{}"


@dataclass(frozen=True)
class Study:
    """Everything the harness needs to plan, run and report (see :func:`load_study`)."""

    name: str
    file: str
    runs_root: Path
    report_dir: Path
    seeds: Tuple[int, ...]
    total_iter: Optional[int]
    baseline: str
    common: Tuple[str, ...]
    methods: Tuple[Method, ...]
    benchmarks: Tuple[Benchmark, ...]
    crop_border: Optional[int]
    test_y_channel: bool
    description: str = ""
    preps: Tuple[Prep, ...] = ()

    def method(self, name: str) -> Method:
        """The method called ``name``."""
        for m in self.methods:
            if m.name == name:
                return m
        raise OptionError(f"unknown method '{name}' (have {', '.join(m.name for m in self.methods)})", self.file)


def _strings(value: Any, file: str, key: str) -> Tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OptionError("must be a list of 'key=value' strings", file, key)
    return tuple(value)


def _methods(raw: Any, file: str) -> List[Method]:
    if not isinstance(raw, dict) or not raw:
        raise OptionError("must map method names to {opt: <option file>, set: [key=value, ...]}", file, "methods")
    methods = []
    for name, spec in raw.items():
        key = f"methods.{name}"
        if not isinstance(spec, dict) or not isinstance(spec.get("opt"), str):
            raise OptionError("needs 'opt: <option file>'", file, key)
        unknown = set(spec) - {"opt", "set"}
        if unknown:
            raise OptionError(f"unknown key(s) {sorted(unknown)} (allowed: opt, set)", file, key)
        if not Path(spec["opt"]).is_file():
            raise OptionError(f"option file not found: {spec['opt']}", file, f"{key}.opt")
        methods.append(Method(str(name), spec["opt"], _strings(spec.get("set"), file, f"{key}.set")))
    return methods


def _preps(raw: Any, file: str) -> List[Prep]:
    """``prep: {name: {opt, seed, total_iter, set}}`` (see :class:`Prep`)."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise OptionError("must map prep names to {opt, seed, total_iter, set}", file, "prep")
    out = []
    for name, spec in raw.items():
        key = f"prep.{name}"
        if not re.fullmatch(r"[A-Za-z0-9_-]+", str(name)):
            raise OptionError("prep names may only use letters, digits, '_' and '-'", file, key)
        if not isinstance(spec, dict) or not {"opt", "seed", "total_iter"} <= set(spec):
            raise OptionError("needs opt, seed and total_iter (and optionally set)", file, key)
        unknown = set(spec) - {"opt", "seed", "total_iter", "set"}
        if unknown:
            raise OptionError(f"unknown key(s) {sorted(unknown)} (allowed: opt, seed, total_iter, set)", file, key)
        if not Path(str(spec["opt"])).is_file():
            raise OptionError(f"option file not found: {spec['opt']}", file, f"{key}.opt")
        for field, low in (("seed", 0), ("total_iter", 1)):
            value = spec[field]
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise OptionError(f"must be an integer >= {low}", file, f"{key}.{field}")
        out.append(Prep(str(name), str(spec["opt"]), spec["seed"], spec["total_iter"],
                        _strings(spec.get("set"), file, f"{key}.set")))
    return out


def _check_prep_refs(methods: Sequence[Method], preps: Sequence[Prep], file: str) -> None:
    """Every ``${prep.<name>}`` a method uses names a declared prep run."""
    known = {p.name for p in preps}
    for m in methods:
        for ref in (r for o in m.overrides for r in PREP_REF.findall(o)):
            if ref not in known:
                raise OptionError(f"'${{prep.{ref}}}' names no prep run (have: {', '.join(sorted(known)) or 'none'})",
                                  file, f"methods.{m.name}.set")


def _sweeps(raw: Any, methods: List[Method], file: str) -> List[Method]:
    """Expand ``sweeps: {label: {base: method, key: option.key, values: [...]}}`` into methods."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise OptionError("must map sweep labels to {base, key, values}", file, "sweeps")
    by_name = {m.name: m for m in methods}
    out = []
    for label, spec in raw.items():
        key = f"sweeps.{label}"
        if not isinstance(spec, dict) or set(spec) != {"base", "key", "values"}:
            raise OptionError("needs exactly base, key and values", file, key)
        if spec["base"] not in by_name:
            raise OptionError(f"unknown base method '{spec['base']}'", file, f"{key}.base")
        if not isinstance(spec["values"], list) or not spec["values"]:
            raise OptionError("must be a non-empty list", file, f"{key}.values")
        base = by_name[spec["base"]]
        for value in spec["values"]:
            text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
            out.append(Method(f"{base.name} {label}={text}", base.opt, base.overrides + (f"{spec['key']}={text}",)))
    return out


def _benchmarks(raw: Any, file: str) -> List[Benchmark]:
    if not isinstance(raw, dict) or not raw:
        raise OptionError("must map benchmark names to {dataroot_gt, dataroot_lq, filename_tmpl}", file, "benchmarks")
    out = []
    for name, spec in raw.items():
        key = f"benchmarks.{name}"
        if not isinstance(spec, dict) or not {"dataroot_gt", "dataroot_lq"} <= set(spec):
            raise OptionError("needs dataroot_gt and dataroot_lq", file, key)
        unknown = set(spec) - {"dataroot_gt", "dataroot_lq", "filename_tmpl"}
        if unknown:
            raise OptionError(f"unknown key(s) {sorted(unknown)}", file, key)
        out.append(Benchmark(str(name), str(spec["dataroot_gt"]), str(spec["dataroot_lq"]),
                             str(spec.get("filename_tmpl", "{}"))))
    return out


def load_study(path: str, seeds: Optional[Sequence[int]] = None, total_iter: Optional[int] = None,
               only: Optional[Sequence[str]] = None) -> Study:
    """Read and check a study file; command-line values replace the file's.

    Args:
        path: Study YAML (see ``options/reproduce/*.yml``).
        seeds: Replace the file's seeds.
        total_iter: Replace the file's iteration budget.
        only: Keep only these methods (the baseline is always kept).

    Returns:
        The study.

    Raises:
        OptionError: A missing or malformed key, naming the file and key.
    """
    if not Path(path).is_file():
        raise OptionError(f"study file not found: {path}")
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    if not isinstance(raw, dict):
        raise OptionError("must be a YAML mapping", path)
    unknown = set(raw) - set(_STUDY_KEYS)
    if unknown:
        raise OptionError(f"unknown key(s) {sorted(unknown)} (allowed: {', '.join(_STUDY_KEYS)})", path)
    for key in ("name", "baseline", "methods", "benchmarks", "seeds"):
        if key not in raw:
            raise OptionError("is required", path, key)
    methods = _methods(raw["methods"], path)
    methods += _sweeps(raw.get("sweeps"), methods, path)
    preps = _preps(raw.get("prep"), path)
    _check_prep_refs(methods, preps, path)
    if raw["baseline"] not in {m.name for m in methods}:
        raise OptionError(f"'{raw['baseline']}' is not one of the methods", path, "baseline")
    if only:
        missing = set(only) - {m.name for m in methods}
        if missing:
            raise OptionError(f"--methods: unknown {sorted(missing)}", path)
        methods = [m for m in methods if m.name in set(only) | {raw["baseline"]}]
    seed_list = list(seeds) if seeds else raw["seeds"]
    if not isinstance(seed_list, list) or not seed_list or not all(isinstance(s, int) for s in seed_list):
        raise OptionError("must be a non-empty list of integers", path, "seeds")
    budget = total_iter if total_iter is not None else raw.get("total_iter")
    if budget is not None and (not isinstance(budget, int) or budget < 1):
        raise OptionError("must be a positive integer", path, "total_iter")
    name = str(raw["name"])
    return Study(
        name=name,
        file=path,
        runs_root=Path(raw.get("runs_root") or Path("experiments") / name),
        report_dir=Path(raw.get("report_dir") or Path("results") / name),
        seeds=tuple(seed_list),
        total_iter=budget,
        baseline=str(raw["baseline"]),
        common=_strings(raw.get("common_set"), path, "common_set"),
        methods=tuple(methods),
        benchmarks=tuple(_benchmarks(raw["benchmarks"], path)),
        crop_border=raw.get("crop_border"),
        test_y_channel=bool(raw.get("test_y_channel", True)),
        description=str(raw.get("description", "")).strip(),
        preps=tuple(p for p in preps if any(f"${{prep.{p.name}}}" in o for m in methods for o in m.overrides)),
    )


def study_overrides(study: Study, method: Method, seed: int) -> List[str]:
    """``--set`` overrides of one run: the study's common ones, the method's (``${prep.<name>}`` resolved to that
    prep run's weights file), then seed/budget/name/folder."""
    own = [PREP_REF.sub(lambda m: str(prep_weights(study, m.group(1))), o) for o in method.overrides]
    sets = [*study.common, *own, f"manual_seed={seed}"]
    if study.total_iter is not None:
        sets.append(f"train.total_iter={study.total_iter}")
    sets += [f"name={run_name(study, method, seed)}", f"path.experiments_root={run_dir(study, method, seed)}"]
    return sets


def run_name(study: Study, method: Method, seed: int) -> str:
    """Folder-safe name of one run."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in method.name.replace("+", "plus_"))
    return f"{study.name}__{safe}__seed{seed}"


def run_dir(study: Study, method: Method, seed: int) -> Path:
    """The run's experiment folder."""
    return study.runs_root / run_name(study, method, seed)


def prep_name(study: Study, prep: str) -> str:
    """Folder-safe name of the prep run called ``prep``."""
    return f"{study.name}__prep_{prep}"


def prep_dir(study: Study, prep: str) -> Path:
    """The prep run's experiment folder."""
    return study.runs_root / prep_name(study, prep)


def prep_weights(study: Study, prep: str) -> Path:
    """The final weights file of a prep run (what ``${prep.<name>}`` stands for)."""
    return prep_dir(study, prep) / "models" / "net_g_latest.pth"


def prep_overrides(study: Study, prep: Prep) -> List[str]:
    """``--set`` overrides of a prep run: the study's common ones, the prep's, then its seed/budget/name/folder."""
    return [*study.common, *prep.overrides, f"manual_seed={prep.seed}", f"train.total_iter={prep.total_iter}",
            f"name={prep_name(study, prep.name)}", f"path.experiments_root={prep_dir(study, prep.name)}"]


def benchmark_exists(bench: Benchmark) -> bool:
    """Whether both folders of a benchmark are present (absent ones are skipped, not fatal)."""
    return Path(bench.dataroot_gt).is_dir() and Path(bench.dataroot_lq).is_dir()


def as_dict(study: Study) -> Dict[str, Any]:
    """The resolved study, for the report's reproducibility record."""
    return {
        "name": study.name,
        "seeds": list(study.seeds),
        "total_iter": study.total_iter,
        "baseline": study.baseline,
        "common_set": list(study.common),
        "methods": {m.name: {"opt": m.opt, "set": list(m.overrides)} for m in study.methods},
        **({"prep": {p.name: {"opt": p.opt, "seed": p.seed, "total_iter": p.total_iter, "set": list(p.overrides)}
                     for p in study.preps}} if study.preps else {}),
        "benchmarks": [b.name for b in study.benchmarks],
    }
