"""Parity between an exported artifact and the Keras model, measured at every export."""

import dataclasses

import numpy as np

from keras_resnet_lab._checks import number_in, positive_int
from keras_resnet_lab.atomic import Result, new_figure

DEFAULT_TOLERANCE = 1e-4
DEFAULT_BATCH = 8
DEFAULT_SEED = 0
#: Quantized artifacts: the least top-1 agreement with Keras on the parity batch.
DEFAULT_MIN_AGREEMENT = 0.9
#: Quantized artifacts: the random parity batch (an agreement over 8 examples moves in steps
#: of 1/8, so one disagreement would already fall below 0.9).
QUANTIZED_BATCH = 32
#: ``ParityReport.criterion`` values.
CRITERIA = ("max_abs_diff", "top1_agreement")


class ExportParityError(ValueError):
    """The artifact's outputs differ from the Keras model's by more than the tolerance."""

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


@dataclasses.dataclass
class ParityReport(Result):
    """Max absolute difference between artifact and Keras, per output.

    For a float artifact (``criterion="max_abs_diff"``) the check passes when, for every output,
    ``max|artifact - keras| <= tolerance * max(1, max|keras|)``: an absolute tolerance for
    outputs of magnitude up to 1, relative to the output's largest magnitude beyond (float32
    rounding grows with the values, and the blocks of a deep untrained network reach
    magnitudes of 100 or more). A quantized artifact (``criterion="top1_agreement"``, LiteRT
    int8) cannot meet a float tolerance: it passes when the top-1 class of ``output`` agrees
    with Keras's on at least ``min_agreement`` of the parity batch; the diffs are recorded all
    the same.

    Attributes:
        artifact: ``"savedmodel"``, ``"onnx"`` or ``"tflite"``.
        tolerance: the largest allowed max abs diff.
        batch_size: examples in the parity batch.
        input: how the batch was made (``"random normal, seed 0"`` or ``"given sample"``).
        max_abs_diff: ``{output: max |artifact - keras|}``; SavedModel entries of the ``serve``
            endpoint are prefixed ``serve/``.
        max_abs_reference: ``{output: max |keras|}``, the scale each diff compares with.
        scaled_diff: ``{output: max_abs_diff / max(1, max_abs_reference)}``, what is
            compared with the tolerance.
        worst_output: the output with the largest scaled diff.
        worst_diff: its max abs diff.
        passed: every scaled diff <= tolerance (float), or the top-1 agreement is at least
            ``min_agreement`` (quantized).
        criterion: ``"max_abs_diff"`` or ``"top1_agreement"``: what ``passed`` judges.
        top1_agreement: share of the batch whose argmax of ``output`` equals Keras's (None
            unless quantized).
        min_agreement: the least agreement a quantized artifact needs (None for float).
        logits_drift: ``max|artifact - keras| / max|keras|`` of ``output`` (None unless
            quantized).
    """

    artifact: str
    tolerance: float
    batch_size: int
    input: str
    max_abs_diff: dict
    max_abs_reference: dict
    scaled_diff: dict
    worst_output: str
    worst_diff: float
    passed: bool
    criterion: str = "max_abs_diff"
    top1_agreement: float | None = None
    min_agreement: float | None = None
    logits_drift: float | None = None

    allow_nan = True
    savefig_options = {"dpi": 120}

    def figure(self):
        """Bar chart (log scale) of the max abs diff per output, with the tolerance line
        (``plot(path)`` writes it)."""
        names = list(self.max_abs_diff)
        values = [max(self.scaled_diff[n], 1e-12) for n in names]
        fig, (ax,) = new_figure(1, width=max(4.0, 0.4 * len(names) + 2), height=3.5)
        judged = self.criterion == "max_abs_diff"
        ax.bar(range(len(names)), values, color=["C3" if judged and v > self.tolerance else "C0"
                                                 for v in values])
        if self.criterion == "max_abs_diff":
            ax.axhline(self.tolerance, color="k", linestyle="--", label="tolerance")
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("max |artifact - keras| / max(1, max |keras|)", fontsize=8)
        title = f"{self.artifact} parity ({self.input}, batch {self.batch_size})"
        if self.top1_agreement is not None:
            title += f"\ntop-1 agreement {self.top1_agreement:.3f} (min {self.min_agreement})"
        ax.set_title(title, fontsize=9)
        if judged:
            ax.legend()
        return fig


def parity_batch(input_shape, dtype="float32", sample=None, batch_size=DEFAULT_BATCH,
                 seed=DEFAULT_SEED):
    """The batch parity is measured on: ``sample`` if given, else fixed-seed random normal.

    Args:
        input_shape: the model's input shape, batch axis first (``(None, 32, 32, 3)``).
        dtype: the model's input dtype.
        sample: optional array of one example or a batch (missing batch axis is added).
        batch_size: size of the random batch.
        seed: seed of the random batch.

    Returns:
        ``(x, description)``.

    Example:
        >>> x, how = parity_batch((None, 8, 8, 3))
        >>> x.shape, how
        ((8, 8, 8, 3), 'random normal, seed 0')
    """
    inner = tuple(input_shape[1:])
    if sample is not None:
        x = np.asarray(sample, dtype=dtype)
        if x.ndim == len(inner):
            x = x[None]
        if x.ndim != len(inner) + 1 or any(d is not None and d != s
                                           for d, s in zip(inner, x.shape[1:])):
            raise ValueError(f"`sample` must have shape (batch,) + {inner}, got {x.shape}.")
        if x.shape[0] < 1:
            raise ValueError("`sample` must hold at least one example.")
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            kind = "NaN" if np.isnan(x).any() else "infinite values"
            raise ValueError(f"`sample` holds {kind}: parity cannot be measured on it; give "
                             "finite inputs.")
        return x, "given sample"
    if any(d is None for d in inner):
        raise ValueError(f"the model's input shape {tuple(input_shape)} has dynamic axes "
                         "besides the batch; pass `sample=` (an array) to measure parity on.")
    batch_size = positive_int("batch_size", batch_size)
    x = np.random.default_rng(seed).standard_normal((batch_size,) + inner).astype(dtype)
    return x, f"random normal, seed {seed}"


def compare(artifact, reference, candidate, tolerance, batch_size, description):
    """Measure ``candidate`` against ``reference`` (both ``{name: array}``) output by output.

    See :class:`ParityReport` for the criterion.

    Args:
        artifact: the artifact kind, for the report.
        reference: the Keras outputs.
        candidate: the artifact's outputs; ``"serve/NAME"`` entries compare with ``NAME``.
        tolerance: the largest allowed max abs diff.
        batch_size, description: describe the batch, for the report.

    Returns:
        ParityReport.

    Example:
        >>> compare("onnx", {"a": np.zeros(2)}, {"a": np.ones(2)}, 1e-4, 2, "x").worst_diff
        1.0
    """
    tolerance = number_in("tolerance", tolerance, 0.0)
    diffs, scales = {}, {}
    order = {name: i for i, name in enumerate(reference)}

    def rank(item):
        name = item[0]
        return ("/" in name, order.get(name.split("/")[-1], len(order)), name)

    for name, value in sorted(candidate.items(), key=rank):
        ref = np.asarray(reference[name.split("/")[-1]], dtype=np.float64)
        value = np.asarray(value, dtype=np.float64)
        if value.shape != ref.shape:
            raise ExportParityError(
                f"{artifact} output {name!r} has shape {value.shape}, Keras gives "
                f"{ref.shape}.", None)
        diff = float(np.max(np.abs(value - ref))) if ref.size else 0.0
        diffs[name] = diff if np.isfinite(diff) else float("inf")
        scales[name] = float(np.max(np.abs(ref))) if ref.size else 0.0
    scaled = {name: diffs[name] / max(1.0, scales[name]) for name in diffs}
    worst = max(scaled, key=scaled.get)
    return ParityReport(artifact, tolerance, int(batch_size), description, diffs, scales,
                        scaled, worst, diffs[worst], scaled[worst] <= tolerance)


def top1_agreement(reference, candidate, name="output"):
    """Share of examples whose argmax of ``name`` agrees between ``reference`` and
    ``candidate``; None when that output is not class scores ``(batch, k >= 2)``.

    Example:
        >>> top1_agreement({"output": np.eye(2)}, {"output": np.eye(2)[::-1]})
        0.0
    """
    ref = np.asarray(reference[name])
    got = np.asarray(candidate[name])
    if ref.ndim != 2 or ref.shape[1] < 2 or ref.shape != got.shape or not ref.shape[0]:
        return None
    return float(np.mean(ref.argmax(axis=1) == got.argmax(axis=1)))


def judge_agreement(report, reference, candidate, min_agreement=DEFAULT_MIN_AGREEMENT,
                    name="output"):
    """Turn ``report`` (from :func:`compare`) into the check of a quantized artifact.

    ``passed`` then says whether the top-1 agreement of ``name`` with Keras is at least
    ``min_agreement``; the logits drift ``max|artifact - keras| / max|keras|`` of ``name`` is
    recorded.

    Raises:
        ValueError: ``name`` is not class scores ``(batch, k >= 2)``: there is no class
            decision to compare (the LiteRT export refuses such a model before converting).

    Example:
        >>> report = judge_agreement(compare("tflite", ref, got, 1e-4, 8, "x"), ref, got)
        ... # doctest: +SKIP
    """
    min_agreement = number_in("min_agreement", min_agreement, 0.0, 1.0)
    agreement = top1_agreement(reference, candidate, name)
    if agreement is None:
        raise ValueError(f"the top-1 agreement needs class scores (batch, classes >= 2) in "
                         f"{name!r}, got shape {np.shape(reference[name])}.")
    scale = report.max_abs_reference.get(name, 0.0)
    drift = report.max_abs_diff.get(name, 0.0) / scale if scale > 0 else \
        report.max_abs_diff.get(name, 0.0)
    return dataclasses.replace(
        report, criterion="top1_agreement", top1_agreement=agreement,
        min_agreement=float(min_agreement), logits_drift=float(drift),
        passed=agreement >= min_agreement)


def require(report, outputs, target):
    """Raise :class:`ExportParityError` naming the worst output unless ``report.passed``.

    Args:
        report: the ParityReport.
        outputs: the FeatureOutput list (to say which block the worst output is).
        target: the artifact path, for the message.

    Example:
        >>> require(report, outputs, "exports/onnx")  # doctest: +SKIP
    """
    if report.passed:
        return
    if report.criterion == "top1_agreement":
        agreeing = round(report.top1_agreement * report.batch_size)
        raise ExportParityError(
            f"{report.artifact} export failed the quantization check: the top-1 class of "
            f"'output' agrees with Keras on {agreeing} of {report.batch_size} examples of the "
            f"parity batch ({report.top1_agreement:.3f}), below min_agreement "
            f"{report.min_agreement:.3g} (logits drift {report.logits_drift:.3g} relative to "
            f"max|keras|); nothing was written to {target}. Measure it on real examples "
            "(sample=, CLI --sample) or accept less (min_agreement, CLI --min-agreement).",
            report)
    where = ""
    for spec in outputs:
        if spec.name == report.worst_output.split("/")[-1] and spec.role == "block":
            where = f" (block {spec.block_index}, stage {spec.stage})"
    raise ExportParityError(
        f"{report.artifact} export failed the parity check: output "
        f"{report.worst_output!r}{where} differs from Keras by {report.worst_diff:.3g} "
        f"(max abs diff; {report.scaled_diff[report.worst_output]:.3g} relative to "
        f"max(1, max|keras|) = {max(1.0, report.max_abs_reference[report.worst_output]):.3g}), "
        f"above the tolerance {report.tolerance:.3g}; nothing was written to {target}.",
        report)
