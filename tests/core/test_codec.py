"""The codec (zoo.codec, `zoo compress` / `zoo decompress`): exact VQ-VAE round trips, the
file's size and checks, and quantised AE codes."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from tests.conftest import assert_one_line_error, run_zoo
from zoo.codec import (
    MAGIC,
    PREAMBLE_SIZE,
    compress,
    decode_codes,
    decompress,
    pack_bits,
    read_header,
    unpack_bits,
)
from zoo.errors import CorruptFileError, InvalidInputError

#: A small VQ-VAE on mnist-5k, one short epoch per stage (K = 100: 7 bits, not a power of two).
TINY_VQVAE = [
    "train.epochs=1",
    "stages.prior.epochs=1",
    "train.scheduler.name=none",
    "model.num_codes=100",
    "model.channels=[16, 32]",
    "model.prior_channels=8",
    "model.prior_layers=2",
    "train.sample_grid=4",
]
#: A small AE, as tests/plugins' short runs train it: 2 hot epochs (250 steps).
TINY_AE = [
    "train.epochs=2",
    "train.batch_size=32",
    "train.optimizer.lr=3e-3",
    "train.scheduler.warmup_epochs=0",
    "model.latent_dim=8",
    "model.channels=[16, 32]",
    "train.sample_grid=4",
]


@pytest.fixture(scope="module")
def vqvae_run(tmp_path_factory):
    return zoo.train("vqvae", overrides=TINY_VQVAE, out=str(tmp_path_factory.mktemp("runs")))


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    return zoo.train("ae", overrides=TINY_AE, out=str(tmp_path_factory.mktemp("runs")))


@pytest.fixture(scope="module")
def test_images():
    return zoo.load_dataset("mnist-5k").test.x


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / (a - b).pow(2).mean().item())


@pytest.mark.parametrize("bits", [1, 3, 7, 8, 13, 16, 32])
def test_bit_packing_round_trips_and_takes_exactly_the_bits_it_needs(bits):
    rng = np.random.default_rng(bits)
    values = rng.integers(0, 1 << bits, size=101, dtype=np.uint64)
    values[:2] = [0, (1 << bits) - 1]
    packed = pack_bits(values, bits)
    assert len(packed) == math.ceil(101 * bits / 8)
    assert np.array_equal(unpack_bits(packed, 101, bits), values)


def test_bit_packing_is_big_endian_msb_first():
    assert pack_bits(np.array([5, 3], dtype=np.uint64), 3) == bytes([0b10101100])
    with pytest.raises(CorruptFileError, match="padding"):
        unpack_bits(bytes([0b10101101]), 2, 3)


def test_vqvae_codes_restore_bit_identically_to_reconstruct(vqvae_run, test_images):
    model = zoo.load(vqvae_run.path)
    images = test_images[:50]
    blob = compress(model, images)
    header, codes = decode_codes(blob)
    assert torch.equal(codes, model.encode(images))
    restored = decompress(blob, model)
    assert restored.dtype == torch.float32 and torch.equal(restored, model.reconstruct(images))
    # The file is its header and the indices at ⌈log2 100⌉ = 7 bits each, nothing more.
    (length,) = struct.unpack(">I", blob[len(MAGIC) + 2 : PREAMBLE_SIZE])
    assert header.bits == 7 and header.code_shape == (7, 7) and header.num_codes == 100
    assert len(blob) == PREAMBLE_SIZE + length + math.ceil(50 * 7 * 7 * 7 / 8)
    assert header.weights_sha256 == zoo.codec.weights_sha256(zoo.load(vqvae_run.path))


def test_ae_codes_at_8_bits_cost_little_quality_and_fewer_bits_cost_more(ae_run, test_images):
    model = zoo.load(ae_run.path)
    images = test_images[:200]
    reference = psnr(model.reconstruct(images), images)
    assert reference > 13.5  # the short run reconstructs digits: the mean training image scores 11.8 dB
    at = {bits: psnr(decompress(compress(model, images, bits=bits), model), images) for bits in (2, 4, 8)}
    assert abs(at[8] - reference) < 0.1
    assert at[2] < at[8] - 0.5 and at[2] < at[4] < at[8] + 0.05  # coarser codes cost PSNR
    blob = compress(model, images, bits=5)
    header, offset = read_header(blob)
    assert header.kind == "uniform" and len(header.low) == 8 and len(blob) == offset + math.ceil(200 * 8 * 5 / 8)


def test_vae_posterior_means_come_back_within_half_a_quantisation_step():
    torch.manual_seed(0)
    model = zoo.create("vae", latent_dim=4, channels=(8, 16), hidden_dim=0).eval()
    images = torch.rand(30, 1, 28, 28)
    means = model.encode(images)
    header, codes = decode_codes(compress(model, images, bits=6))
    low, high = torch.tensor(header.low), torch.tensor(header.high)
    assert torch.allclose(low, means.min(0).values) and torch.allclose(high, means.max(0).values)
    step = (high - low) / 63
    assert ((codes - means).abs() <= step / 2 + 1e-6).all()
    assert ((codes - means).abs() > step / 8).any()  # quantised, not stored exactly


def test_the_library_refuses_other_weights_and_families_without_codes(vqvae_run, test_images):
    model = zoo.load(vqvae_run.path)
    blob = compress(model, test_images[:4])
    other = zoo.load(vqvae_run.path)
    with torch.no_grad():
        other.quantizer.codebook[0] += 1
    with pytest.raises(InvalidInputError, match="other weights"):
        decompress(blob, other)
    with pytest.raises(InvalidInputError, match="cannot encode"):
        compress(zoo.create("gan"), test_images[:4])
    with pytest.raises(InvalidInputError, match="shape"):
        compress(model, test_images[:4, :, :14])


# ----------------------------------------------------------------------------- CLI
def grid_cell(grid: np.ndarray, index: int, columns: int, size: int = 28, padding: int = 2, scale: int = 2):
    """The image at `index` of a torchvision grid PNG enlarged `scale` times (a grey grid)."""
    row, col = divmod(index, columns)
    top, left = (padding + row * (size + padding)) * scale, (padding + col * (size + padding)) * scale
    return grid[top : top + size * scale : scale, left : left + size * scale : scale]


def test_cli_round_trip_restores_zoo_reconstruct_pixel_for_pixel(cli, vqvae_run, tmp_path, monkeypatch):
    codes, out = tmp_path / "codes.zoo", tmp_path / "out"
    result = cli("compress", str(vqvae_run.path), "--data", "mnist-5k", "-n", "16", "-o", str(codes))
    assert result.exit_code == 0, result.output
    assert "16 images" in result.output and "bits/pixel" in result.output
    assert cli("reconstruct", str(vqvae_run.path), "-n", "16", "-o", str(tmp_path / "rec.png")).exit_code == 0
    monkeypatch.chdir(tmp_path)  # the file names its model by absolute path
    result = cli("decompress", "codes.zoo", "-o", "out")
    assert result.exit_code == 0, result.output
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"{i:04d}.png" for i in range(16)]
    grid = np.asarray(Image.open(tmp_path / "rec.png"))
    # save_comparison: 16 originals, 2 blanks, a row of 6 blanks, then the 16 reconstructions.
    for i, file in enumerate(files):
        assert np.array_equal(np.asarray(Image.open(file)), grid_cell(grid, 24 + i, columns=6)), i
    assert cli("decompress", str(codes), "-o", str(tmp_path / "grid.png")).exit_code == 0
    assert Image.open(tmp_path / "grid.png").size[0] > 28


def rewrite_header(blob: bytes, **changes) -> bytes:
    header, offset = read_header(blob)
    fields = {**json.loads(blob[PREAMBLE_SIZE:offset]), **changes}
    text = json.dumps(fields).encode()
    return MAGIC + struct.pack(">HI", 1, len(text)) + text + blob[offset:]


CORRUPTIONS = {
    "bad magic": (lambda b: b"PK\x03\x04" + b[4:], ["not a zoo codes file"]),
    "pickle": (lambda b: b"\x80\x04\x95" + b, ["not a zoo codes file"]),
    "empty": (lambda b: b"", ["not a zoo codes file"]),
    "newer version": (lambda b: MAGIC + struct.pack(">H", 2) + b[len(MAGIC) + 2 :], ["version 2", "upgrade zoo"]),
    "truncated payload": (lambda b: b[:-3], ["truncated", "payload bytes"]),
    "trailing bytes": (lambda b: b + b"\0", ["longer than its header says"]),
    "truncated header": (lambda b: b[: PREAMBLE_SIZE + 10], ["truncated", "header length"]),
    "cut inside the preamble": (lambda b: b[: len(MAGIC) + 3], ["truncated", f"{len(MAGIC) + 3} bytes"]),
    "header not JSON": (lambda b: b[:PREAMBLE_SIZE] + b"{" * (len(b) - PREAMBLE_SIZE), ["corrupt header"]),
    "bits lie": (lambda b: rewrite_header(b, bits=8), ["corrupt header", "num_codes"]),
    "count lies": (lambda b: rewrite_header(b, count=17), ["truncated"]),
    "index out of range": (lambda b: b[:-7] + b"\xff" * 7, ["code index", "codebook size"]),
    "wrong model": (lambda b: rewrite_header(b, weights_sha256="0" * 64), ["other weights", "00000000"]),
    "code shape lies": (lambda b: rewrite_header(b, code_shape=[49]), ["corrupt header", "code_shape [49]", "[7, 7]"]),
}


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_a_corrupt_truncated_or_foreign_file_gives_one_line_and_exit_2(case, cli, vqvae_run, tmp_path):
    codes = tmp_path / "codes.zoo"
    assert cli("compress", str(vqvae_run.path), "-n", "16", "-o", str(codes)).exit_code == 0
    edit, words = CORRUPTIONS[case]
    codes.write_bytes(edit(codes.read_bytes()))
    result = cli("decompress", str(codes), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert_one_line_error(result.stderr, *words)
    assert not (tmp_path / "out").exists()


def test_an_ae_file_whose_code_shape_does_not_fit_the_model_gives_one_line(cli, ae_run, tmp_path):
    codes = tmp_path / "codes.zoo"
    assert cli("compress", str(ae_run.path), "-n", "4", "-o", str(codes)).exit_code == 0
    codes.write_bytes(rewrite_header(codes.read_bytes(), code_shape=[2, 4]))  # same size as the real [8]
    result = cli("decompress", str(codes), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert_one_line_error(result.stderr, "corrupt header: code_shape [2, 4]", "does not fit the model", "[8]")
    assert not (tmp_path / "out").exists()


def test_decompress_to_an_image_file_other_than_png_is_refused_before_decoding(cli, ae_run, tmp_path):
    codes = tmp_path / "codes.zoo"
    assert cli("compress", str(ae_run.path), "-n", "4", "-o", str(codes)).exit_code == 0
    result = cli("decompress", str(codes), "-o", str(tmp_path / "out.jpg"))
    assert result.exit_code == 2, result.output
    assert_one_line_error(result.stderr, "out.jpg", "decompress writes PNG")
    assert not (tmp_path / "out.jpg").exists()
    assert cli("decompress", str(codes), "-o", str(tmp_path / "out.PNG")).exit_code == 0
    assert (tmp_path / "out.PNG").is_file()
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "0000.png").write_bytes(b"someone else's")  # would mix with the decoded ones
    result = cli("decompress", str(codes), "-o", str(tmp_path / "photos"))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "photos", "is not empty")
    assert (tmp_path / "photos" / "0000.png").read_bytes() == b"someone else's"


def test_decompress_with_another_model_is_refused_from_a_fresh_process(vqvae_run, ae_run, tmp_path):
    codes = tmp_path / "codes.zoo"
    codes.write_bytes(compress(zoo.load(vqvae_run.path), zoo.load_dataset("mnist-5k").test.x[:4], model_ref=""))
    result = run_zoo("decompress", str(codes), "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "does not name its model", "--model")
    result = run_zoo("decompress", str(codes), "--model", str(ae_run.path), "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "'vqvae' model, not 'ae'")


@pytest.mark.hub
def test_a_file_from_a_hub_model_is_pinned_to_its_commit_and_decodes_after_main_moves(hub, cli, tmp_path):
    torch.manual_seed(0)
    model = zoo.create("vqvae", num_codes=16, channels=(8, 16), prior_channels=8, prior_layers=2).eval()
    first = model.push_to_hub("carol/codec-vqvae")
    codes = tmp_path / "codes.zoo"
    result = cli("compress", "carol/codec-vqvae", "--data", "mnist-5k", "-n", "8", "-o", str(codes))
    assert result.exit_code == 0, result.output
    header, _ = read_header(codes.read_bytes())
    assert (header.model, header.revision) == ("carol/codec-vqvae", first.commit)
    with torch.no_grad():
        model.quantizer.codebook.mul_(2)
    assert model.push_to_hub("carol/codec-vqvae").commit != first.commit  # main now has other weights
    assert cli("decompress", str(codes), "-o", str(tmp_path / "out")).exit_code == 0
    assert len(list((tmp_path / "out").iterdir())) == 8
    result = cli("decompress", str(codes), "--model", "carol/codec-vqvae", "-o", str(tmp_path / "other"))
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "other weights")
