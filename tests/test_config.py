"""Typed config: unknown keys are errors, overrides are typed, registries list valid names."""

from dataclasses import dataclass, field

import pytest

from medssl.config import apply_overrides, from_dict, to_dict
from medssl.errors import ConfigError
from medssl.registry import Registry


@dataclass
class Opt:
    lr: float = 0.1
    name: str = "adam"


@dataclass
class Cfg:
    epochs: int = 3
    opt: Opt = field(default_factory=Opt)
    tags: tuple[str, ...] = ()


def test_overrides_nested_and_typed():
    cfg = apply_overrides(Cfg(), ["epochs=5", "opt.lr=1e-3", "tags=[a, b]"])
    assert cfg.epochs == 5 and cfg.opt.lr == pytest.approx(1e-3) and cfg.tags == ("a", "b")
    assert to_dict(cfg)["opt"] == {"lr": 0.001, "name": "adam"}


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['epoch'\].*'epochs'"):
        from_dict(Cfg, {"epoch": 3})
    with pytest.raises(ConfigError, match="expected int"):
        apply_overrides(Cfg(), ["epochs=many"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(Cfg(), ["epochs"])


def test_registry_lists_valid_names():
    reg: Registry[int] = Registry("widget")
    reg.add("a", 1)
    with pytest.raises(ConfigError, match=r"unknown widget 'b'; valid names: a"):
        reg.get("b")
    with pytest.raises(ConfigError, match="twice"):
        reg.add("a", 2)
