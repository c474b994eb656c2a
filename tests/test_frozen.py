"""The read-only configuration: nothing can be changed in place, variants are new objects."""

import pickle

import pytest

from mcir.frozen import FrozenList, FrozenMap, freeze, replace_keys, thaw


def _config() -> FrozenMap:
    return FrozenMap({"train": {"negatives": {"steps": [100, 200], "decay": 0.1}}, "name": "run"})


def test_nested_sections_and_lists_are_frozen():
    cfg = _config()
    neg = cfg["train"]["negatives"]
    assert isinstance(neg, FrozenMap)
    assert isinstance(neg["steps"], FrozenList)
    assert neg.decay == 0.1  # read by attribute too
    with pytest.raises(TypeError):
        neg["decay"] = 0.5  # type: ignore[index]
    with pytest.raises(TypeError):
        neg.decay = 0.5
    with pytest.raises(TypeError):
        del cfg.name
    with pytest.raises(AttributeError):
        neg.steps.append(1000)
    with pytest.raises(AttributeError):
        cfg.missing_key


def test_the_source_mapping_is_copied():
    src = {"a": {"b": [1, 2]}}
    cfg = FrozenMap(src)
    src["a"]["b"].append(3)
    src["a"]["c"] = 1
    assert cfg["a"]["b"] == [1, 2]
    assert "c" not in cfg["a"]


def test_frozen_list_equals_its_list_and_tuple_not_other_orders():
    steps = freeze([100, 200])
    assert steps == [100, 200] and steps == (100, 200)
    assert steps != [200, 100] and steps != [100]
    assert hash(steps) == hash((100, 200))
    assert repr(steps) == "[100, 200]"


def test_thaw_gives_plain_mutable_copies():
    cfg = _config()
    plain = thaw(cfg)
    assert type(plain) is dict and type(plain["train"]["negatives"]) is dict
    assert type(plain["train"]["negatives"]["steps"]) is list
    plain["train"]["negatives"]["steps"].append(500)
    assert cfg["train"]["negatives"]["steps"] == [100, 200]


def test_replace_keys_makes_a_new_config_and_leaves_the_old_one():
    cfg = _config()
    new = replace_keys(cfg, {"train.negatives.decay": 0.5, "name": "variant"})
    assert new["train"]["negatives"]["decay"] == 0.5 and new["name"] == "variant"
    assert new["train"]["negatives"]["steps"] == [100, 200]
    assert cfg["train"]["negatives"]["decay"] == 0.1 and cfg["name"] == "run"
    with pytest.raises(KeyError):
        replace_keys(cfg, {"train.missing.decay": 1})


def test_pickle_round_trip_keeps_it_frozen():
    cfg = pickle.loads(pickle.dumps(_config()))
    assert isinstance(cfg, FrozenMap) and cfg == _config()
    with pytest.raises(TypeError):
        cfg["name"] = "x"  # type: ignore[index]
