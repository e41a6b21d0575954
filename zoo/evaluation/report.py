"""`zoo eval`: run the metrics that apply to a model and a dataset, as one JSON document.

The document (eval.json, format 1; docs/eval.md defines every field and metric):

    {"format": 1, "zoo_version": "0.1.0", "family": "vae", "model": "runs/vae-…",
     "data": "mnist-5k", "split": "test", "examples": 1000, "seed": 0,
     "groups": ["family", "nll", …], "metrics": {"nelbo": 105.3, "nll": 100.8, …},
     "settings": {"nll_k": 1000, …}, "skipped": {"disentanglement": "…"}}

`metrics` is flat (name → float), so that the model card and other tools read it without
knowing which group a metric came from.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from zoo import __version__, atomic
from zoo.datasets.splits import Splits
from zoo.devices import seeded
from zoo.errors import CorruptFileError, InvalidInputError
from zoo.family import Family
from zoo.tasks import encode_all, encode_head, label_conditions

EVAL_FILE = "eval.json"
FORMAT = 1
GROUPS = ("family", "nll", "recon", "fid", "probe", "disentanglement")


@dataclass(frozen=True)
class EvalSettings:
    """How the metrics are computed; every field goes into eval.json."""

    nll_k: int = 1000
    #: Test examples scored by the importance-sampled NLL (0: all).
    nll_examples: int = 0
    #: Samples drawn for FID and precision/recall (0: as many as test examples).
    fid_samples: int = 0
    batch_size: int = 500
    seed: int = 0


@dataclass
class EvalReport:
    family: str
    model: str
    data: str
    examples: int
    groups: list[str]
    metrics: dict[str, float]
    settings: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)
    split: str = "test"
    #: Of the weights evaluated (zoo.codec.weights_sha256): a push refuses figures of others.
    weights_sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        document = {"format": FORMAT, "zoo_version": __version__, **asdict(self)}
        document["metrics"] = {k: document["metrics"][k] for k in sorted(document["metrics"])}
        return document

    def adding_to(self, earlier: dict[str, Any]) -> EvalReport:
        """This report with the groups of `earlier` (an eval.json document) that it did not
        run; for figures that can stand in one document with these (`why_apart(earlier, self)`
        is None, which the caller has checked). So `zoo eval -m nll` after a full `zoo eval`
        keeps the other groups' figures, and the settings they were made with."""
        kept = _kept_groups(earlier, self)
        settings = dict(self.settings)
        for key, value in earlier["settings"].items():
            if set(_SETTING_GROUPS.get(key, GROUPS)) <= set(kept):  # it made only kept figures
                settings[key] = value
        return replace(
            self,
            groups=[g for g in GROUPS if g in self.groups or g in kept],
            metrics={**earlier["metrics"], **self.metrics},
            settings=settings,
            skipped={g: r for g, r in {**earlier["skipped"], **self.skipped}.items() if g not in self.groups + kept},
        )

    def write(self, path: str | os.PathLike) -> Path:
        """The document as JSON at `path` (a model folder's eval.json: the only file that eval
        writes there), written atomically."""
        return atomic.write_output(path, (json.dumps(self.to_json(), indent=2) + "\n").encode())


#: The settings that change the figures of some groups only; any other changes every group's.
_SETTING_GROUPS = {"nll_k": ("nll",), "nll_examples": ("nll",), "fid_samples": ("fid",), "feature_net": ("fid",)}


def why_apart(earlier: dict[str, Any], report: EvalReport) -> str | None:
    """Why the figures of `earlier` (an eval.json document) cannot join those of `report` in
    one document, or None when they can: other weights, data or split, or a setting that made
    both a figure of `report` and one kept from `earlier` (of a group `report` did not run)
    with two values."""
    for key, what in (("weights_sha256", "weights"), ("data", "data"), ("split", "split"), ("examples", "examples")):
        if earlier.get(key) != getattr(report, key):
            return f"it was of other {what}"
    settings, groups, skipped = earlier.get("settings"), earlier.get("groups"), earlier.get("skipped", {})
    if not (isinstance(settings, dict) and isinstance(groups, list) and isinstance(skipped, dict)):
        return "it lacks its settings, groups or skipped groups"
    kept = _kept_groups(earlier, report)
    for key, value in report.settings.items():
        affects = set(_SETTING_GROUPS.get(key, GROUPS))
        if key in settings and settings[key] != value and affects & set(kept) and affects & set(report.groups):
            return f"it was made with {key} {settings[key]}, and this run with {value}"
    return None


def _kept_groups(earlier: dict[str, Any], report: EvalReport) -> list[str]:
    return [g for g in GROUPS if g in earlier["groups"] and g not in report.groups]


def read_eval(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The eval.json of a model folder, or None when there is none (`read_eval_file`)."""
    return read_eval_file(Path(folder) / EVAL_FILE)


def read_eval_file(path: str | os.PathLike) -> dict[str, Any] | None:
    """An eval report, or None when there is no file at `path`; one that is there but not
    zoo's eval report, or has a metric that is not a finite number, is a CorruptFileError."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CorruptFileError(f"{path} is not readable JSON: {err}") from None
    if not (isinstance(document, dict) and isinstance(document.get("metrics"), dict)):
        raise CorruptFileError(f"{path} is not a zoo eval report (no 'metrics' object)")
    if document.get("format") != FORMAT:
        raise CorruptFileError(f"{path} has format {document.get('format')!r}; this zoo writes format {FORMAT}")
    for name, value in document["metrics"].items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CorruptFileError(f"{path}: metric '{name}' is {json.dumps(value)}, not a finite number")
    return document


def evaluate(
    model: Family,
    splits: Splits,
    groups: str | Sequence[str] | None = None,
    settings: EvalSettings = EvalSettings(),
    reference: str = "",
) -> EvalReport:
    """Run `groups` (one, a list, or by default every group that applies) on `splits.test`;
    `reference` names the model in the report. A requested group that does not apply is an
    InvalidInputError."""
    if isinstance(groups, str):
        groups = [groups]
    if tuple(splits.shape) != tuple(model.config.input_shape):
        raise InvalidInputError(
            f"data '{splits.name}' has shape {list(splits.shape)} but the model takes {list(model.config.input_shape)}"
        )
    model.check_data(splits)  # what it was refused to train on it cannot be scored on
    unknown = [g for g in groups or () if g not in GROUPS]
    if unknown:
        raise InvalidInputError(f"unknown metric group '{unknown[0]}' (known: {', '.join(GROUPS)})")
    model.eval()
    reasons = {g: _not_applicable(g, model, splits) for g in GROUPS}
    if groups is None:
        chosen = [g for g in GROUPS if reasons[g] is None]
    else:
        for g in groups:
            if reasons[g] is not None:
                raise InvalidInputError(f"metric group '{g}' does not apply: {reasons[g]}")
        chosen = [g for g in GROUPS if g in groups]
    metrics: dict[str, float] = {}
    with seeded(settings.seed):
        for group in chosen:
            metrics.update(_RUNNERS[group](model, splits, settings))
    described = asdict(settings)
    if "fid" in chosen:
        from zoo.classifier import CLASSIFIER_VERSION

        described["feature_net"] = f"zoo.classifier v{CLASSIFIER_VERSION} on {splits.name} (128-d features)"
    from zoo.codec import weights_sha256

    skipped = {g: r for g, r in reasons.items() if r is not None and g not in chosen} if groups is None else {}
    return EvalReport(
        model.name,
        reference,
        splits.name,
        len(splits.test),
        chosen,
        metrics,
        described,
        skipped,
        weights_sha256=weights_sha256(model),
    )


# applicability ---------------------------------------------------------------------------
def _not_applicable(group: str, model: Family, splits: Splits) -> str | None:
    can = model.capabilities()
    labelled = splits.test.y is not None and splits.train.y is not None
    if model.conditional and not labelled:
        return f"family '{model.name}' is conditional and data '{splits.name}' has no labels"
    needs = {
        "nll": ("nll", "it has no likelihood (a VAE-type family has)"),
        "recon": ("reconstruct", "it cannot reconstruct"),
        "fid": ("sample", "it cannot sample"),
        "probe": ("encode", "it has no encoder"),
        "disentanglement": ("encode", "it has no encoder"),
    }
    if group in needs and needs[group][0] not in can:
        return f"family '{model.name}': {needs[group][1]}"
    if group == "fid" and len(splits.shape) != 3:
        return "sample-quality metrics are computed on images"
    if group in ("fid", "probe") and not labelled:
        return f"data '{splits.name}' has no class labels (the {group} metrics need them)"
    if group == "fid":
        from zoo.classifier import too_few_to_train
        from zoo.evaluation.samples import NEIGHBOURS

        if len(splits.test) <= NEIGHBOURS:
            count = len(splits.test)
            return f"data '{splits.name}' has {count} test images; precision and recall need more than {NEIGHBOURS}"
        too_few = too_few_to_train(len(splits.train))
        if too_few:
            return f"data '{splits.name}': {too_few}"
    if group == "disentanglement" and splits.test.factors is None:
        return f"data '{splits.name}' has no ground-truth factors (dsprites has)"
    if group in ("probe", "disentanglement") and not encode_head(model, splits.test).is_floating_point():
        return f"family '{model.name}' has discrete codes"
    return None


# the groups -------------------------------------------------------------------------------
def _family(model: Family, splits: Splits, settings: EvalSettings) -> dict[str, float]:
    metrics: dict[str, float] = {}
    test = splits.test.to(model.device)  # once, for every stage
    for stage in model.stages:
        values = model.evaluate_split(test.batches(settings.batch_size), stage, splits.name)
        for key, value in values.items():
            metrics[key if stage == model.stages[0] or key != "loss" else f"{stage}_loss"] = value
    return metrics


def _nll(model: Family, splits: Splits, settings: EvalSettings) -> dict[str, float]:
    test = splits.test
    n = settings.nll_examples or len(test)
    batch = test.head(n)
    estimate = model.nll(
        batch.x.to(model.device), k=settings.nll_k, seed=settings.seed, **label_conditions(model, batch.y)
    )
    dims = math.prod(splits.shape)
    metrics = {"nll": estimate.mean, "bits_per_dim": estimate.mean / (dims * math.log(2))}
    if math.isfinite(estimate.stderr):  # one example has none; NaN is not JSON, and eval.json is
        metrics["nll_stderr"] = estimate.stderr
    return metrics


def _recon(model: Family, splits: Splits, settings: EvalSettings) -> dict[str, float]:
    from zoo.evaluation.reconstruction import reconstruction_metrics

    originals, outputs = [], []
    for batch in splits.test.batches(settings.batch_size):
        originals.append(batch.x)
        outputs.append(model.reconstruct(batch.x.to(model.device), **label_conditions(model, batch.y)).cpu())
    return reconstruction_metrics(torch.cat(originals), torch.cat(outputs))


def _fid(model: Family, splits: Splits, settings: EvalSettings) -> dict[str, float]:
    from zoo.classifier import digit_classifier, embed
    from zoo.evaluation.samples import density_coverage, draw, frechet_distance, precision_recall

    classifier = digit_classifier(splits.name, device=model.device)
    n = settings.fid_samples or len(splits.test)
    samples = draw(model, n, settings.seed, settings.batch_size)
    real = embed(classifier, splits.test.x, settings.batch_size)
    fake = embed(classifier, samples, settings.batch_size)
    # The floor for this many images: training images against the same test images.
    held_out = embed(classifier, splits.train.x[:n], settings.batch_size)
    precision, recall = precision_recall(real, fake)
    density, coverage = density_coverage(real, fake)
    return {
        "fid": frechet_distance(real, fake),
        "fid_train_images": frechet_distance(real, held_out),
        "precision": precision,
        "recall": recall,
        "density": density,
        "coverage": coverage,
    }


def _probe(model: Family, splits: Splits, settings: EvalSettings) -> dict[str, float]:
    from zoo.evaluation.probe import pixel_probe_accuracy, probe_accuracy

    train, test = splits.train, splits.test
    codes = probe_accuracy(
        encode_all(model, train, settings.batch_size), train.y, encode_all(model, test, settings.batch_size), test.y
    )
    pixels = pixel_probe_accuracy(train.x, train.y, test.x, test.y)
    return {
        "probe_linear": codes["linear"],
        "probe_knn": codes["knn"],
        "probe_linear_pixels": pixels["linear"],
        "probe_knn_pixels": pixels["knn"],
    }


def _disentanglement(model: Family, splits: Splits, settings: EvalSettings) -> dict[str, float]:
    from zoo.evaluation.disentanglement import beta_vae_score, mutual_information_gap

    codes = torch.cat(
        [encode_all(model, splits.train, settings.batch_size), encode_all(model, splits.test, settings.batch_size)]
    )
    factors = torch.cat([splits.train.factors, splits.test.factors])
    metrics = {"beta_vae_score": beta_vae_score(codes, factors, seed=settings.seed)}
    if codes.flatten(1).shape[1] >= 2:
        metrics["mig"] = mutual_information_gap(codes, factors)
    return metrics


_RUNNERS: dict[str, Callable[[Family, Splits, EvalSettings], dict[str, float]]] = {
    "family": _family,
    "nll": _nll,
    "recon": _recon,
    "fid": _fid,
    "probe": _probe,
    "disentanglement": _disentanglement,
}
