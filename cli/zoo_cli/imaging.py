"""`zoo sample` and `zoo reconstruct`: pictures from a trained model."""

from __future__ import annotations

import click

from zoo_cli.hub import revision_option
from zoo_cli.loading import load_model, model_data, require


@click.command()
@click.argument("model")
@click.option("-n", "count", type=click.IntRange(1, 4096), default=64, show_default=True, help="How many images.")
@click.option("-o", "--output", default="samples.png", show_default=True, help="PNG file to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampling noise.")
@click.option("--label", type=click.IntRange(min=0), help="Class to draw, for conditional families (e.g. cvae).")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@revision_option
def sample(
    model: str, count: int, output: str, seed: int, label: int | None, device: str, revision: str | None
) -> None:
    """Draw COUNT samples from MODEL into a PNG grid (`--label K` for conditional families).

    MODEL is a run folder, a model folder, a Hub repo id (user/name[@rev]) or a catalogue name."""
    import torch

    from zoo.errors import InvalidInputError
    from zoo.images import save_grid

    net, _ = load_model(model, device, revision)
    require(net, "sample")
    if label is not None and not net.conditional:
        raise InvalidInputError(f"family '{net.name}' is not conditional: --label needs a family such as cvae")
    chosen = {"label": label} if label is not None else {}
    generator = torch.Generator(net.device).manual_seed(seed)
    path = save_grid(net.sample(count, generator=generator, **chosen), output)
    click.echo(f"wrote {count} samples{'' if label is None else f' of class {label}'} to {path}")


@click.command()
@click.argument("model")
@click.option("-n", "count", type=click.IntRange(1, 1024), default=32, show_default=True, help="How many test images.")
@click.option("-o", "--output", default="reconstructions.png", show_default=True, help="PNG file to write.")
@click.option("--data", "-d", help="Dataset whose test split is used. Default: the one the model was trained on.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@revision_option
def reconstruct(model: str, count: int, output: str, data: str | None, device: str, revision: str | None) -> None:
    """Reconstruct COUNT test images with MODEL: originals above, reconstructions below."""
    from zoo.images import save_comparison
    from zoo.tasks import label_conditions

    net, folder = load_model(model, device, revision)
    require(net, "reconstruct")
    batch = model_data(net, folder, data).test.head(count)
    originals = batch.x.to(net.device)
    path = save_comparison(originals, net.reconstruct(originals, **label_conditions(net, batch.y)), output)
    click.echo(f"wrote {len(originals)} originals and reconstructions to {path}")
