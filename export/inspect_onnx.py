#!/usr/bin/env python3
"""Inspect a keras_resnet_lab ONNX artifact with onnxruntime and numpy only.

Reads the artifact (a folder holding ``model.onnx`` and ``manifest.json``, or the ``.onnx``
file itself), runs it on an image, a ``.npy`` batch or a fixed-seed random batch, and prints,
for the stem and every block, the mean, the standard deviation, the mean L2 norm per example, the
norm ratio ``||h_i|| / ||h_(i-1)||`` between consecutive outputs and, where the shapes agree, the
relative change ``||h_i - h_(i-1)|| / ||h_(i-1)||`` (how much a block refines its input).

An image is converted to grey or RGB as the manifest's preprocessing says (``color``),
resized to the input size and turned into the input as ``x = (pixels * scale - mean) / std``
from its 0-255 pixels; ``train`` and the lab record that for the dataset they trained on (the
digits: grey, white strokes on black, standardized).

Needs: numpy, onnxruntime; Pillow only to read an image file. No TensorFlow, no Keras, no
keras_resnet_lab: this is what a deployment consumer has.

Usage:
    python export/inspect_onnx.py exports/onnx --image digit.png
    python export/inspect_onnx.py exports/onnx/model.onnx --npy batch.npy --json stats.json
    python export/inspect_onnx.py exports/onnx --random 4
"""

import argparse
import json
import os
import sys

import numpy as np

try:
    import onnxruntime
except ImportError:  # pragma: no cover - said clearly to the user
    sys.exit("error: inspect_onnx.py needs onnxruntime (pip install onnxruntime)")

MANIFEST = "manifest.json"
ONNX_FILE = "model.onnx"


class UsageError(Exception):
    """A problem with the arguments or files, printed as one line."""


def locate(path):
    """``(onnx_file, manifest_file or None)`` for an artifact folder or an ``.onnx`` file."""
    if os.path.isdir(path):
        onnx_file = os.path.join(path, ONNX_FILE)
    else:
        onnx_file = path
    if not os.path.isfile(onnx_file):
        raise UsageError(f"no ONNX file at {onnx_file}")
    manifest = os.path.join(os.path.dirname(os.path.abspath(onnx_file)), MANIFEST)
    return onnx_file, manifest if os.path.isfile(manifest) else None


def read_manifest(manifest_file, session):
    """The manifest dict; without a manifest file, a minimal one from the ONNX metadata."""
    if manifest_file is not None:
        with open(manifest_file, encoding="utf-8") as handle:
            return json.load(handle)
    meta = session.get_modelmeta().custom_metadata_map
    outputs = json.loads(meta.get("keras_resnet_lab.outputs", "[]")) or [
        {"name": o.name, "role": "block", "block_index": None, "stage": None, "block": None}
        for o in session.get_outputs()]
    inp = session.get_inputs()[0]
    return {"outputs": outputs,
            "input": {"name": inp.name, "shape": [d if isinstance(d, int) else None
                                                  for d in inp.shape],
                      "dtype": "float32", "preprocessing": {}}}


def load_image(path, input_spec):
    """An image file as a batch of one, resized and preprocessed as the manifest says."""
    try:
        from PIL import Image
    except ImportError as error:
        raise UsageError("reading an image file needs Pillow (pip install pillow); without it "
                         "pass a preprocessed batch with --npy FILE.npy") from error
    shape = input_spec["shape"]
    if len(shape) != 4:
        raise UsageError(f"--image needs a model with an NHWC image input, this one takes "
                         f"{shape}; pass --npy instead")
    height, width, channels = shape[1:]
    prep = input_spec.get("preprocessing") or {}
    # A grey model (the digits: white strokes on black) gets the image's luminance, repeated
    # to its channels; an RGB model gets RGB.
    gray = prep.get("color") == "grayscale" or channels == 1
    with Image.open(path) as image:
        image = image.convert("L" if gray else "RGB")
        if height and width:
            image = image.resize((width, height), Image.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if channels and pixels.shape[-1] != channels:
        pixels = np.repeat(pixels[..., :1], channels, axis=-1)
    notes = []
    if all(prep.get(key) is None for key in ("scale", "mean", "std")):
        notes.append("the manifest records no preprocessing: pixels scaled to [0, 1]")
        pixels = pixels / 255.0
    else:
        notes.append("preprocessed as the manifest records: "
                     + (prep.get("description") or "x = (pixels * scale - mean) / std"))
        if prep.get("scale") is not None:
            pixels = pixels * prep["scale"]
        if prep.get("mean") is not None:
            pixels = pixels - np.asarray(prep["mean"], dtype=np.float32)
        if prep.get("std") is not None:
            pixels = pixels / np.asarray(prep["std"], dtype=np.float32)
    return pixels[None].astype(np.float32), f"image {path}", notes


def make_input(args, input_spec):
    """``(batch, description, notes)`` from --image, --npy or --random."""
    if args.image:
        return load_image(args.image, input_spec)
    shape = input_spec["shape"]
    if args.npy:
        if not os.path.isfile(args.npy):
            raise UsageError(f"no .npy file at {args.npy}")
        x = np.load(args.npy, allow_pickle=False).astype(np.float32)
        if x.ndim == len(shape) - 1:
            x = x[None]
        if x.ndim != len(shape) or any(d is not None and d != s
                                       for d, s in zip(shape[1:], x.shape[1:])):
            raise UsageError(f"--npy batch has shape {x.shape}, the model takes {shape}")
        return x, f"npy {args.npy}", []
    if any(d is None for d in shape[1:]):
        raise UsageError(f"the input shape {shape} has dynamic axes: pass --image or --npy")
    x = np.random.default_rng(args.seed).standard_normal([args.random] + shape[1:])
    return x.astype(np.float32), f"random normal, seed {args.seed}", []


def block_stats(entries, values):
    """Per-output statistics in chain order (stem, blocks; the final output apart)."""
    rows = []
    previous = None
    for entry in entries:
        h = values[entry["name"]].astype(np.float64)
        flat = h.reshape(h.shape[0], -1)
        norms = np.linalg.norm(flat, axis=1)
        row = {"name": entry["name"], "role": entry.get("role"),
               "block_index": entry.get("block_index"), "stage": entry.get("stage"),
               "shape": list(h.shape), "mean": float(flat.mean()), "std": float(flat.std()),
               "norm": float(norms.mean()), "norm_ratio": None, "relative_change": None}
        if previous is not None:
            prev_norms = np.linalg.norm(previous, axis=1)
            safe = np.maximum(prev_norms, 1e-12)
            row["norm_ratio"] = float(np.mean(norms / safe))
            if previous.shape == flat.shape:
                change = np.linalg.norm(flat - previous, axis=1)
                row["relative_change"] = float(np.mean(change / safe))
        rows.append(row)
        previous = flat
    return rows


def _fmt(value):
    return "-" if value is None else f"{value:.4g}"


def print_table(rows, out=sys.stdout):
    header = f"{'output':<16}{'shape':<18}{'mean':>10}{'std':>10}{'norm':>10}" \
             f"{'ratio':>9}{'change':>9}"
    print(header, file=out)
    print("-" * len(header), file=out)
    for row in rows:
        shape = "x".join("?" if d is None else str(d) for d in row["shape"][1:])
        print(f"{row['name']:<16}{shape:<18}{row['mean']:>10.4g}{row['std']:>10.4g}"
              f"{row['norm']:>10.4g}{_fmt(row['norm_ratio']):>9}"
              f"{_fmt(row['relative_change']):>9}", file=out)


def inspect(path, args):
    """Run the artifact and return the statistics dict (what --json writes)."""
    onnx_file, manifest_file = locate(path)
    session = onnxruntime.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    manifest = read_manifest(manifest_file, session)
    graph_outputs = [o.name for o in session.get_outputs()]
    entries = [e for e in manifest["outputs"] if e["name"] in graph_outputs]
    missing = [e["name"] for e in manifest["outputs"] if e["name"] not in graph_outputs]
    if missing:
        raise UsageError(f"the manifest lists outputs the ONNX graph lacks: {missing}")
    x, source, notes = make_input(args, manifest["input"])
    input_name = session.get_inputs()[0].name
    values = dict(zip(graph_outputs, session.run(graph_outputs, {input_name: x})))
    chain = [e for e in entries if e.get("role") in ("stem", "block")]
    final = [e for e in entries if e.get("role") == "output"]
    result = {"artifact": onnx_file, "manifest": manifest_file, "input": {
        "source": source, "shape": list(x.shape)}, "notes": notes,
        "blocks": block_stats(chain, values)}
    if final:
        out = values[final[0]["name"]]
        result["output"] = {"name": final[0]["name"], "shape": list(out.shape)}
        if out.ndim == 2:
            result["output"]["argmax"] = [int(i) for i in out.argmax(axis=1)]
    parity = manifest.get("parity")
    if parity:
        result["export_parity"] = {"worst_output": parity.get("worst_output"),
                                   "worst_diff": parity.get("worst_diff")}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact", help="artifact folder (model.onnx + manifest.json) or .onnx")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--image", help="an image file (needs Pillow)")
    source.add_argument("--npy", help="a .npy batch already in the model's input format")
    source.add_argument("--random", type=int, default=2,
                        help="random normal examples when no --image/--npy (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random batch")
    parser.add_argument("--json", help="also write the statistics to this JSON file")
    args = parser.parse_args(argv)
    try:
        if args.random < 1:
            raise UsageError(f"--random must be >= 1, got {args.random}")
        result = inspect(args.artifact, args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{result['artifact']}  input: {result['input']['source']} "
          f"{tuple(result['input']['shape'])}")
    for note in result["notes"]:
        print(f"note: {note}")
    if result["blocks"]:
        print_table(result["blocks"])
    else:
        print("note: no stem/block outputs in this artifact (exported without intermediate "
              "outputs)")
    if "output" in result:
        print(f"final output '{result['output']['name']}' {tuple(result['output']['shape'])}"
              + (f" argmax {result['output']['argmax']}" if "argmax" in result["output"]
                 else ""))
    if "export_parity" in result:
        p = result["export_parity"]
        print(f"parity at export: max abs diff {p['worst_diff']:.2e} at {p['worst_output']!r}")
    if args.json:
        tmp = f"{args.json}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
        os.replace(tmp, args.json)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
