"""Training checkpoints as one safetensors file: tensors in the body, everything else as
JSON in its metadata. One file, written atomically, and read without unpickling.

Nested state (optimiser state dicts, RNG states) is split into a JSON skeleton and a flat
dict of tensors; dict keys keep their types (optimisers key parameters by int), tuples
stay tuples and numpy arrays come back as numpy arrays.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_bytes

from zoo import atomic
from zoo.errors import CorruptFileError, NotFoundError

CHECKPOINT_FILE = "checkpoint.safetensors"
_META_KEY = "zoo_checkpoint"


def pack(tree: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split `tree` into a JSON-ready skeleton and the tensors it refers to by name."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, torch.Tensor):
            name = f"t{len(tensors)}"
            tensors[name] = node.detach().to("cpu").contiguous()
            return {"__tensor__": name}
        if isinstance(node, np.ndarray):
            return {"__ndarray__": walk(torch.from_numpy(np.ascontiguousarray(node)))["__tensor__"]}
        if isinstance(node, dict):
            return {"__dict__": [[walk(k), walk(v)] for k, v in node.items()]}
        if isinstance(node, tuple):
            return {"__tuple__": [walk(v) for v in node]}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, np.generic):
            return node.item()
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise TypeError(f"cannot checkpoint a {type(node).__name__}")

    return walk(tree), tensors


def unpack(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `pack`."""
    if isinstance(skeleton, list):
        return [unpack(v, tensors) for v in skeleton]
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__ndarray__" in skeleton:
            return tensors[skeleton["__ndarray__"]].numpy()
        if "__tuple__" in skeleton:
            return tuple(unpack(v, tensors) for v in skeleton["__tuple__"])
        if "__dict__" in skeleton:
            return {_hashable(unpack(k, tensors)): unpack(v, tensors) for k, v in skeleton["__dict__"]}
    return skeleton


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    atomic.write_bytes(path, checkpoint_bytes(state))


def checkpoint_bytes(state: dict[str, Any]) -> bytes:
    """The checkpoint file of `state` as it is now (the trainer makes it on its thread and
    writes it on its background writer)."""
    skeleton, tensors = pack(state)
    return save_bytes(tensors, metadata={_META_KEY: json.dumps(skeleton)})


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
        skeleton = json.loads(metadata[_META_KEY])
        return unpack(skeleton, tensors)
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as err:
        raise CorruptFileError(f"{path} is not a readable zoo checkpoint: {err}") from None
