"""SIGKILL at random iterations + ``--auto_resume`` ends bit-identical to an uninterrupted run (subprocesses)."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("kill_resume_check", REPO / "scripts" / "kill_resume_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_three_sigkills_then_auto_resume_are_bit_identical(tmp_path):
    check = _script().check
    kill_seed = 7
    result = check(tmp_path, kills=3, total_iter=30, save_freq=4, seed=3, kill_seed=kill_seed, timeout=300)
    assert result["ok"], result
    assert result["identical"] is True
    kills = result["kills"]
    assert [k["exit"] for k in kills] == [-9, -9, -9]
    expected_targets = sorted(random.Random(kill_seed).sample(range(2, 30 - 8), 3))
    assert [k["target"] for k in kills] == expected_targets
    assert all(k["killed_at"] >= k["target"] for k in kills)
    # The last launch resumed from a saved state and redid the iterations since it.
    assert result["final_resumed_from"] is not None and result["final_resumed_from"] % 4 == 0
    assert result["final_resumed_from"] <= kills[-1]["killed_at"]


def test_mcir_sigkills_then_auto_resume_keep_weights_and_negatives_bit_identical(tmp_path):
    """The +SPN model: the negatives (steps [2, 3]) and their counters survive two SIGKILLs mid-run."""
    check = _script().check
    kill_seed = 5
    result = check(tmp_path, kills=2, total_iter=12, save_freq=3, seed=3, kill_seed=kill_seed, timeout=300,
                   model="mcir")
    assert result["ok"], result
    assert result["identical"] is True and result["model"] == "mcir"
    assert result["compared"] == ["weights", "net_g", "ema", "negatives"]
    kills = result["kills"]
    assert [k["exit"] for k in kills] == [-9, -9]
    targets = sorted(random.Random(kill_seed).sample(range(2, 12 - 6), 2))
    assert [k["target"] for k in kills] == targets
    assert any(t % 3 for t in targets)  # aimed between checkpoints, after negatives moved unsaved
    assert all(k["killed_at"] >= k["target"] for k in kills)
    assert result["final_resumed_from"] is not None and result["final_resumed_from"] % 3 == 0
