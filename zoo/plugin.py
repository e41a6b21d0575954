"""What a plugin package declares through its entry points. Imports nothing heavy.

A plugin's entry point names a spec, not its model class, so that `zoo list` can show
every family, its recipes and every dataset without importing torch or the plugin's code;
the class is imported when the family is first used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Version of the contract between the core and family plugins (see zoo.family.Family).
PLUGIN_API_VERSION = 1


@dataclass(frozen=True)
class FamilySpec:
    """A family as a plugin declares it (entry-point group `zoo.families`).

    `model` is "module:Class" (or the class itself for in-process registration);
    `recipes` is the package whose `*.yaml` files are the family's recipes.
    """

    name: str
    model: Any
    summary: str = ""
    recipes: str | None = None
    default_recipe: str = "mnist"
    api_versions: tuple[int, ...] = (PLUGIN_API_VERSION,)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset (entry-point group `zoo.datasets`); `loader` is "module:function" returning
    `zoo.datasets.Splits`, called with the keyword options the dataset accepts."""

    name: str
    loader: Any
    summary: str = ""
    shape: tuple[int, ...] = ()
    num_classes: int = 0
    size: str = ""
