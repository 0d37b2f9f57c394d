"""Li et al. (arXiv 1611.01186): at zero init, shortcuts of 2 layers give a depth-free Hessian.

The paper's claim: at the zero initialization of a linear network, shortcuts of 2 layers give
a Hessian of the loss whose condition number does not depend on the depth, 1-layer shortcuts
one that grows with the depth, and 3-layer shortcuts a zero Hessian (a flat high-order
saddle). The rule it is judged by is the registry entry ``li_hessian``
(``keras_resnet_lab/findings/registry.py``): the relative spread of the condition number over
depths with n = 2, its growth from the smallest to the largest depth with n = 1 and the
largest |eigenvalue| with n = 3, each over the regression tasks (one per seed; the
computations are exact, so every task must clear the threshold: median and range); results.json
reports that verdict and nothing else decides one.

Linear networks f = u_U o ... o u_1 with residual units u_k(x) = x + W_{k,n} ... W_{k,1} x
(shortcuts skipping n = 1, 2, 3 layers of 3 x 3 matrices, depth L = U n up to 32 layers) and
the squared loss on a seeded regression task (exactly whitened inputs, targets y = A x with a
random A). At the zero initialization (every W = 0, f = identity) the exact Hessian of the loss
with respect to all L * 9 weights is computed in closed form (float64) by
``keras_resnet_lab.analysis.hessian.zero_init_hessian``, once per seed (``--seed``,
``--seeds``: each seed draws its own task), checked against TensorFlow's nested gradient tapes
on the first task, and its eigenvalues give the condition number max|eig| / min|eig| (the
Hessian is indefinite). Reported besides: the n = 2 spectrum against Li et al.'s block
structure, the n = 1 growth between depth bands and its rank correlation with depth.

Figures: hessian.png (the first task), hessian_tasks.png (every task) and
findings_over_seeds.png (every statistic per task, with its range and threshold).

    python benchmarks/hessian_li.py --quick --out /tmp/hessian   # 3 tasks
    python benchmarks/hessian_li.py --out results/hessian        # larger checks
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

QUICK = dict(dim=3, max_depth=32, shortcuts=(1, 2, 3), n_examples=256, autodiff_depth=6)
FULL = dict(dim=3, max_depth=32, shortcuts=(1, 2, 3), n_examples=1000, autodiff_depth=12)


def _theory_n2(result):
    """Li et al.'s n = 2 spectrum: per unit, +-(each singular value of G), dim times each."""
    import numpy as np

    units = result.depths["2"][-1] // 2
    s = np.asarray(result.function_gradient_singular_values)
    expected = np.sort(np.concatenate([s, -s] * (result.dim * units)))
    return float(np.abs(np.sort(result.eigenvalues["2"]) - expected).max())


def main(argv=None):
    started = time.time()
    args = _common.parse_args(__doc__.splitlines()[0], "hessian_li", argv, seeded=True)
    import numpy as np

    from keras_resnet_lab.analysis import spearman
    from keras_resnet_lab.analysis.hessian import zero_init_hessian
    from keras_resnet_lab.analysis.results import new_figure, save_figure

    cfg = dict(QUICK if args.quick else FULL)
    cfg["condition_number"] = ("max|eig| / min|eig| over all eigenvalues of the Hessian; "
                               "undefined (None) when max|eig| <= 1e-12 (a zero Hessian)")
    cfg["data"] = ("x: n_examples Gaussian inputs whitened exactly (x^T x / m = I); y = A x, "
                   "A with N(0, 1/dim) entries; loss 1/(2m) sum ||f(x) - y||^2")
    seeds = _common.seed_list(args)
    cfg["seeds"] = seeds
    settings = dict(shortcuts=cfg["shortcuts"], max_depth=cfg["max_depth"], dim=cfg["dim"],
                    n_examples=cfg["n_examples"])
    # The autodiff check runs on the first task only (cfg["autodiff_depth"]).
    seeded = _common.run_seeds(
        args, "hessian",
        lambda seed: zero_init_hessian(
            seed=seed, autodiff_depth=cfg["autodiff_depth"] if seed == seeds[0] else None,
            progress_bar=not args.quiet, **settings),
        settings)
    results = seeded.runs
    first = results[0]
    figures = [first.plot(os.path.join(args.out, "hessian.png"))]
    first.to_json(os.path.join(args.out, "hessian_result.json"))

    depths1 = np.asarray(first.depths["1"])
    cond1 = np.array([r.condition["1"] for r in results], dtype=float)  # tasks x depths
    cond2 = np.array([r.condition["2"] for r in results], dtype=float)
    median1 = np.median(cond1, axis=0)
    deep = depths1 > 3 * cfg["max_depth"] // 4
    shallow = (depths1 >= 2) & (depths1 <= 8)
    band_growth = [float(np.median(c[deep]) / np.median(c[shallow])) for c in cond1]
    over_n2 = [float(c1[-1] / c2[-1]) for c1, c2 in zip(cond1, cond2)]

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
    figures.append(_common.seeds_figure(args, seeded))

    numbers = {
        "depths": first.depths,
        "condition": {str(s): [r.condition[str(s)] for r in results] for s in (1, 2)},
        "n1_median_condition": median1.tolist(),
        "n1_condition_growth": [r.condition_growth(1) for r in results],
        "n1_condition_growth_deep_over_shallow_band": band_growth,
        "n1_band_depths": {"shallow": depths1[shallow].tolist(), "deep": depths1[deep].tolist()},
        "n1_spearman_depth_vs_median_condition": spearman(depths1, median1),
        "n1_over_n2_condition_at_max_depth": over_n2,
        "n2_condition": [r.condition["2"][0] for r in results],
        "n2_relative_spread": [r.condition_spread(2) for r in results],
        "n2_spectrum_minus_theory": [_theory_n2(r) for r in results],
        "max_abs_eigenvalue": {str(s): [r.max_abs_eigenvalue[str(s)] for r in results]
                               for s in cfg["shortcuts"]},
        "min_abs_eigenvalue": {str(s): [r.min_abs_eigenvalue[str(s)] for r in results]
                               for s in cfg["shortcuts"]},
        "negative_fraction": first.negative_fraction,
        "gradient_norm_n1": [r.gradient_norm["1"] for r in results],
        "gradient_norm_n2_n3_max": max(max(r.gradient_norm["2"] + r.gradient_norm["3"])
                                       for r in results),
        "function_gradient_singular_values": [r.function_gradient_singular_values
                                              for r in results],
        "autodiff_check": first.autodiff_check, "autodiff_depth": first.autodiff_depth,
        "seeds": seeds,
    }
    return _common.finish(args, "hessian_li", seeded.assessments(), numbers, cfg, figures,
                          started)


if __name__ == "__main__":
    sys.exit(main())
