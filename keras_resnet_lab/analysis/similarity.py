"""Representation similarity between blocks: linear CKA (Kornblith et al. 2019, arXiv 1905.00414).

Linear centered kernel alignment compares two representations of the same examples and is
invariant to orthogonal transforms and isotropic scaling. Between the outputs of the blocks of
a network it shows how much each block refines rather than replaces its input. The registry's
``kornblith_cka`` compares the mean CKA of consecutive blocks of a stage in a residual network
with its plain twin (:func:`cka_assessment`, a paired bootstrap over the examples).
"""

import dataclasses

import numpy as np

from keras_resnet_lab._checks import boolean, positive_int
from keras_resnet_lab.analysis._common import batches, check_data, images_or_pair, progress
from keras_resnet_lab.analysis.results import Result, array_field
from keras_resnet_lab.findings import assess, bootstrap
from keras_resnet_lab.findings.verdict import RESAMPLES
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
    return _gram_cka_matrix([_centered_gram(f) for f in features])


def _gram_cka_matrix(grams):
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

    Kept for intervals (not in the JSON): ``grams`` (representations x n x n, float32), the
    Gram matrix of each representation's features centred over the ``n`` examples, from
    which CKA can be recomputed on any resample of the examples (:func:`within_stage_cka`).
    """

    model_name: str
    n_examples: int
    names: list
    stages: list
    matrix: list
    within_stage: float
    across_stages: float
    grams: np.ndarray = array_field()

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


def within_pairs(stages):
    """Indices ``(i, i + 1)`` of consecutive representations of the same stage (the stem,
    stage 0, pairs with no block)."""
    return [(i, i + 1) for i in range(len(stages) - 1) if stages[i] == stages[i + 1]]


class _WeightedCka:
    """Linear CKA of consecutive representations of a stage on a resample of the examples,
    from their Gram matrices ``K`` (centred or not: CKA centres them again on the resample).

    A resample with multiplicities ``w`` (``m = sum(w)``) has the centred HSIC
    ``<HKH, HLH> = w'(K*L)w - (2/m) sum_i w_i (Kw)_i (Lw)_i + (w'Kw)(w'Lw)/m^2``, so each
    resample costs matrix-vector products (float32), not a gather of rows: ``K w`` for each
    Gram matrix, and ``w'(K*L)w`` for each pair and each matrix with itself, read from the
    upper triangles of the Hadamard products (off-diagonal entries doubled).
    """

    def __init__(self, grams, stages):
        pairs = within_pairs(stages)
        if not pairs:
            raise ValueError("no two consecutive representations of one stage to compare.")
        used = sorted({i for pair in pairs for i in pair})
        where = {i: k for k, i in enumerate(used)}
        grams = np.asarray(grams, dtype=np.float32)
        self.n = n = grams.shape[-1]
        self.first = np.array([where[a] for a, _ in pairs])
        self.second = np.array([where[b] for _, b in pairs])
        grams = (grams[used] + grams[used].transpose(0, 2, 1)) / 2  # (g, n, n), symmetric
        self.g = len(grams)
        # (n, g n): row i holds row i of every matrix, so that w' times it is K w for all of
        # them (symmetric) in one product over long rows.
        self.rows = np.ascontiguousarray(grams.transpose(1, 0, 2).reshape(n, -1))
        self.upper = np.triu_indices(n)
        double = np.where(self.upper[0] == self.upper[1], 1.0, 2.0).astype(np.float32)
        # Upper triangles of K*K for each matrix, then of K*L for each pair: (g + p, n(n+1)/2).
        triangles = grams[:, self.upper[0], self.upper[1]]
        self.products = np.ascontiguousarray(np.concatenate(
            [triangles * triangles, triangles[self.first] * triangles[self.second]]) * double)

    def outer(self, weights):
        """The upper triangle of ``w w'``: the vector the products are multiplied by."""
        w = np.asarray(weights, dtype=np.float32)
        return w[self.upper[0]] * w[self.upper[1]]

    def __call__(self, weights=None, outer=None):
        """Mean CKA of the pairs on the resample with multiplicities ``weights`` (``outer``:
        :meth:`outer` of them, when already computed)."""
        n, g = self.n, self.g
        w = np.ones(n, np.float32) if weights is None else np.asarray(weights, np.float32)
        outer = self.outer(w) if outer is None else outer
        m = float(w.sum(dtype=np.float64))
        kw = (w @ self.rows).reshape(g, n).astype(np.float64)
        quad = (self.products @ outer).astype(np.float64)
        w64 = w.astype(np.float64)
        total = kw @ w64  # w'Kw of each matrix
        wk = kw * w64
        self_hsic = quad[:g] - 2.0 / m * (wk * kw).sum(1) + total ** 2 / m ** 2
        a, b = self.first, self.second
        cross = quad[g:] - 2.0 / m * (wk[a] * kw[b]).sum(1) + total[a] * total[b] / m ** 2
        denominator = np.sqrt(np.maximum(self_hsic[a], 0.0) * np.maximum(self_hsic[b], 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(denominator > 0, cross / denominator, 0.0)
        return float(np.mean(values))


def centered_gram(features):
    """The Gram matrix ``Xc Xc^T`` (float64) of ``features`` (``(n, ...)``, each example
    flattened) centred over the examples.

    Example:
        >>> centered_gram(np.array([[1.0], [3.0]])).tolist()
        [[1.0, -1.0], [-1.0, 1.0]]
    """
    return _centered_gram(features)


def within_stage_cka(grams, stages, examples=None):
    """Mean linear CKA of consecutive representations of the same stage, from their Gram
    matrices ``grams`` (``(r, n, n)``), on all ``n`` examples or on the resample ``examples``
    (indices, repeats allowed: as if the features of those rows were stacked).

    Example:
        >>> a = np.random.default_rng(0).normal(size=(20, 5))
        >>> grams = [centered_gram(a), centered_gram(2 * a)]
        >>> round(within_stage_cka(grams, [1, 1]), 5)
        1.0
    """
    cka = _WeightedCka(grams, stages)
    weights = None if examples is None else np.bincount(examples, minlength=cka.n)
    return cka(weights)


def cka_assessment(residual_result, plain_result, seed=0, resamples=RESAMPLES):
    """The registry's ``kornblith_cka`` from the block similarities of a residual network and
    its plain twin on the same examples: ``cka_gap`` = mean linear CKA of consecutive blocks
    of a stage, ResNet minus plain twin, with a paired bootstrap over the examples (the same
    resampled rows for both networks).

    Args:
        residual_result: :class:`SimilarityResult` of the residual network.
        plain_result: :class:`SimilarityResult` of its plain twin on the same examples.
        seed: seed of the bootstrap resampling.
        resamples: bootstrap resamples.

    Returns:
        :class:`keras_resnet_lab.findings.Assessment`.

    Example:
        >>> res = block_similarity(model, (x_test, y_test))
        >>> plain = block_similarity(plain_model, (x_test, y_test))
        >>> cka_assessment(res, plain).describe()  # doctest: +SKIP
    """
    for name, result in (("residual_result", residual_result), ("plain_result", plain_result)):
        if not isinstance(result, SimilarityResult):
            raise ValueError(f"`{name}` must be a SimilarityResult (from block_similarity), "
                             f"got {type(result).__name__}.")
        if result.grams is None:
            raise ValueError(f"`{name}` has no Gram matrices: intervals need the result "
                             "returned by block_similarity.")
    n = residual_result.n_examples
    if plain_result.n_examples != n:
        raise ValueError(f"the two results must be on the same examples for a paired bootstrap; "
                         f"they have {n} and {plain_result.n_examples}.")
    residual = _WeightedCka(residual_result.grams, residual_result.stages)
    plain = _WeightedCka(plain_result.grams, plain_result.stages)

    def gap(i):
        weights = np.bincount(i, minlength=n)
        outer = residual.outer(weights)  # the same resample for both networks
        return residual(weights, outer) - plain(weights, outer)

    estimate = bootstrap(gap, n, resamples=resamples, seed=seed)
    notes = (f"'{residual_result.model_name}' ({len(residual.first)} consecutive pairs within "
             f"stages) against '{plain_result.model_name}' ({len(plain.first)}), on the same "
             f"{n} examples; the same resamples of the examples for both networks.")
    return assess("kornblith_cka", {"cka_gap": estimate}, seeds=(seed,), notes=notes)


def block_similarity(model, data, *, max_examples=500, include_stem=True, batch_size=128,
                     progress_bar=True):
    """Linear CKA between the outputs of every pair of blocks of ``model`` on ``data``
    (Kornblith et al., arXiv 1905.00414).

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
        >>> result.within_stage, result.across_stages
        >>> cka_assessment(result, block_similarity(plain_model, (x_test, y_test),
        ...                                         max_examples=300)).describe()
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
    grams = [_centered_gram(f) for f in features]
    grams = [(k + k.T) / 2 for k in grams]  # exactly symmetric (the products assume it)
    matrix = _gram_cka_matrix(grams)
    within, across = [], []
    for i in range(len(names) - 1):
        (within if stages[i] == stages[i + 1] else across).append(matrix[i, i + 1])
    return SimilarityResult(
        model_name=model.name, n_examples=len(x), names=names, stages=stages,
        matrix=matrix.tolist(), within_stage=float(np.mean(within)) if within else float("nan"),
        across_stages=float(np.mean(across)) if across else float("nan"),
        grams=np.stack(grams).astype(np.float32))
