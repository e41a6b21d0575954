import json
import os

import pytest
import torch

import zoo
from tests.conftest import assert_one_line_error, make_plugin_env, run_zoo
from zoo.errors import IncompatiblePluginError, InvalidInputError, NotFoundError
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


def test_keywords_over_a_config_object_are_checked_like_plain_data():
    config = zoo.create("vae", latent_dim=3).config
    assert zoo.create("vae", config, latent_dim=5).config.latent_dim == 5
    with pytest.raises(InvalidInputError, match="unknown key 'model.latnt_dim'; did you mean 'latent_dim'"):
        zoo.create("vae", config, latnt_dim=4)  # was a bare TypeError from dataclasses.replace
    with pytest.raises(InvalidInputError, match="model.latent_dim must be ≥ 1"):
        zoo.create("vae", config, latent_dim=0)


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

FUTURE_PLUGIN = """
from zoo.plugin import FamilySpec
family = FamilySpec(name="future", model="zoo_future_model:Future", summary="from the future", api_versions=(99,))
"""

RAISING_PLUGIN = """
from zoo.plugin import FamilySpec
family = FamilySpec(name="raising", model="zoo_raising:Model", recipes=1 / 0)
"""

HALF_BROKEN_PLUGIN = """
from zoo.plugin import FamilySpec
family = FamilySpec(name="half", model="zoo_half_model:Half", summary="its model module fails to import")
"""

OLD_CLASS_PLUGIN = """
from zoo.plugin import FamilySpec
family = FamilySpec(name="oldclass", model="zoo_oldclass_model:OldClass", summary="spec says 1, class says 99")
"""

OLD_CLASS_MODEL = """
import zoo
class OldClass(zoo.Family):
    name = "oldclass"
    api_versions = (99,)
"""

BAD_DATASET_PLUGIN = """
from zoo.plugin import DatasetSpec
data = DatasetSpec(name="lost-data", loader="zoo_lost_loader:load", summary="its loader module is missing")
"""

PLUGINS = [
    ("zoo-broken", BROKEN_PLUGIN, "[zoo.families]\nbroken = zoo_broken:family\n", {}),
    ("zoo-dup", DUPLICATE_PLUGIN, "[zoo.families]\nvae = zoo_dup:family\n", {}),
    ("zoo-future", FUTURE_PLUGIN, "[zoo.families]\nfuture = zoo_future:family\n", {}),
    ("zoo-raising", RAISING_PLUGIN, "[zoo.families]\nraising = zoo_raising:family\n", {}),
    (
        "zoo-half",
        HALF_BROKEN_PLUGIN,
        "[zoo.families]\nhalf = zoo_half:family\n",
        {"zoo_half_model": "raise OSError('no GPU driver')"},
    ),
    (
        "zoo-oldclass",
        OLD_CLASS_PLUGIN,
        "[zoo.families]\noldclass = zoo_oldclass:family\n",
        {"zoo_oldclass_model": OLD_CLASS_MODEL},
    ),
    ("zoo-lost", BAD_DATASET_PLUGIN, "[zoo.datasets]\nlost-data = zoo_lost:data\n", {}),
]


def test_broken_incompatible_and_duplicate_plugins_are_reported_while_vae_works(tmp_path):
    paths = []
    for name, source, entry_points, extra in PLUGINS:
        env = make_plugin_env(tmp_path / name, name, source, entry_points, extra_modules=extra)
        paths.append(env["PYTHONPATH"].split(os.pathsep)[0])
    env = {"PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    result = run_zoo("list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    listed = {(f["name"], f["package"]): f for f in json.loads(result.stdout)["families"]}
    broken = listed[("broken", "zoo-broken")]
    assert broken["status"] == "broken"
    assert broken["error"] == "ImportError: this plugin is broken on purpose"
    assert listed[("vae", "zoo")]["status"] == "ok"
    assert listed[("vae", "zoo-dup")]["status"] == "duplicate"
    assert "zoo-dup:vae" in listed[("vae", "zoo-dup")]["error"]
    future = listed[("future", "zoo-future")]
    assert future["status"] == "incompatible" and future["error"] == ("written for plugin API 99; this zoo provides 1")
    assert listed[("raising", "zoo-raising")]["status"] == "broken"
    assert listed[("raising", "zoo-raising")]["error"] == "ZeroDivisionError: division by zero"
    # zoo list reads specs only: these two fail when their model class is imported
    assert listed[("half", "zoo-half")]["status"] == "ok" and listed[("oldclass", "zoo-oldclass")]["status"] == "ok"
    lost = next(d for d in json.loads(result.stdout)["datasets"] if d["name"] == "lost-data")
    assert lost["status"] == "ok" and lost["package"] == "zoo-lost"

    table = run_zoo("list", env={**env, "COLUMNS": "200"})
    assert table.returncode == 0 and "broken" in table.stdout and "this plugin is broken" in table.stdout

    check = run_zoo("plugin", "check", "--json", env=env)
    assert check.returncode == 1, check.stderr
    statuses = {(s["kind"], s["name"], s["package"]): (s["status"], s["error"]) for s in json.loads(check.stdout)}
    assert statuses[("family", "vae", "zoo")] == ("ok", "")
    assert statuses[("family", "broken", "zoo-broken")][0] == "broken"
    assert statuses[("family", "vae", "zoo-dup")][0] == "duplicate"
    assert statuses[("family", "future", "zoo-future")][0] == "incompatible"
    assert statuses[("family", "raising", "zoo-raising")][0] == "broken"
    assert statuses[("family", "half", "zoo-half")] == (
        "broken",
        "family 'half' failed to load (zoo_half_model:Half): OSError: no GPU driver",
    )
    assert statuses[("family", "oldclass", "zoo-oldclass")] == (
        "incompatible",
        "family 'oldclass' from package zoo-oldclass: class OldClass was written for plugin API 99; "
        "this zoo provides 1",
    )
    assert statuses[("dataset", "lost-data", "zoo-lost")][0] == "broken"
    assert statuses[("dataset", "mnist-5k", "zoo")] == ("ok", "")
    assert sum(status != "ok" for status, _ in statuses.values()) == 7 and "Traceback" not in check.stderr

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

    for family, words in [("broken", ["broken"]), ("future", ["incompatible", "plugin API 99"]), ("half", ["OSError"])]:
        use = run_zoo("info", family, env=env)
        assert use.returncode == 2
        assert_one_line_error(use.stderr, *words)

    disabled = run_zoo("list", "--json", env={**env, "ZOO_DISABLE_PLUGINS": "1"})
    assert {f["package"] for f in json.loads(disabled.stdout)["families"]} == {"zoo"}


def test_a_model_loads_into_the_family_of_the_package_that_saved_it(tmp_path):
    """A model of zoo's vae never loads into another package's 'vae', and one saved while
    another package held the short name (config.json: 'zoo:vae') loads too."""
    from zoo_vae.model import VAE

    class OtherVAE(VAE):
        pass

    model = zoo.create("vae", input_shape=(1, 8, 8), latent_dim=3, channels=(4,), hidden_dim=8)
    first = zoo.save(model, tmp_path / "first")
    families.register(FamilySpec(name="vae", model=OtherVAE), package="zoo-other")
    try:
        assert families.get("vae").package == "zoo-other"
        assert type(zoo.load(first)) is VAE
        qualified = zoo.save(model, tmp_path / "qualified")
        meta = json.loads((qualified / "config.json").read_text())
        assert (meta["family"], meta["package"]) == ("zoo:vae", "zoo")
        assert type(zoo.load(qualified)) is VAE
        meta["package"] = "zoo-gone"
        (qualified / "config.json").write_text(json.dumps(meta))
        with pytest.raises(NotFoundError) as err:
            zoo.load(qualified)
        assert str(err.value) == (
            "no family named 'zoo:vae' (this model needs it: it is zoo-gone's 'vae', not the one from "
            "zoo, zoo-other: pip install zoo-gone)"
        )
    finally:
        families.unregister("vae")
    assert families.get("vae").package == FIRST_PARTY


RECIPE_PLUGIN = """
from zoo.plugin import FamilySpec
family = FamilySpec(name="{name}", model="{module}_model:Model", recipes="{recipes}")
"""

RECIPE_PLUGIN_MODEL = """
from zoo_vae.model import VAE
class Model(VAE):
    name = "{name}"
"""


def test_plugin_check_and_train_refuse_recipes_that_cannot_be_trained(tmp_path):
    """A mistyped recipes package used to read as 'ships no recipes': `zoo train` trained on
    the config defaults and `zoo plugin check` said ok."""
    paths = []
    cases = {
        "typo-vae": "zoo_typo_vae_recipez",  # no such package
        "badrecipe-vae": "zoo_badrecipe_vae_recipes",  # ships mnist.yaml with a typo in it
        "nodefault-vae": "zoo_nodefault_vae_recipes",  # ships only small.yaml; the default is mnist
    }
    for name, recipes in cases.items():
        package, module = f"zoo-{name}", f"zoo_{name.replace('-', '_')}"
        env = make_plugin_env(
            tmp_path / name,
            package,
            RECIPE_PLUGIN.format(name=name, module=module, recipes=recipes),
            f"[zoo.families]\n{name} = {module}:family\n",
            extra_modules={f"{module}_model": RECIPE_PLUGIN_MODEL.format(name=name)},
        )
        paths.append(env["PYTHONPATH"].split(os.pathsep)[0])
    shipped = {
        "zoo_badrecipe_vae_recipes": ("mnist.yaml", "trian: {epochs: 1}\n"),
        "zoo_nodefault_vae_recipes": ("small.yaml", "train: {epochs: 1}\n"),
    }
    for recipes, (file, text) in shipped.items():
        folder = tmp_path / "recipes" / recipes
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
        (folder / file).write_text(text)
    paths.append(str(tmp_path / "recipes"))
    env = {"PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}

    check = run_zoo("plugin", "check", "--json", env=env)
    assert check.returncode == 1, check.stderr
    statuses = {s["name"]: (s["status"], s["error"]) for s in json.loads(check.stdout) if s["kind"] == "family"}
    assert statuses["typo-vae"] == (
        "broken",
        "family 'typo-vae' declares its recipes in 'zoo_typo_vae_recipez', which does not import: "
        "ModuleNotFoundError: No module named 'zoo_typo_vae_recipez'",
    )
    assert statuses["badrecipe-vae"] == (
        "broken",
        "recipe 'mnist' does not validate: unknown key 'trian'; did you mean 'train'?",
    )
    assert statuses["nodefault-vae"] == (
        "broken",
        "default recipe 'mnist' is not among its recipes (small)",
    )
    assert statuses["vae"] == ("ok", "")

    train = run_zoo("train", "typo-vae", "-e", "1", "--out", str(tmp_path / "runs"), env=env)
    assert train.returncode == 2
    assert_one_line_error(train.stderr, "zoo_typo_vae_recipez", "does not import")
    assert not (tmp_path / "runs").exists()
    listed = run_zoo("list", "--json", env=env)
    assert listed.returncode == 0 and "typo-vae" in listed.stdout


BUGGY_PLUGIN_MODEL = """
import torch
from zoo_vae.model import VAE


class Model(VAE):
    name = "buggy-vae"

    def loss(self, batch):
        return torch.ones(3) @ torch.ones(4)  # torch raises: the bug is the plugin's
"""


def test_a_bug_in_a_plugin_is_one_line_that_names_its_package_and_place(tmp_path):
    """Not a traceback through zoo's trainer, which would read as zoo's fault: the innermost
    frame of the plugin's code, its package, exit code 1; --debug shows the traceback."""
    env = make_plugin_env(
        tmp_path / "plugin",
        "zoo-buggy-vae",
        RECIPE_PLUGIN.format(name="buggy-vae", module="zoo_buggy_vae", recipes="zoo_vae.recipes"),
        "[zoo.families]\nbuggy-vae = zoo_buggy_vae:family\n",
        extra_modules={"zoo_buggy_vae_model": BUGGY_PLUGIN_MODEL},
    )
    args = ("train", "buggy-vae", "-e", "1", "--out", str(tmp_path / "runs"))
    completed = run_zoo(*args, env=env)
    assert completed.returncode == 1 and "Traceback" not in completed.stderr
    last = completed.stderr.strip().splitlines()[-1]  # after the run's header line
    assert_one_line_error(
        last,
        "plugin package 'zoo-buggy-vae' failed at zoo_buggy_vae_model line 10: RuntimeError: inconsistent tensor size",
        "zoo --debug shows the traceback",
    )
    debug = run_zoo("--debug", *args, env=env)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "zoo_buggy_vae_model.py" in debug.stderr
