"""`zoo sample` and `zoo reconstruct`: pictures from a trained model."""

from __future__ import annotations

import click


def _load(model: str, device: str):
    import zoo
    from zoo.devices import resolve_device

    return zoo.load(model, device=resolve_device(device))


def _require(model, capability: str) -> None:
    from zoo.errors import InvalidInputError

    if capability not in model.capabilities():
        raise InvalidInputError(
            f"family '{model.name}' cannot {capability} (it can: {', '.join(model.capabilities())})"
        )


@click.command()
@click.argument("model")
@click.option("-n", "count", type=click.IntRange(1, 4096), default=64, show_default=True, help="How many images.")
@click.option("-o", "--output", default="samples.png", show_default=True, help="PNG file to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampling noise.")
@click.option("--label", type=click.IntRange(min=0), help="Class to draw, for conditional families (e.g. cvae).")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
def sample(model: str, count: int, output: str, seed: int, label: int | None, device: str) -> None:
    """Draw COUNT samples from MODEL (a run folder or model folder) into a PNG grid."""
    import torch

    from zoo.errors import InvalidInputError
    from zoo.images import save_grid

    net = _load(model, device)
    _require(net, "sample")
    if label is not None and not net.conditional:
        raise InvalidInputError(f"family '{net.name}' is not conditional: --label needs a family such as cvae")
    conditions = {"label": label} if label is not None else {}
    generator = torch.Generator(net.device).manual_seed(seed)
    path = save_grid(net.sample(count, generator=generator, **conditions), output)
    click.echo(f"wrote {count} samples{'' if label is None else f' of class {label}'} to {path}")


@click.command()
@click.argument("model")
@click.option("-n", "count", type=click.IntRange(1, 1024), default=32, show_default=True, help="How many test images.")
@click.option("-o", "--output", default="reconstructions.png", show_default=True, help="PNG file to write.")
@click.option("--data", "-d", help="Dataset whose test split is used. Default: the one the model was trained on.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
def reconstruct(model: str, count: int, output: str, data: str | None, device: str) -> None:
    """Reconstruct COUNT test images with MODEL: originals above, reconstructions below."""
    from zoo.datasets.splits import load_dataset
    from zoo.errors import InvalidInputError
    from zoo.images import save_comparison
    from zoo.modelfile import read_metadata

    net = _load(model, device)
    _require(net, "reconstruct")
    name = data or read_metadata(model).get("data") or "mnist-5k"
    splits = load_dataset(name)
    if tuple(splits.shape) != tuple(net.config.input_shape):
        raise InvalidInputError(
            f"data '{name}' has shape {list(splits.shape)} but the model takes {list(net.config.input_shape)}"
        )
    batch = splits.test.head(count)
    originals = batch.x.to(net.device)
    if net.conditional and batch.y is None:
        raise InvalidInputError(f"family '{net.name}' is conditional but data '{name}' has no labels")
    conditions = {"label": batch.y.to(net.device)} if net.conditional else {}
    path = save_comparison(originals, net.reconstruct(originals, **conditions), output)
    click.echo(f"wrote {len(originals)} originals and reconstructions to {path}")
