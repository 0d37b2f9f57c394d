"""Representation similarity between blocks: linear CKA (Kornblith et al. 2019, arXiv 1905.00414).

Linear centered kernel alignment compares two representations of the same examples and is
invariant to orthogonal transforms and isotropic scaling. Between the outputs of the blocks of
a residual network it shows iterative refinement: consecutive blocks of a stage are highly
similar (each adds a small update), while the representation changes across stages.
"""

import dataclasses

import numpy as np

from keras_resnet_lab._checks import boolean, positive_int
from keras_resnet_lab.analysis._common import batches, check_data, images_or_pair, progress
from keras_resnet_lab.analysis.results import Result
from keras_resnet_lab.models.surgery import chain_steps, run_plan


def _centered_gram(x):
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    x = x - x.mean(axis=0, keepdims=True)
    return x @ x.T


def linear_cka(x, y):
    """Linear CKA between two representations of the same ``n`` examples (Kornblith et al.,
    arXiv 1905.00414).

    ``CKA = <K, L> / (||K|| ||L||)`` with ``K = Xc Xc^T`` and ``L = Yc Yc^T`` the Gram matrices
    of the column-centred features (each example flattened). 1 for identical representations,
    invariant to orthogonal transforms and isotropic scaling of either one.

    Args:
        x: ``(n, ...)`` array.
        y: ``(n, ...)`` array with the same ``n``.

    Example:
        >>> a = np.random.default_rng(0).normal(size=(50, 8))
        >>> round(linear_cka(a, 3.0 * a), 6)
        1.0
    """
    if len(x) != len(y):
        raise ValueError(f"`x` and `y` must hold the same examples, got {len(x)} and {len(y)}.")
    k, m = _centered_gram(x), _centered_gram(y)
    denom = np.linalg.norm(k) * np.linalg.norm(m)
    return float((k * m).sum() / denom) if denom > 0 else 0.0


def cka_matrix(features):
    """Pairwise linear CKA of a list of ``(n, ...)`` representations (symmetric matrix;
    Kornblith et al., arXiv 1905.00414).

    Args:
        features: list of arrays with the same first dimension.

    Example:
        >>> cka_matrix([a, 2 * a, b]).shape
        (3, 3)
    """
    grams = [_centered_gram(f) for f in features]
    norms = [np.linalg.norm(g) for g in grams]
    out = np.eye(len(grams))
    for i in range(len(grams)):
        for j in range(i + 1, len(grams)):
            denom = norms[i] * norms[j]
            out[i, j] = out[j, i] = (grams[i] * grams[j]).sum() / denom if denom > 0 else 0.0
    return out


@dataclasses.dataclass
class SimilarityResult(Result):
    """Linear CKA between the outputs of every pair of blocks (and the stem's output).

    ``names[i]`` / ``stages[i]`` name representation ``i`` (``"stem"`` is stage 0);
    ``within_stage`` is the mean CKA of consecutive blocks of the same stage, ``across_stages``
    the mean CKA of consecutive representations across a stage boundary.
    """

    model_name: str
    n_examples: int
    names: list
    stages: list
    matrix: list
    within_stage: float
    across_stages: float

    figure_columns = 1

    def draw(self, axes):
        (ax,) = axes
        matrix = np.asarray(self.matrix, dtype=float)
        image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
        ax.figure.colorbar(image, ax=ax, label="linear CKA")
        ticks = range(len(self.names))
        ax.set_xticks(ticks, self.names, rotation=90, fontsize=6)
        ax.set_yticks(ticks, self.names, fontsize=6)
        ax.set_title(f"Block similarity: within stage {self.within_stage:.2f}, "
                     f"across stages {self.across_stages:.2f}", fontsize=9)


def block_similarity(model, data, *, max_examples=500, include_stem=True, batch_size=128,
                     progress_bar=True):
    """Linear CKA between the outputs of every pair of blocks of ``model`` on ``data``
    (Kornblith et al., arXiv 1905.00414): high within a stage (refinement), lower across.

    Args:
        model: a chain model.
        data: ``(x, y)`` (labels unused) or images alone.
        max_examples: examples used (the Gram matrices are ``n x n``).
        include_stem: also compare the representation entering the first block.
        batch_size: examples per forward pass.
        progress_bar: show a progress bar.

    Returns:
        :class:`SimilarityResult`.

    Example:
        >>> result = block_similarity(model, (x_test, y_test), max_examples=300)
        >>> result.within_stage > result.across_stages
        True
    """
    include_stem = boolean("include_stem", include_stem)
    batch_size = positive_int("batch_size", batch_size)
    progress_bar = boolean("progress_bar", progress_bar)
    x, _ = check_data(model, images_or_pair(data), max_examples, labels_used=False)
    steps = chain_steps(model)
    names, stages, outputs = [], [], []
    block_seen = False
    for step in steps:
        if step.block is not None:
            if include_stem and not block_seen:
                names.append("stem")
                stages.append(0)
            block_seen = True
            names.append(step.name)
            stages.append(step.block.stage)
    for lo, hi in progress(batches(len(x), batch_size), desc=f"similarity {model.name}",
                           enabled=progress_bar):
        collected = []

        def record(step, h, collected=collected):
            if include_stem and not collected:
                collected.append(np.asarray(h))
            out = step(h)
            collected.append(np.asarray(out))
            return out

        run_plan(steps, x[lo:hi], block_fn=record)
        outputs.append(collected)
    features = [np.concatenate([batch[i] for batch in outputs]) for i in range(len(names))]
    matrix = cka_matrix(features)
    within, across = [], []
    for i in range(len(names) - 1):
        (within if stages[i] == stages[i + 1] else across).append(matrix[i, i + 1])
    return SimilarityResult(
        model_name=model.name, n_examples=len(x), names=names, stages=stages,
        matrix=matrix.tolist(), within_stage=float(np.mean(within)) if within else float("nan"),
        across_stages=float(np.mean(across)) if across else float("nan"))
