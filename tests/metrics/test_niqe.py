"""NIQE: BasicSR's numbers on the bundled Set5 images, conventions (crop, Y/grey, layout) and its traits."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mcir.errors import DataError, OptionError
from mcir.metrics.metric_set import MetricSet
from mcir.metrics.niqe import _RATIOS, calculate_niqe
from mcir.metrics.traits import traits_of

SET5 = Path(__file__).resolve().parents[2] / "datasets" / "Set5"

# Computed with BasicSR's own code, commit 8d56e3a045f9fb3e1d8872f92ee4a4f07f886b0a (2024-05-17),
# basicsr.metrics.niqe.calculate_niqe(img, crop_border, input_order='HWC', convert_to=...) on
# cv2.imread(path, cv2.IMREAD_UNCHANGED) (uint8 BGR), numpy 2.4 / scipy 1.17 / torch 2.14 (CPU).
# Key: (image, crop_border, convert_to).
BASICSR_NIQE = {
    ("HR/baby.png", 0, "y"): 3.265576931476898,
    ("HR/bird.png", 0, "y"): 4.362084861017979,
    ("HR/bird.png", 4, "y"): 5.283072295745063,
    ("HR/butterfly.png", 0, "y"): 5.154885230498647,
    ("HR/head.png", 0, "gray"): 8.268195162735514,
    ("HR/woman.png", 0, "y"): 4.388996217699618,
    ("LR_bicubic/X2/babyx2.png", 4, "y"): 6.203830217424548,
}
# BasicSR halves the image with a float32 torch resize, mcir with the float64 MATLAB resize of
# mcir.data.imresize; the last float32 bits shift a few fitted shape parameters by one grid step (0.001).
# Measured differences are at most 2.2e-4 (baby); the features agree to 5e-8 when given the same input.
TOL = 5e-4


@pytest.mark.parametrize("key", sorted(BASICSR_NIQE))
def test_matches_basicsr(key):
    name, crop, convert_to = key
    img = cv2.imread(str(SET5 / name), cv2.IMREAD_UNCHANGED)
    assert calculate_niqe(img, crop, convert_to=convert_to) == pytest.approx(BASICSR_NIQE[key], abs=TOL)


def test_layouts_and_options_agree():
    img = cv2.imread(str(SET5 / "HR" / "butterfly.png"))
    ref = calculate_niqe(img, 2)
    assert calculate_niqe(img.transpose(2, 0, 1), 2, input_order="CHW") == ref
    assert calculate_niqe(img.astype(np.float64), 2) == ref
    assert MetricSet({"niqe": {"type": "calculate_niqe", "crop_border": 2}}).compute([img], [None])["niqe"] == [ref]
    assert calculate_niqe(img, 2, convert_to="gray") != ref


def test_blur_scores_worse():
    img = cv2.imread(str(SET5 / "HR" / "baby.png"))
    assert calculate_niqe(cv2.GaussianBlur(img, (0, 0), 3)) > calculate_niqe(img) + 1


def test_traits_and_errors():
    traits = traits_of(calculate_niqe)
    assert traits["better"] == "lower" and traits["reference"] is False
    assert np.all(np.diff(_RATIOS) > 0)  # the nearest-ratio search relies on it
    with pytest.raises(DataError, match="two 96x96 blocks"):
        calculate_niqe(np.zeros((100, 150, 3), np.uint8))
    with pytest.raises(OptionError, match="convert_to"):
        calculate_niqe(np.zeros((200, 200, 3), np.uint8), convert_to="lab")
