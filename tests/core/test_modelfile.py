import json
import pickle
import shutil

import pytest
import torch

import zoo
from zoo.errors import CorruptFileError, InvalidInputError, NotFoundError
from zoo.modelfile import CONFIG_FILE, WEIGHTS_FILE


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    model = zoo.create("vae", input_shape=(1, 8, 8), latent_dim=3, hidden_dim=16, channels=(4, 8))
    return model, zoo.save(model, tmp_path / "m")


def test_save_then_load_reproduces_outputs_exactly(model_dir):
    model, path = model_dir
    loaded = zoo.load(path)
    assert loaded.config == model.config
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(loaded.reconstruct(x), model.eval().reconstruct(x))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(loaded.sample(4, generator=g1), model.sample(4, generator=g2))


def test_config_json_names_family_package_version_and_full_config(model_dir):
    _, path = model_dir
    meta = json.loads((path / CONFIG_FILE).read_text())
    assert meta["family"] == "vae" and meta["package"] == "zoo" and meta["package_version"] == zoo.__version__
    assert meta["config"]["latent_dim"] == 3 and meta["config"]["input_shape"] == [1, 8, 8]
    from safetensors import safe_open

    with safe_open(str(path / WEIGHTS_FILE), "pt") as f:
        assert f.metadata()["zoo_family"] == "vae"


def _damage(path, how):
    weights = path / WEIGHTS_FILE
    data = weights.read_bytes()
    if how == "truncated":
        weights.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        weights.write_bytes(b"")
    elif how == "header":
        weights.write_bytes(b"\xff" * 8 + data[8:])
    elif how == "pickle":
        weights.write_bytes(pickle.dumps({"a": 1}))
    elif how == "zip":
        torch.save({"a": torch.zeros(2)}, weights)
    elif how == "missing":
        weights.unlink()


@pytest.mark.parametrize("how", ["truncated", "empty", "header", "pickle", "zip"])
def test_damaged_weights_are_a_corrupt_file_error(model_dir, how):
    _, path = model_dir
    _damage(path, how)
    with pytest.raises(CorruptFileError, match="model.safetensors"):
        zoo.load(path)


def test_missing_weights_file_is_not_found(model_dir):
    _, path = model_dir
    _damage(path, "missing")
    with pytest.raises(NotFoundError, match="missing weights file"):
        zoo.load(path)


def test_pickle_payload_in_weights_is_never_executed(model_dir, tmp_path):
    _, path = model_dir
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (path / WEIGHTS_FILE).write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CorruptFileError):
        zoo.load(path)
    assert not marker.exists()


def test_weights_of_another_shape_do_not_load(model_dir, tmp_path):
    _, path = model_dir
    other = zoo.save(
        zoo.create("vae", input_shape=(1, 8, 8), latent_dim=5, hidden_dim=16, channels=(4, 8)), tmp_path / "o"
    )
    shutil.copy(other / WEIGHTS_FILE, path / WEIGHTS_FILE)
    with pytest.raises(
        CorruptFileError,
        match=r"tensor 'decoder.hidden.0.weight' is torch.float32 \[16, 5\], the model needs torch.float32 \[16, 3\]",
    ):
        zoo.load(path)


def test_non_finite_weights_are_refused(model_dir):
    model, path = model_dir
    with torch.no_grad():
        model.encoder.head.bias[0] = float("nan")
    zoo.save(model, path)
    with pytest.raises(CorruptFileError, match="NaN or infinite"):
        zoo.load(path)


def test_config_naming_an_unknown_family_says_so(model_dir):
    _, path = model_dir
    meta = json.loads((path / CONFIG_FILE).read_text())
    meta["family"] = "vea"
    (path / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(NotFoundError, match="no family named 'vea'; did you mean 'vae'"):
        zoo.load(path)


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        (lambda m: m["config"].update(latent_dimm=3), InvalidInputError, "unknown key 'model.latent_dimm'"),
        (lambda m: m["config"].update(latent_dim="3"), InvalidInputError, "model.latent_dim must be an integer"),
        (lambda m: m["config"].update(beta=-1.0), InvalidInputError, "beta must be ≥ 0"),
        (lambda m: m.update(format_version=99), InvalidInputError, "format version 99"),
        (lambda m: m.pop("family"), CorruptFileError, "lacks a 'family'"),
    ],
)
def test_bad_configs_are_refused_with_the_reason(model_dir, edit, error, message):
    _, path = model_dir
    meta = json.loads((path / CONFIG_FILE).read_text())
    edit(meta)
    (path / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(error, match=message):
        zoo.load(path)


def test_config_that_is_not_json_is_corrupt(model_dir):
    _, path = model_dir
    (path / CONFIG_FILE).write_text("{family: vae")
    with pytest.raises(CorruptFileError, match="not valid JSON"):
        zoo.load(path)


def test_folder_without_config_is_not_a_model_folder(tmp_path):
    with pytest.raises(NotFoundError, match="is not a model folder"):
        zoo.load(tmp_path)
    with pytest.raises(NotFoundError, match="no model folder at"):
        zoo.load(tmp_path / "absent")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        # same networks, other function: σ = exp(h) instead of softplus(h)
        ({"posterior_scale": "exp"}, "model.posterior_scale would change what this trained vae computes"),
        ({"latent_dim": 4}, "model.latent_dim would change what this trained vae computes, not how it samples"),
    ],
)
def test_a_trained_model_takes_only_the_settings_its_family_lists(model_dir, settings, message):
    _, path = model_dir
    with pytest.raises(InvalidInputError) as err:
        zoo.load(path, settings=settings)
    assert str(err.value).startswith(message) and str(err.value).endswith("(it has none)")


def test_a_model_whose_weights_are_not_float32_is_refused_before_a_file_is_written(model_dir, tmp_path):
    """zoo.load builds the model in float32 and takes the weights as they are: a float64 file
    would be saved, then refused as corrupt."""
    model, _ = model_dir
    with pytest.raises(
        InvalidInputError, match=r"float32 weights; this vae's are torch\.float64 \(save model\.float\(\)\)"
    ):
        zoo.save(model.double(), tmp_path / "m64")
    assert not (tmp_path / "m64").exists()


@pytest.mark.parametrize(("device", "message"), [("gpu", "unknown device 'gpu'"), ("xla", "unsupported device")])
def test_load_refuses_a_device_it_cannot_use_before_reading_anything(model_dir, device, message):
    _, path = model_dir
    with pytest.raises(InvalidInputError, match=message):
        zoo.load(path, device=device)
    with pytest.raises(InvalidInputError, match=message):
        zoo.load(path.parent / "no-such-folder", device=device)  # the device is judged first
