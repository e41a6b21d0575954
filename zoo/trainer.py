"""The one training engine for every family.

Read top to bottom: `train()` resolves a recipe (or a run to resume) and hands it to
`Trainer.fit()`, which builds the model and, for each stage the family declares, one
optimiser and LR schedule per objective (timm's factories), then loops epochs → batches →
objectives. After every epoch it gives the family the training split (`after_epoch`, for
statistics such as the ae's latent Gaussian), evaluates on the test split (in the training
precision), writes a sample grid, the model folder and a checkpoint. Checkpoints hold
everything needed to continue bit for bit on the CPU: weights, optimiser and EMA state,
RNG states, position in the epoch (GPU kernels are not deterministic by default, so a GPU
run resumed matches an uninterrupted one up to rounding). A run resumes on another kind of
device too: its RNG state for a generator it lacks is drawn afresh.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import random
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo import atomic, distributed, matmul_conv, modelfile
from zoo.background_writes import BackgroundWriter
from zoo.checkpoint import CHECKPOINT_FILE, checkpoint_bytes, load_checkpoint
from zoo.datasets.splits import Splits, TensorData, load_dataset
from zoo.devices import autocast, check_speed_options, resolve_device, seeded
from zoo.distributed import World
from zoo.errors import CorruptFileError, InvalidInputError, NotFoundError, StorageError, TrainingError
from zoo.factory import family_class
from zoo.family import Batch, Family
from zoo.garbage_collection import existing_objects_frozen
from zoo.modelcard import model_card
from zoo.outputs import output_bytes, output_suffix
from zoo.plots import loss_curve
from zoo.progress import Reporter
from zoo.recipes import Recipe, TrainConfig, apply_override, load_recipe, parse_recipe_text, validate_recipe
from zoo.runfolder import LOSS_PLOT, RECIPE_FILE, SAMPLES_DIR, MetricsLog, new_run_dir


@dataclass
class Run:
    """What a training left: its folder, the trained model and its last held-out metrics."""

    path: Path
    model: Family
    metrics: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0
    interrupted: bool = False


def train(
    family: str | None = None,
    recipe: str | os.PathLike | Recipe | None = None,
    *,
    data: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    overrides: str | Sequence[str] = (),
    out: str = "runs",
    device: str = "auto",
    resume: str | Path | None = None,
    stage: str | None = None,
    reporter: Reporter | None = None,
) -> Run:
    """Train `family` with `recipe` (a name the family ships, a YAML path or a Recipe; the
    family's default if None, the Recipe's family if `family` is None), or continue the run
    `resume`. `overrides` are `key=value` items, or one.

    `data`, `epochs`, `batch_size` and `seed` are shorthands for the overrides
    `data=…`, `train.epochs=…`, `train.batch_size=…`, `seed=…`. With `stage`, the run
    `resume` trains that stage (and the ones after it) again from its current weights, with
    fresh optimisers; `epochs` and overrides of `stages.<stage>.…` then apply to that stage."""
    if isinstance(overrides, str):
        overrides = [overrides]
    if family is None and isinstance(recipe, Recipe):
        family = recipe.family
    shorthand = {"data": data, "train.epochs": epochs, "train.batch_size": batch_size, "seed": seed}
    if stage is not None:
        if resume is None or family is not None or recipe is not None:
            raise InvalidInputError(f"--stage {stage} trains a stage of an existing run: pass --resume RUN")
        if any(v is not None for k, v in shorthand.items() if k != "train.epochs"):
            raise InvalidInputError("--stage takes --epochs and --set stages.<stage>.… only")
    elif resume is not None:
        if (
            family is not None
            or recipe is not None
            or overrides
            or any(v is not None for k, v in shorthand.items() if k != "train.epochs")
        ):
            raise InvalidInputError("--resume continues a run as it was recipe'd; only --epochs may change")
    elif family is None:
        raise InvalidInputError("name a family to train (see `zoo list`)")
    world, chosen = distributed.setup(device)
    try:
        if not world.is_main:
            reporter = None
        if stage is not None:
            trainer = Trainer.restart_stage(Path(resume), stage, epochs, list(overrides), chosen, reporter, world)
        elif resume is not None:
            trainer = Trainer.resume(Path(resume), epochs=epochs, device=chosen, reporter=reporter, world=world)
        else:
            extra = [f"{k}={v}" for k, v in shorthand.items() if v is not None]
            resolved = load_recipe(family, recipe, [*overrides, *extra])
            trainer = Trainer(resolved, None, device=chosen, reporter=reporter, world=world, out=out)
        run = trainer.fit()
    except BaseException as err:
        # No shutdown barrier: an error this process alone met (a failed write on rank 0)
        # leaves the others waiting in a collective it will never join; torchrun stops them
        # once this process exits.
        if world.distributed and distributed.lost_contact(err):
            raise TrainingError(
                f"data-parallel process {world.rank} lost contact with the others (one of them failed or was stopped)"
            ) from None
        raise
    distributed.shutdown(world)
    return run


#: Under data parallelism, a second SIGINT this soon after the first is the same Ctrl-C.
SAME_CTRL_C_SECONDS = 1.0


class _StopRequested(Exception):
    pass


class Trainer:
    def __init__(
        self,
        recipe: Recipe,
        run_dir: Path | None,
        device: str | torch.device = "auto",
        reporter: Reporter | None = None,
        checkpoint: dict[str, Any] | None = None,
        world: World | None = None,
        out: str | Path = "runs",
    ) -> None:
        """`run_dir` None: a new run, whose folder is made under `out` once the model is built."""
        self.recipe = recipe
        self.run_dir = run_dir
        self.out = out
        self.device = resolve_device(device)
        # On CPU a finiteness check per step costs nothing; on accelerators it would sync, so
        # there the steps are checked where they are logged or checkpointed.
        self.checks_every_step = self.device.type == "cpu"
        self.reporter = reporter or Reporter()
        self.world = world or World()
        self.log = MetricsLog(run_dir, writer=self.world.is_main) if run_dir is not None else None
        self.resume_state = checkpoint
        #: For a resumed run: what brings its folder back to the checkpoint, once it is built.
        self.rewind: functools.partial | None = None
        self.stop_requested = False

    # ---------------------------------------------------------------- resume
    @classmethod
    def resume(
        cls, run_dir: Path, epochs: int | None, device: str | torch.device, reporter: Reporter | None, world: World
    ) -> Trainer:
        data = _read_run_recipe(run_dir)
        recipe, state = _run_state(run_dir, data)
        stages = family_class(recipe.family).stages
        done = f"{state['epoch']} epochs" + (f" of stage '{stages[state['stage']]}'" if len(stages) > 1 else "")
        if epochs is not None:
            if epochs <= state["epoch"]:
                raise InvalidInputError(f"run '{run_dir}' has trained {done}: --epochs must be more than that")
            # The epochs of the stage the run is in (the last one once it has finished).
            key = "train.epochs" if len(stages) == 1 else f"stages.{stages[state['stage']]}.epochs"
            apply_override(data, f"{key}={epochs}")
            recipe = validate_recipe(data)
        elif state["finished"] and state["epoch"] >= recipe.stage_train(stages[state["stage"]]).epochs:
            # (A recipe with more epochs than the checkpoint is an extension whose first
            # epoch did not land, e.g. on a full disk: it goes on.)
            raise InvalidInputError(f"run '{run_dir}' is finished after {done}; pass --epochs N with more to train on")
        trainer = cls(recipe, run_dir, device=device, reporter=reporter, checkpoint=state, world=world)
        trainer.rewind = functools.partial(trainer._rewind_run_folder, state["metrics_bytes"], epochs is not None, ())
        return trainer

    @classmethod
    def restart_stage(
        cls,
        run_dir: Path,
        stage: str,
        epochs: int | None,
        overrides: list[str],
        device: str | torch.device,
        reporter: Reporter | None,
        world: World,
    ) -> Trainer:
        """Train `stage` of the run in `run_dir` again, from the weights its checkpoint holds:
        e.g. a longer or different prior for a trained VQ-VAE. The stage's records, sample
        grids and later stages' are replaced; earlier stages are kept as they were."""
        data = _read_run_recipe(run_dir)
        stages = family_class(str(data.get("family"))).stages
        if stage not in stages:
            raise InvalidInputError(
                f"family '{data.get('family')}' has no stage '{stage}' (stages: {', '.join(stages)})"
            )
        for item in overrides:
            if not item.startswith(f"stages.{stage}."):
                raise InvalidInputError(f"with --stage {stage}, overrides must be stages.{stage}.…, not '{item}'")
            apply_override(data, item)
        if epochs is not None:
            apply_override(data, f"stages.{stage}.epochs={epochs}")
        recipe, state = _run_state(run_dir, data)
        index = stages.index(stage)
        if state["stage"] < index:
            raise InvalidInputError(
                f"run '{run_dir}' has not finished stage '{stages[index - 1]}': continue it with --resume first"
            )
        trainer = cls(recipe, run_dir, device=device, reporter=reporter, checkpoint=state, world=world)
        start = state.get("stage_starts", {}).get(stage, state["metrics_bytes"])
        trainer.rewind = functools.partial(trainer._rewind_run_folder, start, True, stages[index:])
        state.update(stage=index, epoch=0, batch=0, finished=False, restart=True, best=None)
        return trainer

    def _rewind_run_folder(self, log_bytes: int, recipe_changed: bool, cleared_stages: tuple[str, ...]) -> None:
        """Bring a resumed run's folder back to its checkpoint (and to the new recipe): done only
        once the run has been built, so that a resume refused there changes nothing."""
        if not os.access(self.run_dir, os.W_OK):  # else an epoch would be trained before the first write fails
            raise StorageError(f"cannot write into '{self.run_dir}': it is read-only")
        self.log.rewind(log_bytes)
        _remove_stale_temporaries(self.run_dir)
        family = type(self.model)
        for stage in cleared_stages:
            for grid in (self.run_dir / SAMPLES_DIR).glob(f"{_grid_prefix(family, stage)}epoch-*.*"):
                grid.unlink()
        if recipe_changed:
            atomic.write_text(self.run_dir / RECIPE_FILE, self.recipe.to_yaml())

    # ---------------------------------------------------------------- setup
    def _build(self) -> None:
        recipe = self.recipe
        cls = family_class(recipe.family)
        self.data: Splits = load_dataset(recipe.data)
        compiled = any(recipe.stage_train(stage).compile for stage in cls.stages)
        channels_last = recipe.train.channels_last and len(self.data.shape) == 3  # images only
        check_speed_options(self.device, channels_last, compiled)
        self.data_digest = self.data.digest()
        trained_on = (self.resume_state or {}).get("data_sha256", self.data_digest)
        if trained_on != self.data_digest:
            raise InvalidInputError(
                f"the data '{recipe.data}' is not what run '{self.run_dir}' trained on (its contents "
                "changed): a resume would not continue the same run; start a new one on it"
            )
        model_data = dict(recipe.model)
        declared = model_data.get("input_shape")
        if declared is not None and tuple(declared) != self.data.shape:
            raise InvalidInputError(
                f"model.input_shape {list(declared)} does not match data '{recipe.data}' "
                f"of shape {list(self.data.shape)}"
            )
        model_data["input_shape"] = list(self.data.shape)
        if "num_classes" in cls.config_class.__dataclass_fields__:
            model_data.setdefault("num_classes", self.data.num_classes)
        config = cls.build_config(model_data)
        _seed_everything(recipe.seed)
        self.model: Family = cls(config).to(self.device)
        self.model.check_data(self.data)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if recipe.train.matmul_conv:
            if not any(map(matmul_conv.supported, self.model.modules())):
                raise InvalidInputError(
                    "train.matmul_conv: the model has no convolution it applies to "
                    "(2-d, groups 1, dilation 1, square kernel a multiple of the stride)"
                )
            matmul_conv.use_matmul_convolutions(self.model)  # those faster so on this CPU
        # Same initial weights everywhere; different noise on each rank from here on.
        _seed_everything(recipe.seed + self.world.rank)
        self.train_data = self.data.train.to(self.device)
        self.test_data = self.data.test.to(self.device)
        objectives = {o.name for stage in cls.stages for o in self.model.objectives(stage)}
        # Built now, before the run has a folder, so that settings torch or timm refuse are
        # refused first; each stage takes its own when it starts.
        self.stage_optimisers: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for stage in cls.stages:
            config = recipe.stage_train(stage)
            for name in config.optimizers:
                if name not in objectives:
                    raise InvalidInputError(
                        f"train.optimizers.{name}: {recipe.family} has no objective '{name}' "
                        f"(its objectives: {', '.join(sorted(objectives))})"
                    )
            batch_size = config.batch_size
            if batch_size > len(self.train_data):
                raise InvalidInputError(
                    f"batch size {batch_size} is larger than the {len(self.train_data)} training examples"
                )
            if batch_size % self.world.size:
                raise InvalidInputError(
                    f"batch size {batch_size} does not split evenly over {self.world.size} processes"
                )
            self.stage_optimisers[stage] = self._optimisers(stage, config)
            if config.keep_best:
                self._check_headline_metric(stage)

    def _check_headline_metric(self, stage: str) -> None:
        """`train.keep_best` ranks the epochs by the headline metric: check that the stage's
        evaluation gives it (on a few test examples) now, not after an epoch."""
        headline = type(self.model).headline_metric
        few = TensorData(*(None if t is None else t[:8] for t in (self.test_data.x, self.test_data.y)))
        before = {k: v.clone() for k, v in self.model.state_dict().items()}  # a family may count its evaluations
        metrics = evaluate(self.model, few, len(few), self.recipe.seed, stage, self.recipe.data)
        self.model.load_state_dict(before)
        if headline not in metrics:
            raise InvalidInputError(
                f"train.keep_best needs the headline metric '{headline}', which the '{stage}' evaluation "
                "does not give with this recipe: set train.keep_best=false"
            )

    def _build_stage(self, stage: str, config: TrainConfig) -> None:
        from timm.utils import ModelEmaV3

        self.stage_config = config
        self.objectives = self.model.objectives(stage)
        self.steps_per_epoch = len(self.train_data) // config.batch_size
        self.optimizers, self.schedulers = self.stage_optimisers.pop(stage)
        self.ema = ModelEmaV3(self.model, decay=config.ema_decay) if config.ema_decay else None
        self.scaler = torch.amp.GradScaler(self.device.type) if config.precision == "fp16" else None
        self.used_lr: dict[str, float] = {}
        self.forward_model = self._wrap(config)

    def _optimisers(self, stage: str, config: TrainConfig) -> tuple[dict[str, Any], dict[str, Any]]:
        """One optimiser (and LR schedule, unless 'none') per objective of `stage` (timm's
        factories), by objective name."""
        from timm.optim import create_optimizer_v2
        from timm.scheduler import create_scheduler_v2

        optimizers, schedulers = {}, {}
        for objective in self.model.objectives(stage):
            opt = config.optimizers.get(objective.name, config.optimizer)
            kwargs = {"betas": opt.betas} if opt.betas is not None else {}
            if opt.fused:
                kwargs["fused"] = True
            params = [p for p in objective.parameters() if p.requires_grad]
            try:
                optimizer = create_optimizer_v2(
                    params, opt=opt.name, lr=opt.lr, weight_decay=opt.weight_decay, **kwargs
                )
            except (ValueError, AssertionError, TypeError) as err:  # e.g. betas given to sgd
                raise InvalidInputError(f"optimizer '{opt.name}': {err}") from None
            _prefer_foreach(optimizer)
            optimizers[objective.name] = optimizer
            if config.scheduler.name != "none":
                sched = config.scheduler
                try:
                    schedulers[objective.name], _ = create_scheduler_v2(
                        optimizer,
                        sched=sched.name,
                        num_epochs=config.epochs,
                        warmup_epochs=sched.warmup_epochs,
                        warmup_lr=sched.warmup_lr,
                        min_lr=sched.min_lr,
                        step_on_epochs=False,
                        updates_per_epoch=len(self.train_data) // config.batch_size,
                    )
                except (ValueError, AssertionError, TypeError) as err:  # timm asserts some settings
                    raise InvalidInputError(f"scheduler '{sched.name}': {str(err) or 'timm refuses it'}") from None
        return optimizers, schedulers

    def _wrap(self, config: TrainConfig) -> torch.nn.Module:
        """What the loop calls: the model, inside DistributedDataParallel when there are
        several processes, compiled when the recipe asks for it."""
        model: torch.nn.Module = self.model
        if self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            trained = {id(p) for o in self.objectives for p in o.parameters() if p.requires_grad}
            every = [p for p in self.model.parameters() if p.requires_grad]
            # Steps that touch only some parameters (a GAN's critic step) need DDP to look
            # for unused ones; a single objective over every parameter does not.
            partial = len(self.objectives) > 1 or len(trained) < len(every)
            model = DistributedDataParallel(model, find_unused_parameters=partial)
        if config.compile:
            model = torch.compile(model)
        return model

    # ---------------------------------------------------------------- the loop
    def fit(self) -> Run:
        self._build()
        if self.resume_state is not None:
            try:
                self.model.load_state_dict(self.resume_state["model"])
            except RuntimeError as err:
                why = str(err).splitlines()[-1].strip()
                raise CorruptFileError(f"the checkpoint in '{self.run_dir}' does not fit its model: {why}") from None
        if self.rewind is not None and self.world.is_main:
            self.rewind()
        cls = type(self.model)
        state = self.resume_state or {"stage": 0, "epoch": 0, "batch": 0, "step": 0, "updates": {}}
        if self.resume_state is None:
            # Only now, with everything checked and built, does the run get its folder.
            made = new_run_dir(self.out, self.recipe.family, self.recipe.data) if self.world.is_main else None
            self.run_dir = self.world.broadcast(made)
            self.log = MetricsLog(self.run_dir, writer=self.world.is_main)
            if self.world.is_main:
                atomic.write_text(self.run_dir / RECIPE_FILE, self.recipe.to_yaml())
                modelfile.save(self.model, self.run_dir, data=self.recipe.data)
        self.step = state["step"]
        self.updates: dict[str, int] = dict(state["updates"])
        self.started = time.perf_counter() - state.get("seconds", 0.0)
        self.metrics: dict[str, float] = dict(state.get("metrics", {}))
        self.reporter.start(self.run_dir, self.recipe, self.model)
        self.best: dict[str, Any] | None = state.get("best")
        self.stage_starts: dict[str, int] = dict(state.get("stage_starts", {}))
        interrupted = disk_full = False
        with self._sigint_stops_training():
            try:
                with self._writes_landing():
                    for stage_index in range(state["stage"], len(cls.stages)):
                        stage = cls.stages[stage_index]
                        self._build_stage(stage, self.recipe.stage_train(stage))
                        resumed = self.resume_state is not None and stage_index == state["stage"]
                        if resumed and not state.get("restart"):
                            self._restore_rng(state["rng"])
                        # A checkpoint from a stage's start (the one written when the stage
                        # before ended) holds that stage's optimisers and EMA, not this one's.
                        if resumed and not state.get("restart") and (state["epoch"], state["batch"]) != (0, 0):
                            self._restore(state)
                            start_epoch, start_batch = state["epoch"], state["batch"]
                        else:
                            start_epoch, start_batch = 0, 0
                            self.stage_starts[stage] = self.log.size()
                            # Each stage's schedules start from zero updates.
                            self.updates.update({objective.name: 0 for objective in self.objectives})
                        if self.step == 0 and stage_index == 0:  # a checkpoint to go back to from the start
                            self._save_checkpoint(0, 0, 0, finished=False)
                        self._run_stage(stage_index, start_epoch, start_batch)
            except _StopRequested:
                interrupted = True
            except StorageError as err:
                disk_full = True
                raise StorageError(
                    f"{err}; training stopped at step {self.step} with the last good checkpoint kept: "
                    f"`zoo train --resume {self.run_dir}` continues from it"
                ) from None
            finally:
                # Drawn once at the end (also after a stop or a non-finite loss), not every
                # epoch: matplotlib costs more than a small model's epoch.
                if self.world.is_main:
                    try:
                        loss_curve(self.log.records(), self.run_dir / LOSS_PLOT, metric=cls.headline_metric)
                    except StorageError:
                        if not disk_full:  # else the error above says it all
                            raise
        model = self._eval_model() if interrupted else self._finish()
        return Run(self.run_dir, model, self.metrics, self.step, time.perf_counter() - self.started, interrupted)

    def _run_stage(self, stage_index: int, start_epoch: int, start_batch: int) -> None:
        config = self.stage_config
        stage = type(self.model).stages[stage_index]
        self.model.train()
        with existing_objects_frozen():
            for epoch in range(start_epoch, config.epochs):
                self._run_epoch(stage_index, stage, epoch, start_batch if epoch == start_epoch else 0)
                self._end_epoch(stage_index, epoch)

    def _run_epoch(self, stage_index: int, stage: str, epoch: int, start_batch: int) -> None:
        """The epoch's steps from batch `start_batch` on (a resumed run starts mid-epoch)."""
        config = self.stage_config
        order = _epoch_order(self.recipe.seed, stage_index, epoch, len(self.train_data), self.device)
        self.reporter.start_epoch(stage, epoch, config.epochs, self.steps_per_epoch, start_batch)
        # The window's sum of each term and how many steps it summed (a GAN's generator steps
        # every n_critic steps, its critic every step).
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        window_start, window_images = time.perf_counter(), 0
        for b in range(start_batch, self.steps_per_epoch):
            batch = self.train_data.batch(self.world.shard(order[b * config.batch_size : (b + 1) * config.batch_size]))
            terms = self._train_step(batch, stage, epoch)
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value
                counts[key] = counts.get(key, 0) + 1
            window_images += len(batch.x) * self.world.size
            logged = self.step % config.log_every == 0 or b == self.steps_per_epoch - 1
            if logged:
                record = self._mean_over_ranks(sums, counts)  # waits for the window's steps to end
                now = time.perf_counter()
                self._check_finite_window(record, epoch)
                record.update(self._learning_rates())
                record["images_per_s"] = window_images / max(now - window_start, 1e-9)
                self.log.append({"event": "train", "stage": stage, "epoch": epoch + 1, "step": self.step, **record})
                self.reporter.advance(b + 1, record)
                sums, counts, window_start, window_images = {}, {}, now, 0
            # Data-parallel ranks agree on a stop where they log (a collective every step
            # would cost latency on CPU and a host-device sync on GPUs).
            stop = (logged or not self.world.distributed) and self._any_rank(self.stop_requested)
            periodic = config.checkpoint_every and self.step % config.checkpoint_every == 0
            if (stop or periodic) and sums and not self.checks_every_step:
                # The steps since the last record are unchecked: a checkpoint must not keep
                # weights that a non-finite step has spoilt.
                self._check_finite_window(self._mean_over_ranks(sums, counts), epoch)
            if stop or periodic:
                self._save_checkpoint(stage_index, epoch, b + 1, finished=False)
            if stop:
                raise _StopRequested

    def _train_step(self, batch: Batch, stage: str, epoch: int) -> dict[str, torch.Tensor]:
        config = self.stage_config
        terms: dict[str, torch.Tensor] = {}
        for objective in self.objectives:
            if self.step % objective.every:
                continue
            optimizer = self.optimizers[objective.name]
            optimizer.zero_grad(set_to_none=True)
            with autocast(self.device, config.precision):
                out = self.forward_model(batch, objective=objective.name, stage=stage)
            prefix = "" if len(self.objectives) == 1 else f"{objective.name}/"
            # One process checks the loss here, to name the bad terms. Data-parallel ranks check
            # the gradient norm alone, which DDP's averaging makes the same on every rank (a
            # non-finite loss on any rank reaches it): they stop together with no collective per step.
            if self.checks_every_step and not self.world.distributed and not torch.isfinite(out.total):
                self._diverged(out.terms | {"loss": out.total}, epoch, prefix)
            loss = self.scaler.scale(out.total) if self.scaler else out.total
            loss.backward()
            if self.scaler:
                self.scaler.unscale_(optimizer)
            grad_norm = self._grad_norm(optimizer, config.grad_clip)
            # A finite loss with a non-finite gradient would poison the weights in this step:
            # stop before it (fp16's scaler skips such steps itself).
            if self.checks_every_step and not self.scaler and not torch.isfinite(grad_norm):
                self._diverged({"grad_norm": grad_norm}, epoch, prefix)
            with self._lr_warm_up(optimizer, self.updates.get(objective.name, 0)) as lr:
                self.used_lr[objective.name] = lr
                if self.scaler:
                    self.scaler.step(optimizer)
                    self.scaler.update()
                else:
                    optimizer.step()
            self.updates[objective.name] = self.updates.get(objective.name, 0) + 1
            if objective.name in self.schedulers:
                self.schedulers[objective.name].step_update(num_updates=self.updates[objective.name])
            terms[f"{prefix}loss"] = out.total.detach().float()
            terms.update({f"{prefix}{k}": v.detach().float() for k, v in out.terms.items()})
            if not self.scaler:  # fp16 steps that overflow are skipped by the scaler: inf is normal there
                terms[f"{prefix}grad_norm"] = grad_norm.detach().float()
        if self.ema is not None:
            self.ema.update(self.model, step=self.step)
        self.step += 1
        return terms

    def _grad_norm(self, optimizer: torch.optim.Optimizer, clip: float) -> torch.Tensor:
        """The gradient norm of the optimiser's parameters before clipping (logged as
        `grad_norm`), clipped to `clip` when it is > 0."""
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not params:
            return torch.zeros((), device=self.device)
        norm = _total_norm([p.grad for p in params])
        if clip:
            torch.nn.utils.clip_grads_with_norm_(params, clip, norm)
        return norm

    @contextlib.contextmanager
    def _lr_warm_up(self, optimizer: torch.optim.Optimizer, updates: int):
        """For the optimiser step inside it: the scheduled learning rates times
        (updates + 1) / scheduler.warmup_steps while updates < warmup_steps (a linear warm-up
        from 0 on top of any schedule). The scheduled rates are put back after the step, so
        the schedule, the checkpoint and a resumed run never see the factor."""
        scheduled = [group["lr"] for group in optimizer.param_groups]
        factor = _warm_up_factor(updates, self.stage_config.scheduler.warmup_steps)
        for group, lr in zip(optimizer.param_groups, scheduled, strict=True):
            group["lr"] = lr * factor
        try:
            yield scheduled[0] * factor
        finally:
            for group, lr in zip(optimizer.param_groups, scheduled, strict=True):
                group["lr"] = lr

    def _learning_rates(self) -> dict[str, float]:
        """The learning rate each objective's last step used (its first parameter group's)."""
        prefix = len(self.objectives) > 1
        return {f"{name}/lr" if prefix else "lr": lr for name, lr in self.used_lr.items()}

    def _diverged(self, terms: dict[str, torch.Tensor], epoch: int, prefix: str) -> None:
        """Stop with one line naming the non-finite terms, the step and what to try."""
        named = {f"{prefix}{k}": v for k, v in terms.items()}
        bad = {k: v for k, v in named.items() if not torch.isfinite(v).all()}
        # The total is non-finite whenever a term is; name it only when no term is.
        if len(bad) > 1:
            bad.pop(f"{prefix}loss", None)
        values = ", ".join(f"'{k}' became {_non_finite_kind(v)}" for k, v in bad.items())
        what = "gradient norm" if f"{prefix}grad_norm" in bad else "loss term" if len(bad) == 1 else "loss terms"
        self.log.append({"event": "diverged", "step": self.step, "epoch": epoch + 1, "terms": list(bad)})
        config = self.stage_config
        lr = config.optimizers.get(prefix.rstrip("/"), config.optimizer).lr
        hints = [] if config.grad_clip else ["train.grad_clip=1"]
        hints += [f"a lower train.optimizer.lr (now {lr:g})"]
        if not config.scheduler.warmup_steps:
            hints += ["train.scheduler.warmup_steps=500"]
        raise TrainingError(
            f"{what} {values} at step {self.step} (epoch {epoch + 1}); try {', '.join(hints)}; "
            f"the last good checkpoint is kept in {self.run_dir / CHECKPOINT_FILE}"
        )

    def _any_rank(self, flag: bool | torch.Tensor) -> bool:
        """Whether `flag` holds on any process (so that every rank stops together)."""
        if not self.world.distributed:
            return bool(flag)
        return bool(self.world.all_reduce(torch.tensor([float(flag)], device=self.device), "max").item())

    def _mean_over_ranks(self, sums: dict[str, torch.Tensor], counts: dict[str, int]) -> dict[str, float]:
        keys = list(sums)
        if not keys:
            return {}
        values = self.world.all_reduce(torch.stack([sums[k] / counts[k] for k in keys])) / self.world.size
        return dict(zip(keys, values.tolist(), strict=True))

    def _check_finite_window(self, record: dict[str, float], epoch: int) -> None:
        """Where steps are not checked one by one (accelerators: no syncs), their logged means are."""
        if any(not math.isfinite(v) for v in record.values()):
            self._diverged({k: torch.tensor(v) for k, v in record.items()}, epoch, "")

    # ---------------------------------------------------------------- epoch end
    def _end_epoch(self, stage_index: int, epoch: int) -> None:
        stage = type(self.model).stages[stage_index]
        if self.world.distributed:
            self._share_rank_0_buffers()
        for fitted in (self.model, self.ema.module if self.ema is not None else None):
            if fitted is not None:
                fitted.eval().after_epoch(self.train_data, stage)
        model = self._eval_model()
        # Held out in the precision it trains in, as timm's and Lightning's validation do:
        # a bf16 run evaluates in bf16 (faster; its figures within bf16 rounding of float32's).
        with autocast(self.device, self.stage_config.precision):
            metrics = evaluate(
                model, self.test_data, self.stage_config.eval_batch_size, self.recipe.seed, stage, self.recipe.data
            )
        self.metrics = metrics
        if self.world.distributed:
            self._check_replicas(epoch)
        improved = self._keep_if_best(stage, epoch, metrics)
        if self.world.is_main:
            self._write_epoch_outputs(model, stage, epoch, metrics, improved)
        self.model.train()
        last = epoch + 1 == self.stage_config.epochs and stage_index + 1 == len(type(self.model).stages)
        log_bytes = None
        if last:
            self.writer.wait()  # the log's end record follows the last model folder, landed
            log_bytes = self.log.size()  # where `--resume --epochs` continues the log: before the end record
            kept = {"kept_epoch": self.best["epoch"], **self.best["metrics"]} if self.best else metrics
            self.log.append({"event": "end", "step": self.step, "seconds": time.perf_counter() - self.started, **kept})
        # The last stage's position stays in that stage, so that `--resume --epochs` can extend it.
        stage_done = epoch + 1 == self.stage_config.epochs and not last
        if stage_done and self.best:
            # The next stage builds on the kept epoch, not on the last one (written by rank 0).
            self.writer.wait()
            self.world.barrier()
            modelfile.load_weights(self.model, self.run_dir / modelfile.WEIGHTS_FILE)
        next_stage, next_epoch = (stage_index + 1, 0) if stage_done else (stage_index, epoch + 1)
        self._save_checkpoint(next_stage, next_epoch, 0, finished=last, log_bytes=log_bytes)
        self.reporter.end_epoch(stage, epoch, self.stage_config.epochs, metrics)

    def _share_rank_0_buffers(self) -> None:
        """DDP hands rank 0's buffers (BatchNorm's running statistics) to every rank at the
        start of each forward pass, and each rank's own batches then change them: after an
        epoch's last step they differ. Rank 0's go to every rank, as DDP would send them next,
        before the evaluation, the replica check and the checkpoint."""
        modules = (self.model, self.ema.module if self.ema is not None else None)
        self.world.broadcast_tensors([b for m in modules if m is not None for b in m.buffers()])

    def _check_replicas(self, epoch: int) -> None:
        """Every process must hold the same weights and buffers; compare them with rank 0's."""
        state = torch.cat([t.detach().float().flatten() for t in self.model.state_dict().values()])
        reference = state.clone()
        torch.distributed.broadcast(reference, src=0)
        difference = self.world.all_reduce((state - reference).abs().max().reshape(1), "max").item()
        self.log.append({"event": "replicas", "epoch": epoch + 1, "step": self.step, "max_difference": difference})
        if difference > 0:
            raise TrainingError(
                f"processes hold different weights after epoch {epoch + 1} (max difference {difference:g})"
            )

    def _write_epoch_outputs(
        self, model: Family, stage: str, epoch: int, metrics: dict[str, float], improved: bool
    ) -> None:
        self.log.append(
            {
                "event": "eval",
                "split": "test",
                "stage": stage,
                "epoch": epoch + 1,
                "step": self.step,
                "seconds": time.perf_counter() - self.started,
                **metrics,
            }
        )
        if self.stage_config.sample_grid and "sample" in model.capabilities():
            with torch.random.fork_rng(devices=[]):
                generator = torch.Generator(self.device).manual_seed(self.recipe.seed)
                images = model.sample(self.stage_config.sample_grid, generator=generator)
            # Images: a grid PNG; vectors and signals: an .npy array (no plot: matplotlib costs
            # more than a small model's epoch).
            suffix = output_suffix(model.config.input_shape)
            grid = {f"{_grid_prefix(type(model), stage)}epoch-{epoch + 1:03d}{suffix}": output_bytes(images)}
            self.writer.submit(functools.partial(atomic.write_files, self.run_dir / SAMPLES_DIR, grid))
        if improved:
            files = modelfile.model_files(model, data=self.recipe.data)
            self.writer.submit(functools.partial(atomic.write_files, self.run_dir, files))

    def _keep_if_best(self, stage: str, epoch: int, metrics: dict[str, float]) -> bool:
        """Whether this epoch's model is the one to keep: always, unless `train.keep_best`,
        then only when it has the lowest held-out headline metric of the stage so far."""
        if not self.stage_config.keep_best:
            self.best = None
            return True
        headline = type(self.model).headline_metric
        if headline not in metrics:  # checked on a few examples before training; a family may still differ
            raise TrainingError(f"train.keep_best needs the headline metric '{headline}' in the '{stage}' evaluation")
        value = metrics[headline]
        if self.best is not None and self.best["stage"] == stage and not value < self.best["value"]:
            return False
        self.best = {"stage": stage, "epoch": epoch + 1, "value": value, "metrics": metrics}
        return True

    def _finish(self) -> Family:
        """Write the model card and final config.json; the model to hand back (the kept epoch's
        weights with `train.keep_best`)."""
        model, metrics = self._eval_model(), self.metrics
        if not self.world.is_main:
            return model
        if self.best:
            model, metrics = modelfile.load(self.run_dir, device=self.device), self.best["metrics"]
            self.metrics = metrics
        extra = {"kept_epoch": self.best["epoch"]} if self.best else {}
        card = model_card(model, self.recipe, metrics, samples=_latest_grid(self.run_dir))
        modelfile.save(model, self.run_dir, card=card, data=self.recipe.data, metrics=metrics, **extra)
        return model

    def _eval_model(self) -> Family:
        model = self.ema.module if getattr(self, "ema", None) is not None else self.model
        return model.eval()

    # ---------------------------------------------------------------- checkpoints
    def _save_checkpoint(
        self, stage: int, epoch: int, batch: int, finished: bool, log_bytes: int | None = None
    ) -> None:
        state = {
            "family": self.recipe.family,
            "stage": stage,
            "epoch": epoch,
            "batch": batch,
            "step": self.step,
            "updates": self.updates,
            "finished": finished,
            "seconds": time.perf_counter() - self.started,
            "metrics": self.metrics,
            "metrics_bytes": self.log.size() if log_bytes is None else log_bytes,
            "best": self.best,
            "stage_starts": self.stage_starts,
            "data_sha256": self.data_digest,
            "model": self.model.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "rng": self.world.gather(_rng_state(self.device)),
        }
        if self.world.is_main:
            data = checkpoint_bytes(state)
            self.writer.submit(functools.partial(atomic.write_bytes, self.run_dir / CHECKPOINT_FILE, data))

    @contextlib.contextmanager
    def _writes_landing(self):
        """Inside: checkpoints, model folders and sample grids are written on a background
        writer (the disk's waits overlap the next steps). Leaving: every write has landed. A
        write's error is raised then, unless the block raised its own: then the last good files
        stand (the writes are atomic) and the block's error says what happened. A stop request
        is no such error: its checkpoint must land before training reports it saved."""
        self.writer = BackgroundWriter()
        try:
            yield
        except _StopRequested:
            self.writer.close()
            raise
        except BaseException:
            with contextlib.suppress(Exception):
                self.writer.close()
            raise
        self.writer.close()

    def _restore(self, state: dict[str, Any]) -> None:
        """The stage's optimisers, EMA and loss scaler as the checkpoint holds them."""
        for name, optimizer in self.optimizers.items():
            if name in state["optimizers"]:
                optimizer.load_state_dict(state["optimizers"][name])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.module.load_state_dict(state["ema"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def _restore_rng(self, states: list[dict[str, Any]]) -> None:
        """Each process's RNG states as the checkpoint holds them (one per process)."""
        # Fresh noise where the checkpoint holds none for a generator, not that of the first
        # steps again: another process count (same data order, not bit-exact), or a run
        # trained on another kind of device (its CPU noise goes on; the accelerator's is new).
        fresh = self.recipe.seed + self.world.rank + 7919 * self.step
        if len(states) != self.world.size:
            _seed_everything(fresh)
        elif not _set_rng_state(states[self.world.rank], self.device):
            torch.get_device_module(self.device.type).manual_seed(fresh)

    @contextlib.contextmanager
    def _sigint_stops_training(self):
        """First Ctrl-C: finish the current step, checkpoint, stop. Second: stop at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        requested_at = 0.0

        def handler(signum, frame):
            nonlocal requested_at
            if self.stop_requested:
                # A torchrun worker gets the terminal's Ctrl-C and, a moment later, torchrun's
                # forwarded copy of it: under data parallelism a repeat within a second is that one.
                if self.world.distributed and time.monotonic() - requested_at < SAME_CTRL_C_SECONDS:
                    return
                raise KeyboardInterrupt
            self.stop_requested = True
            requested_at = time.monotonic()
            self.reporter.message("stopping after this step (Ctrl-C again to abort without saving)")

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            if self.world.distributed and self.stop_requested:  # torchrun's copy may be on its way
                time.sleep(max(0.0, requested_at + SAME_CTRL_C_SECONDS - time.monotonic()))
            signal.signal(signal.SIGINT, previous)


@torch.no_grad()
def evaluate(
    model: Family, data: TensorData, batch_size: int, seed: int, stage: str = "main", name: str = ""
) -> dict[str, float]:
    """The family's held-out metrics over `data` (the dataset `name`), with fixed noise (seed)
    that leaves the training RNG stream untouched. Every process evaluates the whole split
    (split-level metrics such as codebook usage are not sums over shards), so all agree."""
    was_training = model.training
    model.eval()
    with seeded(seed):
        metrics = model.evaluate_split(data.batches(batch_size), stage, data=name)
    model.train(was_training)
    return metrics


@torch.no_grad()
def _total_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all `grads` together, the same number as `torch.nn.utils.get_total_norm`'s.
    Gradients on one device in one dtype, as a family's are, need none of its grouping and
    per-tensor moves: a call per parameter, each step, that an accelerator's host must make."""
    if len({(g.device, g.dtype) for g in grads}) > 1:
        return torch.nn.utils.get_total_norm(grads)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


#: torch optimisers whose multi-tensor (`foreach`) step gives the same numbers to the bit as
#: their one-tensor-at-a-time step (tests/core/test_trainer.py); NAdam's and RAdam's do not.
_FOREACH_SAME_BITS = (
    torch.optim.Adam,
    torch.optim.AdamW,
    torch.optim.SGD,
    torch.optim.RMSprop,
    torch.optim.Adagrad,
    torch.optim.Adamax,
)


def _prefer_foreach(optimizer: torch.optim.Optimizer) -> None:
    """Give the optimiser its multi-tensor step on the CPU, where torch would loop over the
    parameters one at a time (on GPUs it picks the multi-tensor step itself): a dozen calls a
    step instead of a dozen per parameter, the same numbers."""
    if type(optimizer) not in _FOREACH_SAME_BITS:
        return
    for group in optimizer.param_groups:
        on_cpu = all(p.device.type == "cpu" for p in group["params"])
        if on_cpu and group.get("foreach") is None and not group.get("fused"):
            group["foreach"] = True


def _warm_up_factor(updates: int, steps: int) -> float:
    """The learning-rate factor of update number `updates` (from 0) in a linear warm-up over `steps`."""
    return (updates + 1) / steps if updates < steps else 1.0


def _non_finite_kind(value: torch.Tensor) -> str:
    """'nan', 'inf' or '-inf': what a non-finite tensor holds (nan first)."""
    if torch.isnan(value).any():
        return "nan"
    return "-inf" if (value == -math.inf).any() else "inf"


def _epoch_order(seed: int, stage: int, epoch: int, n: int, device: torch.device) -> torch.Tensor:
    """The data order of one epoch: a function of (seed, stage, epoch) only, so a resumed
    run sees the same batches."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + stage * 10_007 + epoch)
    return torch.randperm(n, generator=generator).to(device)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state(device: torch.device) -> dict[str, Any]:
    """The random states a step draws from: the CPU's, numpy's, Python's, and the generator
    of the accelerator this process trains on (only its own: another machine may have more
    or fewer GPUs, and this process's may have another index there)."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if device.type in ("cuda", "mps"):
        state[device.type] = torch.get_device_module(device.type).get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> bool:
    """Put back what `_rng_state` saved; False when it holds no state for `device`'s
    generator (a run trained on another kind of device)."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if device.type not in ("cuda", "mps"):
        return True
    saved = state.get(device.type)
    if isinstance(saved, list):  # an older checkpoint's: every visible GPU's, by index
        saved = saved[device.index or 0] if len(saved) > (device.index or 0) else None
    if saved is None:
        return False
    torch.get_device_module(device.type).set_rng_state(saved, device)
    return True


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Temporary files left by a process killed while writing (see zoo.atomic)."""
    for path in [*run_dir.glob(".*.tmp"), *run_dir.glob(f"{SAMPLES_DIR}/.*.tmp")]:
        path.unlink(missing_ok=True)


def _read_run_recipe(run_dir: Path) -> dict[str, Any]:
    recipe_path = run_dir / RECIPE_FILE
    if not run_dir.is_dir() or not recipe_path.is_file():
        raise NotFoundError(f"'{run_dir}' is not a zoo run folder (no {RECIPE_FILE})")
    return parse_recipe_text(recipe_path.read_text(encoding="utf-8"), str(recipe_path))


def _run_state(run_dir: Path, data: dict[str, Any]) -> tuple[Recipe, dict[str, Any]]:
    """The validated recipe and the checkpoint of a run, checked to belong together."""
    recipe = validate_recipe(data)
    state = load_checkpoint(run_dir / CHECKPOINT_FILE)
    if state.get("family") != recipe.family:
        raise InvalidInputError(
            f"checkpoint in '{run_dir}' is for family '{state.get('family')}', not '{recipe.family}'"
        )
    for key in ("stage", "epoch", "batch", "step", "metrics_bytes"):
        value = state.get(key)
        if type(value) is not int or value < 0:
            raise CorruptFileError(f"checkpoint in '{run_dir}' has {key} {value!r}, not a count")
    if not isinstance(state.get("model"), dict) or state["stage"] >= len(family_class(recipe.family).stages):
        raise CorruptFileError(f"checkpoint in '{run_dir}' is not one of a {recipe.family} run")
    return recipe, state


def _grid_prefix(cls: type[Family], stage: str) -> str:
    """Samples are samples/epoch-NNN.png (.npy for vectors and signals), or
    samples/<stage>-epoch-NNN.png for multi-stage families."""
    return "" if len(cls.stages) == 1 else f"{stage}-"


def _latest_grid(run_dir: Path) -> Path | None:
    grids = sorted((run_dir / SAMPLES_DIR).glob("*.png")) if (run_dir / SAMPLES_DIR).is_dir() else []
    return grids[-1] if grids else None
