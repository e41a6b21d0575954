"""zoo.atomic: whole files only, with the mode any other new file would get."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from zoo import atomic


def usual_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@pytest.mark.parametrize(
    "write",
    [
        lambda path: atomic.write_text(path, "text"),
        # safetensors writes a new file over the temporary one, with mode 0600
        lambda path: atomic.write_with(path, lambda tmp: save_file({"w": torch.zeros(2)}, str(tmp))),
    ],
    ids=["bytes", "safetensors"],
)
def test_an_atomic_write_leaves_one_file_with_the_usual_mode(tmp_path: Path, write):
    write(tmp_path / "out")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (tmp_path / "out").stat().st_mode & 0o777 == usual_mode()


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path):
    (tmp_path / "out").write_text("old")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError, match="writer failed"):
        atomic.write_with(tmp_path / "out", fail)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (tmp_path / "out").read_text() == "old"
