"""Data references: how a recipe's `data:`, `--data` and a model's config.json name a dataset.

    mnist-5k                      a registered name (or package:name)
    dsprites?n=2000&seed=1        … with loader options (values read as YAML: 2000, true, 0.1)
    folder:PATH                   an image folder (class subfolders optional)
    hf:REPO                       a Hugging Face dataset (needs the `datasets` package)
    npy:PATH, npz:PATH, csv:PATH  numeric arrays: vectors (N, D), 1-D signals (N, C, L), images

Schemes (`folder:`, `hf:`, `npy:`, `npz:`, `csv:`) are recognised before the registry is asked, so a registered
`package:name` never shadows them. Options are checked against the loader's keyword
arguments before anything is loaded, with the closest valid name for a typo, and the values
of the options many loaders share (seed, test_fraction, standardize, download) are checked
here once. `canonical_data_ref` makes a file-backed target absolute before a reference is stored.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
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

#: Schemes whose target is a path on disk (hf: too, when its target is a local folder).
FILE_SCHEMES = ("folder", "npy", "npz", "csv")


def _is_seed(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_fraction(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1


#: Options that several loaders take: what each must be, as a test and as words.
SHARED_OPTIONS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (_is_seed, "a whole number ≥ 0"),
    "test_fraction": (_is_fraction, "in (0, 1)"),
    "standardize": (lambda v: isinstance(v, bool), "true or false"),
    "download": (lambda v: isinstance(v, bool), "true or false"),
    "root": (lambda v: isinstance(v, str) and v != "", "a folder's path"),
}


@dataclass(frozen=True)
class DataRef:
    """A parsed data reference: a registry name or a scheme with its target, and options."""

    name: str
    scheme: str | None = None
    target: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def parse_data_ref(text: str) -> DataRef:
    """The parts of a data reference; option values are read as YAML."""
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


def canonical_data_ref(text: str) -> str:
    """The reference with a file-backed target made absolute (folder:, npy:, npz:, csv:, and
    hf: naming a local folder), so that a recipe or config.json that stores it loads the same
    data from any working directory."""
    ref = parse_data_ref(text)
    if ref.scheme is None:
        return text
    path = Path(ref.target).expanduser()
    if ref.scheme not in FILE_SCHEMES and not path.exists():
        return text  # an hf: repository id
    _, sep, query = text.partition("?")
    return f"{ref.scheme}:{path.absolute()}{sep}{query}"


def check_option_values(options: dict[str, Any]) -> None:
    """Refuse a shared option (seed, test_fraction, …) of the wrong type or range in one line."""
    for key, value in options.items():
        if key in SHARED_OPTIONS and not SHARED_OPTIONS[key][0](value):
            raise InvalidInputError(f"data option {key} must be {SHARED_OPTIONS[key][1]}, got {value!r}")


def resolve_loader(ref: DataRef, extra: dict[str, Any] | None = None) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The loader a parsed data reference names, with its target bound, and the options to call it
    with (the reference's, then `extra`); unknown options and bad values of shared ones are
    refused here, before anything is loaded."""
    options = {**ref.options, **(extra or {})}
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
    for key in options:
        if key not in accepted:
            takes = f" (it takes: {', '.join(accepted)})" if accepted else " (it takes none)"
            raise InvalidInputError(f"{what} has no option '{key}'{did_you_mean(key, accepted) or takes}")
    check_option_values(options)
    return loader, options
