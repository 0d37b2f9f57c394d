"""Li et al. (arXiv 1611.01186): at zero init, shortcuts of 2 layers give a depth-free Hessian.

Linear networks f = u_U o ... o u_1 with residual units u_k(x) = x + W_{k,n} ... W_{k,1} x
(shortcuts skipping n = 1, 2, 3 layers of 3 x 3 matrices, depth L = U n up to 32 layers) and
the squared loss on a seeded regression task (exactly whitened inputs, targets y = A x with a
random A). At the zero initialization (every W = 0, f = identity) the exact Hessian of the loss
with respect to all L * 9 weights is computed in closed form (float64), checked against
TensorFlow's nested gradient tapes, and its eigenvalues give the condition number
max|eig| / min|eig| (the Hessian is indefinite). The finding: with n = 2 the condition number
does not depend on the depth at all, with n = 1 it grows with the depth, and with n = 3 the
Hessian (and the gradient) is zero: a flat high-order saddle.

Several regression tasks ("draws") are measured: the n = 2 and n = 3 criteria hold for each of
them, the n = 1 growth for their median (the smallest eigenvalue of one task can come near 0 by
chance at some shallow depth, which makes that depth's condition number huge).

    python benchmarks/hessian_li.py --quick --out /tmp/hessian   # ~5 s after imports
    python benchmarks/hessian_li.py --out results/hessian        # 10 draws, larger checks
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

QUICK = dict(dim=3, max_depth=32, shortcuts=(1, 2, 3), draws=3, n_examples=256,
             autodiff_depth=6)
FULL = dict(dim=3, max_depth=32, shortcuts=(1, 2, 3), draws=10, n_examples=1000,
            autodiff_depth=12)


def _spearman(a, b):
    import numpy as np

    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _theory_n2(result):
    """Li et al.'s n = 2 spectrum: per unit, +-(each singular value of G), dim times each."""
    import numpy as np

    units = result.depths["2"][-1] // 2
    s = np.asarray(result.function_gradient_singular_values)
    expected = np.sort(np.concatenate([s, -s] * (result.dim * units)))
    return float(np.abs(np.sort(result.eigenvalues["2"]) - expected).max())


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "hessian_li", argv)
    import numpy as np

    from keras_resnet_lab.analysis.hessian import zero_init_hessian
    from keras_resnet_lab.analysis.results import new_figure, save_figure

    cfg = dict(QUICK if args.quick else FULL)
    cfg["condition_number"] = ("max|eig| / min|eig| over all eigenvalues of the Hessian; "
                               "undefined (None) when max|eig| <= 1e-12 (a zero Hessian)")
    cfg["data"] = ("x: n_examples Gaussian inputs whitened exactly (x^T x / m = I); y = A x, "
                   "A with N(0, 1/dim) entries; loss 1/(2m) sum ||f(x) - y||^2")
    cfg["draw_seeds"] = [1000 * args.seed + i for i in range(cfg["draws"])]
    results = []
    for i, seed in enumerate(cfg["draw_seeds"]):
        results.append(zero_init_hessian(
            cfg["shortcuts"], cfg["max_depth"], dim=cfg["dim"], n_examples=cfg["n_examples"],
            seed=seed, autodiff_depth=cfg["autodiff_depth"] if i == 0 else None,
            progress_bar=not args.quiet))
    first = results[0]
    figures = [first.plot(os.path.join(args.out, "hessian.png"))]
    first.to_json(os.path.join(args.out, "hessian_result.json"))

    depths1 = np.asarray(first.depths["1"])
    cond1 = np.array([r.condition["1"] for r in results], dtype=float)  # draws x depths
    cond2 = np.array([r.condition["2"] for r in results], dtype=float)
    median1 = np.median(cond1, axis=0)
    deep = depths1 > 3 * cfg["max_depth"] // 4
    shallow = (depths1 >= 2) & (depths1 <= 8)
    growth = [float(np.median(c[deep]) / np.median(c[shallow])) for c in cond1]
    over_n2 = [float(c1[-1] / c2[-1]) for c1, c2 in zip(cond1, cond2)]
    spread2 = [r.condition_spread(2) for r in results]
    theory2 = [_theory_n2(r) for r in results]
    n3_norm = max(max(r.max_abs_eigenvalue["3"]) for r in results)
    n2_norm = min(min(r.max_abs_eigenvalue["2"]) for r in results)
    gradient_n23 = max(max(r.gradient_norm["2"] + r.gradient_norm["3"]) for r in results)
    autodiff = max(first.autodiff_check.values())

    figure, (ax1, ax2) = new_figure(2)
    for j, r in enumerate(results):
        ax1.plot(r.depths["1"], r.condition["1"], color="C0", alpha=0.35, lw=1,
                 label="n = 1, each task" if j == 0 else None)
        ax1.plot(r.depths["2"], r.condition["2"], color="C1", alpha=0.35, lw=1,
                 label="n = 2, each task" if j == 0 else None)
        ax2.plot(r.depths["1"], r.max_abs_eigenvalue["1"], color="C0", alpha=0.35,
                 label="max |eig|" if j == 0 else None)
        ax2.plot(r.depths["1"], r.min_abs_eigenvalue["1"], color="C0", ls="--", alpha=0.35,
                 label="min |eig|" if j == 0 else None)
    ax1.plot(depths1, median1, "o-", ms=3, color="C0", label="n = 1, median")
    ax1.set(yscale="log", xlabel="depth L (layers)", ylabel="max|eig| / min|eig|",
            title=f"Condition number at W = 0 ({len(results)} tasks)")
    ax2.set(yscale="log", xlabel="depth L (layers)", ylabel="|eigenvalue|",
            title="n = 1: max |eig| (solid) grows ~ L, min |eig| (dashed)")
    for ax in (ax1, ax2):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    figures.append(save_figure(figure, os.path.join(args.out, "hessian_tasks.png")))

    criteria = [
        _common.criterion("n2_condition_relative_spread_over_depths", max(spread2), "<=", 1e-9,
                          "n = 2: the condition number is the same at every depth (every task)"),
        _common.criterion("n2_spectrum_minus_theory_max_abs", max(theory2), "<=", 1e-10,
                          "n = 2: eigenvalues are +- the singular values of the function-space "
                          "gradient, dim x units times each (Li et al.'s block structure)"),
        _common.criterion("n1_condition_growth_median_over_tasks", float(np.median(growth)),
                          ">=", 3.0, f"n = 1: median condition number at depths > "
                          f"{3 * cfg['max_depth'] // 4} over that at depths 2..8 (a chance "
                          "near-singular shallow Hessian can spoil one task, not the median)"),
        _common.criterion("n1_spearman_depth_vs_median_condition", _spearman(depths1, median1),
                          ">=", 0.6, "n = 1: the condition number rises with depth "
                          "(rank correlation of the median over tasks)"),
        _common.criterion("n1_over_n2_condition_at_max_depth_min_over_tasks", min(over_n2),
                          ">=", 10.0, f"at {cfg['max_depth']} layers n = 1 is far worse "
                          "conditioned than n = 2"),
        _common.criterion("n3_hessian_norm_max", n3_norm, "<=", 1e-12,
                          "n = 3: the Hessian at zero vanishes (flat high-order saddle)"),
        _common.criterion("n2_hessian_norm_min", n2_norm, ">=", 0.1,
                          "while n = 2's does not (so the zero is not an artefact)"),
        _common.criterion("autodiff_minus_closed_form_max_abs", autodiff, "<=", 1e-10,
                          f"the closed-form Hessian equals TensorFlow's nested-tape Hessian at "
                          f"depth {cfg['autodiff_depth']} for every n"),
    ]
    numbers = {
        "depths": first.depths,
        "condition": {str(s): [r.condition[str(s)] for r in results] for s in (1, 2)},
        "n1_median_condition": median1.tolist(),
        "n1_condition_growth": growth, "n1_over_n2_condition_at_max_depth": over_n2,
        "n2_condition": [r.condition["2"][0] for r in results],
        "n2_relative_spread": spread2, "n2_spectrum_minus_theory": theory2,
        "max_abs_eigenvalue": {str(s): [r.max_abs_eigenvalue[str(s)] for r in results]
                               for s in cfg["shortcuts"]},
        "min_abs_eigenvalue": {str(s): [r.min_abs_eigenvalue[str(s)] for r in results]
                               for s in cfg["shortcuts"]},
        "negative_fraction": first.negative_fraction,
        "gradient_norm_n1": [r.gradient_norm["1"] for r in results],
        "gradient_norm_n2_n3_max": gradient_n23,
        "function_gradient_singular_values": [r.function_gradient_singular_values
                                              for r in results],
        "autodiff_check": first.autodiff_check, "autodiff_depth": first.autodiff_depth,
    }
    finding = ("At the zero initialization of a linear network with shortcuts, the Hessian of the "
               "loss has a depth-independent condition number when the shortcuts skip 2 layers, "
               "a condition number that grows with depth when they skip 1, and vanishes when "
               "they skip 3 (a flat high-order saddle).")
    return _common.finish(args, "hessian_li", "Li, Jiao, Han, Weissman 2016, arXiv 1611.01186",
                          finding, criteria, numbers, cfg, figures, started)


if __name__ == "__main__":
    sys.exit(main())
