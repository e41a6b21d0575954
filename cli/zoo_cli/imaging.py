"""`zoo sample` and `zoo reconstruct`: what a trained model makes. Image models write PNG
grids; vector and 1-D signal models write .npy arrays of shape (N, *input_shape), and signal
models a line plot beside them (same name, .png)."""

from __future__ import annotations

import click

from zoo_cli.hub import revision_option
from zoo_cli.loading import SEED, load_model, model_data, require


@click.command()
@click.argument("model")
@click.option("-n", "count", type=click.IntRange(1, 4096), default=64, show_default=True, help="How many samples.")
@click.option(
    "-o",
    "--output",
    help="File to write: .png for image models, .npy for vectors and signals. [default: samples.png/.npy]",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the sampling noise.")
@click.option("--label", type=click.IntRange(min=0), help="Class to draw, for conditional families (e.g. cvae).")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Sample with a model setting other than the saved one, e.g. --set model.top_k=5 (vqvae).",
)
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@revision_option
def sample(
    model: str,
    count: int,
    output: str | None,
    seed: int,
    label: int | None,
    settings: tuple[str, ...],
    device: str,
    revision: str | None,
) -> None:
    """Draw COUNT samples from MODEL into a PNG grid, or an .npy array for vector and signal
    models (`--label K` for conditional families).

    MODEL is a run folder, a model folder, a Hub repo id (user/name[@rev]) or a catalogue name."""
    import torch

    from zoo.errors import InvalidInputError
    from zoo.outputs import check_output, output_suffix, save_outputs

    net, _ = load_model(model, device, revision, settings)
    require(net, "sample")
    shape = net.config.input_shape
    output = check_output(output or f"samples{output_suffix(shape)}", shape)
    if label is not None and not net.conditional:
        raise InvalidInputError(f"family '{net.name}' is not conditional: --label needs a family such as cvae")
    chosen = {"label": label} if label is not None else {}
    generator = torch.Generator(net.device).manual_seed(seed)
    written = save_outputs(net.sample(count, generator=generator, **chosen), output)
    what = "sample" if count == 1 else "samples"
    click.echo(f"wrote {count} {what}{'' if label is None else f' of class {label}'} to {_listed(written)}")


@click.command()
@click.argument("model")
@click.option(
    "-n", "count", type=click.IntRange(1, 1024), default=32, show_default=True, help="How many test examples."
)
@click.option(
    "-o",
    "--output",
    help="File to write: .png for image models, .npy for vectors and signals. [default: reconstructions.png/.npy]",
)
@click.option("--data", "-d", help="Dataset whose test split is used. Default: the one the model was trained on.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@revision_option
def reconstruct(
    model: str, count: int, output: str | None, data: str | None, device: str, revision: str | None
) -> None:
    """Reconstruct COUNT test examples with MODEL. Images: one PNG, originals above,
    reconstructions below. Vectors and signals: the reconstructions as .npy, the originals
    beside them (NAME-originals.npy), and for signals a line plot of both (NAME.png)."""
    from zoo.outputs import check_output, output_suffix, save_reconstruction_outputs
    from zoo.tasks import label_conditions

    net, folder = load_model(model, device, revision)
    require(net, "reconstruct")
    shape = net.config.input_shape
    output = check_output(output or f"reconstructions{output_suffix(shape)}", shape)
    batch = model_data(net, folder, data).test.head(count)
    originals = batch.x.to(net.device)
    reconstructions = net.reconstruct(originals, **label_conditions(net, batch.y))
    written = save_reconstruction_outputs(originals, reconstructions, output)
    click.echo(f"wrote {len(originals)} originals and reconstructions to {_listed(written)}")


def _listed(paths) -> str:
    return ", ".join(str(p) for p in paths)
