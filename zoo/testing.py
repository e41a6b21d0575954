"""The conformance kit: checks that a family keeps the contracts the trainer, the CLI and
the Hub rely on. Plugins call it from their own tests, as scikit-learn estimators call
`check_estimator`:

    import zoo.testing

    def test_ring_vae_conforms():
        zoo.testing.check_family("ring-vae")

The model is built small (the caller's `overrides`, or the family's recipe with the fewest
parameters) at the shape of a small built-in dataset, so a family is checked in seconds.
A failed check raises AssertionError saying which check failed and why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from zoo import modelfile
from zoo.config import to_dict
from zoo.datasets.splits import Splits, TensorData, load_dataset
from zoo.devices import seeded
from zoo.errors import ZooError, one_line
from zoo.factory import family_class
from zoo.family import CAPABILITIES, Batch, Family, FamilyConfig, LossOutput, Objective
from zoo.progress import Reporter
from zoo.recipes import Recipe, check_shipped_recipes, load_recipe, recipe_names
from zoo.registry import families
from zoo.trainer import evaluate, train

#: The checks in the order they run; pass a subset as `checks=` (e.g. to parametrise a test).
CHECKS = (
    "declaration",
    "recipes",
    "loss_and_gradients",
    "sync_free_steps",
    "config_round_trip",
    "determinism",
    "save_load",
    "uses",
    "training",
)


@dataclasses.dataclass
class Report:
    """What `check_family` did: the checks that passed, notes on what it could not check."""

    family: str
    config: dict[str, Any]
    passed: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0


@dataclasses.dataclass
class _Subject:
    """The family under test, built small, with a batch of real data to feed it."""

    name: str
    cls: type[Family]
    #: The recipe the training check uses (None: the family's default) and the caller's model overrides.
    recipe_name: str | None
    recipe: Recipe
    overrides: dict[str, Any]
    config: FamilyConfig
    data: Splits
    batch: Batch
    device: torch.device
    seed: int
    epochs: int
    workdir: Path
    report: Report

    def build(self) -> Family:
        with seeded(self.seed):
            return self.cls(self.config).to(self.device)


def check_family(
    name: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    data: str = "digits",
    checks: Sequence[str] | None = None,
    epochs: int = 1,
    device: str = "cpu",
    seed: int = 0,
) -> Report:
    """Check family `name` (or `package:name`) against zoo's contracts; raise AssertionError
    on the first failure.

    `overrides` are model config values (e.g. `{"channels": [8, 16]}`) merged over the default
    recipe's; without them the recipe with the fewest parameters is used. `data` is the
    dataset the model is shaped for and trained on; `epochs` the training budget per stage."""
    started = time.perf_counter()
    selected = list(CHECKS if checks is None else checks)
    unknown = [c for c in selected if c not in CHECKS]
    if unknown:
        raise ValueError(f"unknown checks {unknown}; the checks are {', '.join(CHECKS)}")
    if overrides:
        fields = _attempt(
            name, "declaration", lambda: [f.name for f in dataclasses.fields(family_class(name).config_class)]
        )
        misnamed = sorted(set(overrides) - set(fields))
        if misnamed:  # the caller's mistake, not the family's
            raise ValueError(f"overrides {misnamed} name no field of the config; its fields: {', '.join(fields)}")
    with tempfile.TemporaryDirectory(prefix="zoo-check-") as workdir, _one_thread():
        subject = _attempt(name, "declaration", lambda: _subject(name, overrides, data, epochs, device, seed, workdir))
        for check in selected:
            _attempt(name, check, lambda check=check: _CHECKS[check](subject))
            subject.report.passed.append(check)
    subject.report.seconds = time.perf_counter() - started
    return subject.report


class _Failed(AssertionError):
    """A failure already put down to its check."""


def _attempt(name: str, check: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except _Failed:
        raise
    except AssertionError as err:
        raise _Failed(f"family '{name}' fails the '{check}' check: {err}") from None
    except Exception as err:
        raise _Failed(f"family '{name}' fails the '{check}' check: {type(err).__name__}: {err}") from err


# ------------------------------------------------------------------------- set-up
def _subject(
    name: str, overrides: Mapping[str, Any] | None, data: str, epochs: int, device: str, seed: int, workdir: str
) -> _Subject:
    cls = family_class(name)
    splits = load_dataset(data)
    sizes = _recipe_sizes(name, cls, splits) if overrides is None else {}
    recipe_name = min(sizes, key=sizes.get) if sizes else None
    recipe = _attempt(name, "recipes", lambda: load_recipe(name, recipe_name))
    config = cls.build_config(_shaped(cls, {**recipe.model, **(overrides or {})}, splits))
    test = splits.test.head(16)
    batch = Batch(test.x.to(device), None if test.y is None else test.y.to(device))
    return _Subject(
        name=name,
        cls=cls,
        recipe_name=recipe_name,
        recipe=recipe,
        overrides=dict(overrides or {}),
        config=config,
        data=splits,
        batch=batch,
        device=torch.device(device),
        seed=seed,
        epochs=epochs,
        workdir=Path(workdir),
        report=Report(name, to_dict(config)),
    )


def _shaped(cls: type[Family], model_data: Mapping[str, Any], splits: Splits) -> dict[str, Any]:
    """Model config data with the data's shape (and class count) filled in, as the trainer does."""
    shaped = {**model_data, "input_shape": list(splits.shape)}
    if "num_classes" in cls.config_class.__dataclass_fields__:
        shaped.setdefault("num_classes", splits.num_classes)
    return shaped


def _recipe_sizes(name: str, cls: type[Family], splits: Splits) -> dict[str, int]:
    """Parameters of the model of each recipe that builds at the data's shape (the 'recipes'
    check reports those that do not validate)."""
    sizes = {}
    for recipe_name in recipe_names(families.get(name).spec):
        try:
            config = cls.build_config(_shaped(cls, load_recipe(name, recipe_name).model, splits))
            sizes[recipe_name] = sum(p.numel() for p in cls(config).parameters())
        except ZooError:
            continue
    return sizes


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """The kit's models are tiny: one CPU thread runs them faster than several, and many times
    faster when the cores are shared with other work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ------------------------------------------------------------------------- checks
def _check_declaration(s: _Subject) -> None:
    cls = s.cls
    entry = families.get(s.name)
    assert entry.spec.summary.strip(), "its FamilySpec has no summary (zoo list shows it)"
    assert dataclasses.is_dataclass(cls.config_class) and issubclass(cls.config_class, FamilyConfig), (
        f"config_class {cls.config_class.__name__} must be a dataclass subclassing zoo.FamilyConfig"
    )
    assert cls.stages and all(isinstance(st, str) and st for st in cls.stages), "stages must be non-empty names"
    assert len(set(cls.stages)) == len(cls.stages), f"stages {cls.stages} repeat a name"
    assert isinstance(cls.headline_metric, str) and cls.headline_metric, "headline_metric must name a metric"
    if cls.conditional:
        assert "num_classes" in cls.config_class.__dataclass_fields__, (
            f"conditional families need a num_classes field in {cls.config_class.__name__}"
        )
    assert cls.capabilities(), f"it implements none of {', '.join(CAPABILITIES)}"


def _check_recipes(s: _Subject) -> None:
    try:
        if not recipe_names(families.get(s.name).spec):
            s.report.notes.append("ships no recipes: `zoo train` uses the config defaults")
            return
        check_shipped_recipes(s.name)
    except ZooError as err:
        raise AssertionError(str(err)) from None


def _check_config_round_trip(s: _Subject) -> None:
    model = s.build()
    try:
        text = json.dumps(model.config_dict())
    except TypeError as err:
        raise AssertionError(f"config_dict() is not JSON: {err}") from None
    config = s.cls.build_config(json.loads(text))
    assert config == s.config, f"config rebuilt from JSON differs: {config} != {s.config}"
    assert json.dumps(to_dict(config)) == text, "config → JSON → config → JSON changes the JSON"
    clone = s.cls(config).to(s.device)
    _load_exactly(clone, model.state_dict(), "a model rebuilt from the JSON config")
    _assert_same_outputs(s, model, clone, "the model rebuilt from its JSON config")


def _check_loss_and_gradients(s: _Subject) -> None:
    model = s.build().train()
    names = {id(p): n for n, p in model.named_parameters()}
    reached: set[int] = set()
    if type(model).loss is not Family.loss:
        _assert_loss_output(model.loss(s.batch), "loss(batch)")
    for stage in s.cls.stages:
        objectives = model.objectives(stage)
        assert objectives, f"objectives('{stage}') is empty"
        assert all(isinstance(o, Objective) for o in objectives), f"objectives('{stage}') must be zoo.Objective items"
        assert len({o.name for o in objectives}) == len(objectives), f"objectives('{stage}') repeat a name"
        for objective in objectives:
            where = f"objective '{objective.name}' of stage '{stage}'"
            model.zero_grad(set_to_none=True)
            with seeded(s.seed):
                out = model(s.batch, objective=objective.name, stage=stage)
            _assert_loss_output(out, where)
            assert out.total.requires_grad, f"{where}: the total loss does not depend on any parameter"
            out.total.backward()
            params = [p for p in objective.parameters() if p.requires_grad]
            assert params, f"{where} declares no trainable parameters"
            missing = [names.get(id(p), "?") for p in params if p.grad is None]
            assert not missing, f"{where}: no gradient reaches {', '.join(missing[:5])}"
            bad = [names.get(id(p), "?") for p in params if not torch.isfinite(p.grad).all()]
            assert not bad, f"{where}: non-finite gradient in {', '.join(bad[:5])}"
            reached |= {id(p) for p in params}
        with seeded(s.seed):
            metrics = model.evaluate(s.batch, stage)
        assert isinstance(metrics, dict) and metrics, f"evaluate(batch, '{stage}') must return a non-empty dict"
        _assert_finite_scalars(metrics, f"evaluate(batch, '{stage}')")
    idle = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in reached]
    assert not idle, f"trainable parameters in no objective (the trainer never updates them): {', '.join(idle[:5])}"


def _check_sync_free_steps(s: _Subject) -> None:
    """Each objective's forward and backward pass runs on torch's meta device, whose tensors
    have shapes and no values. So no step reads a value on the host (`.item()`, `bool(t)`,
    `if t.any()`, boolean-mask indexing, `bincount`, `unique`, a `torch.distributions`
    argument check): on a GPU each such read makes the step wait for the device."""
    meta = torch.device("meta")
    model = s.build().to(meta).train()
    batch = Batch(*(None if t is None else t.to(meta) for t in s.batch))
    for stage in s.cls.stages:
        for objective in model.objectives(stage):
            try:
                model(batch, objective=objective.name, stage=stage).total.backward()
            except (RuntimeError, NotImplementedError) as err:
                raise AssertionError(
                    f"objective '{objective.name}' of stage '{stage}' does not run on torch's meta device "
                    f"(shapes, no values): {one_line(err).rstrip('.')}. A step that reads "
                    "a tensor's value on the host makes a GPU wait for it every step; one that makes its "
                    "tensors on the CPU fails on a GPU"
                ) from None


def _check_determinism(s: _Subject) -> None:
    first, second = s.build(), s.build()
    a, b = first.state_dict(), second.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "two models built under the same seed differ"
    _assert_same_outputs(s, first, second, "a second model built under the same seed")
    if "sample" in s.cls.capabilities():
        first.eval()
        before = torch.get_rng_state()
        one = first.sample(4, generator=_generator(s, 1), **_label(s, 4))
        assert torch.equal(torch.get_rng_state(), before), "sample(n, generator) draws from the global RNG"
        other = first.sample(4, generator=_generator(s, 2), **_label(s, 4))
        assert not torch.equal(one, other), "sample gives the same images for different generator seeds"


def _check_save_load(s: _Subject) -> None:
    model = s.build()
    folder = modelfile.save(model, s.workdir / "saved")
    loaded = modelfile.load(folder, device=s.device)
    assert type(loaded) is s.cls, f"zoo.load gave a {type(loaded).__name__}, not a {s.cls.__name__}"
    assert loaded.config == model.config, "the loaded config differs from the saved one"
    _assert_same_outputs(s, model, loaded, "the model after save → load")


def _check_uses(s: _Subject) -> None:
    model = s.build().eval()
    caps = s.cls.capabilities()
    x, y, n = s.batch.x[:5], None if s.batch.y is None else s.batch.y[:5], 5
    shape = (n, *s.config.input_shape)
    if "sample" in caps:
        _assert_images(model.sample(n, generator=_generator(s, 0)), shape, "sample(n, generator)")
        _assert_images(model.sample(n), shape, "sample(n)")
        if s.cls.conditional:
            labels = torch.arange(n, device=s.device) % s.config.num_classes
            _assert_images(model.sample(n, generator=_generator(s, 0), label=1), shape, "sample(n, label=1)")
            _assert_images(model.sample(n, generator=_generator(s, 0), label=labels), shape, "sample(n, label=tensor)")
    if "reconstruct" in caps:
        _assert_images(model.reconstruct(x, **_label(s, n, y)), shape, "reconstruct(x)")
    codes = None
    if "encode" in caps:
        codes = model.encode(x, **_label(s, n, y))
        assert isinstance(codes, Tensor) and len(codes) == n, f"encode(x) of {n} images gave {_describe(codes)}"
        assert not codes.is_floating_point() or torch.isfinite(codes).all(), "encode(x) gave non-finite codes"
    if "nll" in caps:
        first, again = (model.nll(x, k=8, seed=1, **_label(s, n, y)) for _ in range(2))
        values = first.per_example
        assert values.shape == (n,) and torch.isfinite(values).all(), f"nll(x, k=8) gave {_describe(values)}"
        assert torch.equal(values, again.per_example), "nll(x, k=8, seed=1) differs between two calls"
    if "decode" in caps:
        if codes is None:
            s.report.notes.append("decode not checked: without encode the kit has no codes to decode")
        else:
            _assert_images(model.decode(codes, **_decode_label(s, model, y)), shape, "decode(encode(x))")


class _HeldOut(Reporter):
    """Records each stage's held-out metrics before its first step and after its last epoch."""

    def __init__(self, test: TensorData, batch_size: int, seed: int, data: str) -> None:
        self.test, self.batch_size, self.seed, self.data = test, batch_size, seed, data
        self.before: dict[str, dict[str, float]] = {}
        self.after: dict[str, dict[str, float]] = {}

    def start(self, run_dir: Path, recipe: Any, model: Any) -> None:
        self.model = model

    def start_epoch(self, stage: str, epoch: int, epochs: int, steps: int, done: int) -> None:
        if epoch == 0 and done == 0:
            device = self.model.device
            test = TensorData(self.test.x.to(device), None if self.test.y is None else self.test.y.to(device))
            self.before[stage] = evaluate(self.model, test, self.batch_size, self.seed, stage, self.data)

    def end_epoch(self, stage: str, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        self.after[stage] = metrics


def _check_training(s: _Subject) -> None:
    short = {"epochs": s.epochs, "scheduler.warmup_epochs": 0, "ema_decay": 0}
    overrides = [f"model.{k}={json.dumps(v)}" for k, v in s.overrides.items()]
    overrides += [f"train.{k}={v}" for k, v in {**short, "sample_grid": 16, "checkpoint_every": 0}.items()]
    overrides += [f"stages.{stage}.{k}={v}" for stage in s.cls.stages for k, v in short.items()]
    held_out = _HeldOut(s.data.test, s.recipe.train.eval_batch_size, s.seed, s.data.name)
    run = train(
        s.name,
        s.recipe_name,
        data=s.data.name,
        seed=s.seed,
        overrides=overrides,
        out=str(s.workdir / "runs"),
        device=str(s.device),
        reporter=held_out,
    )
    assert (run.path / modelfile.WEIGHTS_FILE).is_file(), "the run folder has no weights"
    for stage in s.cls.stages:
        before, after = held_out.before[stage], held_out.after[stage]
        # The headline summarises the first stage; a later stage (a prior fitted to frozen
        # codes) is judged by its own objective, which `evaluate` reports as 'loss'.
        first = stage == s.cls.stages[0]
        metric = s.cls.headline_metric if first and s.cls.headline_metric in after else "loss"
        assert metric in after and metric in before, f"the '{stage}' evaluation reports neither headline nor 'loss'"
        assert after[metric] < before[metric], (
            f"held-out {metric} of stage '{stage}' went from {before[metric]:.5g} to {after[metric]:.5g} "
            f"in {s.epochs} epoch(s) on {s.data.name} ({run.steps} steps in all); training should lower it"
        )


_CHECKS: dict[str, Callable[[_Subject], None]] = {
    "declaration": _check_declaration,
    "recipes": _check_recipes,
    "loss_and_gradients": _check_loss_and_gradients,
    "sync_free_steps": _check_sync_free_steps,
    "config_round_trip": _check_config_round_trip,
    "determinism": _check_determinism,
    "save_load": _check_save_load,
    "uses": _check_uses,
    "training": _check_training,
}


# ------------------------------------------------------------------------- helpers
def _generator(s: _Subject, seed: int) -> torch.Generator:
    return torch.Generator(s.device).manual_seed(seed)


def _label(s: _Subject, n: int, y: Tensor | None = None) -> dict[str, Any]:
    """The `label=` keyword a conditional family needs (the batch's labels, or fixed ones)."""
    if not s.cls.conditional:
        return {}
    return {"label": y if y is not None else torch.arange(n, device=s.device) % s.config.num_classes}


def _decode_label(s: _Subject, model: Family, y: Tensor | None) -> dict[str, Any]:
    """A conditional family's decode gets the labels too when its signature takes `label`."""
    parameters = inspect.signature(model.decode).parameters
    takes = "label" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    return _label(s, len(y) if y is not None else 0, y) if takes else {}


def _outputs(s: _Subject, model: Family) -> dict[str, Tensor]:
    """Everything observable about a model in eval mode, under fixed noise."""
    model.eval()
    out: dict[str, Tensor] = {}
    x, y = s.batch.x, s.batch.y
    with torch.no_grad():
        for stage in s.cls.stages:
            for objective in model.objectives(stage):
                with seeded(s.seed):
                    result = model(s.batch, objective=objective.name, stage=stage)
                out[f"{stage}/{objective.name} loss"] = result.total
                out.update({f"{stage}/{objective.name} {k}": v for k, v in result.terms.items()})
            with seeded(s.seed):
                out.update({f"evaluate('{stage}') {k}": v for k, v in model.evaluate(s.batch, stage).items()})
        caps = s.cls.capabilities()
        with seeded(s.seed):
            if "sample" in caps:
                out["sample"] = model.sample(4, generator=_generator(s, s.seed), **_label(s, 4))
            if "reconstruct" in caps:
                out["reconstruct"] = model.reconstruct(x, **_label(s, len(x), y))
            if "encode" in caps:
                out["encode"] = model.encode(x, **_label(s, len(x), y))
                if "decode" in caps:
                    out["decode"] = model.decode(out["encode"], **_decode_label(s, model, y))
    return out


def _assert_same_outputs(s: _Subject, model: Family, other: Family, what: str) -> None:
    mine, theirs = _outputs(s, model), _outputs(s, other)
    assert mine.keys() == theirs.keys(), f"{what} reports other outputs: {sorted(mine)} vs {sorted(theirs)}"
    differ = [k for k in mine if not torch.equal(mine[k], theirs[k])]
    assert not differ, f"{what} gives different outputs for: {', '.join(differ)}"


def _load_exactly(model: Family, state: Mapping[str, Tensor], what: str) -> None:
    mine = model.state_dict()
    problems = [f"missing {k}" for k in mine.keys() - state.keys()]
    problems += [f"unexpected {k}" for k in state.keys() - mine.keys()]
    problems += [
        f"{k} is {list(mine[k].shape)}, not {list(state[k].shape)}"
        for k in mine.keys() & state.keys()
        if mine[k].shape != state[k].shape
    ]
    assert not problems, f"{what} does not take the original's weights: {', '.join(sorted(problems)[:4])}"
    model.load_state_dict(state)


def _assert_loss_output(out: Any, where: str) -> None:
    assert isinstance(out, LossOutput), f"{where} returned {type(out).__name__}, not zoo.LossOutput"
    assert isinstance(out.total, Tensor) and out.total.dim() == 0, f"{where}: total must be a scalar tensor"
    assert torch.isfinite(out.total), f"{where}: total is {out.total.item()}"
    assert isinstance(out.terms, dict), f"{where}: terms must be a dict of named scalars"
    _assert_finite_scalars(out.terms, f"{where} terms")


def _assert_finite_scalars(values: Mapping[str, Any], where: str) -> None:
    for key, value in values.items():
        assert isinstance(key, str) and key, f"{where}: names must be non-empty strings, got {key!r}"
        assert isinstance(value, Tensor) and value.dim() == 0, f"{where}: '{key}' is {_describe(value)}, not a scalar"
        assert torch.isfinite(value), f"{where}: '{key}' is {value.item()}"


def _assert_images(images: Any, shape: tuple[int, ...], where: str) -> None:
    assert isinstance(images, Tensor), f"{where} returned {type(images).__name__}, not a tensor"
    assert tuple(images.shape) == shape, f"{where} has shape {list(images.shape)}, expected {list(shape)}"
    assert images.is_floating_point() and torch.isfinite(images).all(), f"{where} must be finite floats"
    if len(shape) == 4:  # images are in [0, 1]; vectors and signals may be any real values
        low, high = images.min().item(), images.max().item()
        assert low >= 0 and high <= 1, f"{where} has values in [{low:.4g}, {high:.4g}], outside [0, 1]"


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {list(value.shape)}"
    return f"a {type(value).__name__}"
