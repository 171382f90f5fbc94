"""The one YAML dialect: duplicate keys and alias bombs are refused, 1.2-style scalars."""
import pytest

from medcurate.errors import MedcurateError
from medcurate.yamlio import parse_yaml


def test_duplicate_key_is_an_error_naming_the_line():
    text = "name: x\nsteps:\n  - deid: {}\nsteps:\n  - dedupe: {}\n"
    with pytest.raises(MedcurateError) as info:
        parse_yaml(text, origin="r.yaml")
    assert "duplicate key 'steps'" in str(info.value)
    assert str(info.value).startswith("r.yaml:4")


def test_nested_duplicate_key_is_an_error():
    with pytest.raises(MedcurateError, match="duplicate key 'field'"):
        parse_yaml("steps:\n  - deid: {field: a, field: b}\n")


def test_alias_bomb_is_bounded():
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        levels.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    text = "\n".join(levels) + "\n"
    assert len(text.encode()) < 1000
    with pytest.raises(MedcurateError, match="expands to more than"):
        parse_yaml(text)


def test_small_aliases_still_work():
    data = parse_yaml("base: &b {lr: 1e-4}\nother: *b\n")
    assert data["other"] == {"lr": 1e-4}


def test_scalars_follow_yaml_1_2():
    data = parse_yaml("save_strategy: no\npacking: true\nlr: 1e-5\n")
    assert data == {"save_strategy": "no", "packing": True, "lr": 1e-5}
