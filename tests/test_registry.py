"""Tests of mcir.registry: registration, lookup errors, aliases and user-module imports."""

from __future__ import annotations

import pytest

from mcir.errors import OptionError, RegistryError
from mcir.options import build_checked
from mcir.registry import Registry, construct, import_user_modules


class _First:
    """First definition registered under a shared name."""


class _Second:
    """Second definition registered under the same name."""


def test_duplicate_name_names_both_definitions() -> None:
    reg = Registry("thing")
    reg.register(_First, name="Net")
    with pytest.raises(RegistryError) as info:
        reg.register(_Second, name="Net")
    msg = str(info.value)
    assert "'Net'" in msg
    assert "_First" in msg and "_Second" in msg
    assert msg.count("test_registry.py:") == 2
    assert reg.get("Net") is _First


def test_registering_same_object_twice_is_harmless() -> None:
    reg = Registry("thing")
    reg.register(_First)
    reg.register(_First)
    assert reg.list() == ["_First"]


def test_unknown_name_lists_closest() -> None:
    reg = Registry("arch")
    for name in ("EDSR", "RCAN", "SwinIR"):
        reg.register(type(name, (), {}), name=name)
    with pytest.raises(RegistryError) as info:
        reg.get("EDRS")
    msg = str(info.value)
    assert "unknown arch 'EDRS'" in msg
    assert "did you mean EDSR" in msg
    assert "registered: EDSR, RCAN, SwinIR" in msg
    assert isinstance(info.value, OptionError)


def test_contains_list_len_iter() -> None:
    reg = Registry("loss")

    @reg.register()
    class Zeta:
        pass

    @reg.register()
    class Alpha:
        pass

    assert "Zeta" in reg and "Alpha" in reg
    assert "Beta" not in reg
    assert reg.list() == ["Alpha", "Zeta"]
    assert list(reg) == ["Alpha", "Zeta"]
    assert len(reg) == 2


def test_register_with_alias() -> None:
    reg = Registry("arch")

    @reg.register(name="Short")
    class AVeryLongName:
        pass

    reg.register(AVeryLongName, name="Other")
    assert reg.get("Short") is AVeryLongName
    assert reg.get("Other") is AVeryLongName
    assert "AVeryLongName" not in reg


def test_import_user_modules_error_names_key_and_file() -> None:
    import_user_modules(["json"])  # an importable module must pass silently
    with pytest.raises(OptionError) as info:
        import_user_modules(["json", "no_such_module_mcir_xyz"], file="opt.yml")
    assert info.value.key == "imports[1]"
    assert info.value.file == "opt.yml"
    assert "no_such_module_mcir_xyz" in str(info.value)


def test_a_checked_build_needs_a_type_and_builtins_check_their_own_arguments() -> None:
    reg = Registry("arch")
    reg.register(dict, name="Dict")
    assert build_checked(reg, {"type": "Dict", "a": 1}) == {"a": 1}
    with pytest.raises(OptionError, match="missing 'type'") as info:
        build_checked(reg, {"a": 1}, key="network_g")
    assert info.value.key == "network_g"


def test_construct_hands_the_object_plain_copies_of_the_section() -> None:
    from mcir.options import FrozenMap

    reg = Registry("thing")
    reg.register(dict, name="Dict")
    cfg = FrozenMap({"type": "Dict", "a": [1, 2], "b": {"c": 3}})
    built = construct(reg, cfg)
    assert built == {"a": [1, 2], "b": {"c": 3}} and type(built["a"]) is list and type(built["b"]) is dict
    built["a"].append(4)  # the object may change what it got; the configuration stays as loaded
    assert cfg["a"] == [1, 2]
