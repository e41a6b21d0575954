"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from zoo.errors import InvalidInputError, StorageError

#: errno values of a write that failed for lack of space: disk full, quota, file-size limit.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path`.
    A write the system refuses (no space, no such folder, no permission, a read-only disk,
    a folder in the way) is a StorageError that names the file."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise StorageError(f"cannot write '{path}': {err.strerror or err}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            # mkstemp makes 0600, and so do writers that replace the file (safetensors does):
            # give the file the usual mode only now
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except Exception as err:
        code = no_space_errno(err)
        kept = "the previous version is unchanged" if path.exists() else "nothing was written"
        if code is not None:
            raise no_space_error(path, code, kept) from None
        if isinstance(err, OSError):
            raise StorageError(f"cannot write '{path}': {err.strerror or err} ({kept})") from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def no_space_errno(err: BaseException) -> int | None:
    """The errno of a write that failed for lack of space, or None for any other error.
    safetensors reports I/O errors as its own exception type with 'os error N' in the text."""
    if isinstance(err, OSError):
        return err.errno if err.errno in NO_SPACE else None
    match = re.search(r"os error (\d+)", str(err))
    return int(match.group(1)) if match and int(match.group(1)) in NO_SPACE else None


def no_space_error(path: Path, code: int, kept: str) -> StorageError:
    return StorageError(
        f"cannot write '{path}': {os.strerror(code)} ({kept}); free some space or raise the file-size limit"
    )


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_output(path: str | os.PathLike, data: bytes) -> Path:
    """`write_bytes` for a file the user named (`refuse_model_file` first); its path."""
    write_bytes(refuse_model_file(path), data)
    return Path(path)


def refuse_model_file(path: str | os.PathLike) -> Path:
    """`path`, unless it is a file of a model or run folder (weights, config, checkpoint,
    log, card, sample grids): a slip of `-o` would break the model. eval.json, which `zoo
    eval` keeps there, may be replaced; a new file may be written there."""
    from zoo.evaluation.report import EVAL_FILE
    from zoo.modelfile import CONFIG_FILE, WEIGHTS_FILE
    from zoo.runfolder import SAMPLES_DIR

    path = Path(path)
    folder = path.parent.parent if path.parent.name == SAMPLES_DIR else path.parent
    if (
        path.name != EVAL_FILE
        and path.exists()
        and (folder / CONFIG_FILE).is_file()
        and (folder / WEIGHTS_FILE).is_file()
    ):
        raise InvalidInputError(f"'{path}' is a file of the model folder '{folder}': write the output elsewhere")
    return path


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_files(directory: Path, files: dict[str, bytes]) -> None:
    """Write `files` (name: bytes) into `directory`, created if needed; each file atomically."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StorageError(f"cannot create '{directory}': {err.strerror or err}") from None
    for name, data in files.items():
        write_bytes(directory / name, data)


def write_with(path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Atomically write `path` with `writer(tmp_path)` (for libraries that take a filename)."""
    with atomic_path(path) as tmp:
        writer(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
