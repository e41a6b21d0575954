"""`zoo plugin check`: import every plugin fully (a family's model class and recipes, a
dataset's loader) and say which ones work. `zoo list` reads only the specs; problems that
show up only when the model module or the recipes are read (a failing import, a class
written for another plugin API, a recipe that does not validate) show here."""

from __future__ import annotations

from dataclasses import dataclass

from zoo.errors import IncompatiblePluginError, NotFoundError, ZooError, did_you_mean
from zoo.plugin import PLUGIN_API_VERSION
from zoo.registry import Entry, datasets, families, load_object


@dataclass(frozen=True)
class PluginStatus:
    """One family or dataset after a full import: ok, broken, incompatible or duplicate."""

    kind: str
    name: str
    package: str
    version: str
    status: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def check_plugins(name: str | None = None) -> list[PluginStatus]:
    """Every family and dataset, or those named `name` (a name, `package:name` or a package)."""
    found = []
    for kind, registry in (("family", families), ("dataset", datasets)):
        for entry in registry.entries():
            if name is None or name in (entry.name, entry.qualified_name, entry.package):
                found.append(_check(kind, entry))
    if name is not None and not found:
        known = {e.name for r in (families, datasets) for e in r.entries()}
        known |= {e.package for r in (families, datasets) for e in r.entries()}
        raise NotFoundError(f"no plugin, family or dataset named '{name}'{did_you_mean(name, known)}")
    return found


def _check(kind: str, entry: Entry) -> PluginStatus:
    def status(state: str, error: str = "") -> PluginStatus:
        return PluginStatus(kind, entry.name, entry.package, entry.version, state, error)

    if entry.status not in ("ok", "duplicate"):
        return status(entry.status, entry.error)
    target = entry.spec.model if kind == "family" else entry.spec.loader
    try:
        loaded = load_object(target, f"{kind} '{entry.name}'")
    except IncompatiblePluginError as err:
        return status("broken", str(err))
    if kind == "family":
        from zoo.factory import family_class  # imports torch: only when checking
        from zoo.recipes import check_shipped_recipes

        try:
            family_class(entry.qualified_name)
        except IncompatiblePluginError as err:
            supported = getattr(loaded, "api_versions", (PLUGIN_API_VERSION,))
            return status("broken" if PLUGIN_API_VERSION in supported else "incompatible", str(err))
        try:
            check_shipped_recipes(entry.qualified_name)
        except ZooError as err:
            return status("broken", str(err))
    return status(entry.status, entry.error)
