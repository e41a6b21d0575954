"""The family contract: what every model family gives the trainer, the CLI and the Hub.

A family is an `nn.Module` built from one typed config (a dataclass that fully describes
it). It says how it is trained through `objectives(stage)`: one objective for a VAE, a
critic and a generator objective for a GAN, a second stage that fits a prior for a VQ-VAE.
The trainer builds one optimiser per objective and calls the model through `forward`, so
that data-parallel wrappers see every step.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar

import torch
from torch import Tensor, nn

from zoo.config import check, from_dict, to_dict
from zoo.errors import InvalidInputError, UnsupportedError
from zoo.plugin import PLUGIN_API_VERSION

if TYPE_CHECKING:
    from zoo.datasets.splits import Splits, TensorData
    from zoo.likelihood import NLLEstimate

CAPABILITIES = ("sample", "reconstruct", "encode", "decode", "nll")

F = TypeVar("F", bound=Callable[..., Any])


def check_batch(model: Family, x: Any, use: str) -> None:
    """Refuse, in one line, data that `model` cannot take: anything but a floating tensor of
    shape (N, *input_shape) with the dtype (outside autocast) and device of its weights.
    Without it, such data fails deep inside a layer (`mat1 and mat2 shapes cannot be multiplied`)."""
    shape = tuple(model.config.input_shape)
    expected = ", ".join(map(str, shape))
    if not isinstance(x, Tensor):
        raise InvalidInputError(f"{use} takes a tensor of shape (N, {expected}), got {type(x).__name__}")
    if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        raise InvalidInputError(f"{use} takes a batch of shape (N, {expected}), got {list(x.shape)}")
    weight = next(model.parameters())
    if not x.is_floating_point():
        raise InvalidInputError(f"{use} takes floating-point data (images in [0, 1]), got {x.dtype}")
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
        raise InvalidInputError(f"{use} takes {weight.dtype} data, as the model's weights are, got {x.dtype}")
    if x.device != weight.device:
        raise InvalidInputError(f"{use} takes data on {weight.device}, where the model is, got {x.device}")


def check_codes(z: Any, code_shape: tuple[int, ...], use: str) -> None:
    """Refuse, in one line, codes that are not a floating (N, *code_shape) tensor."""
    expected = ", ".join(map(str, code_shape))
    if not isinstance(z, Tensor) or not z.is_floating_point() or tuple(z.shape[1:]) != code_shape:
        got = f"{z.dtype} {list(z.shape)}" if isinstance(z, Tensor) else type(z).__name__
        raise InvalidInputError(f"{use} takes floating codes of shape (N, {expected}), got {got}")


def check_unit_interval(data: Splits, why: str) -> None:
    """Refuse data with values outside [0, 1] in one line, saying `why` they must be inside."""
    ranges = [torch.aminmax(part.x) for part in (data.train, data.test) if part.x.numel()]
    low, high = min(float(r.min) for r in ranges), max(float(r.max) for r in ranges)
    if low < 0 or high > 1:
        raise InvalidInputError(f"data '{data.name}' has values in {low:g} … {high:g}; {why}")


def takes_batch(method: F) -> F:
    """For a family's uses that take data first (reconstruct, encode, nll): `check_batch`,
    then the method without gradients (for gradients, call the family's networks)."""

    @functools.wraps(method)
    def checked(self: Family, x: Any, *args: Any, **kwargs: Any) -> Any:
        check_batch(self, x, f"{self.name}.{method.__name__}")
        with torch.no_grad():
            return method(self, x, *args, **kwargs)

    return checked  # type: ignore[return-value]


class Batch(NamedTuple):
    """Images in [0, 1], shape (N, *input_shape), and class labels (N,) when the data has them."""

    x: Tensor
    y: Tensor | None = None


@dataclass
class LossOutput:
    """A loss to minimise and named scalar terms to log (e.g. rec, kl, nelbo)."""

    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Objective:
    """One optimisation step a family needs: which parameters, which loss, how often."""

    name: str
    parameters: Callable[[], Iterable[nn.Parameter]]
    loss: Callable[[Batch], LossOutput]
    every: int = 1


@dataclass
class FamilyConfig:
    """Fields every family config has. `input_shape` (and `num_classes` where a family
    declares it) are filled in from the training data."""

    input_shape: tuple[int, ...] = (1, 28, 28)

    def __post_init__(self) -> None:
        check(
            len(self.input_shape) >= 1 and all(d > 0 for d in self.input_shape),
            f"input_shape must be positive sizes, got {list(self.input_shape)}",
        )


class Family(nn.Module):
    """Base class of model families. Subclasses set `name` and `config_class` and
    implement `loss`, plus whichever of sample/reconstruct/encode/decode make sense."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type[FamilyConfig]] = FamilyConfig
    #: Training stages in order; each has its own objectives, optimisers and epochs.
    stages: ClassVar[tuple[str, ...]] = ("main",)
    #: Conditional families take class labels: `sample(n, generator, label=…)` with an int or
    #: an (n,) tensor (None: labels drawn uniformly with `generator`), and `reconstruct(x, label=…)`,
    #: `encode(x, label=…)` with an (N,) tensor; their config has `num_classes`, filled from the data.
    conditional: ClassVar[bool] = False
    #: Config fields a trained model may take new values of when it is loaded (`zoo.load(…,
    #: settings=…)`, `zoo sample RUN --set model.KEY=…`): how it samples, never what it learned.
    settings: ClassVar[tuple[str, ...]] = ()
    #: The held-out metric that summarises training (lower is better); plotted and reported.
    headline_metric: ClassVar[str] = "loss"
    #: Plugin API versions this family was written against.
    api_versions: ClassVar[tuple[int, ...]] = (PLUGIN_API_VERSION,)

    def __init__(self, config: FamilyConfig) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise InvalidInputError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.config = config

    # construction -------------------------------------------------------------------
    @classmethod
    def build_config(cls, data: Mapping[str, Any] | None = None, **overrides: Any) -> FamilyConfig:
        """A validated config from plain data (as in config.json or a recipe) and keywords."""
        merged = {**(data or {}), **overrides}
        return from_dict(cls.config_class, merged, where="model")

    @classmethod
    def from_config(cls, config: FamilyConfig | Mapping[str, Any] | None = None, **overrides: Any) -> Family:
        if isinstance(config, FamilyConfig):
            config = cls.build_config(to_dict(config), **overrides) if overrides else config
        else:
            config = cls.build_config(config, **overrides)
        return cls(config)

    def config_dict(self) -> dict[str, Any]:
        return to_dict(self.config)

    # training -----------------------------------------------------------------------
    def loss(self, batch: Batch) -> LossOutput:
        raise UnsupportedError(
            f"family '{self.name}' ({type(self).__name__}) defines no loss(batch), so it cannot train"
        )

    def objectives(self, stage: str = "main") -> list[Objective]:
        """The optimisation steps of `stage`. Default: one step on all parameters."""
        return [Objective("main", self.parameters, self.loss)]

    def forward(self, batch: Batch, objective: str = "main", stage: str = "main") -> LossOutput:
        for candidate in self.objectives(stage):
            if candidate.name == objective:
                return candidate.loss(batch)
        raise KeyError(f"{self.name} has no objective '{objective}' in stage '{stage}'")

    def check_data(self, data: Splits) -> None:
        """Refuse, in one line, data this model cannot learn from (values outside those its
        likelihood takes: `check_unit_interval`); the trainer calls it before the first
        step. Default: any data."""

    def after_epoch(self, train: TensorData, stage: str = "main") -> None:
        """Called by the trainer in eval mode after each training epoch of `stage`, before the
        held-out evaluation and the sample grid, with the whole training split: for statistics
        a family keeps about its training data in buffers (the ae's latent Gaussian). It must
        be deterministic, so that a resumed run ends with the same buffers. Default: nothing."""

    @torch.no_grad()
    def evaluate(self, batch: Batch, stage: str = "main") -> dict[str, Tensor]:
        """Held-out metrics of `stage` for one batch, each a mean over the batch (the trainer
        averages them over the split). Default: the stage's first objective and its terms."""
        out = self.objectives(stage)[0].loss(batch)
        return {"loss": out.total, **out.terms}

    @torch.no_grad()
    def evaluate_split(self, batches: Iterable[Batch], stage: str = "main", data: str = "") -> dict[str, float]:
        """Held-out metrics of `stage` over a whole split. Default: the example-weighted mean
        of `evaluate` over `batches`. Override it for metrics that are not means of per-batch
        values (codebook usage over the split, a Fréchet distance between samples and the
        split); `data` names the dataset, for metrics judged by a model trained on it."""
        totals: dict[str, float] = {}
        count = 0
        for batch in batches:
            for key, value in self.evaluate(batch, stage).items():
                totals[key] = totals.get(key, 0.0) + value.float().item() * len(batch.x)
            count += len(batch.x)
        return {k: v / max(count, 1) for k, v in totals.items()}

    # uses ---------------------------------------------------------------------------
    # The uses run without gradients (torch.no_grad); for gradients, call the networks
    # themselves (`model.encoder`, `model.decoder`, …). A family implements those it has.
    def sample(self, n: int, generator: torch.Generator | None = None, **conditions: Any) -> Tensor:
        """n new images in [0, 1]."""
        raise self._unsupported("sample")

    def reconstruct(self, x: Tensor) -> Tensor:
        """x passed through the model, in [0, 1]."""
        raise self._unsupported("reconstruct")

    def encode(self, x: Tensor) -> Tensor:
        """A code per image (the posterior mean for probabilistic encoders)."""
        raise self._unsupported("encode")

    def decode(self, z: Tensor) -> Tensor:
        """Images in [0, 1] for codes z."""
        raise self._unsupported("decode")

    def nll(self, x: Tensor, k: int = 1000, seed: int = 0, **conditions: Any) -> NLLEstimate:
        """−log p(x) per example in nats, importance-sampled with `k` samples (families with a
        likelihood: the VAE types; see zoo.likelihood.importance_sampled_nll)."""
        raise self._unsupported("nll")

    def _unsupported(self, use: str) -> UnsupportedError:
        can = ", ".join(self.capabilities()) or "none of them"
        return UnsupportedError(f"family '{self.name}' has no {use}(); of the uses, it has {can}")

    @classmethod
    def capabilities(cls) -> tuple[str, ...]:
        """Which of sample/reconstruct/encode/decode/nll this family implements."""
        return tuple(c for c in CAPABILITIES if getattr(cls, c) is not getattr(Family, c))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # publishing (the work is zoo.hub's) ----------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, repo_id: str | None = None) -> Path:
        """Write a model folder (config.json, model.safetensors, card, sample grid) that
        `zoo.load` and `zoo push` take."""
        from zoo.hub import save_pretrained

        return save_pretrained(self, directory, repo_id=repo_id)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool = False,
        branch: str | None = None,
        message: str | None = None,
        token: str | None = None,
    ) -> Any:
        """Publish this model to the Hub repo `repo_id` (created if needed); returns zoo.hub.Pushed."""
        from zoo.hub import push_to_hub

        return push_to_hub(self, repo_id, private=private, branch=branch, message=message, token=token)
