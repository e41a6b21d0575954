import random

import numpy as np
import pytest
import torch

from zoo.checkpoint import load_checkpoint, pack, save_checkpoint, unpack
from zoo.errors import CorruptFileError


def test_nested_state_round_trips_with_key_types_tuples_and_arrays(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), betas=(0.5, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = {
        "optimizer": optimizer.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        "plain": {"a": [1, 2.5, None, True, "x"], 3: (1, 2)},
    }
    save_checkpoint(tmp_path / "c.safetensors", state)
    back = load_checkpoint(tmp_path / "c.safetensors")
    assert back["plain"] == state["plain"]
    assert back["rng"]["python"] == state["rng"]["python"]
    assert torch.equal(back["rng"]["torch"], state["rng"]["torch"])
    np_state = back["rng"]["numpy"]
    assert np_state[0] == "MT19937" and np.array_equal(np_state[1], state["rng"]["numpy"][1])
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.5, 0.9)
    assert set(back["optimizer"]["state"]) == {0, 1}
    other = torch.optim.Adam(model.parameters())
    other.load_state_dict(back["optimizer"])
    assert torch.equal(other.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_pack_refuses_objects_that_would_need_pickling():
    with pytest.raises(TypeError, match="cannot checkpoint a object"):
        pack({"x": object()})


def test_unpack_inverts_pack():
    tree = {"t": torch.arange(3), "l": [(1, {"k": 2})]}
    skeleton, tensors = pack(tree)
    back = unpack(skeleton, tensors)
    assert torch.equal(back["t"], tree["t"]) and back["l"] == tree["l"]


@pytest.mark.parametrize(
    "content", [b"", b"\x00" * 7, b"not a checkpoint at all", b"\x10\x00\x00\x00\x00\x00\x00\x00{}"]
)
def test_unreadable_checkpoint_is_a_corrupt_file_error(tmp_path, content):
    path = tmp_path / "c.safetensors"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError):
        load_checkpoint(path)
