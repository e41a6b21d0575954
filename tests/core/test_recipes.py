import pytest

from zoo.errors import InvalidInputError, NotFoundError, ZooError
from zoo.recipes import apply_override, load_recipe, recipe_names
from zoo.registry import families


def test_default_recipe_of_vae_is_mnist_on_mnist_5k():
    recipe = load_recipe("vae")
    assert recipe.family == "vae" and recipe.data == "mnist-5k"
    assert "mnist" in recipe_names(families.get("vae").spec)
    assert recipe.train.epochs >= 1 and recipe.train.optimizer.lr > 0


def test_overrides_parse_values_as_yaml_and_win_over_the_recipe():
    recipe = load_recipe(
        "vae",
        "mnist",
        ["model.beta=4", "train.optimizer.lr=1e-4", "model.channels=[16, 32]", "train.epochs=3", "data=digits"],
    )
    assert recipe.model["beta"] == 4 and recipe.model["channels"] == [16, 32]
    assert recipe.train.optimizer.lr == pytest.approx(1e-4)
    assert recipe.train.epochs == 3 and recipe.data == "digits"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.bta=4"], "unknown key 'model.bta'; did you mean 'beta'?"),
        (["model.beta=-1"], "beta must be ≥ 0"),
        (["train.epochs=many"], "train.epochs must be an integer"),
        (["train.epoch=3"], "did you mean 'epochs'?"),
        (["train.precision=fp8"], "must be one of 'fp32', 'bf16', 'fp16'"),
        (["data=mnist-6k"], "no dataset named 'mnist-6k'; did you mean 'mnist-5k'?"),
        (["beta"], "must look like key=value"),
        (["=3"], "must look like key=value"),
        (["data.name=x"], "'data' is not a section"),
        (["stages.prior.epochs=3"], "unknown stage 'stages.prior'"),
    ],
)
def test_bad_overrides_are_refused_before_training(overrides, message):
    with pytest.raises(ZooError) as err:
        load_recipe("vae", None, overrides)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("family", "override", "message"),
    [
        ("vae", "model.beta=-1", "model.beta must be ≥ 0, got -1.0"),
        ("vae", "train.epochs=many", "train.epochs must be an integer, got 'many'"),
        ("vae", "train.epochs=0", "train.epochs must be ≥ 1, got 0"),
        ("vae", "train.optimizer.lr=0", "train.optimizer.lr must be > 0, got 0.0"),
        ("vae", "train.scheduler.warmup_steps=-1", "train.scheduler.warmup_steps must be ≥ 0, got -1"),
        ("vae", "seed=-1", f"seed must be in 0..{2**32 - 1}, got -1"),
        ("gan", "train.optimizers.critic.lr=-1", "train.optimizers.critic.lr must be > 0, got -1.0"),
        ("vqvae", "stages.prior.epochs=0", "stages.prior.epochs must be ≥ 1, got 0"),
    ],
)
def test_a_bad_value_is_named_by_the_key_a_user_writes(family, override, message):
    """The same dotted path as in --set and the recipe file, whichever check refuses it."""
    with pytest.raises(InvalidInputError) as err:
        load_recipe(family, None, [override])
    assert str(err.value) == message


@pytest.mark.parametrize("key", ["matmul_conv", "channels_last"])
def test_options_that_shape_the_model_for_the_whole_run_are_refused_per_stage(key):
    with pytest.raises(InvalidInputError, match=f"stages.prior.{key}: set train.{key} instead"):
        load_recipe("vqvae", None, [f"stages.prior.{key}=true"])
    assert getattr(load_recipe("vqvae", None, [f"train.{key}=true", "train.precision=bf16"]).stage_train("prior"), key)


def test_unknown_recipe_name_suggests_the_closest():
    with pytest.raises(NotFoundError, match="no recipe 'mnst'; did you mean 'mnist'"):
        load_recipe("vae", "mnst")


def test_recipe_file_with_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochs: 3\n  batch_size: [1,\n")
    with pytest.raises(InvalidInputError, match=r"bad.yaml is not valid YAML \(line 4"):
        load_recipe("vae", str(path))


def test_recipe_file_for_another_family_is_refused(tmp_path):
    path = tmp_path / "gan.yaml"
    path.write_text("family: gan\n")
    with pytest.raises(InvalidInputError, match="recipe is for family 'gan', not 'vae'"):
        load_recipe("vae", str(path))


def test_recipe_file_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(InvalidInputError, match="must be a YAML mapping"):
        load_recipe("vae", str(path))


def test_apply_override_builds_missing_sections():
    data = {}
    apply_override(data, "train.optimizer.name=adamw")
    assert data == {"train": {"optimizer": {"name": "adamw"}}}


def test_a_data_override_is_the_reference_as_written_whatever_yaml_makes_of_it(tmp_path):
    folder = tmp_path / "scans: 2026"
    folder.mkdir()
    assert load_recipe("vae", None, [f"data=folder:{folder}?size=16"]).data == f"folder:{folder}?size=16"
    with pytest.raises(InvalidInputError, match="^'folder:' needs a target, e.g. folder:PATH$"):
        load_recipe("vae", None, ["data=folder:"])
    with pytest.raises(NotFoundError, match="no dataset named '12'"):
        load_recipe("vae", None, ["data=12"])


@pytest.mark.parametrize("family", ["ae", "vae", "cvae", "iwae", "vqvae", "gan"])
def test_every_shipped_recipe_validates(family):
    """Schema, data name, model config and stages of each recipe, without its data."""
    names = recipe_names(families.get(family).spec)
    assert "mnist" in names
    for name in names:
        assert load_recipe(family, name).family == family


def test_a_relative_file_reference_is_stored_absolute(tmp_path, monkeypatch):
    """recipe.yaml and config.json keep the data reference: from another working directory a
    relative path would name other data, or none."""
    monkeypatch.chdir(tmp_path)
    assert load_recipe("vae", None, ["data=folder:images?size=8"]).data == f"folder:{tmp_path / 'images'}?size=8"
    assert load_recipe("vae", None, ["data=digits"]).data == "digits"


def test_a_recipe_object_and_a_single_override_are_taken_as_they_are():
    """Not iterated letter by letter ('override 'm' must look like key=value')."""
    base = load_recipe("vae", "mnist", "model.beta=4")
    assert base.model["beta"] == 4
    again = load_recipe("vae", base, ["train.epochs=3"])
    assert again.model["beta"] == 4 and again.train.epochs == 3 and again.data == base.data
    assert load_recipe("vae", base) == base
