"""Tests of the run-history reader's training-time sum from log time stamps."""

from pathlib import Path

import pytest

from mcir.cli.run_history import logged_train_seconds


def _log(folder: Path, name: str, lines: list) -> None:
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    (folder / "logs" / name).write_text("\n".join(lines) + "\n")


def test_training_time_sums_each_start_and_resume(tmp_path):
    _log(tmp_path, "train_run_20261126_100000.log", [
        "2026-11-26 10:00:00 INFO: start training from iteration 0 to 100",
        "a continuation line without a stamp",
        "2026-11-26 10:02:30 INFO: [epoch 0 iter 50] l_pix: 1.0e-01",
    ])
    # Resumed an hour later: the gap between the two files is not training time.
    _log(tmp_path, "train_run_20261126_110000.log", [
        "2026-11-26 11:00:00 INFO: resumed from iteration 50",
        "2026-11-26 11:01:00 INFO: [epoch 0 iter 100] l_pix: 9.0e-02",
    ])
    (tmp_path / "logs" / "options_20261126_100000.yml").write_text("name: run\n")
    assert logged_train_seconds(tmp_path) == pytest.approx(150 + 60)


def test_no_stamped_log_gives_none(tmp_path):
    assert logged_train_seconds(tmp_path) is None
    _log(tmp_path, "train_run_20261126_100000.log", ["crashed before the first line was stamped"])
    assert logged_train_seconds(tmp_path) is None
