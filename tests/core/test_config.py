from dataclasses import dataclass, field
from typing import Literal

import pytest

from zoo.config import check, from_dict, to_dict
from zoo.errors import InvalidInputError


@dataclass
class Inner:
    rate: float = 0.1
    names: list[str] = field(default_factory=list)

    def __post_init__(self):
        check(self.rate >= 0, f"rate must be ≥ 0, got {self.rate}")


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
        ({"sise": 3}, "unknown key 'sise'; did you mean 'size'?"),
        ({"inner": {"rte": 1.0}}, "unknown key 'inner.rte'; did you mean 'rate'?"),
        ({"size": "3"}, "size must be an integer"),
        ({"size": True}, "size must be an integer"),
        ({"size": 2.5}, "size must be an integer"),
        ({"inner": {"rate": "fast"}}, "inner.rate must be a number"),
        ({"shape": 3}, "shape must be a list"),
        ({"pair": [1.0]}, "pair must have 2 items"),
        ({"mode": "c"}, "mode must be one of 'a', 'b'"),
        ({"size": 0}, "size must be > 0, got 0"),
        ({"table": [1]}, "table must be a mapping"),
        # a check in __post_init__ names its field; the path in front comes from where it sits
        ({"inner": {"rate": -1}}, "inner.rate must be ≥ 0, got -1.0"),
        ({"table": {"k": {"rate": -1}}}, "table.k.rate must be ≥ 0, got -1.0"),
    ],
)
def test_bad_values_are_refused_with_the_key_path(data, message):
    """Paths are written as a user writes the key (`--set inner.rate=…`), from the root."""
    with pytest.raises(InvalidInputError) as err:
        from_dict(Outer, data)
    assert str(err.value).startswith(message)


def test_a_path_in_front_is_put_before_every_key():
    with pytest.raises(InvalidInputError, match=r"^model\.inner\.rate must be ≥ 0, got -1\.0$"):
        from_dict(Outer, {"inner": {"rate": -1}}, where="model")
    with pytest.raises(InvalidInputError, match=r"^unknown key 'model\.sise'"):
        from_dict(Outer, {"sise": 1}, where="model")


def test_non_mapping_is_refused():
    with pytest.raises(InvalidInputError, match="^Outer must be a mapping, got list$"):
        from_dict(Outer, [1, 2])


def test_required_keys_that_are_missing_are_named():
    """Not Python's 'Recipe.__init__() missing 1 required positional argument'."""
    from zoo.catalogue import CatalogueModel

    with pytest.raises(InvalidInputError, match=r"^catalogue entry lacks 'repo', 'revision', 'sha256'$"):
        from_dict(CatalogueModel, {"family": "vae"}, where="catalogue entry")


def test_a_bad_catalogue_entry_is_named_by_its_file_and_path(tmp_path):
    from zoo.catalogue import load_catalogue

    path = tmp_path / "registry.yaml"
    path.write_text("models:\n  x:\n    repo: a/b\n    revision: abc\n    sha256: '00'\n    family: vae\n")
    with pytest.raises(InvalidInputError) as err:
        load_catalogue(path)
    assert str(err.value) == f"catalogue {path}: models.x.revision must be a 40-hex commit sha, got 'abc'"
