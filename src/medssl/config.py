"""Typed configuration: dataclass defaults live beside the code that uses them.

YAML files hold presets only. ``from_dict`` refuses unknown keys (naming them and the valid
ones); ``apply_overrides`` takes ``--set key=value`` strings (nested keys with dots, values
parsed as YAML scalars). ``to_dict`` gives the resolved config that every run saves.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from medssl.errors import ConfigError

C = TypeVar("C")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def to_plain(x: Any) -> Any:
    """Tuples to lists, recursively: a saved config as YAML safe_dump writes it (and CSV and
    JSON read it back)."""
    if isinstance(x, dict):
        return {k: to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_plain(v) for v in x]
    return x


def without(d: dict[str, Any], *dotted: str) -> dict[str, Any]:
    """A copy of the nested mapping ``d`` without the settings at the ``dotted`` paths
    (``"trainer.progress_bar"``); a path that is not there is ignored."""
    out = dict(d)
    for path in dotted:
        head, _, rest = path.partition(".")
        if rest and isinstance(out.get(head), dict):
            out[head] = without(out[head], rest)
        elif not rest:
            out.pop(head, None)
    return out


def from_dict(cls: type[C], data: dict[str, Any] | None, *, where: str = "config") -> C:
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        typ = hints[name]
        if dataclasses.is_dataclass(typ) and isinstance(value, dict):
            value = from_dict(typ, value, where=f"{where}.{name}")
        else:
            value = _coerce(value, typ, f"{where}.{name}")
        kwargs[name] = value
    return cls(**kwargs)


def merge(cfg: C, data: dict[str, Any] | None, *, where: str = "config") -> C:
    """``cfg`` with the (possibly nested, partial) values of ``data`` laid over it."""
    merged = _deep_update(to_dict(cfg), data or {})
    return from_dict(type(cfg), merged, where=where)


def apply_overrides(cfg: C, overrides: Iterable[str]) -> C:
    patch: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set optimizer.lr=0.01")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = patch
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return merge(cfg, patch, where="--set")


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _deep_update(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_update(out[k], v)
        else:
            out[k] = v
    return out


def _coerce(value: Any, typ: Any, where: str) -> Any:
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} does not match {typ}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(typ)
        inner = args[0] if args else Any
        items = [_coerce(v, inner, where) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict or typ is Any or origin is typing.Literal:
        if origin is typing.Literal and value not in typing.get_args(typ):
            raise ConfigError(f"{where}: {value!r} is not one of {typing.get_args(typ)}")
        return value
    if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if typ is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            return float(value)
        except ValueError:
            pass
    if typ is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if typ is bool and isinstance(value, bool):
        return value
    if typ is str and isinstance(value, str):
        return value
    if typ in (int, float, bool, str):
        raise ConfigError(f"{where}: expected {typ.__name__}, got {value!r}")
    return value
