"""Tests of one value against its annotation: types, lengths, element types, ranges, and the message."""

from __future__ import annotations

from typing import Annotated, Literal, Mapping, Optional, Sequence, Tuple, Union

import pytest

from mcir.constraints import Decay, Increasing, NonNegativeInt, PositiveFloat, PositiveInt, Probability, Range
from mcir.errors import OptionError
from mcir.options.values import check_value, describe, is_checkable


@pytest.mark.parametrize(
    "hint, value, expected",
    [
        (int, 5, 5),
        (int, 5000.0, 5000),  # YAML's 5e3 for an iteration count
        (float, 2, 2.0),  # an int where a float is expected
        (float, 2e-4, 2e-4),
        (bool, True, True),
        (str, "x", "x"),
        (Optional[int], None, None),
        (Literal["a", "b"], "b", "b"),
        (Sequence[float], [1, 2.5], [1.0, 2.5]),
        (Tuple[float, float], [0.9, 0.99], [0.9, 0.99]),
        (Tuple[int, ...], (1, 2, 3), [1, 2, 3]),
        (Mapping[str, float], {"relu1_2": 1}, {"relu1_2": 1.0}),
        (Union[int, Sequence[int]], [1, 2], [1, 2]),
        (PositiveInt, 1, 1),
        (Decay, 0.0, 0.0),
        (Probability, 1, 1.0),
        (Annotated[Sequence[int], Increasing()], [1, 5, 9], [1, 5, 9]),
    ],
)
def test_good_values_pass_and_are_coerced(hint, value, expected):
    out = check_value(hint, value, "k")
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(
    "hint, value, message",
    [
        (float, "fast", "expected a number, got 'fast'"),
        (float, True, "expected a number, got true"),
        (int, 2.5, "expected an integer, got 2.5"),
        (int, "5", "expected an integer, got '5'"),
        (bool, "yes", "expected true or false, got 'yes'"),
        (str, 5, "expected a string, got 5"),
        (Literal["l1", "l2"], "l3", "expected one of 'l1', 'l2', got 'l3'"),
        (Sequence[int], 3, "expected a list of integers, got 3"),
        (Sequence[int], [1, "x"], "expected a list of integers, got [1, 'x']"),
        (Tuple[float, float], [0.9], "expected a list of 2 numbers, got [0.9]"),
        (Tuple[float, float], [0.9, 0.99, 0.999], "expected a list of 2 numbers, got [0.9, 0.99, 0.999]"),
        (Mapping[str, float], ["a"], "expected a mapping of names to numbers, got ['a']"),
        (PositiveInt, 0, "expected an integer > 0, got 0"),
        (NonNegativeInt, -1, "expected an integer >= 0, got -1"),
        (PositiveFloat, -1e-4, "expected a number > 0, got -0.0001"),
        (Decay, 1.0, "expected a number in [0, 1), got 1.0"),
        (Probability, 1.5, "expected a number in [0, 1], got 1.5"),
        (Optional[PositiveInt], -2, "expected an integer > 0 or null, got -2"),
        (Sequence[PositiveInt], [1, 0], "expected a list of integers > 0, got [1, 0]"),
        (Annotated[Sequence[int], Increasing()], [5, 5], "expected a list of integers strictly increasing, got [5, 5]"),
        (int, None, "expected an integer, got null"),
    ],
)
def test_bad_values_give_expected_what_got_value(hint, value, message):
    with pytest.raises(OptionError) as err:
        check_value(hint, value, "train.some.key", "x.yml")
    assert str(err.value) == f"x.yml: train.some.key: {message}"


def test_a_bad_mapping_entry_is_named_by_its_own_key():
    with pytest.raises(OptionError) as err:
        check_value(Optional[Mapping[str, PositiveFloat]], {"relu1_2": 0.2, "relu2_2": -1}, "neg_opt.layer_weights")
    assert err.value.key == "neg_opt.layer_weights.relu2_2" and err.value.message == "expected a number > 0, got -1"


def test_range_bounds_are_inclusive_or_exclusive_as_declared():
    assert Range(ge=0).holds(0) and not Range(gt=0).holds(0)
    assert Range(le=1).holds(1) and not Range(lt=1).holds(1)
    assert Range(ge=0, lt=1).describe() == "in [0, 1)" and Range(gt=1).describe() == "> 1"


def test_what_is_checkable():
    assert is_checkable(Optional[Sequence[PositiveInt]]) and is_checkable(Literal["a"])
    assert not is_checkable(object) and not is_checkable(Optional[object])
    assert describe(Union[Literal["auto"], NonNegativeInt]) == "one of 'auto' or an integer >= 0"
