"""`zoo plugin new`: write a complete, installable plugin package for a new family.

The package is rendered from the files under `template/` (package data): `.tmpl` files are
filled in with `string.Template` ($family, $package, $module, $cls, $api, $zoo_version),
and a `__module__` folder takes the package's import name. Imports nothing heavy.
"""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from zoo import __version__, atomic
from zoo.errors import InvalidInputError
from zoo.plugin import PLUGIN_API_VERSION
from zoo.registry import families

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

#: Lower-case words of letters and digits joined by single hyphens, starting with a letter.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
TEMPLATE_SUFFIX = ".tmpl"
MODULE_FOLDER = "__module__"


@dataclass(frozen=True)
class PluginNames:
    """The names a family plugin goes by: `ring-vae` → zoo-ring-vae, zoo_ring_vae, RingVae."""

    family: str
    package: str
    module: str
    cls: str

    @classmethod
    def for_family(cls, family: str) -> PluginNames:
        if not NAME_PATTERN.fullmatch(family):
            raise InvalidInputError(
                f"'{family}' is not a valid family name: use lower-case letters, digits and single hyphens, "
                "starting with a letter (e.g. ring-vae)"
            )
        words = family.split("-")
        return cls(family, f"zoo-{family}", "zoo_" + "_".join(words), "".join(w.capitalize() for w in words))


def new_plugin(family: str, directory: str | os.PathLike | None = None) -> tuple[PluginNames, Path, list[Path]]:
    """Write the package for `family` into `directory` (default ./zoo-FAMILY), which must not
    exist or be empty; returns the names used, the folder and the files written."""
    names = PluginNames.for_family(family)
    taken = [e for e in families.entries() if e.name == family]
    if taken:
        raise InvalidInputError(
            f"a family named '{family}' is already installed (from package {taken[0].package}); choose another name"
        )
    target = Path(directory) if directory is not None else Path(names.package)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInputError(f"'{target}' already exists and is not an empty folder; choose another --dir")
    values = {
        "family": names.family,
        "package": names.package,
        "module": names.module,
        "cls": names.cls,
        "api": str(PLUGIN_API_VERSION),
        "zoo_version": __version__,
    }
    written = []
    for relative, template in _templates(resources.files(__name__) / "template", Path()):
        path = target / Path(*(names.module if part == MODULE_FOLDER else part for part in relative.parts))
        text = string.Template(template.read_text(encoding="utf-8")).substitute(values)
        atomic.write_files(path.parent, {path.name: text.encode("utf-8")})
        written.append(path)
    return names, target, written


def _templates(folder: Traversable, relative: Path) -> list[tuple[Path, Traversable]]:
    """(path in the package without .tmpl, template) for every template file, sorted."""
    found = []
    for item in sorted(folder.iterdir(), key=lambda t: t.name):
        if item.is_dir():
            found += _templates(item, relative / item.name)
        elif item.name.endswith(TEMPLATE_SUFFIX):
            found.append((relative / item.name[: -len(TEMPLATE_SUFFIX)], item))
    return found
