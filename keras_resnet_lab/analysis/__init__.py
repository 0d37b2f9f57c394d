"""The papers' experiments on any block-chain model, one module each; results are dataclasses
that serialize to JSON and plot themselves.

- :mod:`.lesion`: delete / reorder blocks (Veit et al., arXiv 1605.06431).
- :mod:`.paths`: path lengths and gradient per path length (Veit et al.).
- :mod:`.refinement`: iterative refinement (Jastrzebski et al., arXiv 1710.04773).
- :mod:`.shattering`: shattered gradients and the looks-linear init (Balduzzi et al., arXiv
  1702.08591).
- :mod:`.similarity`: linear CKA between blocks (Kornblith et al., arXiv 1905.00414).

Example:
    >>> from keras_resnet_lab.analysis import lesion_study
    >>> result = lesion_study(model, (x_test, y_test), plain_model=plain)
    >>> result.plot("lesion.png")
"""

from keras_resnet_lab.analysis.lesion import LesionResult, kendall_tau, lesion_study
from keras_resnet_lab.analysis.paths import (
    PathGradientResult,
    PathLengthDistribution,
    effective_range,
    input_gradients,
    path_gradients,
    path_lengths,
)
from keras_resnet_lab.analysis.refinement import RefinementResult, branch_statistics, refinement
from keras_resnet_lab.analysis.results import Result, atomic_write_json, jsonable
from keras_resnet_lab.analysis.shattering import (
    KINDS,
    CReLU,
    LooksLinear,
    ShatteringResult,
    autocorrelation,
    calibrate_batch_norm,
    crelu,
    line_gradients,
    line_inputs,
    shattering,
    shattering_network,
)
from keras_resnet_lab.analysis.similarity import (
    SimilarityResult,
    block_similarity,
    cka_matrix,
    linear_cka,
)

__all__ = [
    "KINDS", "CReLU", "LesionResult", "LooksLinear", "PathGradientResult",
    "PathLengthDistribution", "RefinementResult", "Result", "ShatteringResult",
    "SimilarityResult", "atomic_write_json", "autocorrelation", "block_similarity",
    "branch_statistics", "calibrate_batch_norm", "cka_matrix", "crelu", "effective_range",
    "input_gradients", "jsonable", "kendall_tau", "lesion_study", "line_gradients",
    "line_inputs", "linear_cka", "path_gradients", "path_lengths", "refinement", "shattering",
    "shattering_network",
]
