"""A run folder: a model folder (config.json, model.safetensors, README.md) plus what the
training left: recipe.yaml, metrics.jsonl, samples/, loss.png, checkpoint.safetensors."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from zoo.atomic import NO_SPACE, no_space_error
from zoo.errors import CorruptFileError, InvalidInputError, StorageError

RECIPE_FILE = "recipe.yaml"
METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"
LOSS_PLOT = "loss.png"


def new_run_dir(out: str | os.PathLike, family: str, data: str) -> Path:
    """Create runs/<family>-<data>-<YYYYmmdd-HHMMSS>[-k]; never reuses an existing folder."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InvalidInputError(f"cannot create output folder '{out}': {err.strerror or err}") from None
    scheme, colon, target = data.partition("?")[0].partition(":")
    if colon and Path(target).is_absolute():  # named by its file or folder, not its whole path
        data = f"{scheme}:{Path(target).name}"
    safe_data = "".join(c if c.isalnum() or c in "-_." else "_" for c in data)
    stem = f"{family.replace(':', '_')}-{safe_data}-{time.strftime('%Y%m%d-%H%M%S')}"
    for k in range(1, 1000):
        path = out / (stem if k == 1 else f"{stem}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as err:
            raise InvalidInputError(f"cannot create a run folder in '{out}': {err.strerror or err}") from None
    raise InvalidInputError(f"too many runs named {stem} in '{out}'")


class MetricsLog:
    """metrics.jsonl: one JSON record per line, appended and flushed as training goes.
    Only the writer process (rank 0) appends; on other ranks `append` does nothing."""

    def __init__(self, run_dir: Path, writer: bool = True) -> None:
        self.path = run_dir / METRICS_FILE
        self.writer = writer

    def append(self, record: dict[str, Any]) -> None:
        if not self.writer:
            return
        size = self.size()
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
        except OSError as err:
            if err.errno not in NO_SPACE:
                raise StorageError(f"cannot write '{self.path}': {err.strerror or err}") from None
            self.truncate(size)  # no half line: the log stays readable and resumable
            raise no_space_error(self.path, err.errno, "its earlier records are kept") from None

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def truncate(self, size: int) -> None:
        """Drop records written after a checkpoint, so a resumed log has no duplicates."""
        if self.path.exists() and self.path.stat().st_size > size:
            with open(self.path, "r+b") as f:
                f.truncate(size)

    def rewind(self, size: int) -> None:
        """Go back to where the log ended at a checkpoint (`size` bytes), for a resumed run;
        refused, with the log unchanged, unless it holds whole, readable records up to there."""
        if size > self.size():
            raise CorruptFileError(f"{self.path} is shorter ({self.size()} bytes) than at its checkpoint ({size})")
        if size == 0:  # e.g. killed before the first record
            self.truncate(0)
            return
        with open(self.path, "rb") as f:
            head = f.read(size)
        if not head.endswith(b"\n"):
            raise CorruptFileError(f"{self.path} does not end a record where its checkpoint says ({size} bytes)")
        for _ in _parsed(head.decode("utf-8", errors="replace").splitlines(), self.path):
            pass
        self.truncate(size)

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", errors="replace") as f:
            yield from _parsed(f, self.path)


def _parsed(lines: Iterable[str], path: Path) -> Iterator[dict[str, Any]]:
    """The records of metrics.jsonl lines; an unreadable line is a CorruptFileError naming it."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise CorruptFileError(f"{path}: line {number} is not a JSON record")
        yield record
