"""Tests for the figure scripts' helpers: the shared arguments and runs read with legend names."""

import argparse

import pytest

from mcir.errors import DataError, MCIRError
from mcir.cli.plotting import add_run_arguments, read_runs


def _log(path, loss):
    path.write_text(f"2026-01-01 00:00:00 INFO: [epoch 0 iter 2] lr: 1.000e-03, l_pix: {loss}, time/iter: 0.1s\n")
    return path


def test_read_runs_names_runs_by_labels(tmp_path):
    logs = [_log(tmp_path / "a.log", 0.5), _log(tmp_path / "b.log", 0.25)]
    runs = read_runs(logs)
    assert [r.name for r in runs] == ["a", "b"]
    assert runs[1].series("l_pix") == [(2, 0.25)]
    assert [r.name for r in read_runs(logs, "EDSR,EDSR+SPN")] == ["EDSR", "EDSR+SPN"]
    with pytest.raises(MCIRError, match="--labels has 1 names for 2 runs"):
        read_runs(logs, "EDSR")
    with pytest.raises(DataError, match="no such run folder"):
        read_runs([tmp_path / "missing"])


def test_add_run_arguments_parses_runs_out_and_labels():
    parser = argparse.ArgumentParser()
    add_run_arguments(parser, "runs")
    args = parser.parse_args(["a", "b", "--out", "x.png", "--labels", "A,B"])
    assert (args.runs, args.out, args.labels) == (["a", "b"], "x.png", "A,B")
    with pytest.raises(SystemExit):
        parser.parse_args(["a"])  # --out is required
