"""Recipes: YAML files that say how to train a family (model config, data, optimiser,
schedule, epochs), validated in full before a step is taken.

Precedence: the dataclass defaults below (and the family's config defaults), then the
recipe file, then dotted `--set key=value` overrides.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from zoo.config import MAX_SEED, check, from_dict, to_dict
from zoo.datasets.reference import canonical_data_ref, parse_data_ref, resolve_loader
from zoo.errors import IncompatiblePluginError, InvalidInputError, NotFoundError, ZooError, did_you_mean
from zoo.plugin import FamilySpec
from zoo.registry import families


@dataclass
class OptimizerConfig:
    """Passed to timm's `create_optimizer_v2` (name is timm's `opt`: adam, adamw, sgd, lamb, …)."""

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] | None = None
    #: torch's fused implementation (one kernel for every parameter; adam, adamw and sgd).
    fused: bool = False

    def __post_init__(self) -> None:
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, f"weight_decay must be ≥ 0, got {self.weight_decay}")


@dataclass
class SchedulerConfig:
    """Passed to timm's `create_scheduler_v2`, stepped after every update; name 'none' keeps lr fixed."""

    name: str = "cosine"
    #: timm's warm-up: from warmup_lr to the schedule's rate over this many epochs.
    warmup_epochs: int = 0
    min_lr: float = 0.0
    warmup_lr: float = 1e-5
    #: zoo's warm-up, on top of any schedule (also 'none'): the scheduled rate times
    #: min(1, (u + 1) / warmup_steps) at optimiser update u, against exploding first steps.
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        check(self.warmup_epochs >= 0, f"warmup_epochs must be ≥ 0, got {self.warmup_epochs}")
        check(self.min_lr >= 0, f"min_lr must be ≥ 0, got {self.min_lr}")
        check(self.warmup_lr >= 0, f"warmup_lr must be ≥ 0, got {self.warmup_lr}")
        check(self.warmup_steps >= 0, f"warmup_steps must be ≥ 0, got {self.warmup_steps}")


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    #: Per-objective optimisers (e.g. a GAN's `critic`); objectives not named use `optimizer`.
    optimizers: dict[str, OptimizerConfig] = field(default_factory=dict)
    #: Decay of an exponential moving average of the weights (timm ModelEmaV3); 0 turns it off.
    ema_decay: float = 0.0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    #: Store image tensors channels-last (NHWC), which suits convolutions on many CPUs and GPUs.
    channels_last: bool = False
    #: Run the model through torch.compile (a one-off compile cost at start).
    compile: bool = False
    #: Under bf16/fp16 autocast, compute the model's convolutions as window gathers and
    #: matmuls (`zoo.matmul_conv`) where that beats oneDNN's kernels on this CPU (with AMX
    #: most small convolutions, without it the transposed ones).
    matmul_conv: bool = False
    #: Clip the gradient norm of each objective's parameters to this; 0 turns it off. The
    #: norm before clipping is logged as `grad_norm` either way (not under fp16).
    grad_clip: float = 0.0
    log_every: int = 20
    #: Also checkpoint every this many steps (always at the end of each epoch); 0 turns it off.
    checkpoint_every: int = 0
    #: Test images per forward pass of the held-out evaluation. Larger is not faster on CPU:
    #: a 500-image batch's activations (100 MB for the digits vae) are above glibc's mmap
    #: threshold, so every batch faults in fresh pages (27,000–38,000 faults an evaluation,
    #: 0.15–1 s on 2 cores, as the host makes faults cheap or dear); at 256 the memory is
    #: reused (no faults after the first evaluation, 0.1–0.14 s).
    eval_batch_size: int = 256
    #: Images in the sample grid written after each epoch; 0 turns it off.
    sample_grid: int = 64
    #: Keep model.safetensors from the epoch with the lowest held-out headline metric of the
    #: stage (for models that get worse with longer training, such as GANs), not the last one.
    keep_best: bool = False

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"epochs must be ≥ 1, got {self.epochs}")
        check(self.batch_size >= 1, f"batch_size must be ≥ 1, got {self.batch_size}")
        check(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}")
        check(self.grad_clip >= 0, f"grad_clip must be ≥ 0, got {self.grad_clip}")
        check(self.log_every >= 1, f"log_every must be ≥ 1, got {self.log_every}")
        check(self.checkpoint_every >= 0, f"checkpoint_every must be ≥ 0, got {self.checkpoint_every}")
        check(self.eval_batch_size >= 1, f"eval_batch_size must be ≥ 1, got {self.eval_batch_size}")
        check(self.sample_grid >= 0, f"sample_grid must be ≥ 0, got {self.sample_grid}")


@dataclass
class Recipe:
    family: str
    data: str = "mnist-5k"
    seed: int = 0
    description: str = ""
    #: Overrides of the family's config dataclass.
    model: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    #: Per-stage overrides of `train` for multi-stage families (e.g. `prior: {epochs: 20}`).
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(0 <= self.seed <= MAX_SEED, f"seed must be in 0..{MAX_SEED}, got {self.seed}")

    def stage_train(self, stage: str) -> TrainConfig:
        """The train config of `stage`: `train` with the stage's overrides merged in."""
        merged = _deep_merge(to_dict(self.train), self.stages.get(stage, {}))
        return from_dict(TrainConfig, merged, where=f"stages.{stage}")

    def to_yaml(self) -> str:
        return yaml.safe_dump(to_dict(self), sort_keys=False)


def recipe_names(spec: FamilySpec) -> list[str]:
    """Names of the recipes a family ships (file stems in its recipes package); a recipes
    package that does not import is a broken plugin, not one without recipes."""
    if not spec.recipes:
        return []
    try:
        folder = resources.files(spec.recipes)
    except (ImportError, TypeError) as err:
        raise IncompatiblePluginError(
            f"family '{spec.name}' declares its recipes in '{spec.recipes}', which does not import: "
            f"{type(err).__name__}: {err}"
        ) from None
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith((".yaml", ".yml")))


def check_shipped_recipes(family: str) -> None:
    """Refuse, with the reason, a family whose recipes cannot be trained: a recipes package
    that does not import, a default recipe it does not ship, a recipe that does not validate."""
    spec = families.get(family).spec
    names = recipe_names(spec)
    if names and spec.default_recipe not in names:
        raise IncompatiblePluginError(
            f"default recipe '{spec.default_recipe}' is not among its recipes ({', '.join(names)})"
        )
    for name in names:
        try:
            load_recipe(family, name)
        except ZooError as err:
            raise IncompatiblePluginError(f"recipe '{name}' does not validate: {err}") from None


def load_recipe(
    family: str, recipe: str | os.PathLike | Recipe | None = None, overrides: str | Sequence[str] = ()
) -> Recipe:
    """The validated recipe `recipe` (a name the family ships, a YAML path or a Recipe) with
    `key=value` overrides (one, or a list) applied; the family's default recipe when `recipe` is None."""
    entry = families.get(family)
    data = to_dict(recipe) if isinstance(recipe, Recipe) else _read_recipe(entry.spec, recipe)
    data.setdefault("family", entry.name)
    if data["family"] != entry.name and data["family"] != entry.qualified_name:
        raise InvalidInputError(f"recipe is for family '{data['family']}', not '{family}'")
    # A family whose short name another package owns is trained under `package:name`.
    data["family"] = entry.name if entry.status == "ok" else entry.qualified_name
    for item in [overrides] if isinstance(overrides, str) else overrides:
        apply_override(data, item)
    return validate_recipe(data)


#: Train options that shape the model once for every stage, so a stage cannot override them.
WHOLE_RUN = {"channels_last", "matmul_conv"}


def validate_recipe(data: dict[str, Any]) -> Recipe:
    """Check everything a run will need: schema, data name, model config, stage configs."""
    recipe = from_dict(Recipe, data)
    # Stored in recipe.yaml and config.json: a relative path would load other data, or none,
    # from another working directory.
    recipe = dataclasses.replace(recipe, data=canonical_data_ref(recipe.data))
    resolve_loader(parse_data_ref(recipe.data))
    from zoo.factory import family_class  # imports torch; recipes stay light to list

    cls = family_class(recipe.family)
    cls.build_config(recipe.model)
    for stage in recipe.stages:
        if stage not in cls.stages:
            raise InvalidInputError(f"unknown stage 'stages.{stage}'{did_you_mean(stage, cls.stages)}")
        misplaced = sorted(WHOLE_RUN & set(recipe.stages[stage]))
        if misplaced:
            key = misplaced[0]
            raise InvalidInputError(f"stages.{stage}.{key}: set train.{key} instead; it applies to the whole run")
    for stage in cls.stages:
        where = f"stages.{stage}" if stage in recipe.stages else "train"
        config = recipe.stage_train(stage)
        _check_timm_names(config, where)
        if recipe.train.matmul_conv and config.precision == "fp32":
            raise InvalidInputError(
                f"train.matmul_conv speeds up bf16 and fp16 training only, and {where}.precision is fp32: "
                "set train.precision=bf16"
            )
    return recipe


#: timm schedulers that step on a fixed schedule (plateau needs a metric; 'none' keeps lr fixed).
SCHEDULERS = ("cosine", "tanh", "step", "multistep", "poly", "rsqrt", "constant", "none")


def _check_timm_names(config: TrainConfig, where: str) -> None:
    from timm.optim import list_optimizers

    known = list_optimizers()
    for name, opt in [("optimizer", config.optimizer), *((f"optimizers.{k}", v) for k, v in config.optimizers.items())]:
        if opt.name.lower() not in known:
            raise InvalidInputError(
                f"{where}.{name}.name: timm has no optimizer '{opt.name}'{did_you_mean(opt.name, known)}"
            )
    name = config.scheduler.name
    if name not in SCHEDULERS:
        raise InvalidInputError(f"{where}.scheduler.name: unknown scheduler '{name}'{did_you_mean(name, SCHEDULERS)}")


def parse_recipe_text(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise InvalidInputError(f"{where} is not valid YAML{at}: {getattr(err, 'problem', err)}") from None
    if data is None:
        raise InvalidInputError(f"{where} is empty: a recipe is a YAML mapping (data, model, train, …)")
    if not isinstance(data, dict):
        raise InvalidInputError(f"{where} must be a YAML mapping, got {type(data).__name__}")
    return data


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply `a.b.c=value` (value parsed as YAML: 4, 1e-3, true, [1, 2], text) in place.
    `data=…` is a data reference, text whatever YAML would make of it (`folder:/a: b`)."""
    key, sep, raw = item.partition("=")
    path = key.strip().split(".")
    if not sep or not all(path):
        raise InvalidInputError(f"override '{item}' must look like key=value (e.g. model.beta=4)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if path == ["data"] and not isinstance(value, str):
        value = raw.strip()
    node = data
    for i, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise InvalidInputError(f"override '{item}': '{'.'.join(path[: i + 1])}' is not a section")
        node = child
    node[path[-1]] = value


def _read_recipe(spec: FamilySpec, recipe: str | os.PathLike | None) -> dict[str, Any]:
    if recipe is None:
        if not recipe_names(spec):
            return {}  # a family that ships no recipes trains with the defaults
        recipe = spec.default_recipe
    text_path = str(recipe)
    if text_path.endswith((".yaml", ".yml")) or os.sep in text_path:
        path = Path(text_path)
        if not path.is_file():
            raise NotFoundError(f"no recipe file at '{path}'")
        try:
            return parse_recipe_text(path.read_text(encoding="utf-8"), str(path))
        except UnicodeDecodeError:
            raise InvalidInputError(f"recipe file '{path}' is not UTF-8 text") from None
    names = recipe_names(spec)
    if text_path not in names:
        raise NotFoundError(f"family '{spec.name}' has no recipe '{text_path}'{did_you_mean(text_path, names)}")
    resource = resources.files(spec.recipes) / f"{text_path}.yaml"
    if not resource.is_file():
        resource = resources.files(spec.recipes) / f"{text_path}.yml"
    return copy.deepcopy(parse_recipe_text(resource.read_text(encoding="utf-8"), f"recipe '{spec.name}/{text_path}'"))


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
