import torch

from zoo import classifier
from zoo.classifier import accuracy, classifier_path, digit_classifier
from zoo.datasets.splits import load_dataset


def test_mnist_5k_classifier_is_accurate_calibrated_and_unsure_of_noise():
    model = digit_classifier("mnist-5k")
    assert classifier_path("mnist-5k", load_dataset("mnist-5k")).is_file()
    test = load_dataset("mnist-5k").test
    assert accuracy(model, test.x, test.y) >= 0.97
    with torch.no_grad():
        confidence, label = model(test.x).softmax(1).max(1)
        noise = model(torch.rand(1000, *test.x.shape[1:], generator=torch.Generator().manual_seed(0)))
    confident = confidence >= 0.9
    # Confidence means what it says: most real digits reach 0.9, and those nearly all rightly.
    assert confident.float().mean() >= 0.93
    assert (label == test.y)[confident].float().mean() >= 0.98
    assert (noise.softmax(1).max(1).values < 0.9).float().mean() >= 0.99
    assert model.features(test.x[:16]).shape == (16, 128)


def test_digits_classifier_is_accurate():
    test = load_dataset("digits").test
    assert accuracy(digit_classifier("digits"), test.x, test.y) >= 0.95


def test_classifier_is_trained_when_absent_the_same_whatever_the_global_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path))
    monkeypatch.setattr(classifier, "EPOCHS", 2)  # a short schedule: this is about seeding and caching
    monkeypatch.setattr(classifier, "MIN_STEPS", 0)
    cached = classifier_path("digits", load_dataset("digits"))
    assert cached.parent == tmp_path / "classifiers"
    x = load_dataset("digits").test.x[:16]
    outputs = []
    for global_seed in (1, 2):
        cached.unlink(missing_ok=True)
        torch.manual_seed(global_seed)
        with torch.no_grad():  # the first use may come from inside an evaluation
            outputs.append(digit_classifier("digits")(x))
        assert cached.is_file()
    assert torch.equal(*outputs)
    assert torch.equal(digit_classifier("digits")(x), outputs[0])  # loaded from the cache


def test_judge_gives_the_same_verdict_under_a_callers_bf16_autocast():
    model = digit_classifier("digits")
    x = load_dataset("digits").test.x
    features = classifier.embed(model, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as in a bf16 run's held-out evaluation
        under_autocast = classifier.embed(model, x)
        verdict = classifier.classify(model, under_autocast)
    assert under_autocast.dtype == torch.float32 and torch.equal(under_autocast, features)
    assert all(torch.equal(a, b) for a, b in zip(verdict, classifier.classify(model, features), strict=True))


def test_a_folder_whose_classes_change_gets_a_classifier_of_its_own(tmp_path, monkeypatch):
    """Cached by name, a folder that lost two classes loaded the old 10-class weights: a size
    mismatch; with as many classes, another dataset's classifier judged it."""
    import numpy as np
    from PIL import Image

    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(classifier, "EPOCHS", 1)
    monkeypatch.setattr(classifier, "MIN_STEPS", 0)
    digits = load_dataset("digits").train
    for i in range(300):
        folder = tmp_path / "data" / str(int(digits.y[i]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((digits.x[i, 0].numpy() * 255).astype(np.uint8)).save(folder / f"{i}.png")
    reference = f"folder:{tmp_path / 'data'}"
    first = digit_classifier(reference)
    for gone in ("8", "9"):
        for f in (tmp_path / "data" / gone).iterdir():
            f.unlink()
        (tmp_path / "data" / gone).rmdir()
    second = digit_classifier(reference)
    assert (first.head.out_features, second.head.out_features) == (10, 8)
    assert len(list((tmp_path / "cache" / "classifiers").iterdir())) == 2
