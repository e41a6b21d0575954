import json

import pytest
import torch

import zoo
from tests.conftest import make_plugin_env, run_zoo
from zoo.errors import IncompatiblePluginError, NotFoundError
from zoo.plugin import FamilySpec
from zoo.registry import FIRST_PARTY, families


class Tiny(zoo.Family):
    """A one-parameter family for registry tests."""

    name = "tiny-test"

    def __init__(self, config):
        super().__init__(config)
        self.w = torch.nn.Parameter(torch.zeros(()))

    def loss(self, batch):
        return zoo.LossOutput((batch.x.mean() - self.w) ** 2)


@pytest.fixture
def registered():
    entry = zoo.register(Tiny)
    yield entry
    families.unregister(Tiny.name)


def test_vae_is_found_through_its_entry_point_as_first_party():
    entry = families.get("vae")
    assert entry.package == FIRST_PARTY and entry.status == "ok"
    assert entry.spec.model == "zoo_vae.model:VAE"
    assert zoo.family_class("vae").name == "vae"


def test_in_process_registration_creates_models(registered):
    assert registered.status == "ok" and "tiny-test" in zoo.list_families("tiny*")
    model = zoo.create("tiny-test")
    assert isinstance(model, Tiny) and model.capabilities() == ()


def test_unknown_family_gets_did_you_mean():
    with pytest.raises(NotFoundError, match="no family named 'vea'; did you mean 'vae'"):
        zoo.create("vea")


def test_incompatible_api_version_is_listed_and_refused():
    spec = FamilySpec(name="future-vae", model="nowhere:Nothing", api_versions=(99,))
    entry = zoo.register(spec)
    try:
        assert entry.status == "incompatible" and "plugin API 99" in entry.error
        with pytest.raises(IncompatiblePluginError, match="future-vae.*incompatible: written for plugin API 99"):
            zoo.create("future-vae")
    finally:
        families.unregister("future-vae")


def test_spec_whose_model_cannot_import_fails_on_use_with_its_reason():
    zoo.register(FamilySpec(name="ghost", model="zoo_no_such_module:Ghost"))
    try:
        with pytest.raises(IncompatiblePluginError, match="family 'ghost'.*ModuleNotFoundError"):
            zoo.create("ghost")
    finally:
        families.unregister("ghost")


BROKEN_PLUGIN = """
raise ImportError("this plugin is broken on purpose")
"""

DUPLICATE_PLUGIN = """
from zoo.plugin import FamilySpec
family = FamilySpec(name="vae", model="zoo_vae.model:VAE", summary="another vae")
"""


def test_broken_and_duplicate_plugins_are_reported_while_vae_works(tmp_path):
    env = make_plugin_env(
        tmp_path / "broken", "zoo-broken", BROKEN_PLUGIN, "[zoo.families]\nbroken = zoo_broken:family\n"
    )
    dup = make_plugin_env(tmp_path / "dup", "zoo-dup", DUPLICATE_PLUGIN, "[zoo.families]\nvae = zoo_dup:family\n")
    env["PYTHONPATH"] = f"{dup['PYTHONPATH'].split(':')[0]}:{env['PYTHONPATH']}"
    result = run_zoo("list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    listed = {(f["name"], f["package"]): f for f in json.loads(result.stdout)["families"]}
    broken = listed[("broken", "zoo-broken")]
    assert broken["status"] == "broken"
    assert broken["error"] == "ImportError: this plugin is broken on purpose"
    assert listed[("vae", "zoo")]["status"] == "ok"
    assert listed[("vae", "zoo-dup")]["status"] == "duplicate"
    assert "zoo-dup:vae" in listed[("vae", "zoo-dup")]["error"]

    table = run_zoo("list", env={**env, "COLUMNS": "200"})
    assert table.returncode == 0 and "broken" in table.stdout and "this plugin is broken" in table.stdout

    train = run_zoo(
        "train",
        "vae",
        "--quiet",
        "--out",
        str(tmp_path / "runs"),
        "--set",
        "data=digits",
        "--set",
        "train.epochs=1",
        "--set",
        "model.channels=[8]",
        "--set",
        "model.hidden_dim=16",
        env=env,
    )
    assert train.returncode == 0, train.stderr
    assert len(list((tmp_path / "runs").glob("vae-digits-*/model.safetensors"))) == 1

    use = run_zoo("info", "broken", env=env)
    assert use.returncode == 2
    assert "broken" in use.stderr and "Traceback" not in use.stderr

    disabled = run_zoo("list", "--json", env={**env, "ZOO_DISABLE_PLUGINS": "1"})
    assert {f["package"] for f in json.loads(disabled.stdout)["families"]} == {"zoo"}
