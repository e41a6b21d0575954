from dataclasses import dataclass, field
from typing import Literal

import pytest

from zoo.config import check, from_dict, to_dict
from zoo.errors import InvalidInputError


@dataclass
class Inner:
    rate: float = 0.1
    names: list[str] = field(default_factory=list)


@dataclass
class Outer:
    size: int = 3
    shape: tuple[int, ...] = (1, 2)
    pair: tuple[float, float] | None = None
    mode: Literal["a", "b"] = "a"
    inner: Inner = field(default_factory=Inner)
    table: dict[str, Inner] = field(default_factory=dict)

    def __post_init__(self):
        check(self.size > 0, f"size must be > 0, got {self.size}")


def test_round_trip_through_plain_data_rebuilds_equal_config():
    config = from_dict(
        Outer,
        {
            "size": 5,
            "shape": [3, 4, 5],
            "pair": [0.5, 0.9],
            "mode": "b",
            "inner": {"rate": 1, "names": ["x"]},
            "table": {"k": {"rate": 2.5}},
        },
    )
    assert config.shape == (3, 4, 5) and config.pair == (0.5, 0.9)
    assert isinstance(config.inner.rate, float) and config.table["k"].rate == 2.5
    assert from_dict(Outer, to_dict(config)) == config
    assert to_dict(config)["shape"] == [3, 4, 5]


def test_defaults_fill_missing_keys():
    assert from_dict(Outer, {}) == Outer()
    assert from_dict(Outer, None) == Outer()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sise": 3}, "unknown key 'config.sise'; did you mean 'size'?"),
        ({"inner": {"rte": 1.0}}, "unknown key 'config.inner.rte'; did you mean 'rate'?"),
        ({"size": "3"}, "config.size must be an integer"),
        ({"size": True}, "config.size must be an integer"),
        ({"size": 2.5}, "config.size must be an integer"),
        ({"inner": {"rate": "fast"}}, "config.inner.rate must be a number"),
        ({"shape": 3}, "config.shape must be a list"),
        ({"pair": [1.0]}, "config.pair must have 2 items"),
        ({"mode": "c"}, "config.mode must be one of 'a', 'b'"),
        ({"size": 0}, "size must be > 0, got 0"),
        ({"table": [1]}, "config.table must be a mapping"),
    ],
)
def test_bad_values_are_refused_with_the_key_path(data, message):
    with pytest.raises(InvalidInputError) as err:
        from_dict(Outer, data)
    assert message in str(err.value)


def test_non_mapping_is_refused():
    with pytest.raises(InvalidInputError, match="config must be a mapping, got list"):
        from_dict(Outer, [1, 2])


def test_required_keys_that_are_missing_are_named():
    """Not Python's 'Recipe.__init__() missing 1 required positional argument'."""
    from zoo.catalogue import CatalogueModel

    with pytest.raises(InvalidInputError, match=r"^catalogue entry lacks 'repo', 'revision', 'sha256'$"):
        from_dict(CatalogueModel, {"family": "vae"}, where="catalogue entry")
