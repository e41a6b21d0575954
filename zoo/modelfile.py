"""Model folders: config.json + model.safetensors + README.md. Loading never unpickles.

config.json holds the family, the package (and version) that provides it, and the full
config; with the family's plugin installed that is all it takes to rebuild the model.
"""

from __future__ import annotations

import json
import os
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_bytes

from zoo import __version__, atomic
from zoo.errors import CorruptFileError, InvalidInputError, NotFoundError, ZooError, did_you_mean, first_line
from zoo.factory import entry_of, family_class
from zoo.family import Family
from zoo.plugin import PLUGIN_API_VERSION
from zoo.registry import DISABLE_ENV, FIRST_PARTY, families

FORMAT = "zoo-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"


def model_metadata(model: Family) -> dict[str, Any]:
    """What config.json says about `model`."""
    entry = entry_of(type(model))
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "family": entry.name if entry.status == "ok" else entry.qualified_name,
        "package": entry.package,
        "package_version": entry.version or _installed_version(entry.package),
        "plugin_api": PLUGIN_API_VERSION,
        "zoo_version": __version__,
        "config": model.config_dict(),
    }


def save(model: Family, directory: str | os.PathLike, card: str | None = None, **extra: Any) -> Path:
    """Write `model` as a model folder (created if needed); each file atomically.
    `extra` keys (e.g. data, metrics) are added to config.json."""
    directory = Path(directory)
    atomic.write_files(directory, model_files(model, card, **extra))
    return directory


def model_files(model: Family, card: str | None = None, **extra: Any) -> dict[str, bytes]:
    """The files of `model`'s folder by name, as they are now (see `save`); the trainer
    makes them on its thread and writes them on its background writer."""
    meta = {**model_metadata(model), **extra}
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    other = sorted({str(v.dtype) for v in state.values() if v.is_floating_point() and v.dtype != torch.float32})
    if other:  # zoo.load builds the model in float32 and takes the weights as they are
        raise InvalidInputError(
            f"a model file holds float32 weights; this {model.name}'s are {', '.join(other)} (save model.float())"
        )
    tags = {"format": "pt", "zoo_family": model.name, "zoo_format": str(FORMAT_VERSION)}
    files = {WEIGHTS_FILE: save_bytes(state, metadata=tags), CONFIG_FILE: (json.dumps(meta, indent=2) + "\n").encode()}
    if card is not None:
        files[CARD_FILE] = card.encode()
    return files


def read_metadata(directory: str | os.PathLike) -> dict[str, Any]:
    """config.json of a model folder, checked for the fields loading needs."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise NotFoundError(f"'{directory}' is not a model folder: it has no {CONFIG_FILE}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptFileError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(meta, dict):
        raise CorruptFileError(f"{path} must hold a JSON object")
    if not isinstance(meta.get("family"), str) or not isinstance(meta.get("config"), dict):
        raise CorruptFileError(f"{path} lacks a 'family' name and a 'config' object")
    version = meta.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CorruptFileError(f"{path}: format_version must be an integer, got {json.dumps(version)}")
    if version > FORMAT_VERSION:
        raise InvalidInputError(
            f"{path} is format version {version}; this zoo reads up to {FORMAT_VERSION}: upgrade zoo"
        )
    if not isinstance(meta.get("data", ""), (str, type(None))):
        raise CorruptFileError(f"{path}: 'data' must be a dataset name (a string), got {json.dumps(meta['data'])}")
    return meta


def load(
    source: str | os.PathLike,
    device: str | torch.device = "cpu",
    revision: str | None = None,
    settings: dict[str, Any] | None = None,
) -> Family:
    """A model, in eval mode, from a run folder, a model folder, a Hub repo id (`user/name`,
    `hf-hub:user/name[@revision]`) or a catalogue short name; Hub models go through the cache.
    `settings` replace values of the saved config that the family lists in its `settings`:
    how it samples (`{"top_k": 5}` for a vqvae), never what it learned."""
    return load_located(source, device, revision, settings)[0]


def load_located(
    source: str | os.PathLike,
    device: str | torch.device = "cpu",
    revision: str | None = None,
    settings: dict[str, Any] | None = None,
) -> tuple[Family, Path]:
    """`load`, and the local folder the model was read from (for a Hub model, the cache's)."""
    from zoo.devices import resolve_device
    from zoo.hub import locate, named_by_reference
    from zoo.names import is_repo_id, parse_model_ref

    device = resolve_device(device)  # refused before anything is downloaded
    ref = parse_model_ref(source, revision)
    directory = locate(ref)
    if not directory.is_dir():
        hub = f" (for the Hub repo: hf-hub:{source})" if is_repo_id(str(source).partition("@")[0]) else ""
        raise NotFoundError(f"no model folder at '{source}'{hub}")
    with named_by_reference(ref, directory):
        meta = read_metadata(directory)
        cls = _installed_family(meta)
        try:
            config = cls.build_config(meta["config"])
        except ZooError as err:
            raise InvalidInputError(f"{directory / CONFIG_FILE}: {err}{_version_hint(meta)}") from None
        model = cls(config)
        load_weights(model, directory / WEIGHTS_FILE)
    if settings:
        model = _with_settings(model, settings)
    return model.to(device).eval(), directory


def _with_settings(model: Family, settings: dict[str, Any]) -> Family:
    """`model` rebuilt with `settings` in its config and its weights; refused unless the
    family lists every one of them in its `settings`."""
    allowed = type(model).settings
    for key in settings:
        if key not in allowed:
            which = f"its settings: {', '.join(allowed)}" if allowed else "it has none"
            raise InvalidInputError(
                f"model.{key} would change what this trained {model.name} computes, not how it samples ({which})"
            )
    changed = type(model).from_config({**model.config_dict(), **settings})
    changed.load_state_dict(model.state_dict())
    return changed


def _installed_family(meta: dict[str, Any]) -> type[Family]:
    """The class of the family config.json names, from the package it names (a model never
    loads into another package's family of the same name); if none is installed, say which
    package to install."""
    name, package = meta["family"], meta.get("package")
    short = name.rpartition(":")[2]
    usable = [e for e in families.entries() if e.name == short and e.status in ("ok", "duplicate")]
    named = isinstance(package, str) and package and not package.startswith("<")  # not registered in-process
    own = [e for e in usable if _canonical(e.package) == _canonical(package)] if named else usable
    if own:
        return family_class(own[0].qualified_name)
    if os.environ.get(DISABLE_ENV, "") not in ("", "0") and package != FIRST_PARTY:
        advice = f"{DISABLE_ENV} is set, which leaves every plugin out"
    elif usable:
        others = ", ".join(sorted({e.package for e in usable}))
        advice = f"it is {package}'s '{short}', not the one from {others}: pip install {package}"
    elif package == FIRST_PARTY:
        advice = f"it was saved by zoo {meta.get('zoo_version', '?')}; this zoo is {__version__}"
    elif named:
        advice = f"install its plugin: pip install {package}"
    else:
        advice = "install the plugin package that provides it"
    installed = did_you_mean(short, families.names()) if not usable else ""
    raise NotFoundError(f"no family named '{name}'{installed} (this model needs it: {advice})")


def _canonical(package: str) -> str:
    """A distribution name as packaging compares them (PEP 503): Zoo_Ring.VAE is zoo-ring-vae."""
    return re.sub(r"[-_.]+", "-", package).lower()


def load_weights(model: Family, path: Path) -> None:
    """Load safetensors weights into `model`, refusing anything that does not fit exactly."""
    if not path.is_file():
        raise NotFoundError(f"missing weights file {path}")
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CorruptFileError(f"{path} is not a readable safetensors file: {first_line(err)}") from None
    expected = model.state_dict()
    unexpected = sorted(tensors.keys() - expected.keys())
    missing = sorted(k for k in expected.keys() - tensors.keys() if not _aliased(k, expected, tensors))
    if unexpected or missing:
        parts = [
            f"missing {', '.join(missing[:3])}" if missing else "",
            f"unexpected {', '.join(unexpected[:3])}" if unexpected else "",
        ]
        raise CorruptFileError(f"{path} does not fit this model: {'; '.join(p for p in parts if p)}")
    for key, tensor in tensors.items():
        want = expected[key]
        if tensor.shape != want.shape or tensor.dtype != want.dtype:
            raise CorruptFileError(
                f"{path}: tensor '{key}' is {tensor.dtype} {list(tensor.shape)}, "
                f"the model needs {want.dtype} {list(want.shape)}"
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CorruptFileError(f"{path}: tensor '{key}' holds NaN or infinite values")
    model.load_state_dict(tensors, strict=False)


def _aliased(key: str, expected: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> bool:
    """Whether `key` shares storage with a tensor that the file holds (tied weights)."""
    ptr = expected[key].data_ptr()
    return any(expected[k].data_ptr() == ptr for k in present if k in expected)


def _version_hint(meta: dict[str, Any]) -> str:
    package, saved = meta.get("package"), meta.get("package_version")
    installed = _installed_version(package) if isinstance(package, str) else None
    if saved and installed and saved != installed:
        return f" (saved by {package} {saved}; installed {installed})"
    return ""


def _installed_version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return ""
