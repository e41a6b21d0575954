"""Find families and datasets: installed entry points plus in-process registrations.

A plugin that fails to import, declares an unsupported API version or reuses a taken name
is kept as an entry with a status and a one-line reason; it never stops the others.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from zoo.errors import IncompatiblePluginError, NotFoundError, did_you_mean, one_line
from zoo.plugin import PLUGIN_API_VERSION, DatasetSpec, FamilySpec

S = TypeVar("S", FamilySpec, DatasetSpec)

FIRST_PARTY = "zoo"
IN_PROCESS = "<in-process>"
#: Set to 1 to load only zoo's own entry points (for telling a plugin's fault from zoo's).
DISABLE_ENV = "ZOO_DISABLE_PLUGINS"


@dataclass(frozen=True)
class Entry(Generic[S]):
    """One registered name: its spec (None if it failed to load), where it comes from, status."""

    name: str
    spec: S | None
    package: str
    version: str
    status: str = "ok"  # ok | broken | incompatible | duplicate
    error: str = ""

    @property
    def qualified_name(self) -> str:
        return f"{self.package}:{self.name}"

    @property
    def first_party(self) -> bool:
        return self.package == FIRST_PARTY


class Registry(Generic[S]):
    """The entries of one entry-point group, loaded once on first use."""

    def __init__(self, group: str, spec_type: type[S], kind: str) -> None:
        self.group = group
        self.spec_type = spec_type
        self.kind = kind
        self._installed: list[Entry[S]] | None = None
        self._registered: list[Entry[S]] = []

    def entries(self) -> list[Entry[S]]:
        """Every entry, including broken ones; first-party ones first."""
        if self._installed is None:
            self._installed = self._load_installed()
        return self._with_duplicates_marked(self._registered + self._installed)

    def names(self) -> list[str]:
        return sorted({e.name for e in self.entries() if e.status == "ok"})

    def get(self, name: str) -> Entry[S]:
        """The usable entry for `name` or `package:name`; a clear error otherwise."""
        entries = self.entries()
        package, _, short = name.rpartition(":")
        matches = [
            e for e in entries if e.name == short and (e.package == package if package else e.status != "duplicate")
        ]
        if not matches:
            known = {e.name for e in entries} | {e.qualified_name for e in entries if e.status == "duplicate"}
            raise NotFoundError(f"no {self.kind} named '{name}'{did_you_mean(name, known)}")
        entry = matches[0]
        if entry.status not in ("ok", "duplicate"):
            raise IncompatiblePluginError(
                f"{self.kind} '{name}' from package {entry.package} is {entry.status}: {entry.error}"
            )
        return entry

    def register(self, spec: S, package: str = IN_PROCESS, version: str = "") -> Entry[S]:
        """Add a spec in this process (notebooks, tests); replaces an earlier in-process one."""
        if not isinstance(spec, self.spec_type):
            raise TypeError(f"expected a {self.spec_type.__name__}, got {type(spec).__name__}")
        self._registered = [e for e in self._registered if e.name != spec.name]
        entry = Entry(spec.name, spec, package, version, *api_status(spec))
        self._registered.insert(0, entry)
        return entry

    def unregister(self, name: str) -> None:
        self._registered = [e for e in self._registered if e.name != name]

    def reload(self) -> None:
        """Forget what was found, so the next use scans the entry points again."""
        self._installed = None

    def _load_installed(self) -> list[Entry[S]]:
        only_first_party = os.environ.get(DISABLE_ENV, "") not in ("", "0")
        found = []
        for ep in importlib.metadata.entry_points(group=self.group):
            package = ep.dist.name if ep.dist else "?"
            if only_first_party and package != FIRST_PARTY:
                continue
            found.append(self._load_entry_point(ep, package, ep.dist.version if ep.dist else "?"))
        # Deterministic order, first party first, so duplicates resolve the same way each time.
        return sorted(found, key=lambda e: (not e.first_party, e.package, e.name))

    def _load_entry_point(self, ep: importlib.metadata.EntryPoint, package: str, version: str) -> Entry[S]:
        try:
            spec = ep.load()
        except Exception as err:  # a plugin's import may raise anything; report it, go on
            return Entry(ep.name, None, package, version, "broken", one_line(err))
        if not isinstance(spec, self.spec_type):
            reason = f"entry point {ep.value} is a {type(spec).__name__}, not a {self.spec_type.__name__}"
            return Entry(ep.name, None, package, version, "broken", reason)
        if spec.name != ep.name:
            reason = f"entry point '{ep.name}' declares a {self.kind} named '{spec.name}'"
            return Entry(ep.name, None, package, version, "broken", reason)
        return Entry(ep.name, spec, package, version, *api_status(spec))

    @staticmethod
    def _with_duplicates_marked(entries: list[Entry[S]]) -> list[Entry[S]]:
        taken: dict[str, str] = {}
        marked = []
        for e in entries:
            if e.status == "ok" and e.name in taken:
                e = Entry(
                    e.name,
                    e.spec,
                    e.package,
                    e.version,
                    "duplicate",
                    f"name taken by {taken[e.name]}; use '{e.qualified_name}'",
                )
            elif e.status == "ok":
                taken[e.name] = e.package
            marked.append(e)
        return marked


def api_status(spec: Any) -> tuple[str, str]:
    """("ok", "") if `spec` (a FamilySpec or a Family class) supports this zoo's plugin API."""
    versions = getattr(spec, "api_versions", (PLUGIN_API_VERSION,))
    if PLUGIN_API_VERSION in versions:
        return "ok", ""
    wanted = ", ".join(map(str, versions))
    return "incompatible", f"written for plugin API {wanted}; this zoo provides {PLUGIN_API_VERSION}"


def load_object(target: Any, what: str) -> Any:
    """Import "module:attr" (or return a non-string target as is)."""
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split(".") if attr else []:
            obj = getattr(obj, part)
    except Exception as err:
        raise IncompatiblePluginError(f"{what} failed to load ({target}): {one_line(err)}") from err
    return obj


families: Registry[FamilySpec] = Registry("zoo.families", FamilySpec, "family")
datasets: Registry[DatasetSpec] = Registry("zoo.datasets", DatasetSpec, "dataset")
