"""The papers' experiments on any block-chain model, one module each; results are dataclasses
that serialize to JSON and plot themselves.

- :mod:`.lesion`: delete / reorder blocks (Veit et al., arXiv 1605.06431).
- :mod:`.paths`: path lengths and gradient per path length (Veit et al.).
- :mod:`.refinement`: iterative refinement (Jastrzebski et al., arXiv 1710.04773).
- :mod:`.shattering`: shattered gradients and the looks-linear init (Balduzzi et al., arXiv
  1702.08591).
- :mod:`.similarity`: linear CKA between blocks (Kornblith et al., arXiv 1905.00414).
- :mod:`.estimation`: estimation error per stage (Greff et al., arXiv 1612.07771).
- :mod:`.gates`: highway transform gates and gate lesions (Srivastava et al., arXiv 1507.06228).
- :mod:`.multi_residual`: multi-residual networks at equal parameters (Abdi & Nahavandi, arXiv
  1609.05672).
- :mod:`.norms`: activation-norm growth and training stability (Szegedy et al., arXiv
  1602.07261; weight-shared stacks, Liao & Poggio, arXiv 1604.03640).
- :mod:`.hessian`: the Hessian at zero initialization of linear nets with shortcuts (Li et al.,
  arXiv 1611.01186).
- :mod:`.filter_refinement`: the filter refinement score (Chu et al., arXiv 1701.02362).
- :mod:`.degradation`: plain and residual nets at two depths (He et al., arXiv 1512.03385).
- Seeded experiments (small networks trained alike, or seeded exact computations; each
  per-seed result has ``statistics()`` in the registry's units): :mod:`.degradation`,
  :mod:`.highway_depth` (Srivastava et al.), :mod:`.scaling` (Szegedy et al.), :mod:`.sharing`
  (Liao & Poggio; Jastrzebski et al.), :mod:`.looks_linear` and :mod:`.shattering` (Balduzzi
  et al.), :mod:`.multi_residual`, :mod:`.hessian`; run by name over seeds through
  :func:`run_comparison` (:mod:`.comparisons`), which judges their findings.

Every result that tests a finding gives ``assessments()``: the findings of the registry
(:mod:`keras_resnet_lab.findings`) judged by their rules, with intervals (bootstrap over
examples, draws or channels for one trained network; over seeds for the seeded experiments).

Example:
    >>> from keras_resnet_lab.analysis import lesion_study
    >>> result = lesion_study(model, (x_test, y_test), plain_model=plain)
    >>> result.plot("lesion.png")
"""

from keras_resnet_lab.analysis._common import spearman
from keras_resnet_lab.analysis.comparisons import (
    COMPARISONS,
    SeededComparison,
    run_comparison,
    run_seed,
)
from keras_resnet_lab.analysis.degradation import DepthComparison, compare_depths
from keras_resnet_lab.analysis.estimation import (
    EstimationResult,
    block_outputs,
    estimation_errors,
    stage_estimation_errors,
)
from keras_resnet_lab.analysis.filter_refinement import (
    FilterRefinementResult,
    channel_correlation,
    filter_refinement,
    pair_score,
    random_channel_pairs,
)
from keras_resnet_lab.analysis.gates import (
    GATE_THRESHOLD,
    IDLE_ERROR_INCREASE,
    GateResult,
    gate_blocks,
    gate_lesions,
    gate_statistics,
    transform_gates,
)
from keras_resnet_lab.analysis.hessian import (
    HessianResult,
    autodiff_hessian,
    condition_number,
    finite_difference_hessian,
    shortcut_hessian,
    zero_init_hessian,
)
from keras_resnet_lab.analysis.highway_depth import (
    HighwayDepthComparison,
    compare_highway_depths,
    gate_bias_at,
)
from keras_resnet_lab.analysis.lesion import LesionResult, kendall_tau, lesion_study
from keras_resnet_lab.analysis.looks_linear import (
    LooksLinearComparison,
    compare_initializations,
    linearity_error,
)
from keras_resnet_lab.analysis.multi_residual import (
    MultiResidualComparison,
    MultiResidualConfig,
    branch_factorizations,
    compare_multi_residual,
    describe_network,
    equal_parameter_networks,
    parameter_count,
    path_length_counts,
)
from keras_resnet_lab.analysis.norms import (
    LossRecorder,
    NormGrowthResult,
    TrainingStability,
    hidden_states,
    norm_growth,
    training_stability,
)
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
from keras_resnet_lab.analysis.scaling import (
    ScalingComparison,
    compare_residual_scales,
    scaled_stack,
)
from keras_resnet_lab.analysis.sharing import (
    SharingComparison,
    compare_weight_sharing,
    sharing_network,
)
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
    "GATE_THRESHOLD", "IDLE_ERROR_INCREASE", "EstimationResult", "FilterRefinementResult",
    "GateResult", "HessianResult", "LossRecorder", "NormGrowthResult", "TrainingStability",
    "autodiff_hessian", "block_outputs", "channel_correlation", "condition_number",
    "estimation_errors", "filter_refinement", "finite_difference_hessian", "gate_blocks",
    "gate_lesions", "gate_statistics", "hidden_states", "norm_growth", "pair_score",
    "random_channel_pairs", "shortcut_hessian", "stage_estimation_errors", "training_stability",
    "transform_gates", "zero_init_hessian", "MultiResidualComparison", "MultiResidualConfig",
    "branch_factorizations", "compare_multi_residual", "describe_network",
    "equal_parameter_networks", "parameter_count", "path_length_counts",
    "KINDS", "CReLU", "LesionResult", "LooksLinear", "PathGradientResult",
    "PathLengthDistribution", "RefinementResult", "Result", "ShatteringResult",
    "SimilarityResult", "atomic_write_json", "autocorrelation", "block_similarity",
    "branch_statistics", "calibrate_batch_norm", "cka_matrix", "crelu", "effective_range",
    "input_gradients", "jsonable", "kendall_tau", "lesion_study", "line_gradients",
    "line_inputs", "linear_cka", "path_gradients", "path_lengths", "refinement", "shattering",
    "shattering_network", "spearman", "COMPARISONS", "DepthComparison", "HighwayDepthComparison",
    "LooksLinearComparison", "ScalingComparison", "SharingComparison", "compare_highway_depths",
    "compare_initializations", "compare_residual_scales", "compare_weight_sharing",
    "SeededComparison", "compare_depths", "gate_bias_at", "linearity_error", "run_comparison",
    "run_seed", "scaled_stack", "sharing_network",
]
