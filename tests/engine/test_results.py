"""Tests of the results writer: paper-layout table, per-image CSV, JSON layouts."""

from __future__ import annotations

import csv
import json

import pytest

from mcir.engine.results import markdown_table, mean_over_datasets, metrics_csv, write_results


def _res(images: dict) -> dict:
    names = next(iter(images.values())).keys()
    avg = {m: sum(v[m] for v in images.values()) / len(images) for m in names}
    return {"average": avg, "images": images}


RESULTS = {
    "baseline": {
        "Set5": _res({"a": {"psnr": 30.0, "ssim": 0.9}, "b": {"psnr": 32.0, "ssim": 0.8}}),
        "Set14": _res({"c": {"psnr": 26.0, "ssim": 0.7}}),
    },
    "+SPN": {
        "Set5": _res({"a": {"psnr": 30.5, "ssim": 0.91}, "b": {"psnr": 32.25, "ssim": 0.82}}),
        "Set14": _res({"c": {"psnr": 26.125, "ssim": 0.71}}),
    },
}


def test_table_rows_are_models_columns_datasets_and_avg_is_mean_of_datasets():
    table = markdown_table(RESULTS, ["psnr", "ssim"])
    lines = table.splitlines()
    assert lines[0] == "| Model | Set5 | Set14 | Avg. |"
    # Avg. = (31.0 + 26.0) / 2 = 28.5, not the image mean (30 + 32 + 26) / 3 = 29.33
    assert lines[2] == "| baseline | 31.00/0.8500 | 26.00/0.7000 | 28.50/0.7750 |"
    assert lines[3] == "| +SPN | 31.38/0.8650 | 26.12/0.7100 | 28.75/0.7875 |"
    assert "mean of the dataset averages" in table


def test_one_dataset_has_no_avg_column():
    table = markdown_table({"m": {"Set5": RESULTS["baseline"]["Set5"]}}, ["psnr"])
    assert table.splitlines()[0] == "| Model | Set5 |" and "| m | 31.00 |" in table


def test_missing_dataset_prints_dash():
    partial = {"a": RESULTS["baseline"], "b": {"Set5": RESULTS["+SPN"]["Set5"]}}
    assert "| b | 31.38/0.8650 | -/- | 31.38/0.8650 |" in markdown_table(partial, ["psnr", "ssim"])


def test_csv_has_every_model_and_image_and_reproduces_the_averages():
    rows = list(csv.reader(metrics_csv(RESULTS, ["psnr", "ssim"]).splitlines()))
    assert rows[0] == ["model", "dataset", "image", "psnr", "ssim"]
    images = [r for r in rows[1:] if r[2] not in ("average", "mean of dataset averages")]
    assert {(r[0], r[1], r[2]) for r in images} == {
        (m, d, s) for m in RESULTS for d, res in RESULTS[m].items() for s in res["images"]
    }
    for model, per_dataset in RESULTS.items():
        for dataset in per_dataset:
            vals = [float(r[3]) for r in images if r[0] == model and r[1] == dataset]
            avg_row = next(r for r in rows if r[:3] == [model, dataset, "average"])
            assert float(avg_row[3]) == pytest.approx(sum(vals) / len(vals), abs=1e-12)
        avg = next(r for r in rows if r[0] == model and r[1] == "Avg.")
        assert float(avg[3]) == mean_over_datasets(per_dataset, "psnr")


def test_write_results_layouts(tmp_path):
    write_results(RESULTS, ["psnr", "ssim"], tmp_path / "nested")
    assert list(json.loads((tmp_path / "nested" / "metrics.json").read_text())) == ["baseline", "+SPN"]
    one = {"baseline": RESULTS["baseline"]}
    write_results(one, ["psnr", "ssim"], tmp_path / "flat", nested=False)
    assert list(json.loads((tmp_path / "flat" / "metrics.json").read_text())) == ["Set5", "Set14"]
    assert (tmp_path / "flat" / "metrics.csv").read_text().startswith("dataset,image,psnr,ssim\n")
    with pytest.raises(ValueError):
        write_results(RESULTS, ["psnr"], tmp_path / "bad", nested=False)
