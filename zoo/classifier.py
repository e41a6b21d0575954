"""A small image classifier per dataset, trained deterministically on the train split and
cached: it judges samples (does `--label 7` draw sevens? are all classes present?) and
gives the feature space for sample-quality metrics.

Its confidence is meant to be read ("a class with probability ≥ 0.9"), so it is trained to
be uncertain on noise (outlier exposure: uniform-noise images with a uniform target) and its
logits are temperature-scaled on a held-out tenth of the train split (Guo et al., 2017).

These are zoo's own judges, not Inception: figures computed with them are comparable
between zoo models on the same dataset and classifier version, not with published FIDs.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import torch
from torch import Tensor, nn

from zoo import atomic
from zoo.datasets.splits import Splits, load_dataset
from zoo.devices import seeded
from zoo.errors import InvalidInputError
from zoo.nets import ConvEncoderNet

#: Bump when the architecture or training changes, so old caches are not reused.
CLASSIFIER_VERSION = 3
CACHE_ENV = "ZOO_CACHE"
EPOCHS = 40
MIN_STEPS = 400
BATCH = 64
NOISE_PER_BATCH = 16
CALIBRATION_SHARE = 0.1
SEED = 0
#: A sample counts as confidently classified when its top class has at least this probability.
CONFIDENT = 0.9


class DigitClassifier(nn.Module):
    """Conv trunk → 128 features → class logits, divided by a fitted temperature."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.trunk = ConvEncoderNet(input_shape, (32, 64))
        self.embed = nn.Sequential(nn.Linear(self.trunk.features, 128), nn.SiLU())
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(128, num_classes)
        self.register_buffer("temperature", torch.ones(()))

    def features(self, x: Tensor) -> Tensor:
        """The 128-d penultimate features (for FID and precision/recall), in float32 whatever
        autocast the caller runs under (a bf16 run's evaluation): the judge's verdict must not
        depend on who asks."""
        with torch.autocast(x.device.type, enabled=False):
            return self.embed(self.trunk(x.float()))

    def logits(self, features: Tensor) -> Tensor:
        """Temperature-scaled class logits from the features, in float32 like them."""
        with torch.autocast(features.device.type, enabled=False):
            return self.head(self.dropout(features.float())) / self.temperature

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(self.features(x))


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "zoo")


def digit_classifier(dataset: str = "mnist-5k", device: str | torch.device = "cpu") -> DigitClassifier:
    """The classifier for `dataset` in eval mode: loaded from the cache, or trained (seeded,
    about 45 s on 2 CPU cores for mnist-5k) and cached under the data's contents: the same
    name with other images or classes (a folder that changed) gets a classifier of its own."""
    from safetensors.torch import load_file, save_file

    splits = load_dataset(dataset)
    if not splits.num_classes or splits.train.y is None:
        raise InvalidInputError(f"dataset '{dataset}' has no class labels to train a classifier on")
    too_few = too_few_to_train(len(splits.train))
    if too_few:
        raise InvalidInputError(f"dataset '{dataset}': {too_few}")
    path = classifier_path(dataset, splits)
    # Seeded here rather than by the caller; the first use may come from inside an evaluation
    # (no_grad), and training needs gradients.
    with seeded(SEED), torch.enable_grad():
        model = DigitClassifier(splits.shape, splits.num_classes)
        if not path.is_file():
            _fit(model, splits.train.x, splits.train.y)
            path.parent.mkdir(parents=True, exist_ok=True)
            state = {k: v.contiguous() for k, v in model.state_dict().items()}
            atomic.write_with(path, lambda tmp: save_file(state, str(tmp)))
    model.load_state_dict(load_file(str(path)))
    return model.to(device).eval()


def classifier_path(dataset: str, splits: Splits) -> Path:
    """Where the classifier of `dataset` is cached: named after it, keyed by its contents."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset)[:64]
    return cache_dir() / "classifiers" / f"{name}-{splits.digest()[:16]}-v{CLASSIFIER_VERSION}.safetensors"


def too_few_to_train(train_images: int) -> str | None:
    """Why a classifier cannot be trained on this many images (one batch after the
    calibration share is held out), or None."""
    needed = math.ceil(BATCH / (1 - CALIBRATION_SHARE))
    if train_images < needed:
        return f"{train_images} training images are too few for the classifier that judges samples (it needs {needed})"
    return None


def _fit(model: DigitClassifier, x: Tensor, y: Tensor) -> None:
    """Train on 90% of (x, y), then fit the temperature on the rest."""
    generator = torch.Generator().manual_seed(SEED)
    order = torch.randperm(len(x), generator=generator)
    held_out = order[: int(len(x) * CALIBRATION_SHARE)]
    x_fit, y_fit = x[order[len(held_out) :]], y[order[len(held_out) :]]
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps_per_epoch = len(x_fit) // BATCH
    epochs = max(EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch))  # small datasets get more passes
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=epochs * steps_per_epoch)
    model.train()
    for _ in range(epochs):
        batches = torch.randperm(len(x_fit), generator=generator)
        for b in range(steps_per_epoch):
            index = batches[b * BATCH : (b + 1) * BATCH]
            noise = torch.rand(NOISE_PER_BATCH, *x.shape[1:], generator=generator)
            logits = model(torch.cat([_augment(x_fit[index], generator), noise]))
            # Cross-entropy to the labels for the digits, to the uniform distribution for the noise.
            loss = nn.functional.cross_entropy(logits[:BATCH], y_fit[index]) - logits[BATCH:].log_softmax(1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()
    model.temperature.fill_(_temperature(model, x[held_out], y[held_out]))


def _temperature(model: DigitClassifier, x: Tensor, y: Tensor) -> float:
    """The temperature that minimises the negative log-likelihood of the held-out labels."""
    with torch.no_grad():
        logits = model(x)
    log_t = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], max_iter=100)

    def nll() -> Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(logits / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(nll)
    return log_t.exp().item()


def _augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random shifts of up to 1/14 of the image (2 pixels at 28×28, none at 8×8), so the
    judge does not depend on exact centring."""
    most = images.shape[-1] // 14
    shift = torch.randint(-most, most + 1, (2,), generator=generator).tolist()
    return torch.roll(images, shifts=shift, dims=(-2, -1))


@torch.no_grad()
def embed(model: DigitClassifier, images: Tensor, batch_size: int = 500) -> Tensor:
    """The 128-d features of `images` on the CPU, computed `batch_size` at a time on the model's device."""
    device = next(model.parameters()).device
    return torch.cat([model.features(x.to(device)).cpu() for x in images.split(batch_size)])


@torch.no_grad()
def classify(model: DigitClassifier, features: Tensor) -> tuple[Tensor, Tensor]:
    """(label, probability of that label) for each image, from its features (`embed`)."""
    device = next(model.parameters()).device
    confidence, label = model.logits(features.to(device)).softmax(1).max(1)
    return label.cpu(), confidence.cpu()


def confidently_classified(label: Tensor, confidence: Tensor) -> dict[str, float]:
    """From `classify`'s output, `confident`: the fraction of images whose top class has
    probability ≥ CONFIDENT; `classes`: how many classes those confident images cover (a
    collapsed generator covers few)."""
    confident = confidence >= CONFIDENT
    return {"confident": confident.float().mean().item(), "classes": float(len(label[confident].unique()))}


@torch.no_grad()
def accuracy(model: DigitClassifier, x: Tensor, y: Tensor) -> float:
    return (model(x).argmax(1) == y).float().mean().item()
