"""Rate against distortion on the mnist-5k test split: zoo's codec beside PNG and JPEG.

    python bench/rate_distortion.py                          # trains the default recipes first
    python bench/rate_distortion.py --vqvae RUN --ae RUN     # judges existing runs
    python bench/rate_distortion.py --vqvae RUN --no-ae      # the VQ-VAE alone

For every codec: bits per image (the whole file divided by the number of images, so the
codec's header is shared out among them; PNG and JPEG are one file per image, as a user would
store them, and also all images tiled in one sheet, sharing the format's header and tables as
the codec's file does), bits per pixel, MSE and PSNR of the 8-bit decoded images against the
originals (pixels in [0, 1]; PSNR = 10·log10(1 / MSE), MSE over all pixels of all images).
PNG is Pillow's with optimize=True; JPEG is Pillow's at several qualities, plus the lowest
quality whose PSNR reaches the VQ-VAE codec's (the same quality at fewer bits, or not).

Runs it trains use the default recipes (the vqvae's prior stage cut to one epoch: the codec
does not use the prior) with any --set overrides. Writes bench/rate_distortion.json,
bench/rate_distortion.md and docs/images/rate_distortion.png.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

import zoo
from zoo.codec import compress, decompress

ROOT = Path(__file__).resolve().parents[1]
JPEG_QUALITIES = (5, 10, 25, 50, 75, 90, 95)
AE_BITS = (2, 4, 6, 8)
TILED_QUALITIES = (10, 25, 50, 75)


def as_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 1, H, W) in [0, 1] → (N, H, W) uint8, rounded as zoo writes PNGs."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0].numpy()


def row(codec: str, total_bytes: int, originals: np.ndarray, decoded: np.ndarray, **extra) -> dict:
    count, pixels = len(originals), originals[0].size
    mse = float(np.mean((originals.astype(np.float64) - decoded.astype(np.float64)) ** 2) / 255**2)
    bits = 8 * total_bytes / count
    return {
        "codec": codec,
        "bits_per_image": round(bits, 1),
        "bits_per_pixel": round(bits / pixels, 4),
        "mse": round(mse, 6),
        "psnr_db": round(10 * math.log10(1 / mse), 2) if mse > 0 else None,
        **extra,
    }


def pillow(originals: np.ndarray, **options) -> tuple[int, np.ndarray]:
    """Total bytes of one file per image and the images read back."""
    from PIL import Image

    total, decoded = 0, []
    for pixels in originals:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, **options)
        total += buffer.tell()
        decoded.append(np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L")))
    return total, np.stack(decoded)


def tiled(originals: np.ndarray, columns: int = 40, **options) -> tuple[int, np.ndarray]:
    """Bytes of one file holding all images side by side (the format's header and tables
    shared, as the codec's header is) and the images cut back out of it."""
    count, height, width = originals.shape
    rows = -(-count // columns)
    sheet = np.zeros((rows * height, columns * width), dtype=np.uint8)
    for i, pixels in enumerate(originals):
        r, c = divmod(i, columns)
        sheet[r * height : (r + 1) * height, c * width : (c + 1) * width] = pixels
    total, decoded = pillow(sheet[None], **options)
    cells = [divmod(i, columns) for i in range(count)]
    return total, np.stack([decoded[0, r * height : (r + 1) * height, c * width : (c + 1) * width] for r, c in cells])


def zoo_codec(name: str, model: zoo.Family, images: torch.Tensor, originals: np.ndarray, bits: int = 8) -> dict:
    start = time.perf_counter()
    blob = compress(model, images, bits=bits)
    restored = decompress(blob, model)
    seconds = time.perf_counter() - start
    return row(name, len(blob), originals, as_uint8(restored), file_bytes=len(blob), seconds=round(seconds, 2))


def jpeg_matching(originals: np.ndarray, target_psnr: float) -> dict | None:
    """The lowest JPEG quality whose PSNR reaches `target_psnr`."""
    for quality in range(1, 101):
        total, decoded = pillow(originals, format="JPEG", quality=quality)
        result = row(f"JPEG q={quality} (matches VQ-VAE PSNR)", total, originals, decoded, quality=quality)
        if result["psnr_db"] is None or result["psnr_db"] >= target_psnr:
            return result
    return None


def trained(family: str, run: str | None, overrides: list[str]) -> Path:
    if run:
        return Path(run)
    return zoo.train(family, overrides=overrides, out="runs").path


def markdown(rows: list[dict]) -> str:
    lines = [
        "| codec | bits/image | bits/pixel | MSE | PSNR (dB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        psnr = "∞ (lossless)" if r["psnr_db"] is None else f"{r['psnr_db']:.2f}"
        lines.append(
            f"| {r['codec']} | {r['bits_per_image']:,.1f} | {r['bits_per_pixel']:.3f} | {r['mse']:.5f} | {psnr} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    jpeg = [r for r in rows if r["codec"].startswith("JPEG q=") and "matches" not in r["codec"]]
    groups = {
        "JPEG, one file per image": [r for r in jpeg if "sheet" not in r["codec"]],
        "JPEG, all images in one sheet": [r for r in jpeg if "sheet" in r["codec"]],
    }
    groups["AE (uniform quantised codes)"] = [r for r in rows if r["codec"].startswith("AE")]
    for label, members in groups.items():
        if members:
            members = sorted(members, key=lambda r: r["bits_per_pixel"])
            ax.plot([r["bits_per_pixel"] for r in members], [r["psnr_db"] for r in members], "o-", label=label)
    for r in rows:
        if r["codec"].startswith("VQ-VAE"):
            ax.plot(r["bits_per_pixel"], r["psnr_db"], "*", markersize=14, label=r["codec"])
        if r["codec"].startswith("PNG"):
            style = ":" if "sheet" in r["codec"] else "--"
            ax.axvline(r["bits_per_pixel"], color="grey", linestyle=style, label=f"lossless {r['codec']}")
    ax.set_xscale("log")
    ax.set_xticks([0.125, 0.25, 0.5, 1, 2, 4, 8])
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("bits per pixel (log scale)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("Rate–distortion on the mnist-5k test split (1,000 digits)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vqvae", help="vqvae run or model folder (default: train the default recipe)")
    parser.add_argument("--ae", help="ae run or model folder (default: train the default recipe)")
    parser.add_argument("--no-ae", action="store_true", help="leave the AE out")
    parser.add_argument(
        "--set", action="append", default=[], help="recipe override for the runs this script trains (repeatable)"
    )
    parser.add_argument("--json", default=str(ROOT / "bench" / "rate_distortion.json"))
    parser.add_argument("--markdown", default=str(ROOT / "bench" / "rate_distortion.md"))
    parser.add_argument("--plot", default=str(ROOT / "docs" / "images" / "rate_distortion.png"))
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    images = zoo.load_dataset("mnist-5k").test.x
    originals = as_uint8(images)
    rows: list[dict] = []
    runs: dict[str, str] = {}

    vqvae_path = trained("vqvae", args.vqvae, ["stages.prior.epochs=1", *args.set])
    runs["vqvae"] = str(vqvae_path)
    vqvae = zoo.load(vqvae_path)
    grid = "×".join(map(str, vqvae.encode(images[:1]).shape[1:]))
    rows.append(zoo_codec(f"VQ-VAE codec (K={vqvae.config.num_codes}, {grid} codes)", vqvae, images, originals))
    reference_rows = []  # the VQ-VAE codec is exact: its row is the model's reconstruction

    if not args.no_ae:
        ae_path = trained("ae", args.ae, list(args.set))
        runs["ae"] = str(ae_path)
        ae = zoo.load(ae_path)
        for bits in AE_BITS:
            rows.append(
                zoo_codec(f"AE codec ({ae.config.latent_dim}-dim code, {bits} bits/dim)", ae, images, originals, bits)
            )
        reference_rows.append(row("AE reconstruction, float codes", 0, originals, as_uint8(ae.reconstruct(images))))

    total, decoded = pillow(originals, format="PNG", optimize=True)
    rows.append(row("PNG (Pillow, optimize=True)", total, originals, decoded))
    for quality in JPEG_QUALITIES:
        total, decoded = pillow(originals, format="JPEG", quality=quality)
        rows.append(row(f"JPEG q={quality}", total, originals, decoded, quality=quality))
    matched = jpeg_matching(originals, rows[0]["psnr_db"])
    if matched:
        rows.append(matched)
    total, decoded = tiled(originals, format="PNG", optimize=True)
    rows.append(row("PNG, all images in one 40-wide sheet", total, originals, decoded))
    for quality in TILED_QUALITIES:
        total, decoded = tiled(originals, format="JPEG", quality=quality)
        name = f"JPEG q={quality}, all images in one 40-wide sheet"
        rows.append(row(name, total, originals, decoded, quality=quality))

    for r in reference_rows:  # distortion of the models themselves, without a rate
        r["bits_per_image"] = r["bits_per_pixel"] = None

    result = {
        "data": "mnist-5k test split",
        "images": len(images),
        "pixels_per_image": int(originals[0].size),
        "runs": runs,
        "torch": torch.__version__,
        "rows": rows,
        "model_reconstructions": reference_rows,
    }
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    table = markdown(rows)
    Path(args.markdown).write_text(table, encoding="utf-8")
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    plot(rows, Path(args.plot))
    print(table)
    for r in reference_rows:
        print(f"{r['codec']}: MSE {r['mse']:.5f}, PSNR {r['psnr_db']:.2f} dB")
    print(f"wrote {args.json}, {args.markdown}, {args.plot}")


if __name__ == "__main__":
    main()
