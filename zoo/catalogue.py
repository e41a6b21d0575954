"""The curated catalogue (registry.yaml): short names of published models and known
plugin packages. `ZOO_CATALOGUE=path` points zoo at another file (tests, mirrors)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from zoo.config import check, from_dict
from zoo.errors import InvalidInputError, NotFoundError

CATALOGUE_ENV = "ZOO_CATALOGUE"


@dataclass
class CatalogueModel:
    repo: str
    revision: str
    sha256: str
    family: str
    dataset: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(
            is_commit_sha(self.revision),
            f"revision must be a 40-hex commit sha, got '{self.revision}'",
        )
        check(len(self.sha256) == 64 and _is_hex(self.sha256), f"sha256 must be 64 hex digits, got '{self.sha256}'")


@dataclass
class CataloguePlugin:
    families: list[str] = field(default_factory=list)
    summary: str = ""


@dataclass
class Catalogue:
    models: dict[str, CatalogueModel] = field(default_factory=dict)
    plugins: dict[str, CataloguePlugin] = field(default_factory=dict)


def catalogue_path() -> Path:
    override = os.environ.get(CATALOGUE_ENV)
    if override:
        return Path(override)
    return Path(str(resources.files("zoo") / "registry.yaml"))


def load_catalogue(path: str | os.PathLike | None = None) -> Catalogue:
    path = Path(path) if path else catalogue_path()
    if not path.is_file():
        raise NotFoundError(f"no catalogue file at {path}")
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"catalogue {path} is not valid YAML: {err}") from None
    try:
        return from_dict(Catalogue, data)
    except InvalidInputError as err:
        raise InvalidInputError(f"catalogue {path}: {err}") from None


def is_commit_sha(text: str | None) -> bool:
    """Whether `text` is a full 40-hex commit sha (what a catalogue pins, and what never moves)."""
    return text is not None and len(text) == 40 and _is_hex(text)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text.lower())
