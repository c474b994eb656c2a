"""Read a training run's history back (losses, λ, validation metrics per iteration) from its logs.

The trainer writes every value twice: the text log ``<run>/logs/train_<name>_<stamp>.log`` (one file per
start or resume) and, with ``logger.use_tb_logger``, TensorBoard events in ``<run>/logs/tb``. The text
log is the primary source (always written); the events are read when a run has no text log. Lines that
do not parse (a crash mid-line, other messages) are skipped; when a resumed run logs an iteration again,
the later file wins.
"""

from __future__ import annotations

import re
from datetime import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from mcir.errors import DataError

Series = List[Tuple[int, float]]

_TRAIN_RE = re.compile(r"\[epoch (\d+) iter (\d+)\] (.*)$")
_VAL_RE = re.compile(r"validation (.+?) @ iter (\d+): (.*)$")
_STAMP_RE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) ")
_PAIR_RE = re.compile(r"([\w/.+-]+): ([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))s?$")


@dataclass
class RunHistory:
    """Values of one run by iteration.

    Args:
        name: Run label (the folder name).
        train: ``{key: [(iteration, value)]}`` for the logged training values (``l_pix``, ``l_rec``,
            ``l_neg``, ``neg_ratio``, ``lambda``, ``lr``, ``time/iter``).
        val: ``{dataset: {metric: [(iteration, value)]}}``.
    """

    name: str
    train: Dict[str, Series] = field(default_factory=dict)
    val: Dict[str, Dict[str, Series]] = field(default_factory=dict)

    def series(self, key: str) -> Series:
        """A training series by key (empty when the run did not log it)."""
        return self.train.get(key, [])


def _pairs(text: str) -> Dict[str, float]:
    out = {}
    for part in text.split(", "):
        m = _PAIR_RE.match(part.strip())
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def _add(table: Dict[int, Dict[str, float]], it: int, values: Dict[str, float]) -> None:
    table.setdefault(it, {}).update(values)


def _to_series(by_iter: Dict[int, Dict[str, float]]) -> Dict[str, Series]:
    out: Dict[str, Series] = {}
    for it in sorted(by_iter):
        for k, v in by_iter[it].items():
            out.setdefault(k, []).append((it, v))
    return out


def parse_log_lines(lines: List[str], history: RunHistory) -> None:
    """Add the training and validation lines of one text log to ``history`` (later values win).

    Args:
        lines: The log's lines.
        history: Updated in place.
    """
    train: Dict[int, Dict[str, float]] = {}
    for k, series in history.train.items():
        for it, v in series:
            train.setdefault(it, {})[k] = v
    val: Dict[str, Dict[int, Dict[str, float]]] = {}
    for d, metrics in history.val.items():
        for k, series in metrics.items():
            for it, v in series:
                val.setdefault(d, {}).setdefault(it, {})[k] = v
    for line in lines:
        m = _TRAIN_RE.search(line)
        if m:
            _add(train, int(m.group(2)), _pairs(m.group(3)))
            continue
        m = _VAL_RE.search(line)
        if m:
            _add(val.setdefault(m.group(1), {}), int(m.group(2)), _pairs(m.group(3)))
    history.train = _to_series(train)
    history.val = {d: _to_series(v) for d, v in val.items()}


def _read_events(tb_dir: Path, history: RunHistory) -> None:
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    train: Dict[int, Dict[str, float]] = {}
    val: Dict[str, Dict[int, Dict[str, float]]] = {}
    for events_dir in sorted({p.parent for p in tb_dir.rglob("events.out.tfevents.*")}):
        acc = EventAccumulator(str(events_dir), size_guidance={SCALARS: 0})
        acc.Reload()
        for tag in acc.Tags()[SCALARS]:
            for ev in acc.Scalars(tag):
                if tag.startswith("losses/"):
                    _add(train, ev.step, {tag[len("losses/"):]: ev.value})
                elif tag.startswith("metrics/") and tag.count("/") >= 2:
                    dataset, metric = tag[len("metrics/"):].rsplit("/", 1)
                    _add(val.setdefault(dataset, {}), ev.step, {metric: ev.value})
                else:
                    _add(train, ev.step, {tag: ev.value})
    history.train = _to_series(train)
    history.val = {d: _to_series(v) for d, v in val.items()}


def read_run(path: Path) -> RunHistory:
    """Read a run folder (``experiments/<name>``), its ``logs/`` folder, or one log file.

    Args:
        path: Where the run is.

    Returns:
        The run's history.

    Raises:
        DataError: Nothing readable there.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such run folder or log file")
    if path.is_file():
        history = RunHistory(path.stem)
        parse_log_lines(path.read_text(encoding="utf-8", errors="replace").splitlines(), history)
        return history
    logs = path / "logs" if (path / "logs").is_dir() else path
    history = RunHistory(path.name if logs is not path else path.parent.name)
    # File names end in a sortable time stamp (train_<name>_%Y%m%d_%H%M%S.log), so sorting puts resumes last.
    files = sorted(logs.glob("*.log"))
    for f in files:
        parse_log_lines(f.read_text(encoding="utf-8", errors="replace").splitlines(), history)
    if not history.train and not history.val and (logs / "tb").is_dir():
        _read_events(logs / "tb", history)
    if not history.train and not history.val:
        raise DataError(f"{path}: no training log lines or TensorBoard scalars found (looked in {logs})")
    return history


def logged_train_seconds(run: Path) -> Optional[float]:
    """Wall time a run spent training, from its text logs: first to last time stamp of each start or resume.

    Args:
        run: The run folder (with ``logs/train_*.log``).

    Returns:
        Seconds summed over the log files, or None when no time-stamped line is found.
    """
    total, found = 0.0, False
    for log in sorted((Path(run) / "logs").glob("train_*.log")):
        stamps = [m.group(1) for m in map(_STAMP_RE.match, log.read_text(encoding="utf-8", errors="replace")
                                          .splitlines()) if m]
        if stamps:
            found = True
            fmt = "%Y-%m-%d %H:%M:%S"
            total += (datetime.strptime(stamps[-1], fmt) - datetime.strptime(stamps[0], fmt)).total_seconds()
    return total if found else None
