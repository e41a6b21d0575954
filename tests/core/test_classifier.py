import torch

from zoo.classifier import CLASSIFIER_VERSION, accuracy, digit_classifier
from zoo.datasets.splits import load_dataset


def test_mnist_5k_classifier_is_accurate_on_held_out_digits_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path))
    model = digit_classifier("mnist-5k")
    test = load_dataset("mnist-5k").test
    assert accuracy(model, test.x, test.y) >= 0.95
    cached = tmp_path / "classifiers" / f"mnist-5k-v{CLASSIFIER_VERSION}.safetensors"
    assert cached.is_file()
    again = digit_classifier("mnist-5k")
    x = test.x[:16]
    assert torch.equal(again(x), model(x)) and again.features(x).shape == (16, 128)


def test_classifier_trains_when_first_asked_for_inside_no_grad(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path))
    with torch.no_grad():
        model = digit_classifier("digits")
    test = load_dataset("digits").test
    assert accuracy(model, test.x, test.y) >= 0.9
