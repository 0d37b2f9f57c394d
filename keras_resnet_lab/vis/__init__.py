"""See what each block looks at and what each filter has become.

One-call adapters over tf-keras-vis for the block-structured models of this library (saliency,
SmoothGrad, Grad-CAM, Grad-CAM++ and Score-CAM at any block; activation maximization of a
block's output, residual branch or shortcut), and the residual-specific views: the refinement
view of "Visualizing Residual Networks" (arXiv 1701.02362), the branch view, and filter
matching across stage boundaries. Every function returns a result with the arrays and writes a
labelled PNG grid when given ``path``.

Images must have the model's input shape exactly (others are rejected, never silently
resized); :func:`resize_images` and :func:`load_image_files` resize explicitly.

Example:
    >>> from keras_resnet_lab.vis import cam, refinement_view, digits_for_model
    >>> images, labels, value_range = digits_for_model(model, count=8)
    >>> cam(model, images, block="stage3_block2", method="gradcam", path="gradcam.png")
    >>> refinement_view(model, stage=2, input_range=value_range, path="refinement.png")
"""

from keras_resnet_lab.vis.attribution import CAM_METHODS, AttributionMaps, cam, saliency
from keras_resnet_lab.vis.images import (
    PREPROCESSING,
    digits_for_model,
    load_image_files,
    resize_images,
)
from keras_resnet_lab.vis.matching import (
    MATCHINGS,
    FilterMatches,
    activation_correlation,
    match_filters,
)
from keras_resnet_lab.vis.maximization import (
    TARGETS,
    BranchView,
    FilterImages,
    branch_view,
    channel_activation,
    maximize_filter,
    target_model,
)
from keras_resnet_lab.vis.refinement import (
    RefinementView,
    image_correlation,
    plot_refinement_comparison,
    refinement_view,
)

__all__ = [
    "CAM_METHODS", "MATCHINGS", "PREPROCESSING", "TARGETS", "AttributionMaps", "BranchView",
    "FilterImages", "FilterMatches", "RefinementView", "activation_correlation",
    "branch_view", "cam", "channel_activation", "digits_for_model", "image_correlation",
    "load_image_files", "match_filters", "maximize_filter", "plot_refinement_comparison",
    "refinement_view", "resize_images", "saliency", "target_model",
]
