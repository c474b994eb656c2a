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
