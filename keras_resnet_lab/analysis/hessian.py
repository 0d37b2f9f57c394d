"""The loss Hessian at zero init of linear networks with shortcuts (Li et al., arXiv 1611.01186).

Li, Jiao, Han and Weissman ("Demystifying ResNet") study a linear network made of residual
units ``u_k(x) = x + W_{k,n} ... W_{k,1} x`` whose shortcut skips ``n`` layers of ``d x d``
matrices, ``f = u_U o ... o u_1`` (``L = U n`` layers), trained with the squared loss from the
zero initialization (every ``W = 0``, so ``f`` is the identity). They show that the Hessian of
the loss at that point has

- ``n = 2``: a condition number independent of the depth (the Hessian is block diagonal, one
  identical block per unit, with eigenvalues ``+-`` the singular values of the loss gradient
  in function space);
- ``n = 1``: a condition number that grows with the depth (the shortcut of one layer behaves
  like no shortcut);
- ``n >= 3``: a zero Hessian (and gradient): the start is a flat, high-order saddle.

Conventions here: ``weights`` is an array of shape ``(U, n, d, d)`` where ``weights[k, j]`` is
the ``(j + 1)``-th matrix applied by unit ``k``; the flat parameter vector is
``weights.reshape(-1)`` (row-major), the order of every gradient and Hessian returned. Inputs
``x`` and targets ``y`` are rows ``(m, d)``; the loss is
``l(W) = 1 / (2 m) sum_i ||f(x_i) - y_i||^2``. :func:`shortcut_hessian` computes the exact
Hessian at any point in closed form (``f(x) = F x`` is multilinear in the matrices, the loss
quadratic in ``F``); :func:`autodiff_hessian` computes it with nested TensorFlow gradient
tapes from the raw data and :func:`finite_difference_hessian` from loss values alone, so each
checks the others.
"""

import contextlib
import dataclasses
import math

import numpy as np

from keras_resnet_lab._checks import (
    boolean,
    count,
    examples,
    int_list,
    memory_bytes,
    number_in,
    positive_int,
)
from keras_resnet_lab._checks import seed as seed_check
from keras_resnet_lab.analysis.results import Result

#: Shortcut lengths of Li et al.'s figure.
SHORTCUTS = (1, 2, 3)


def _one_blas_thread():
    """Run small linear algebra on one BLAS thread: on a busy machine OpenBLAS's threads spin
    against each other, and a small eigendecomposition takes many times longer on two threads
    than on one (benchmarks/results/timings_behind_comments.md)."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# -- data and weights ------------------------------------------------------------------------

def linear_regression_data(dim=3, n_examples=256, seed=0, noise=0.0):
    """A seeded regression task ``(x, y)`` for the linear shortcut networks.

    The inputs are whitened exactly (their second-moment matrix ``x.T @ x / m`` is the
    identity), the targets are ``y = x @ A.T (+ noise)`` with ``A`` a random Gaussian matrix of
    entries ``N(0, 1 / dim)``.

    Args:
        dim: the dimension ``d`` (>= 1).
        n_examples: number of examples ``m`` (>= ``dim``).
        seed: seed of the inputs, target matrix and noise.
        noise: standard deviation of Gaussian noise added to the targets (>= 0).

    Returns:
        ``(x, y)``, two float64 arrays of shape ``(n_examples, dim)``.

    Example:
        >>> x, y = linear_regression_data(3, 100, seed=0)
        >>> np.allclose(x.T @ x / 100, np.eye(3))
        True
    """
    dim = positive_int("dim", dim)
    n_examples = positive_int("n_examples", n_examples)
    if n_examples < dim:
        raise ValueError(f"`n_examples` must be >= dim ({dim}) to whiten the inputs, got "
                         f"{n_examples}.")
    noise = number_in("noise", noise, 0.0)
    memory_bytes("the regression data", 8 * 3 * n_examples * dim,
                 arguments={"n_examples": n_examples, "dim": dim})
    rng = np.random.default_rng(seed_check("seed", seed))
    x = rng.normal(size=(n_examples, dim))
    # Exact whitening: x <- x S^{-1/2} with S = x.T x / m (symmetric inverse square root).
    values, vectors = np.linalg.eigh(x.T @ x / n_examples)
    x = x @ vectors @ np.diag(values ** -0.5) @ vectors.T
    target = rng.normal(size=(dim, dim)) / math.sqrt(dim)
    y = x @ target.T + noise * rng.normal(size=(n_examples, dim))
    return x, y


def zero_weights(depth, shortcut, dim=3):
    """The zero initialization of a network of ``depth`` layers whose shortcuts skip
    ``shortcut`` layers: an array of zeros of shape ``(depth // shortcut, shortcut, dim, dim)``.

    Args:
        depth: total number of weight layers ``L`` (a multiple of ``shortcut``).
        shortcut: layers per residual unit ``n``.
        dim: width ``d``.

    Returns:
        The float64 array of zeros.

    Example:
        >>> zero_weights(6, 3, 2).shape
        (2, 3, 2, 2)
    """
    depth = positive_int("depth", depth)
    shortcut = positive_int("shortcut", shortcut)
    if depth % shortcut:
        raise ValueError(f"`depth` must be a multiple of the shortcut length {shortcut}, got "
                         f"{depth}.")
    return np.zeros((depth // shortcut, shortcut, positive_int("dim", dim),
                     positive_int("dim", dim)))


def _check(weights, x, y=None):
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 4 or weights.shape[2] != weights.shape[3] or 0 in weights.shape:
        raise ValueError("`weights` must have shape (units, shortcut, dim, dim) with units, "
                         f"shortcut, dim >= 1, got {weights.shape}.")
    dim = weights.shape[2]
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != dim or len(x) == 0:
        raise ValueError(f"`x` must have shape (n_examples, {dim}) to match the weights, got "
                         f"{x.shape}.")
    if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(x))):
        raise ValueError("`weights` and `x` must be finite (no NaN or inf).")
    if y is None:
        return weights, x
    y = np.asarray(y, dtype=np.float64)
    if y.shape != x.shape or not np.all(np.isfinite(y)):
        raise ValueError(f"`y` must be finite with the shape of x {x.shape}, got {y.shape}.")
    return weights, x, y


# -- the network and its loss ----------------------------------------------------------------

def shortcut_network(weights, x):
    """The output ``f(x)`` (rows) of the linear shortcut network ``weights`` (numpy, float64).

    Each unit computes ``h <- h + W_{k,n} ... W_{k,1} h``.

    Args:
        weights: array ``(units, shortcut, d, d)``.
        x: inputs ``(m, d)``.

    Returns:
        The outputs ``(m, d)``.

    Example:
        >>> x, _ = linear_regression_data(3, 10)
        >>> np.array_equal(shortcut_network(zero_weights(4, 2), x), x)
        True
    """
    weights, x = _check(weights, x)
    h = x
    for unit in weights:
        r = h
        for matrix in unit:
            r = r @ matrix.T
        h = h + r
    return h


def shortcut_loss(weights, x, y):
    """The squared loss ``1 / (2 m) sum_i ||f(x_i) - y_i||^2`` of :func:`shortcut_network`.

    Args:
        weights: array ``(units, shortcut, d, d)``.
        x, y: inputs and targets ``(m, d)``.

    Returns:
        The loss (a float).

    Example:
        >>> x, y = linear_regression_data(3, 10)
        >>> loss = shortcut_loss(zero_weights(4, 2), x, y)
    """
    weights, x, y = _check(weights, x, y)
    residual = shortcut_network(weights, x) - y
    return float(0.5 * np.mean(np.sum(residual ** 2, axis=-1)))


def _products(matrices, dim):
    """``[M_{k-1} ... M_0 for k in 0..len]`` (the first is the identity)."""
    out = [np.eye(dim)]
    for m in matrices:
        out.append(m @ out[-1])
    return out


def _parts(weights):
    """The factors around every weight matrix ``p = (k, j)``: ``F = L_p W_p R_p + (terms
    without W_p)``, and the pieces between two matrices."""
    units, n, dim, _ = weights.shape
    eye = np.eye(dim)
    # right[k][j] = W[k, j-1] ... W[k, 0];  left[k][j] = W[k, n-1] ... W[k, j+1]
    right = [_products(unit, dim) for unit in weights]
    left = []
    for unit in weights:
        row = [eye] * n
        acc = eye
        for j in range(n - 1, -1, -1):
            row[j] = acc
            acc = acc @ unit[j]
        left.append(row)
    maps = [eye + right[k][n] for k in range(units)]      # M_k = I + W[k, n-1] ... W[k, 0]
    below = _products(maps, dim)                           # below[k] = M_{k-1} ... M_0
    above = [eye] * units                                  # above[k] = M_{U-1} ... M_{k+1}
    acc = eye
    for k in range(units - 1, -1, -1):
        above[k] = acc
        acc = acc @ maps[k]
    lefts = np.array([above[k] @ left[k][j] for k in range(units) for j in range(n)])
    rights = np.array([right[k][j] @ below[k] for k in range(units) for j in range(n)])
    return dict(units=units, n=n, dim=dim, right=right, left=left, maps=maps,
                lefts=lefts, rights=rights, product=below[units])


def _statistics(x, y):
    m = len(x)
    return x.T @ x / m, y.T @ x / m


def shortcut_gradient(weights, x, y):
    """The exact gradient of :func:`shortcut_loss` (flat, in ``weights.reshape(-1)`` order).

    ``dl/dW_p = L_p^T G R_p^T`` with ``G = F S - C`` the loss gradient in function space
    (``F`` the network's matrix, ``S = x^T x / m``, ``C = y^T x / m``) and ``L_p``, ``R_p`` the
    products left and right of ``W_p``. At zero it vanishes for ``shortcut >= 2``.

    Args:
        weights: array ``(units, shortcut, d, d)``.
        x, y: inputs and targets ``(m, d)``.

    Returns:
        The gradient, a vector of ``weights.size`` numbers.

    Example:
        >>> x, y = linear_regression_data(3, 10)
        >>> float(np.abs(shortcut_gradient(zero_weights(4, 2), x, y)).max())
        0.0
    """
    weights, x, y = _check(weights, x, y)
    parts = _parts(weights)
    second, cross = _statistics(x, y)
    g = parts["product"] @ second - cross
    grads = np.einsum("pia,ij,pbj->pab", parts["lefts"], g, parts["rights"])
    return grads.reshape(-1)


def shortcut_hessian(weights, x, y):
    """The exact Hessian of :func:`shortcut_loss` at ``weights``, in closed form (float64).

    With ``F`` the network's matrix, ``S = x^T x / m``, ``C = y^T x / m`` and ``G = F S - C``,
    ``l = tr(F S F^T) / 2 - tr(F C^T) + const``, so
    ``d2l[u, v] = tr(DF[u] S DF[v]^T) + tr(G^T D2F[u, v])``. ``F`` is multilinear in the weight
    matrices: ``DF[E at p] = L_p E R_p`` and, for ``q`` applied after ``p``,
    ``D2F[E at p, E' at q] = L_q E' B_qp E R_p`` with ``B_qp`` the product between them.

    Args:
        weights: array ``(units, shortcut, d, d)``: the point (zeros: the zero initialization).
        x, y: inputs and targets ``(m, d)``.

    Returns:
        The symmetric ``(N, N)`` Hessian, ``N = weights.size``, in ``weights.reshape(-1)``
        order.

    Example:
        >>> x, y = linear_regression_data(3, 100)
        >>> shortcut_hessian(zero_weights(8, 2), x, y).shape
        (72, 72)
    """
    weights, x, y = _check(weights, x, y)
    p = _parts(weights)
    units, n, dim = p["units"], p["n"], p["dim"]
    count = units * n
    second, cross = _statistics(x, y)
    g = p["product"] @ second - cross
    lefts, rights = p["lefts"], p["rights"]
    # First term: (L_p^T L_q)_{ac} (R_p S R_q^T)_{be} couples W_p[a, b] and W_q[c, e].
    ll = np.einsum("pia,qic->pqac", lefts, lefts)
    rr = np.einsum("pbx,xy,qey->pqbe", rights, second, rights)
    hessian = np.einsum("pqac,pqbe->pabqce", ll, rr)
    # Second term: (L_q^T G R_p^T)_{ae} (B_qp)_{bc} couples W_q[a, b] and W_p[c, e].
    outer = np.einsum("qia,ij,pej->qpae", lefts, g, rights)
    # between[q, p] (q applied after p): the product of everything applied after W_p and
    # before W_q in the term of F that holds both; zero where q is not after p.
    between = np.zeros((count, count, dim, dim))
    for ip in range(count):
        kp, _ = divmod(ip, n)
        rest = p["left"][kp][ip % n]    # the rest of unit kp, then whole units after it
        current = np.eye(dim)
        for iq in range(ip + 1, count):
            kq, jq = divmod(iq, n)
            if kq == kp:
                current = current if iq == ip + 1 else weights[kq, jq - 1] @ current
            elif jq == 0:
                if kq > kp + 1:
                    rest = p["maps"][kq - 1] @ rest
                current = rest
            else:
                current = weights[kq, jq - 1] @ current
            between[iq, ip] = current
    cross_term = np.einsum("qpae,qpbc->qabpce", outer, between)
    hessian = hessian + cross_term + cross_term.transpose(3, 4, 5, 0, 1, 2)
    size = count * dim * dim
    hessian = hessian.reshape(size, size)
    return 0.5 * (hessian + hessian.T)  # symmetric bit for bit (the sums round differently)


def autodiff_hessian(weights, x, y):
    """The Hessian of :func:`shortcut_loss` by automatic differentiation: TensorFlow nested
    gradient tapes (the Jacobian of the gradient), in float64, from the raw data.

    Slower than :func:`shortcut_hessian` (one backward pass per parameter); it checks it.

    Args:
        weights: array ``(units, shortcut, d, d)``.
        x, y: inputs and targets ``(m, d)``.

    Returns:
        The ``(N, N)`` Hessian in ``weights.reshape(-1)`` order.

    Example:
        >>> x, y = linear_regression_data(2, 20)
        >>> h = autodiff_hessian(zero_weights(2, 1, 2), x, y)
    """
    import tensorflow as tf

    weights, x, y = _check(weights, x, y)
    shape = weights.shape
    flat = tf.constant(weights.reshape(-1))
    xt, yt = tf.constant(x), tf.constant(y)

    @tf.function
    def hessian(w):
        with tf.GradientTape() as outer:
            outer.watch(w)
            with tf.GradientTape() as inner:
                inner.watch(w)
                matrices = tf.reshape(w, shape)
                h = xt
                for k in range(shape[0]):
                    r = h
                    for j in range(shape[1]):
                        r = tf.linalg.matmul(r, matrices[k, j], transpose_b=True)
                    h = h + r
                loss = 0.5 * tf.reduce_mean(tf.reduce_sum(tf.square(h - yt), axis=-1))
            grad = inner.gradient(loss, w)
        return outer.jacobian(grad, w, experimental_use_pfor=False)

    return hessian(flat).numpy()


def finite_difference_hessian(fn, w, step=1e-3):
    """The Hessian of ``fn`` at ``w`` by central differences of its values.

    ``H_ij ~ [f(w + h e_i + h e_j) - f(w + h e_i - h e_j) - f(w - h e_i + h e_j)
    + f(w - h e_i - h e_j)] / (4 h^2)`` (error ``O(h^2)``), symmetric by construction.

    Args:
        fn: a function of a flat float64 vector, returning a number.
        w: the point (any shape; flattened).
        step: the step ``h`` (> 0).

    Returns:
        The ``(N, N)`` matrix.

    Example:
        >>> finite_difference_hessian(lambda v: v[0] * v[1], np.zeros(2))
        array([[0., 1.],
               [1., 0.]])
    """
    step = number_in("step", step, 0.0, None, low_open=True)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    size = len(w)
    hessian = np.zeros((size, size))
    for i in range(size):
        for j in range(i, size):
            values = []
            for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                point = w.copy()
                point[i] += si * step
                point[j] += sj * step
                values.append(float(fn(point)))
            hessian[i, j] = hessian[j, i] = (
                values[0] - values[1] - values[2] + values[3]) / (4 * step * step)
    return hessian


def condition_number(eigenvalues, rtol=1e-12, atol=1e-12):
    """``max |lambda| / min |lambda|`` over all eigenvalues (an indefinite Hessian's
    condition number, as in Li et al., arXiv 1611.01186).

    Args:
        eigenvalues: the eigenvalues.
        rtol: an eigenvalue with ``|lambda| <= rtol * max |lambda|`` counts as zero: the
            condition number is then infinite.
        atol: when ``max |lambda| <= atol`` the matrix is zero and the condition number is
            undefined (None): report the matrix's norm instead.

    Returns:
        A float, ``inf`` or None.

    Example:
        >>> condition_number([-2.0, 0.5, 1.0])
        4.0
    """
    rtol = number_in("rtol", rtol, 0.0)
    atol = number_in("atol", atol, 0.0)
    magnitude = np.abs(np.asarray(eigenvalues, dtype=np.float64).reshape(-1))
    if magnitude.size == 0 or magnitude.max() <= atol:
        return None
    if magnitude.min() <= rtol * magnitude.max():
        return math.inf
    return float(magnitude.max() / magnitude.min())


# -- the experiment --------------------------------------------------------------------------

@dataclasses.dataclass
class HessianResult(Result):
    """The loss Hessian at zero initialization per shortcut length and depth.

    For each shortcut length ``n`` (keys are ``str(n)``): ``depths[n]`` (layers ``L``, multiples
    of ``n``), ``condition[n]`` (``max |lambda| / min |lambda|``; None where the Hessian is
    zero, inf where it is singular, both None in JSON), ``max_abs_eigenvalue[n]`` (the
    Hessian's spectral norm), ``min_abs_eigenvalue[n]``, ``negative_fraction[n]`` (share of
    negative eigenvalues), ``gradient_norm[n]`` and ``eigenvalues[n]`` (all of them, at the
    largest depth). ``function_gradient_singular_values`` are those of ``G = S - C``, the loss
    gradient in function space at ``f = identity``; ``autodiff_check[n]`` the largest
    difference between the closed-form and the autodiff Hessian at ``autodiff_depth[n]``.
    """

    shortcuts: list
    dim: int
    n_examples: int
    seed: int
    noise: float
    depths: dict
    condition: dict
    max_abs_eigenvalue: dict
    min_abs_eigenvalue: dict
    negative_fraction: dict
    gradient_norm: dict
    eigenvalues: dict
    function_gradient_singular_values: list
    autodiff_depth: dict
    autodiff_check: dict

    figure_columns = 3
    #: The statistics are exact for the task (no sampling noise): over several tasks (seeds)
    #: they are judged by their range, each task having to satisfy the claim.
    interval = "range"

    def statistics(self):
        """Li et al.'s finding in the registry's units for this regression task:
        ``{"li_hessian": {"n2_spread": relative spread of the condition number over the
        depths with 2-layer shortcuts, "n1_growth": its growth from the smallest to the
        largest depth with 1-layer shortcuts, "n3_norm": the largest |eigenvalue| over the
        depths with 3-layer shortcuts}}`` (NaN where a shortcut length was not computed or
        the number is undefined)."""
        def number(value):
            return float("nan") if value is None else float(value)

        keys = {str(n) for n in self.shortcuts}
        return {"li_hessian": {
            "n2_spread": number(self.condition_spread(2)) if "2" in keys else float("nan"),
            "n1_growth": number(self.condition_growth(1)) if "1" in keys else float("nan"),
            "n3_norm": (float(max(self.max_abs_eigenvalue["3"])) if "3" in keys
                        else float("nan")),
        }}

    def notes(self):
        return {"li_hessian": (
            f"Exact (closed-form, float64) Hessians at W = 0 of linear nets of width {self.dim} "
            f"up to {max(max(d) for d in self.depths.values())} layers, on whitened regression "
            f"tasks of {self.n_examples} examples (one task per seed).")}

    def condition_growth(self, shortcut):
        """``condition[n]`` at the largest depth over the smallest (None if undefined)."""
        values = self.condition[str(shortcut)]
        if values[0] is None or values[-1] is None or not math.isfinite(values[0]):
            return None
        return values[-1] / values[0]

    def condition_spread(self, shortcut):
        """``(max - min) / min`` of ``condition[n]`` over the depths (None if undefined)."""
        values = self.condition[str(shortcut)]
        if any(v is None or not math.isfinite(v) for v in values):
            return None
        return (max(values) - min(values)) / min(values)

    def draw(self, axes):
        ax1, ax2, ax3 = axes
        for i, n in enumerate(self.shortcuts):
            key = str(n)
            depths = self.depths[key]
            cond = [np.nan if v is None or not math.isfinite(v) else v
                    for v in self.condition[key]]
            label = f"shortcut n = {n}"
            if np.all(np.isnan(cond)):
                ax1.plot([], [], "o-", color=f"C{i}", label=f"{label}: Hessian = 0")
            else:
                ax1.plot(depths, cond, "o-", ms=3, color=f"C{i}", label=label)
            ax2.plot(depths, self.max_abs_eigenvalue[key], "o-", ms=3, color=f"C{i}",
                     label=label)
            eig = np.sort(np.asarray(self.eigenvalues[key], dtype=float))
            ax3.plot(np.linspace(0, 1, len(eig)), eig, color=f"C{i}",
                     label=f"{label}, L = {depths[-1]}")
        ax1.set(yscale="log", xlabel="depth L (layers)", ylabel="max|eig| / min|eig|",
                title="Condition number of the Hessian at W = 0")
        ax2.set_yscale("symlog", linthresh=1e-2)
        ax2.set(xlabel="depth L (layers)", ylabel="max |eigenvalue|",
                title="Hessian norm at W = 0 (symlog)")
        ax3.set_yscale("symlog", linthresh=1e-2)
        ax3.set(xlabel="rank / count", ylabel="eigenvalue",
                title="Spectrum at the largest depth (symlog)")
        for ax in axes:
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)


def zero_init_hessian(shortcuts=SHORTCUTS, max_depth=32, *, dim=3, n_examples=256, seed=0,
                      noise=0.0, data=None, autodiff_depth=None, rtol=1e-12, atol=1e-12,
                      progress_bar=True):
    """Li et al.'s experiment (arXiv 1611.01186): the exact Hessian of the squared loss at the
    zero initialization of linear networks with shortcuts of ``n`` layers, for every depth
    ``L = n, 2n, ... <= max_depth``: its eigenvalues and condition number.

    Args:
        shortcuts: shortcut lengths ``n`` (positive integers).
        max_depth: largest depth in layers (>= every shortcut length).
        dim: width ``d`` of every layer.
        n_examples, seed, noise: the data (see :func:`linear_regression_data`).
        data: ``(x, y)`` arrays ``(m, dim)`` instead of the generated data.
        autodiff_depth: None, or a depth (layers) at which the closed-form Hessian is checked
            against :func:`autodiff_hessian` for every shortcut (rounded down to a multiple of
            ``n``, at least ``n``).
        rtol, atol: zero thresholds of :func:`condition_number`.
        progress_bar: show a progress bar.

    Returns:
        :class:`HessianResult`.

    Example:
        >>> result = zero_init_hessian((1, 2, 3), max_depth=12)
        >>> result.condition_spread(2) < 1e-9 and result.max_abs_eigenvalue["3"] == [0.0] * 4
        True
    """
    from keras_resnet_lab.analysis._common import progress

    shortcuts = [count("shortcuts", n) for n in int_list("shortcuts", shortcuts)]
    max_depth = count("max_depth", max_depth)
    if max_depth < max(shortcuts):
        raise ValueError(f"`max_depth` must be >= the longest of `shortcuts` ({max(shortcuts)}), "
                         f"got {max_depth}.")
    dim = positive_int("dim", dim)
    seed = seed_check("seed", seed)
    noise = number_in("noise", noise, 0.0)
    rtol = number_in("rtol", rtol, 0.0)
    atol = number_in("atol", atol, 0.0)
    progress_bar = boolean("progress_bar", progress_bar)
    if autodiff_depth is not None:
        autodiff_depth = count("autodiff_depth", autodiff_depth)
    # The Hessian of the deepest network has (depth * dim^2)^2 entries; its computation holds
    # a few float64 arrays of that size.
    parameters = max(max_depth, autodiff_depth or 0) * dim * dim
    memory_bytes("the Hessian of the deepest network", 8 * 4 * parameters ** 2,
                 f"({parameters:,} weights, float64)",
                 {"max_depth": max_depth, "dim": dim, "autodiff_depth": autodiff_depth})
    if data is None:
        x, y = linear_regression_data(dim, n_examples, seed, noise)
    else:
        x, y = examples("data", data, labels="any", shape=(dim,), dtype=np.float64,
                        dataset="None")
        try:  # regression targets, one row of dim per example
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"`data` targets y must be numeric: {error}") from None
        if y.shape != x.shape or not np.all(np.isfinite(y)):
            raise ValueError(f"`data` targets y must be finite with the shape of x {x.shape}, "
                             f"got {y.shape}.")
    second, cross = _statistics(x, y)
    singular = np.linalg.svd(second - cross, compute_uv=False)
    keys = [str(n) for n in shortcuts]
    out = {name: {k: [] for k in keys} for name in (
        "depths", "condition", "max_abs_eigenvalue", "min_abs_eigenvalue",
        "negative_fraction", "gradient_norm")}
    eigenvalues, check_depth, check = {}, {}, {}
    total = sum(max_depth // n for n in shortcuts)
    bar = progress(total=total, desc="hessian", enabled=progress_bar)
    with _one_blas_thread():
        _sweep(shortcuts, keys, max_depth, dim, x, y, autodiff_depth, rtol, atol, out,
               eigenvalues, check_depth, check, bar)
    bar.close()
    return HessianResult(shortcuts=shortcuts, dim=dim, n_examples=len(x), seed=int(seed),
                         noise=float(noise), eigenvalues=eigenvalues,
                         function_gradient_singular_values=singular.tolist(),
                         autodiff_depth=check_depth, autodiff_check=check, **out)


def _sweep(shortcuts, keys, max_depth, dim, x, y, autodiff_depth, rtol, atol, out, eigenvalues,
           check_depth, check, bar):
    for n, key in zip(shortcuts, keys):
        for depth in range(n, max_depth + 1, n):
            weights = zero_weights(depth, n, dim)
            eig = np.linalg.eigvalsh(shortcut_hessian(weights, x, y))
            magnitude = np.abs(eig)
            out["depths"][key].append(depth)
            out["condition"][key].append(condition_number(eig, rtol, atol))
            out["max_abs_eigenvalue"][key].append(float(magnitude.max()))
            out["min_abs_eigenvalue"][key].append(float(magnitude.min()))
            out["negative_fraction"][key].append(float(np.mean(eig < -atol)))
            out["gradient_norm"][key].append(
                float(np.linalg.norm(shortcut_gradient(weights, x, y))))
            eigenvalues[key] = eig.tolist()
            bar.update(1)
        if autodiff_depth is not None:
            depth = max(n, positive_int("autodiff_depth", autodiff_depth) // n * n)
            weights = zero_weights(depth, n, dim)
            check_depth[key] = depth
            check[key] = float(np.abs(autodiff_hessian(weights, x, y)
                                      - shortcut_hessian(weights, x, y)).max())
