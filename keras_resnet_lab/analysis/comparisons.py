"""The training comparisons by name, on the embedded digits: one entry for the CLI and the lab.

Each comparison trains a few small networks alike and tests a paper's finding (see the module of
each function). :func:`run_comparison` loads the digits the way the comparison's reproduction
script does in ``--quick`` mode and runs it with the function's defaults (the scripts' quick
configuration), or, with ``smoke=True``, with smaller networks and fewer epochs: a run of
seconds that exercises everything, where the finding need not show.
"""

import importlib

from keras_resnet_lab._checks import boolean, int_at_least, one_of, positive_int
from keras_resnet_lab.catalog import COMPARISONS

#: Multi-residual at equal parameters on the 8x8 digits: 2 stages of 16 channels, 8 blocks of
#: k = 1 against 2 blocks of k = 4 (benchmarks/multires_abdi.py --quick; at 8 channels the
#: deeper net generalizes better, the paper's depth threshold).
MULTIRES = dict(total_branches=4, branches=(1, 4), widths=(16, 16), batch_size=128,
                learning_rate=0.1, jit_compile=False, epochs=6)

#: Smaller settings of ``smoke=True`` runs (the lab's ``--quick``).
SMOKE = {
    "highway": dict(depths=(5, 20), epochs=6),
    "scaling": dict(blocks=20, epochs=2),
    "sharing": dict(epochs=2),
    "looks_linear": dict(blocks=10, epochs=3),
    "multires": dict(epochs=3),
}


def comparison_data(name):
    """``(train, test)`` digits arrays of comparison ``name`` (8x8, as its script's quick mode)."""
    from keras_resnet_lab.analysis._training import training_digits

    entry = COMPARISONS[one_of("name", name, tuple(COMPARISONS))]
    return training_digits(8, channels=entry.channels,
                           batch_size=64 if entry.whole_batches else None,
                           flatten=entry.flatten)


def run_comparison(name, *, seed=0, epochs=None, smoke=False, progress_bar=True):
    """Run the training comparison ``name`` on the embedded 8x8 digits.

    Args:
        name: one of :data:`COMPARISONS` (``"highway"``, ``"scaling"``, ``"sharing"``,
            ``"looks_linear"``, ``"multires"``).
        seed: seed of the initializations and the data order.
        epochs: training epochs of every network (default: the comparison's own).
        smoke: smaller networks and fewer epochs (:data:`SMOKE`): seconds instead of a minute;
            the finding need not show at that size.
        progress_bar: show progress.

    Returns:
        The comparison's result (``to_json``, ``plot``; ``criteria()`` and ``describe()``
        for all but ``"multires"``, a :class:`MultiResidualComparison`).

    Example:
        >>> result = run_comparison("scaling", seed=0)  # doctest: +SKIP
        >>> result.finding_held  # doctest: +SKIP
        True
    """
    entry = COMPARISONS[one_of("name", name, tuple(COMPARISONS))]
    seed = int_at_least("seed", seed, 0)
    kwargs = dict(SMOKE[name]) if boolean("smoke", smoke) else {}
    if epochs is not None:
        kwargs["epochs"] = positive_int("epochs", epochs)
    compare = getattr(importlib.import_module(f"keras_resnet_lab.analysis.{entry.module}"),
                      entry.function)
    train, test = comparison_data(name)
    if name == "multires":
        settings = dict(MULTIRES, **kwargs)
        return compare(train=train, test=test, seeds=(seed,), progress_bar=progress_bar,
                       **settings)
    return compare(train, test, seed=seed, progress_bar=progress_bar, **kwargs)
