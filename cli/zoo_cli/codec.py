"""`zoo compress` and `zoo decompress`: a trained autoencoder as an image codec (see zoo.codec)."""

from __future__ import annotations

from pathlib import Path

import click

from zoo_cli.hub import revision_option
from zoo_cli.loading import load_model, model_data, require


@click.command()
@click.argument("model")
@click.option("--data", "-d", help="Dataset whose test split is compressed. Default: the one the model was trained on.")
@click.option("-n", "count", type=click.IntRange(min=1), help="Compress the first N test images. Default: all.")
@click.option(
    "--bits",
    type=click.IntRange(1, 16),
    default=8,
    show_default=True,
    help="Bits per code dimension for continuous codes (ae, vae); VQ-VAE indices take ⌈log2 K⌉ bits.",
)
@click.option("-o", "--output", default="codes.zoo", show_default=True, help="File to write.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@revision_option
def compress(
    model: str, data: str | None, count: int | None, bits: int, output: str, device: str, revision: str | None
) -> None:
    """Compress test images with MODEL into a codes file that `zoo decompress` restores.

    MODEL is a run folder, a model folder, a Hub repo id (user/name[@rev]) or a catalogue name;
    the file records it (a Hub id with its commit, a local folder as an absolute path)."""
    from zoo import atomic
    from zoo.codec import compress as compress_images
    from zoo.codec import model_reference
    from zoo.errors import InvalidInputError

    net, folder = load_model(model, device, revision)
    require(net, "encode")
    require(net, "decode")
    path = Path(output)
    if not path.parent.is_dir():
        raise InvalidInputError(f"cannot write '{path}': folder '{path.parent}' does not exist")
    atomic.refuse_model_file(path)  # before the work
    splits = model_data(net, folder, data)
    name = splits.name
    images = splits.test.head(count or len(splits.test)).x
    reference, pinned = model_reference(model, revision, folder)
    blob = compress_images(net, images, bits=bits, model_ref=reference, revision=pinned)
    atomic.write_output(path, blob)
    per_image = 8 * len(blob) / len(images)
    click.echo(
        f"wrote {len(images)} images of '{name}' to {path}: {len(blob):,} bytes, "
        f"{per_image:.1f} bits/image, {per_image / images[0].numel():.3f} bits/pixel"
    )


@click.command()
@click.argument("codes")
@click.option(
    "-o",
    "--output",
    default="decompressed",
    show_default=True,
    help="Folder that receives one PNG per image (created if needed), or a .png file for one grid.",
)
@click.option("--model", help="Model to decode with. Default: the one the file names.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option(
    "--revision",
    help="Branch, tag or commit sha of a Hub model (same as MODEL@REVISION). "
    "Default: the one the file records for its model (main with --model).",
)
def decompress(codes: str, output: str, model: str | None, device: str, revision: str | None) -> None:
    """Restore the images of the CODES file written by `zoo compress`.

    The file names its model and the sha256 of its weights; decoding with other weights is refused."""
    from zoo.codec import decompress as decompress_images
    from zoo.codec import read_header
    from zoo.datasets.folder import IMAGE_SUFFIXES
    from zoo.errors import InvalidInputError, NotFoundError
    from zoo.images import save_grid, save_png

    source = Path(codes)
    if not source.is_file():
        raise NotFoundError(f"no codes file at '{codes}'")
    target = Path(output)
    if target.suffix.lower() in IMAGE_SUFFIXES and target.suffix.lower() != ".png":
        raise InvalidInputError(f"-o {output}: decompress writes PNG, a grid to NAME.png or one per image to a folder")
    if target.suffix.lower() != ".png" and target.is_dir() and any(target.iterdir()):
        # its images would mix with the decoded ones, with nothing to tell them apart
        raise InvalidInputError(f"-o {output}: folder '{target}' is not empty; name a new or empty folder")
    data = source.read_bytes()
    header, _ = read_header(data, where=str(source))
    if model is None:
        if not header.model:
            raise InvalidInputError(f"{source} does not name its model: pass --model")
        model, revision = header.model, header.revision if revision is None else revision
    net, _ = load_model(model, device, revision)
    images = decompress_images(data, net, where=str(source)).cpu()
    if target.suffix.lower() == ".png":
        save_grid(images, target)
        click.echo(f"wrote {len(images)} images as a grid to {target}")
        return
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InvalidInputError(f"cannot create folder '{target}': {err.strerror or err}") from None
    width = max(4, len(str(len(images) - 1)))
    for i, image in enumerate(images):
        save_png(image, target / f"{i:0{width}d}.png")
    click.echo(f"wrote {len(images)} images to {target}/")
