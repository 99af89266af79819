#!/usr/bin/env python3
"""The numpy side of the checkpoint round trip (ctest: checkpoint_numpy_roundtrip).

    numpy_roundtrip.py DIR

DIR holds what the C++ side wrote (build/bin/dgm_interop write DIR):
  dgm.safetensors   a checkpoint
  expected.json     for each tensor: dtype, shape, and every value as a list
This script reads the checkpoint with numpy alone -- the safetensors layout is
an 8-byte little-endian header length N, N bytes of JSON, then raw
little-endian data at the offsets the JSON gives -- checks every name, shape,
dtype and value against expected.json, and writes DIR/numpy.safetensors: each
tensor times 2 plus 1 (the same names: dgm loads it into a module), and
DIR/numpy_extra.safetensors: one new tensor "numpy.arange" [2, 3] float64 0..5.
The C++ side (dgm_interop check DIR) loads that back and checks it.
Exit status 0 when everything matched; otherwise a line per mismatch.
"""
import json
import sys

import numpy as np

from safetensors_numpy import DTYPES, read_safetensors, write_safetensors


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    folder = sys.argv[1]
    tensors, metadata = read_safetensors(f"{folder}/dgm.safetensors")
    with open(f"{folder}/expected.json") as f:
        expected = json.load(f)
    problems = []
    if sorted(tensors) != sorted(expected):
        problems.append(f"names: file has {sorted(tensors)}, expected {sorted(expected)}")
    for name, want in expected.items():
        if name not in tensors:
            continue
        got = tensors[name]
        want_dtype = DTYPES[want["dtype"]]
        if got.dtype != want_dtype:
            problems.append(f"{name}: dtype {got.dtype}, expected {want_dtype}")
        if list(got.shape) != want["shape"]:
            problems.append(f"{name}: shape {list(got.shape)}, expected {want['shape']}")
        values = np.array(want["values"], dtype=want_dtype).reshape(want["shape"])
        if not np.array_equal(got, values):  # bit for bit: the JSON holds the values exactly (17 digits)
            problems.append(f"{name}: values differ, max |diff| {np.max(np.abs(got.astype(float) - values.astype(float)))}")
    if metadata.get("written_by") != "dgm_interop":
        problems.append(f"__metadata__: {metadata}")
    for p in problems:
        print("numpy_roundtrip:", p)
    with np.errstate(over="ignore"):  # 3.4e38 * 2 is inf in float32, in numpy as in C++
        out = {name: np.asarray(a * 2 + 1, dtype=a.dtype) for name, a in tensors.items()}
    write_safetensors(f"{folder}/numpy.safetensors", out, {"written_by": "numpy " + np.__version__})
    write_safetensors(f"{folder}/numpy_extra.safetensors", {"numpy.arange": np.arange(6, dtype="<f8").reshape(2, 3)},
                      {"written_by": "numpy " + np.__version__})
    print(f"numpy_roundtrip: read {len(tensors)} tensors with numpy {np.__version__}: "
          f"{'all names, shapes, dtypes and values match' if not problems else str(len(problems)) + ' problems'}; "
          f"wrote numpy.safetensors")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
