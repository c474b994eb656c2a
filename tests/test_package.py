"""Package-level promises: a light ``import mcir``, a static version, console scripts that match the entry points."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import mcir


def test_import_mcir_does_not_pull_in_torch():
    code = "import sys, mcir; print('torch' in sys.modules, 'yaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_static_version():
    assert mcir.__version__.count(".") == 2


def test_console_scripts_point_at_the_entry_points():
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts") if ep.name.startswith("mcir-")}
    assert scripts.get("mcir-train") == "mcir.train:main"
    assert scripts.get("mcir-test") == "mcir.test:main"


def test_train_help_runs_as_a_script():
    out = subprocess.run([sys.executable, "mcir/train.py", "--help"], capture_output=True, text=True,
                         cwd=str(Path(__file__).resolve().parents[1]))
    assert out.returncode == 0 and "--auto_resume" in out.stdout
