"""scripts/profile_model.py: tables written in isolated worker processes; user errors are one line."""

from __future__ import annotations

import json

TINY = ["--arch", "EDSR", "--scale", "2", "--set", "num_feat=8", "--set", "num_block=1", "--size", "16", "16",
        "--device", "cpu", "--repeats", "2", "--warmup", "0"]


def test_profile_table_from_a_fresh_process(tmp_path, load_script, capsys):
    assert load_script("profile_model").main(TINY + ["--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "profile.json").read_text())
    assert data["isolated"] is True and len(data["models"]) == 1
    model = data["models"][0]
    assert model["input"] == [3, 8, 8] and model["flops"] > 0 and model["train"] is None
    assert "VmHWM" in model["memory_method"]
    table = (tmp_path / "profile.md").read_text()
    assert "| EDSR num_feat=8 num_block=1 | EDSR |" in table and "each measurement in a fresh process" in table
    assert table in capsys.readouterr().out


def test_user_errors_are_one_line(tmp_path, load_script, capsys):
    script = load_script("profile_model")
    assert script.main(["-opt", str(tmp_path / "missing.yml"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.yml" in err[0] and "option file not found" in err[0]
    assert script.main(["--arch", "EDSR", "--in-process", "--set", "num_feet=8"]) == 1
    assert "num_feet" in capsys.readouterr().err


def test_worker_reports_user_errors_as_json(capsys):
    from mcir.cli.profiler import main as worker

    assert worker([json.dumps({"arch": "NoSuchArch", "device": "cpu"})]) == 1
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["kind"] in ("OptionError", "RegistryError") and "NoSuchArch" in out["error"]
