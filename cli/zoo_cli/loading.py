"""What the commands that use a trained model share: loading it from any reference, checking
what it can do, and the dataset it is used on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from zoo.config import MAX_SEED

#: The --seed of every command: a recipe's range.
SEED = click.IntRange(0, MAX_SEED)


def load_model(model: str, device: str, revision: str | None, settings: tuple[str, ...] = ()) -> tuple[Any, Path]:
    """The model and its folder, for any reference: run or model folder, Hub id, catalogue
    name; `settings` are `model.KEY=VALUE` items that replace values of its config."""
    from zoo.errors import InvalidInputError
    from zoo.modelfile import load_located
    from zoo.recipes import apply_override

    values: dict[str, Any] = {}
    for item in settings:
        apply_override(values, item)
    if values.keys() - {"model"}:
        raise InvalidInputError(f"--set takes model settings (model.KEY=VALUE), got '{', '.join(settings)}'")
    if not isinstance(values.get("model", {}), dict):
        raise InvalidInputError("--set model=...: 'model' is a section of settings, not a value; use model.KEY=VALUE")
    return load_located(model, device, revision, values.get("model"))


def require(model: Any, capability: str) -> None:
    """Refuse, in one line, a use the model's family does not implement."""
    from zoo.errors import InvalidInputError

    if capability not in model.capabilities():
        raise InvalidInputError(
            f"family '{model.name}' cannot {capability} (it can: {', '.join(model.capabilities())})"
        )


def require_images(model: Any, command: str) -> None:
    """Refuse, in one line, a picture-making command for a model of vectors or 1-D signals."""
    from zoo.errors import InvalidInputError

    shape = list(model.config.input_shape)
    if len(shape) != 3:
        raise InvalidInputError(f"zoo {command} draws images; this {model.name} takes inputs of shape {shape}")


def model_data(model: Any, folder: Path, data: str | None) -> Any:
    """The splits of `data`, or of the dataset the model was trained on, checked against the
    model's input shape (and for labels, when the family is conditional)."""
    from zoo.datasets.splits import load_dataset
    from zoo.errors import InvalidInputError
    from zoo.modelfile import read_metadata

    name = data or read_metadata(folder).get("data") or "mnist-5k"
    splits = load_dataset(name)
    if tuple(splits.shape) != tuple(model.config.input_shape):
        raise InvalidInputError(
            f"data '{name}' has shape {list(splits.shape)} but the model takes {list(model.config.input_shape)}"
        )
    if model.conditional and splits.test.y is None:
        raise InvalidInputError(f"family '{model.name}' is conditional but data '{name}' has no labels")
    return splits
