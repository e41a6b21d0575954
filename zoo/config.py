"""Typed configs: dataclasses built from plain data (JSON, YAML) with strict checking.

Every field has a default in its dataclass, data overrides it, and anything unknown or of
the wrong type is refused with the dotted path of the offending key, so a typo in a recipe
or a config from a newer plugin never passes silently.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from zoo.errors import InvalidInputError, did_you_mean

#: Seeds are 32-bit (numpy's legacy seeding takes no more), in recipes and on the command line.
MAX_SEED = 2**32 - 1

T = TypeVar("T")


def from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """Build dataclass `cls` from `data`, checking keys and value types recursively.

    `where` is the dotted path of `data` in its document ('' at the root, as in a recipe,
    whose keys a user writes as `train.optimizer.lr`). Messages name the offending key by
    its whole path; a `check` in `__post_init__` names the field alone, and gets `where`
    put in front here."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"{where or cls.__name__} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        if key not in fields:
            raise InvalidInputError(f"unknown key '{_join(where, key)}'{did_you_mean(str(key), fields)}")
        values[key] = _coerce(value, hints[key], _join(where, key))
    missing = [
        name
        for name, f in fields.items()
        if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise InvalidInputError(f"{where or cls.__name__} lacks {', '.join(repr(name) for name in missing)}")
    try:
        return cls(**values)
    except InvalidInputError as err:
        raise InvalidInputError(_join(where, str(err))) from None
    except (TypeError, ValueError) as err:
        raise InvalidInputError(f"{where or cls.__name__}: {err}") from None


def _join(where: str, key: object) -> str:
    return f"{where}.{key}" if where else str(key)


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as JSON-ready data (tuples become lists)."""
    return _plain(dataclasses.asdict(obj))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, where)
            except InvalidInputError as err:
                errors.append(str(err))
        raise InvalidInputError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits none of {hint}")
    if origin is typing.Literal:
        if value not in args:
            raise InvalidInputError(f"{where} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise InvalidInputError(f"{where} must be a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise InvalidInputError(f"{where} must have {len(args)} items, got {len(value)}")
            items = [_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))]
        else:
            item = args[0] if args else Any
            items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise InvalidInputError(f"{where} must be a mapping, got {value!r}")
        item = args[1] if args else Any
        return {str(k): _coerce(v, item, _join(where, k)) for k, v in value.items()}
    if hint is float:
        if isinstance(value, str):
            value = _yaml_float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInputError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):  # a setting of inf or nan turns into a non-finite loss, or worse
            raise InvalidInputError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise InvalidInputError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise InvalidInputError(f"{where} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint!r} at {where}")


def _yaml_float(text: str) -> float | str:
    """YAML 1.1 reads 1e-3 (no dot) as a string; accept it where a number is expected."""
    try:
        return float(text)
    except ValueError:
        return text


def check(condition: bool, message: str) -> None:
    """Raise InvalidInputError(message) unless `condition`: for range checks in __post_init__,
    whose message starts with the field's name (`from_dict` puts the path in front)."""
    if not condition:
        raise InvalidInputError(message)
