"""A trained autoencoder as an image codec: `compress` writes the codes of some images as a
small versioned byte string, `decompress` turns it back into images with the same model.

Discrete codes (a VQ-VAE's grid of codebook indices; the family's config declares
`num_codes` K) are stored exactly, each packed into ⌈log2 K⌉ bits. Continuous codes (an AE's
point code, a VAE's posterior mean) are quantised uniformly to `bits` bits per dimension
between per-dimension minimum and maximum over the compressed images, both kept in the header.

The layout (docs/codec.md):

    MAGIC (8 bytes) | version (uint16, big-endian) | header length (uint32, big-endian)
    | header (UTF-8 JSON object) | payload (packed codes, ⌈count · code size · bits / 8⌉ bytes)

The header names the model (its reference, and a sha256 of its weights that decompress checks)
so that a file is never decoded by a model it was not made with. Reading checks every length
and field and never unpickles.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo import __version__
from zoo.errors import CorruptFileError, InvalidInputError

if TYPE_CHECKING:
    import torch

    from zoo.family import Family

MAGIC = b"ZOOCODEC"
FORMAT_VERSION = 1
_PREAMBLE = struct.Struct(">HI")  # version, header length
PREAMBLE_SIZE = len(MAGIC) + _PREAMBLE.size
#: A header is a few hundred bytes; anything far larger is not a header zoo wrote.
MAX_HEADER = 1 << 20
#: Bits per dimension of quantised continuous codes, by default and at most.
DEFAULT_BITS = 8
MAX_FLOAT_BITS = 16
MAX_INDEX_BITS = 32
KINDS = ("indices", "uniform")


@dataclass(frozen=True)
class Header:
    """What a compressed file says about its codes and the model that made them."""

    family: str
    #: sha256 of the model's weights (see `weights_sha256`).
    weights_sha256: str
    #: Where to find the model: a Hub repo id, a catalogue name or an absolute local folder ('' if unknown).
    model: str
    #: The Hub revision (a commit sha) for a Hub repo id, else None.
    revision: str | None
    #: 'indices' (exact discrete codes) or 'uniform' (quantised continuous codes).
    kind: str
    count: int
    image_shape: tuple[int, ...]
    code_shape: tuple[int, ...]
    bits: int
    #: Codebook size K of 'indices' codes, else 0.
    num_codes: int = 0
    #: Per-dimension ranges of 'uniform' codes (flattened code), else empty.
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()

    @property
    def code_size(self) -> int:
        return math.prod(self.code_shape)

    @property
    def payload_size(self) -> int:
        """Bytes of packed codes: ⌈count · code size · bits / 8⌉."""
        return (self.count * self.code_size * self.bits + 7) // 8

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "family": self.family,
            "weights_sha256": self.weights_sha256,
            "model": self.model,
            "revision": self.revision,
            "kind": self.kind,
            "count": self.count,
            "image_shape": list(self.image_shape),
            "code_shape": list(self.code_shape),
            "bits": self.bits,
            "zoo_version": __version__,
        }
        if self.kind == "indices":
            data["num_codes"] = self.num_codes
        else:
            data["low"], data["high"] = list(self.low), list(self.high)
        return data


def weights_sha256(model: Family) -> str:
    """sha256 over the names, dtypes, shapes and bytes of the model's state dict: the same
    for a model in memory and the model folder it was saved to or loaded from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{str(flat.dtype).removeprefix('torch.')}|{list(tensor.shape)}|".encode())
        digest.update(flat.view(_uint8()).numpy().tobytes())
    return digest.hexdigest()


def model_reference(source: str, revision: str | None, folder: os.PathLike) -> tuple[str, str | None]:
    """What a header records to find the model that `source` (as given to `zoo.load`,
    whose model was read from `folder`) names: a Hub repo id pinned to the commit it resolved to, a
    catalogue name (pinned by the catalogue), or the absolute path of a local folder."""
    from zoo.names import parse_model_ref

    ref = parse_model_ref(source, revision)
    if ref.kind == "hub":
        return ref.repo, Path(folder).name  # the Hub cache's snapshot folder is named by its commit
    if ref.kind == "catalogue":
        return ref.text, None
    return str(Path(folder).expanduser().resolve()), None


def _uint8():
    import torch

    return torch.uint8


# ----------------------------------------------------------------------------- writing
def compress(
    model: Family,
    images: torch.Tensor,
    bits: int = DEFAULT_BITS,
    model_ref: str = "",
    revision: str | None = None,
) -> bytes:
    """The codes of `images` (N, *input_shape) in [0, 1] as a compressed file's bytes.

    `bits` applies to continuous codes (bits per dimension); discrete codes take ⌈log2 K⌉.
    `model_ref` and `revision` are written to the header so that `zoo decompress` can find
    the model again: a Hub repo id with its commit, a catalogue name or an absolute folder."""
    import torch

    from zoo.family import check_batch

    if "encode" not in model.capabilities() or "decode" not in model.capabilities():
        raise InvalidInputError(f"family '{model.name}' cannot encode and decode, so it cannot compress")
    if model.conditional:
        raise InvalidInputError(f"family '{model.name}' is conditional: its codes need labels the codec does not store")
    shape = tuple(model.config.input_shape)
    images = images.to(model.device)
    check_batch(model, images, "compress")
    if len(images) == 0:
        raise InvalidInputError("compress takes at least one image, got none")
    if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise InvalidInputError("compress takes images with values in [0, 1]")
    codes = model.encode(images).detach().cpu()
    common = {
        "family": model.name,
        "weights_sha256": weights_sha256(model),
        "model": model_ref,
        "revision": revision,
        "count": len(images),
        "image_shape": shape,
        "code_shape": tuple(codes.shape[1:]),
    }
    if codes.dtype.is_floating_point:
        if not 1 <= bits <= MAX_FLOAT_BITS:
            raise InvalidInputError(f"bits must be in 1…{MAX_FLOAT_BITS}, got {bits}")
        flat = codes.double().reshape(len(codes), -1).numpy()
        low, high = flat.min(0).astype(np.float32), flat.max(0).astype(np.float32)
        header = Header(**common, kind="uniform", bits=bits, low=tuple(map(float, low)), high=tuple(map(float, high)))
        values = quantise(flat, low, high, bits)
    else:
        num_codes = _num_codes(model)
        header = Header(**common, kind="indices", bits=index_bits(num_codes), num_codes=num_codes)
        values = codes.reshape(-1).numpy()
        if values.min() < 0 or values.max() >= num_codes:
            raise InvalidInputError(f"{model.name} produced codes outside 0…{num_codes - 1}")
    return _frame(header, pack_bits(values.reshape(-1).astype(np.uint64), header.bits))


def _num_codes(model: Family) -> int:
    num_codes = getattr(model.config, "num_codes", None)
    if not isinstance(num_codes, int) or num_codes < 2:
        raise InvalidInputError(
            f"family '{model.name}' encodes to integers but its config declares no codebook size 'num_codes'"
        )
    return num_codes


def index_bits(num_codes: int) -> int:
    """⌈log2 K⌉ bits (at least 1) hold every index 0…K−1."""
    return max(1, (num_codes - 1).bit_length())


def quantise(flat: np.ndarray, low: np.ndarray, high: np.ndarray, bits: int) -> np.ndarray:
    """(N, D) values → integers 0…2^bits−1, uniformly between low and high per dimension."""
    levels = (1 << bits) - 1
    span = high.astype(np.float64) - low
    scaled = np.divide(flat - low, span, out=np.zeros_like(flat), where=span > 0)
    return np.clip(np.rint(scaled * levels), 0, levels).astype(np.uint64)


def dequantise(values: np.ndarray, low: np.ndarray, high: np.ndarray, bits: int) -> np.ndarray:
    """The inverse of `quantise` (to the centre of each quantisation cell)."""
    levels = (1 << bits) - 1
    return low.astype(np.float64) + values.astype(np.float64) / levels * (high.astype(np.float64) - low)


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Unsigned integers, each below 2^bits, as a big-endian bit string, zero-padded to a byte."""
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    return np.packbits(((values[:, None] >> shifts) & np.uint64(1)).astype(np.uint8).reshape(-1)).tobytes()


def unpack_bits(payload: bytes, count: int, bits: int) -> np.ndarray:
    """The `count` integers `pack_bits` wrote; the padding bits must be zero."""
    stream = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    if stream[count * bits :].any():
        raise CorruptFileError("the padding bits after the last code are not zero")
    matrix = stream[: count * bits].reshape(count, bits).astype(np.uint64)
    return (matrix << np.arange(bits - 1, -1, -1, dtype=np.uint64)).sum(1, dtype=np.uint64)


def _frame(header: Header, payload: bytes) -> bytes:
    text = json.dumps(header.to_json(), separators=(",", ":"), sort_keys=True).encode("utf-8")
    return MAGIC + _PREAMBLE.pack(FORMAT_VERSION, len(text)) + text + payload


# ----------------------------------------------------------------------------- reading
def read_header(data: bytes, where: str = "the file") -> tuple[Header, int]:
    """The header of a compressed file and the offset of its payload, every length checked."""
    if not data.startswith(MAGIC):
        raise CorruptFileError(f"{where} is not a zoo codes file (it does not start with {MAGIC.decode()})")
    if len(data) < PREAMBLE_SIZE:
        raise CorruptFileError(f"{where} is truncated: {len(data)} bytes, fewer than a header's first {PREAMBLE_SIZE}")
    version, length = _PREAMBLE.unpack_from(data, len(MAGIC))
    if version > FORMAT_VERSION:
        raise CorruptFileError(
            f"{where} is codes format version {version}; this zoo reads up to {FORMAT_VERSION}: upgrade zoo"
        )
    if version < 1:
        raise CorruptFileError(f"{where} has codes format version {version}, which does not exist")
    if length > MAX_HEADER or PREAMBLE_SIZE + length > len(data):
        raise CorruptFileError(f"{where} is truncated or corrupt: its header length {length} exceeds the file")
    try:
        fields = json.loads(data[PREAMBLE_SIZE : PREAMBLE_SIZE + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptFileError(f"{where} has a corrupt header: {err}") from None
    header = _parse_header(fields, where)
    offset = PREAMBLE_SIZE + length
    payload = len(data) - offset
    if payload != header.payload_size:
        what = "truncated" if payload < header.payload_size else "longer than its header says"
        raise CorruptFileError(
            f"{where} is {what}: {header.count} codes of {header.code_size} × {header.bits} bits need "
            f"{header.payload_size} payload bytes, it has {payload}"
        )
    return header, offset


def _parse_header(fields: Any, where: str) -> Header:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise CorruptFileError(f"{where} has a corrupt header: {what}")

    def is_int(value: Any, low: int = 0) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= low

    need(isinstance(fields, dict), "not a JSON object")
    need(isinstance(fields.get("family"), str) and fields["family"] != "", "no family name")
    digest = fields.get("weights_sha256")
    need(isinstance(digest, str) and len(digest) == 64, "no 64-digit weights_sha256")
    need(isinstance(fields.get("model", ""), str), "'model' is not a string")
    need(fields.get("revision") is None or isinstance(fields["revision"], str), "'revision' is not a string")
    kind = fields.get("kind")
    need(kind in KINDS, f"kind must be one of {', '.join(KINDS)}")
    need(is_int(fields.get("count"), 1), "count must be a positive integer")
    for key in ("image_shape", "code_shape"):
        value = fields.get(key)
        need(isinstance(value, list) and 1 <= len(value) <= 8 and all(is_int(d, 1) for d in value), f"bad {key}")
    need(is_int(fields.get("bits"), 1), "bits must be a positive integer")
    extra: dict[str, Any] = {}
    if kind == "indices":
        need(is_int(fields.get("num_codes"), 2), "num_codes must be an integer ≥ 2")
        need(fields["bits"] == index_bits(fields["num_codes"]), "bits do not match num_codes")
        extra["num_codes"] = fields["num_codes"]
    else:
        need(fields["bits"] <= MAX_FLOAT_BITS, f"bits above {MAX_FLOAT_BITS}")
        size = math.prod(fields["code_shape"])
        for key in ("low", "high"):
            value = fields.get(key)
            need(
                isinstance(value, list)
                and len(value) == size
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value),
                f"'{key}' must be {size} finite numbers",
            )
            extra[key] = tuple(float(v) for v in value)
        need(all(lo <= hi for lo, hi in zip(extra["low"], extra["high"], strict=True)), "a low above its high")
    return Header(
        family=fields["family"],
        weights_sha256=digest,
        model=fields.get("model", ""),
        revision=fields.get("revision"),
        kind=kind,
        count=fields["count"],
        image_shape=tuple(fields["image_shape"]),
        code_shape=tuple(fields["code_shape"]),
        bits=fields["bits"],
        **extra,
    )


def decode_codes(data: bytes, where: str = "the file") -> tuple[Header, torch.Tensor]:
    """The header and the codes of a compressed file: int64 indices, or float32 dequantised codes."""
    import torch

    header, offset = read_header(data, where)
    values = unpack_bits(data[offset:], header.count * header.code_size, header.bits)
    if header.kind == "indices":
        if values.max() >= header.num_codes:
            raise CorruptFileError(f"{where} holds a code index ≥ its codebook size {header.num_codes}")
        codes = torch.from_numpy(values.astype(np.int64))
    else:
        low, high = np.asarray(header.low, np.float32), np.asarray(header.high, np.float32)
        flat = dequantise(values.reshape(header.count, -1), low, high, header.bits)
        codes = torch.from_numpy(flat.astype(np.float32))
    return header, codes.reshape(header.count, *header.code_shape)


def decompress(data: bytes, model: Family, where: str = "the file") -> torch.Tensor:
    """The images (N, *input_shape) in [0, 1] of a compressed file, decoded by `model`, which
    must be the model that compressed it (same family and weights). All codes are decoded in
    one batch, so VQ-VAE images equal `model.reconstruct` of the originals bit for bit."""
    header, codes = decode_codes(data, where)
    if header.family != model.name:
        raise InvalidInputError(f"{where} was compressed by a '{header.family}' model, not '{model.name}'")
    digest = weights_sha256(model)
    if digest != header.weights_sha256:
        raise InvalidInputError(
            f"{where} was compressed by other weights (sha256 {header.weights_sha256[:12]}…) than this "
            f"{model.name} model's ({digest[:12]}…): decompress it with the model that compressed it"
        )
    if tuple(model.config.input_shape) != header.image_shape:
        raise InvalidInputError(f"{where} holds images of shape {list(header.image_shape)}; the model makes others")
    _check_codes_fit(header, model, where)
    return model.decode(codes.to(model.device)).detach()


def _check_codes_fit(header: Header, model: Family, where: str) -> None:
    """Refuse a header whose code shape or kind the model does not make: the sha256 names
    the model, but the header's other fields are only as good as the file."""
    import torch

    with torch.no_grad():
        probe = model.encode(torch.zeros(1, *header.image_shape, device=model.device))
    shape, kind = tuple(probe.shape[1:]), "uniform" if probe.dtype.is_floating_point else "indices"
    if (header.code_shape, header.kind) != (shape, kind):
        raise CorruptFileError(
            f"{where} has a corrupt header: code_shape {list(header.code_shape)} ({header.kind}) does not fit "
            f"the model, whose codes are {list(shape)} ({kind})"
        )
