"""The manifest written next to every artifact (``manifest.json``): what each output is, the
input spec and preprocessing, the versions that wrote it, and the parity measured at export.

The format is described for consumers in the repository's ``export/README.md``.
"""

import dataclasses
import datetime
import json
import numbers
import os
import platform

from keras_resnet_lab.atomic import Result

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
PREPROCESSING_KEYS = ("description", "scale", "mean", "std", "color")


@dataclasses.dataclass
class Manifest(Result):
    """Everything a consumer needs to read an artifact without Keras (``to_dict`` and
    ``to_json(path)`` from :class:`~keras_resnet_lab.atomic.Result`; ``plot(path)`` draws its
    parity).

    Attributes:
        format_version: version of this manifest format.
        artifact: the artifact kind and its files (``format``, ``file`` or ``endpoints``, ...).
        model: the model's name, class, parameter count and blocks.
        input: input name, shape (None = dynamic), dtype, layout, preprocessing.
        outputs: one dict per output: name, role, block_index, stage, block, layer,
            layer_type, shape, dtype (chain order: stem, blocks, output).
        parity: the :class:`~keras_resnet_lab.export.parity.ParityReport` as a dict.
        versions: library and framework versions that wrote the artifact.
        created: UTC time of the export, ISO 8601.
    """

    format_version: int
    artifact: dict
    model: dict
    input: dict
    outputs: list
    parity: dict
    versions: dict
    created: str

    allow_nan = True

    def output(self, name):
        """The output entry called ``name`` (ValueError listing the names otherwise)."""
        for entry in self.outputs:
            if entry["name"] == name:
                return entry
        names = ", ".join(entry["name"] for entry in self.outputs)
        raise ValueError(f"unknown output {name!r}; the outputs are: {names}.")

    def plot(self, path):
        """Plot the parity measured at export (max abs diff per output) to a PNG."""
        from keras_resnet_lab.export.parity import ParityReport

        ParityReport(**self.parity).plot(path)

    @classmethod
    def from_dict(cls, data):
        """Rebuild a manifest from :meth:`to_dict`'s output."""
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = fields - set(data)
        if missing:
            raise ValueError(f"not an export manifest: missing {sorted(missing)}.")
        return cls(**{key: data[key] for key in fields})


def load_manifest(path):
    """Read the manifest of an artifact folder (or a ``manifest.json`` path).

    Example:
        >>> manifest = load_manifest("exports/onnx")  # doctest: +SKIP
        >>> [o["name"] for o in manifest.outputs][:2]
        ['stem', 'stage1_block1']
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, MANIFEST_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no export manifest at {path}")
    with open(path, encoding="utf-8") as handle:
        return Manifest.from_dict(json.load(handle))


def _channels_list(name, value, channels):
    if value is None:
        return None
    values = [value] if isinstance(value, numbers.Real) else list(value)
    if not values or not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                             for v in values):
        raise ValueError(f"preprocessing `{name}` must be a number or a list of numbers, "
                         f"got {value!r}.")
    if len(values) not in (1, channels):
        raise ValueError(f"preprocessing `{name}` needs 1 or {channels} values (one per "
                         f"channel), got {len(values)}.")
    if name == "std" and any(v <= 0 for v in values):
        raise ValueError(f"preprocessing `std` values must be > 0, got {value!r}.")
    return [float(v) for v in values]


def preprocessing_spec(preprocessing, channels):
    """Validate and complete a preprocessing description.

    A consumer turns an RGB image with pixel values 0-255 into the model's input as
    ``x = (pixels * scale - mean) / std`` (each step skipped when its value is None).

    Args:
        preprocessing: None, or a dict with keys among ``description``, ``scale``, ``mean``,
            ``std`` (a number or one per channel) and ``color`` (``"rgb"`` or ``"grayscale"``).
        channels: the input's channel count (last axis).

    Example:
        >>> preprocessing_spec({"scale": 1 / 255, "mean": 0.5, "std": 0.25}, 3)["mean"]
        [0.5]
    """
    if preprocessing is None:
        return {"description": "none recorded: feed the tensor the Keras model takes",
                "scale": None, "mean": None, "std": None, "color": "rgb"}
    if not isinstance(preprocessing, dict):
        raise ValueError(f"`preprocessing` must be a dict or None, got {preprocessing!r}.")
    unknown = set(preprocessing) - set(PREPROCESSING_KEYS)
    if unknown:
        raise ValueError(f"`preprocessing` has unknown keys {sorted(unknown)}; allowed: "
                         f"{', '.join(PREPROCESSING_KEYS)}.")
    scale = preprocessing.get("scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, numbers.Real)
                              or scale <= 0):
        raise ValueError(f"preprocessing `scale` must be a number > 0, got {scale!r}.")
    color = preprocessing.get("color", "rgb")
    if color not in ("rgb", "grayscale"):
        raise ValueError(f"preprocessing `color` must be 'rgb' or 'grayscale', got {color!r}.")
    return {"description": str(preprocessing.get("description", "")),
            "scale": None if scale is None else float(scale),
            "mean": _channels_list("mean", preprocessing.get("mean"), channels),
            "std": _channels_list("std", preprocessing.get("std"), channels),
            "color": color}


def versions(extra=()):
    """Versions of Python, numpy, keras, tensorflow, keras_resnet_lab and ``extra`` modules.

    Args:
        extra: more module names (a missing module is recorded as None).

    Example:
        >>> sorted(versions(("onnx",)))[:3]  # doctest: +SKIP
        ['keras', 'keras_resnet_lab', 'numpy']
    """
    import importlib
    import importlib.metadata

    import keras_resnet_lab

    found = {"python": platform.python_version(), "keras_resnet_lab": keras_resnet_lab.__version__}
    for name in ("numpy", "keras", "tensorflow", *extra):
        try:
            found[name] = importlib.import_module(name).__version__
        except ImportError:
            found[name] = None
        except AttributeError:  # no __version__: ask its distribution
            try:
                found[name] = importlib.metadata.version(name.replace("_", "-"))
            except importlib.metadata.PackageNotFoundError:
                found[name] = None
    return found


def build_manifest(model, outputs, artifact, parity, preprocessing=None, extra_versions=()):
    """Assemble the :class:`Manifest` of an export.

    Args:
        model: the exported Keras model.
        outputs: the :class:`~keras_resnet_lab.export.features.FeatureOutput` list.
        artifact: the artifact description dict.
        parity: the ParityReport.
        preprocessing: see :func:`preprocessing_spec`.
        extra_versions: more module names whose version to record (``"tf2onnx"`` ...).

    Example:
        >>> manifest = build_manifest(model, outputs, {"format": "onnx"}, report)  # doctest: +SKIP
    """
    inp = model.inputs[0]
    shape = [None if d is None else int(d) for d in inp.shape]
    layout = {4: "NHWC", 2: "NC", 3: "NWC", 5: "NDHWC"}.get(len(shape), "N...")
    import keras

    block_outputs = [o for o in outputs if o.role == "block"]
    return Manifest(
        format_version=FORMAT_VERSION,
        artifact=artifact,
        model={"name": model.name, "class": type(model).__name__,
               "params": int(model.count_params()),
               "n_blocks": len(block_outputs),
               "n_stages": len({o.stage for o in block_outputs}),
               "block_types": sorted({o.layer_type for o in block_outputs})},
        input={"name": "input", "keras_name": getattr(inp, "name", None), "shape": shape,
               "dtype": keras.backend.standardize_dtype(inp.dtype), "layout": layout,
               "preprocessing": preprocessing_spec(preprocessing, shape[-1] or 1)},
        outputs=[o.to_dict() for o in outputs],
        parity=parity.to_dict(),
        versions=versions(extra_versions),
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
