"""zoo's error types: what a user can act on. The CLI prints their message as one line, exit 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ZooError(Exception):
    """Base of every error zoo raises on purpose; anything else is a bug."""


class NotFoundError(ZooError):
    """A family, dataset, recipe, model or file that does not exist."""


class InvalidInputError(ZooError):
    """A config, recipe, override, argument or data that zoo cannot use."""


class IncompatiblePluginError(ZooError):
    """A plugin built for another plugin API version, or one that failed to load."""


class UnsupportedError(ZooError, NotImplementedError):
    """A use a family does not have (a GAN cannot encode); `Family.capabilities()` lists those it has."""


class CorruptFileError(ZooError):
    """A weights, config or checkpoint file that cannot be read safely."""


class HubError(ZooError):
    """A transfer to or from the Hugging Face Hub that failed."""


class StorageError(ZooError):
    """A file that could not be written for lack of space: a full disk, a quota, a file-size limit."""


class TrainingError(ZooError):
    """Training that cannot go on: a non-finite loss, a run that cannot be resumed."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' suffix for the closest choice, or the available ones."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if close:
        return f"; did you mean '{close[0]}'?"
    if choices:
        return f"; available: {', '.join(choices)}"
    return ""


def first_line(err: BaseException) -> str:
    """The first line of another library's error message, or its type's name when it has none."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def one_line(err: BaseException) -> str:
    """'Type: first line' of an error (its type alone when its message is empty)."""
    return f"{type(err).__name__}: {first_line(err)}" if str(err).strip() else type(err).__name__
