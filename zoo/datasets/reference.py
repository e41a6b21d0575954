"""Data references: how a recipe's `data:`, `--data` and a model's config.json name a dataset.

    mnist-5k                      a registered name (or package:name)
    dsprites?n=2000&seed=1        … with loader options (values read as YAML: 2000, true, 0.1)
    folder:PATH                   an image folder (class subfolders optional)
    hf:REPO                       a Hugging Face dataset (needs the `datasets` package)
    npy:PATH, npz:PATH, csv:PATH  numeric arrays: vectors (N, D), 1-D signals (N, C, L), images

Schemes (`folder:`, `hf:`, `npy:`, `npz:`, `csv:`) are recognised before the registry is asked, so a registered
`package:name` never shadows them. Options are checked against the loader's keyword
arguments before anything is loaded, with the closest valid name for a typo.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from zoo.errors import InvalidInputError, did_you_mean
from zoo.registry import datasets, load_object

SCHEMES = {
    "folder": "zoo.datasets.folder:load_folder",
    "hf": "zoo.datasets.hf:load_hf",
    "npy": "zoo.datasets.arrays:load_npy",
    "npz": "zoo.datasets.arrays:load_npz",
    "csv": "zoo.datasets.arrays:load_csv",
}


@dataclass(frozen=True)
class DataRef:
    """A parsed data reference: a registry name or a scheme with its target, and options."""

    name: str
    scheme: str | None = None
    target: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def parse_data_ref(text: str) -> DataRef:
    base, sep, query = text.partition("?")
    if not base:
        raise InvalidInputError(f"data reference '{text}' names no dataset")
    options: dict[str, Any] = {}
    for item in query.split("&") if sep else []:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise InvalidInputError(f"data option '{item}' in '{text}' must look like key=value")
        try:
            options[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            options[key.strip()] = raw
    scheme, colon, rest = base.partition(":")
    if colon and scheme in SCHEMES:
        if not rest:
            example = "REPO" if scheme == "hf" else "PATH"
            raise InvalidInputError(f"'{scheme}:' needs a target, e.g. {scheme}:{example}")
        return DataRef(base, scheme, rest, options)
    return DataRef(base, None, "", options)


def resolve_loader(text: str) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The loader a data reference names, with its target bound, and the options to call it
    with; unknown options are refused here, before anything is loaded."""
    ref = parse_data_ref(text)
    if ref.scheme is not None:
        loader = functools.partial(load_object(SCHEMES[ref.scheme], f"data scheme '{ref.scheme}:'"), ref.target)
        what = f"'{ref.scheme}:' data"
    else:
        entry = datasets.get(ref.name)
        loader = load_object(entry.spec.loader, f"dataset '{ref.name}'")
        what = f"dataset '{ref.name}'"
    accepted = [
        p.name
        for p in inspect.signature(loader).parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    for key in ref.options:
        if key not in accepted:
            takes = f" (it takes: {', '.join(accepted)})" if accepted else " (it takes none)"
            raise InvalidInputError(f"{what} has no option '{key}'{did_you_mean(key, accepted) or takes}")
    return loader, ref.options
