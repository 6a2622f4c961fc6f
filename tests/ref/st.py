"""st.py - minimal safetensors read/write and the number formats of DeepSeek checkpoints.

Formats (all little-endian):
  safetensors  u64 N, then N bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]},
               "__metadata__": {...}}, padded with spaces so the data starts 8-byte aligned, then the
               tensors' bytes, row-major, offsets relative to the data start.
  sharded      model.safetensors.index.json = {"metadata": {"total_size": bytes of tensor data},
               "weight_map": {name: "model-00001-of-00003.safetensors", ...}}.
  BF16         the top 16 bits of a float32; written with round-to-nearest-even, read exactly.
  F8_E4M3      float8 e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities;
               0x7F/0xFF are NaN; largest finite 448; subnormals m/8 * 2^-6.
  FP8 blocks   DeepSeek-V3 report §3.3 / official checkpoints: "<w>_scale_inv" is F32
               [ceil(rows/bm), ceil(cols/bn)] and w[r, c] = f32(fp8[r, c]) * scale_inv[r//bm, c//bn],
               the product taken in float32.

A "raw" tensor here is a pair (dtype string, numpy array in its storage form): F32 -> float32,
F16 -> float16, BF16 -> uint16 bits, F8_E4M3 -> uint8 codes.
"""
import json
import os

import numpy as np

STORAGE = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
           "F8_E4M3": np.dtype("u1")}
FP8_MAX = 448.0

# ---------------------------------------------------------------------------- bf16


def bf16_encode(a):
    """float32 array -> uint16 bf16 bits, round to nearest, ties to even (finite inputs)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_decode(u):
    """uint16 bf16 bits -> float32, exact."""
    return (np.asarray(u, dtype=np.uint32) << 16).view(np.float32)

# ---------------------------------------------------------------------------- fp8 e4m3fn


def _e4m3_table():
    """The float32 value of each of the 256 codes."""
    code = np.arange(256)
    exp, man = (code >> 3) & 0xF, code & 7
    mag = np.where(exp == 0, man / 8.0 * 2.0 ** -6, (1 + man / 8.0) * 2.0 ** (exp - 7.0))
    val = np.where(code & 0x80, -mag, mag)
    val[(code & 0x7F) == 0x7F] = np.nan
    return val.astype(np.float32)


E4M3 = _e4m3_table()
_E4M3_POS = E4M3[:0x7F].astype(np.float64)  # codes 0x00..0x7E: the finite non-negatives, ascending


def fp8_decode(u):
    """uint8 codes -> float32 values."""
    return E4M3[np.asarray(u, dtype=np.uint8)]


def fp8_encode(a):
    """Finite float array -> uint8 e4m3fn codes: nearest value, ties to the even code (even
    mantissa), magnitudes above 448 saturate to 448. The sign of -0.0 is kept."""
    a = np.asarray(a, dtype=np.float32)
    assert np.isfinite(a).all(), "fp8_encode: non-finite input"
    x = np.minimum(np.abs(a).astype(np.float64), FP8_MAX)
    hi = np.minimum(np.searchsorted(_E4M3_POS, x), 0x7E)   # first code whose value >= x
    lo = np.maximum(hi - 1, 0)
    d_lo, d_hi = x - _E4M3_POS[lo], _E4M3_POS[hi] - x
    code = np.where(d_lo < d_hi, lo, np.where(d_hi < d_lo, hi, np.where(lo % 2 == 0, lo, hi)))
    return (code | np.where(np.signbit(a), 0x80, 0)).astype(np.uint8)


def _expand_blocks(s, shape, block):
    """Scale grid [ceil(R/bm), ceil(C/bn)] -> one scale per element [R, C]."""
    bm, bn = block
    return np.repeat(np.repeat(s, bm, axis=0), bn, axis=1)[:shape[0], :shape[1]]


def fp8_quantize(w, block):
    """float32 [R, C] -> (uint8 codes [R, C], float32 scale_inv [ceil(R/bm), ceil(C/bn)]).
    Per block s = amax / 448 (1 if the block is all zero) and codes = e4m3(w / s)."""
    w = np.asarray(w, dtype=np.float32)
    (rows, cols), (bm, bn) = w.shape, block
    nr, nc = -(-rows // bm), -(-cols // bn)
    padded = np.zeros((nr * bm, nc * bn), np.float32)
    padded[:rows, :cols] = np.abs(w)
    amax = padded.reshape(nr, bm, nc, bn).max(axis=(1, 3))
    s = np.where(amax == 0, np.float32(1), amax / np.float32(FP8_MAX)).astype(np.float32)
    return fp8_encode(w / _expand_blocks(s, w.shape, block)), s


def fp8_dequantize(codes, scale_inv, block):
    """Inverse of fp8_quantize: float32 product of the code's value and its block's scale."""
    return fp8_decode(codes) * _expand_blocks(scale_inv.astype(np.float32), codes.shape, block)

# ---------------------------------------------------------------------------- raw <-> float32


def encode(a, dtype):
    """float32 array -> raw pair of the given dtype (not F8_E4M3: that needs fp8_quantize)."""
    a = np.asarray(a, dtype=np.float32)
    if dtype == "BF16":
        return "BF16", bf16_encode(a)
    if dtype in ("F32", "F16"):
        return dtype, a.astype(STORAGE[dtype])
    raise ValueError(f"encode: unsupported dtype {dtype}")


def decode(raw):
    """raw pair -> float32 array (F8_E4M3 without its scale)."""
    dtype, a = raw
    if dtype == "BF16":
        return bf16_decode(a)
    if dtype == "F8_E4M3":
        return fp8_decode(a)
    return a.astype(np.float32)


def dequantize(raws, block):
    """{name: raw} -> {name: float32}, folding each "<w>_scale_inv" into its weight "<w>"."""
    out = {}
    for name, raw in raws.items():
        if name.endswith("_scale_inv"):
            continue
        scale = raws.get(name + "_scale_inv")
        if scale is None:
            out[name] = decode(raw)
        else:
            assert raw[0] == "F8_E4M3", f"{name}: a scale_inv on a {raw[0]} tensor"
            out[name] = fp8_dequantize(raw[1], decode(scale), block)
    return out

# ---------------------------------------------------------------------------- files


def save_file(path, raws):
    """Write {name: raw} as one safetensors file, tensors in the dict's order."""
    header, offset = {}, 0
    for name, (dtype, a) in raws.items():
        n = a.size * STORAGE[dtype].itemsize
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for dtype, a in raws.values():
            f.write(np.ascontiguousarray(a, dtype=STORAGE[dtype]).tobytes())


def load_file(path):
    """Read one safetensors file -> {name: raw}; arrays are read-only views of a memory map."""
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    n = int.from_bytes(buf[:8].tobytes(), "little")
    if 8 + n > buf.size:
        raise ValueError(f"{path}: header length {n} exceeds file size {buf.size}")
    header = json.loads(buf[8:8 + n].tobytes())
    data = buf[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, shape = STORAGE[info["dtype"]], info["shape"]
        begin, end = info["data_offsets"]
        if end > data.size or end - begin != int(np.prod(shape)) * dt.itemsize:
            raise ValueError(f"{path}: tensor {name} has bad data_offsets {begin}..{end}")
        out[name] = (info["dtype"], data[begin:end].view(dt).reshape(shape))
    return out


def save_sharded(folder, raws, n_shards):
    """Split {name: raw} into n_shards files of about equal size plus the HF index file."""
    sizes = {k: a.size * STORAGE[d].itemsize for k, (d, a) in raws.items()}
    total, shards, acc = sum(sizes.values()), [dict() for _ in range(n_shards)], 0
    for name, raw in raws.items():
        shards[min(acc * n_shards // total, n_shards - 1)][name] = raw
        acc += sizes[name]
    weight_map = {}
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        save_file(os.path.join(folder, fname), shard)
        weight_map.update({name: fname for name in shard})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def load_dir(folder):
    """Read a HF checkpoint folder (model.safetensors, or the shards its index names) -> {name: raw}."""
    index = os.path.join(folder, "model.safetensors.index.json")
    if not os.path.exists(index):
        return load_file(os.path.join(folder, "model.safetensors"))
    with open(index) as f:
        weight_map = json.load(f)["weight_map"]
    out = {}
    for fname in sorted(set(weight_map.values())):
        out.update(load_file(os.path.join(folder, fname)))
    missing = set(weight_map) - set(out)
    if missing:
        raise ValueError(f"{folder}: tensors in the index but not in the shards: {sorted(missing)[:5]}")
    return out
