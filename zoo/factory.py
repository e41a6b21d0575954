"""Create models by family name; register families in-process."""

from __future__ import annotations

from typing import Any

from zoo.errors import IncompatiblePluginError
from zoo.family import Family, FamilyConfig
from zoo.plugin import DatasetSpec, FamilySpec
from zoo.registry import Entry, api_status, datasets, families, load_object

_classes: dict[str, type[Family]] = {}


def family_class(name: str) -> type[Family]:
    """The Family subclass registered as `name` (or `package:name`), imported on first use."""
    entry = families.get(name)
    key = entry.qualified_name
    if key not in _classes:
        cls = load_object(entry.spec.model, f"family '{entry.name}' from package {entry.package}")
        if not (isinstance(cls, type) and issubclass(cls, Family)):
            raise IncompatiblePluginError(
                f"family '{entry.name}' from package {entry.package} is not a zoo.Family subclass"
            )
        if cls.name != entry.name:
            raise IncompatiblePluginError(
                f"family '{entry.name}' from package {entry.package} loads class {cls.__name__} named '{cls.name}'"
            )
        status, reason = api_status(cls)
        if status != "ok":
            raise IncompatiblePluginError(
                f"family '{entry.name}' from package {entry.package}: class {cls.__name__} was {reason}"
            )
        _classes[key] = cls
    return _classes[key]


def family_entry(name: str) -> Entry[FamilySpec]:
    return families.get(name)


def entry_of(cls: type[Family]) -> Entry[FamilySpec]:
    """The registry entry a loaded family class came from (for a duplicate name, its own
    package's entry, not the one that owns the short name)."""
    for key, loaded in _classes.items():
        if loaded is cls:
            return families.get(key)
    return families.get(cls.name)


def create(name: str, config: FamilyConfig | dict[str, Any] | None = None, **overrides: Any) -> Family:
    """A new, untrained model of family `name`: `zoo.create("vae", latent_dim=8)`."""
    return family_class(name).from_config(config, **overrides)


def register(obj: type[Family] | FamilySpec | DatasetSpec) -> Entry:
    """Register a Family subclass, a FamilySpec or a DatasetSpec in this process."""
    if isinstance(obj, DatasetSpec):
        return datasets.register(obj)
    if isinstance(obj, FamilySpec):
        _classes.pop(f"<in-process>:{obj.name}", None)
        return families.register(obj)
    if isinstance(obj, type) and issubclass(obj, Family):
        if not obj.name:
            raise ValueError(f"{obj.__name__}.name must be set to register it")
        summary = (obj.__doc__ or "").strip().splitlines()[0] if obj.__doc__ else ""
        _classes.pop(f"<in-process>:{obj.name}", None)
        return families.register(FamilySpec(name=obj.name, model=obj, summary=summary, api_versions=obj.api_versions))
    raise TypeError(f"cannot register {obj!r}: expected a Family subclass, FamilySpec or DatasetSpec")


def list_families(pattern: str = "*") -> list[str]:
    """Usable family names matching a shell-style pattern."""
    import fnmatch

    return [n for n in families.names() if fnmatch.fnmatch(n, pattern)]
