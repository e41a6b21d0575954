"""The image-task commands: interpolate, denoise, inpaint, anomaly, encode and plot. Each
writes a file a person (or another tool) can read; none writes into the model's folder."""

from __future__ import annotations

import click

from zoo_cli.hub import revision_option
from zoo_cli.loading import SEED, load_model, model_data, require, require_images

_model = click.argument("model")


def _data_option(splits: str = "its test split"):
    """The --data option; `splits` says which images of the dataset the command uses."""
    return click.option("--data", "-d", help=f"Dataset to use ({splits}). Default: the one the model was trained on.")


_data = _data_option()
_device = click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
_seed = click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the random draws.")


def _png(default: str):
    return click.option("-o", "--output", default=default, show_default=True, help="PNG file to write.")


@click.command()
@_model
@click.option("--from", "start", type=click.IntRange(0), required=True, help="Class (or with --index: test image).")
@click.option("--to", "end", type=click.IntRange(0), required=True, help="Class (or with --index: test image).")
@click.option("--index", is_flag=True, help="--from/--to are test-image indices, not classes.")
@click.option("--rows", type=click.IntRange(1, 16), default=4, show_default=True, help="Image pairs to interpolate.")
@click.option("--steps", type=click.IntRange(2, 32), default=8, show_default=True, help="Images along each path.")
@_png("interpolation.png")
@_data
@_device
@revision_option
def interpolate(model, start, end, index, rows, steps, output, data, device, revision) -> None:
    """Decode the straight line between the codes of two test images, row by row.

    By class (`--from 3 --to 8`): the first ROWS−1 rows join the i-th test three to the i-th
    test eight, the last row joins the two classes' mean codes (with --rows 1: one row, the
    first three to the first eight). With --index: one row between test images FROM and TO.
    Each row shows the originals at its ends."""
    import torch

    from zoo.errors import InvalidInputError
    from zoo.images import save_rows
    from zoo.tasks import interpolate as along
    from zoo.tasks import mean_codes

    net, folder = load_model(model, device, revision)
    require(net, "encode")
    require(net, "decode")
    require_images(net, "interpolate")
    splits = model_data(net, folder, data)
    test = splits.test
    x = test.x.to(net.device)
    if index:
        for i in (start, end):
            if i >= len(test):
                raise InvalidInputError(f"test image {i} does not exist (the split has {len(test)})")
        pairs = [(f"image {start} -> {end}", x[start : start + 1], x[end : end + 1])]
        means = None
    else:
        if test.y is None:
            raise InvalidInputError(f"data '{splits.name}' has no labels: pick test images with --index")
        firsts = []
        for c in (start, end):
            if c >= splits.num_classes:
                raise InvalidInputError(f"data '{splits.name}' has classes 0..{splits.num_classes - 1}, not {c}")
            firsts.append(torch.nonzero(test.y == c).flatten())
            if len(firsts[-1]) == 0:
                raise InvalidInputError(f"the test split has no images of class {c}")
        count = min(rows - 1 if rows > 1 else 1, len(firsts[0]), len(firsts[1]))
        pairs = [(f"{start} -> {end} #{i + 1}", x[firsts[0][i : i + 1]], x[firsts[1][i : i + 1]]) for i in range(count)]
        means = mean_codes(net, x, test.y, [start, end]) if rows > 1 else None
    blank = torch.ones_like(x[:1])
    lines = [(label, torch.cat([a, along(net, a, b, steps)[0], b])) for label, a, b in pairs]
    if means is not None:
        path = torch.stack([torch.lerp(means[0], means[1], w) for w in torch.linspace(0, 1, steps).tolist()])
        lines.append((f"class means {start} -> {end}", torch.cat([blank, net.decode(path), blank])))
    written = save_rows([(label, images.cpu()) for label, images in lines], output)
    click.echo(f"wrote {len(lines)} interpolations of {steps} steps to {written}")


def _restoration_inputs(model, device, revision, data, count, command):
    """The model (one that reconstructs images) and the first COUNT test images, for denoise and inpaint."""
    from zoo.family import check_unit_interval

    net, folder = load_model(model, device, revision)
    require(net, "reconstruct")
    require_images(net, command)
    splits = model_data(net, folder, data)
    check_unit_interval(splits, f"{command} works on images in [0, 1] (its corruption and PSNR assume them)")
    return net, splits.test.head(count)


@click.command()
@_model
@click.option("--noise", type=click.FloatRange(0, 1), default=0.3, show_default=True, help="Gaussian noise std.")
@click.option("-n", "count", type=click.IntRange(1, 64), default=8, show_default=True, help="How many test images.")
@_png("denoise.png")
@_data
@_seed
@_device
@revision_option
def denoise(model, noise, count, output, data, seed, device, revision) -> None:
    """Add Gaussian noise to test images and restore them by reconstruction: rows corrupted,
    restored and original, each labelled with its PSNR against the original."""
    from zoo.errors import InvalidInputError
    from zoo.evaluation.reconstruction import reconstruction_metrics
    from zoo.images import save_rows
    from zoo.tasks import add_noise, label_conditions

    if noise != noise:  # nan passes click's range check
        raise InvalidInputError("--noise must be a number in [0, 1], got nan")
    net, batch = _restoration_inputs(model, device, revision, data, count, "denoise")
    original = batch.x.to(net.device)
    noisy = add_noise(original, noise, seed)
    restored = net.reconstruct(noisy, **label_conditions(net, batch.y))
    before = reconstruction_metrics(original, noisy)["psnr"]
    after = reconstruction_metrics(original, restored)["psnr"]
    rows = [(f"noisy, std {noise:g} ({before:.1f} dB)", noisy), (f"restored ({after:.1f} dB)", restored)]
    written = save_rows([(label, images.cpu()) for label, images in [*rows, ("original", original)]], output)
    click.echo(f"PSNR {before:.2f} dB noisy → {after:.2f} dB restored; wrote {written}")


@click.command()
@_model
@click.option("--mask", "kind", default="centre", show_default=True, help="centre, top, bottom, left, right or random.")
@click.option("--iterations", type=click.IntRange(1, 200), default=20, show_default=True, help="Reconstruction passes.")
@click.option("-n", "count", type=click.IntRange(1, 64), default=8, show_default=True, help="How many test images.")
@_png("inpaint.png")
@_data
@_seed
@_device
@revision_option
def inpaint(model, kind, iterations, count, output, data, seed, device, revision) -> None:
    """Hide part of test images and fill it in by repeated reconstruction: rows masked
    (missing pixels grey), inpainted and original; the error inside the hole is printed."""
    from zoo.images import save_rows
    from zoo.tasks import inpaint as fill
    from zoo.tasks import label_conditions, mask

    net, batch = _restoration_inputs(model, device, revision, data, count, "inpaint")
    original = batch.x.to(net.device)
    known = mask(kind, tuple(original.shape[1:]), seed).to(net.device)
    masked = known * original + (1 - known) * 0.5
    filled = fill(net, original, known, iterations, **label_conditions(net, batch.y))
    hole = (1 - known).sum() * len(original)
    grey, inpainted = ((((m - original) * (1 - known)).pow(2).sum() / hole).item() for m in (masked, filled))
    rows = [(f"masked: {kind}", masked), ("inpainted", filled), ("original", original)]
    written = save_rows([(label, images.cpu()) for label, images in rows], output)
    click.echo(f"MSE in the hole {grey:.4f} (grey) → {inpainted:.4f} (inpainted); wrote {written}")


@click.command()
@_model
@_data_option("the split(s) --split picks; with folder:PATH every image under PATH")
@click.option(
    "--split", type=click.Choice(["test", "train", "all"]), default="all", show_default=True, help="Split(s) to score."
)
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many to list and draw.")
@click.option("-k", "k", type=click.IntRange(1, 10000), default=100, show_default=True, help="Importance samples.")
@click.option("-o", "--output", help="Also write the TOP most unlikely images to this PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print every score as JSON, most unlikely first.")
@_device
@revision_option
def anomaly(model, data, split, top, k, output, as_json, device, revision) -> None:
    """Rank the images of a dataset by how unlikely MODEL finds them (most unlikely first):
    importance-sampled −log p(x) for families with a likelihood, else reconstruction error.

    With `--data folder:PATH` every image file under PATH is scored and named by its path
    (--split does not apply); other data is named by split and position (test/17)."""
    import json

    import torch

    from zoo.images import save_rows
    from zoo.tasks import anomaly_scores, label_conditions

    net, folder = load_model(model, device, revision)
    if output:
        require_images(net, "anomaly -o")
    names, x, labels = _scored_inputs(net, folder, data, split)
    scores, measure = anomaly_scores(net, x, k=k, **label_conditions(net, labels))
    order = torch.argsort(scores, descending=True).tolist()
    ranked = [{"image": names[i], "score": round(scores[i].item(), 4)} for i in order]
    if output:
        chosen = order[:top]
        save_rows([(f"most unlikely {len(chosen)}", x[chosen].cpu())], output)
    if as_json:
        click.echo(json.dumps({"measure": measure, "ranking": ranked}, indent=2))
        return
    click.echo(f"{len(ranked)} images scored by {measure}; most unlikely first:")
    for rank, row in enumerate(ranked[:top], 1):
        click.echo(f"{rank:4d}  {row['score']:10.2f}  {row['image']}")
    if output:
        click.echo(f"wrote the {min(top, len(ranked))} most unlikely to {output}")


def _scored_inputs(net, folder, data, split):
    """(names, inputs, labels or None) that `zoo anomaly` scores."""
    import torch

    from zoo.datasets.folder import folder_images
    from zoo.datasets.reference import parse_data_ref
    from zoo.errors import InvalidInputError

    ref = parse_data_ref(data) if data else None
    if ref is not None and ref.scheme == "folder":
        unknown = set(ref.options) - {"size", "channels"}
        if unknown:
            raise InvalidInputError(
                f"zoo anomaly reads folder:PATH with the options size and channels, not {sorted(unknown)}"
            )
        names, images = folder_images(ref.target, **ref.options)
        x = torch.from_numpy(images)
        if tuple(x.shape[1:]) != tuple(net.config.input_shape):
            raise InvalidInputError(
                f"images under '{ref.target}' have shape {list(x.shape[1:])} but the model takes "
                f"{list(net.config.input_shape)}; pass folder:PATH?size=N&channels=C"
            )
        if net.conditional:
            raise InvalidInputError(f"family '{net.name}' is conditional: a folder of images has no labels to give it")
        return names, x.to(net.device), None
    splits = model_data(net, folder, data)
    parts = [("train", splits.train), ("test", splits.test)] if split == "all" else [(split, getattr(splits, split))]
    names = [f"{name}/{i}" for name, part in parts for i in range(len(part))]
    x = torch.cat([part.x for _, part in parts]).to(net.device)
    labels = None if parts[0][1].y is None else torch.cat([part.y for _, part in parts])
    return names, x, labels


@click.command()
@_model
@_data_option("its train and test splits")
@click.option("-o", "--output", default="latents.npz", show_default=True, help=".npz file to write.")
@_device
@revision_option
def encode(model, data, output, device, revision) -> None:
    """Write the codes of a dataset's images with their labels to a NumPy .npz file: arrays
    train_codes, test_codes (and train_labels, test_labels when the data has labels)."""
    import io

    import numpy as np

    from zoo import atomic
    from zoo.errors import InvalidInputError
    from zoo.tasks import encode_all

    if not output.endswith(".npz"):
        raise InvalidInputError(f"output '{output}' must end in .npz")
    net, folder = load_model(model, device, revision)
    require(net, "encode")
    splits = model_data(net, folder, data)
    arrays = {}
    for name in ("train", "test"):
        part = getattr(splits, name)
        arrays[f"{name}_codes"] = encode_all(net, part).numpy()
        if part.y is not None:
            arrays[f"{name}_labels"] = part.y.numpy()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic.write_output(output, buffer.getvalue())
    shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in arrays.items())
    click.echo(f"wrote {shapes} to {output}")


@click.command()
@_model
@click.argument("what", type=click.Choice(["latents"]))
@_png("latents.png")
@_data
@_device
@revision_option
def plot(model, what, output, data, device, revision) -> None:
    """Draw a picture of MODEL. `latents`: the test split's codes in 2-D (the first two
    principal components when the code has more dimensions), coloured by class."""
    from zoo.images import check_png_path
    from zoo.plots import check_map_codes, latent_map
    from zoo.tasks import encode_all, encode_head

    check_png_path(output)
    net, folder = load_model(model, device, revision)
    require(net, "encode")
    splits = model_data(net, folder, data)
    test = splits.test
    check_map_codes(encode_head(net, test))
    written = latent_map(encode_all(net, test), test.y, output, title=f"{net.name} codes of {splits.name} (test)")
    click.echo(f"wrote a map of {len(test)} codes to {written}")
