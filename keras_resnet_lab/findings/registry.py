"""The registry of the papers' findings: the one place where a finding's rule lives.

Each :class:`Finding` states the paper's claim in one sentence, the paper's own number where
it gives one, and one or more :class:`Criterion`: the statistic that tests the claim, the
side of a threshold it must lie on, and that threshold in the paper's terms. Library results,
``keras-resnet-lab analyze``, the lab's report and ``summary.json``, and every reproduction
script in ``benchmarks/`` judge a finding with :func:`keras_resnet_lab.findings.assess`
against its entry here, and nowhere else (``tests/test_findings.py`` checks that no other
module computes a verdict). README's findings table is generated from this registry
(:func:`findings_table`).

Statistics measured as test-error differences are in percentage points (``points``).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Criterion:
    """One statistic of a finding and the threshold its interval must clear.

    Attributes:
        key: short name (``"median_rise"``).
        statistic: what is measured, in one sentence.
        comparison: ``"<="``, ``"<"``, ``">="`` or ``">"``: the claim's side of the threshold.
        threshold: the threshold, in ``unit``.
        unit: ``"points"`` (percentage points), ``"ratio"``, ``"correlation"``, ``"fraction"``,
            ``"cosine"``, ``"accuracy points"``...
        meaning: the threshold in the paper's terms.
        precondition: True for a condition under which the claim can be tested at all (the
            plain twin must have trained, ...): when it does not hold the finding is
            *inconclusive*, whatever the other criteria say.
    """

    key: str
    statistic: str
    comparison: str
    threshold: float
    unit: str
    meaning: str
    precondition: bool = False


@dataclasses.dataclass(frozen=True)
class Finding:
    """A paper's finding as the project tests it.

    Attributes:
        key: registry key (``"veit_lesion"``).
        title: a few words for headings.
        paper: authors and year.
        arxiv: the paper's arXiv id.
        claim: the paper's claim, one sentence.
        paper_number: the paper's own number for it, or None where it gives none.
        criteria: the criteria (all must hold).
        uncertainty: how the interval is formed (seeds or a bootstrap, over what).
        measured_on: what the library measures it on.
    """

    key: str
    title: str
    paper: str
    arxiv: str
    claim: str
    paper_number: str | None
    criteria: tuple
    uncertainty: str
    measured_on: str

    def criterion(self, key):
        for c in self.criteria:
            if c.key == key:
                return c
        raise KeyError(f"finding {self.key!r} has no criterion {key!r}; it has "
                       f"{', '.join(c.key for c in self.criteria)}")


C = Criterion
_VEIT = ("Veit, Wilber & Belongie 2016", "1605.06431")
_JAS = ("Jastrzebski et al. 2017", "1710.04773")
_SRI = ("Srivastava, Greff & Schmidhuber 2015", "1507.06228")
_BAL = ("Balduzzi et al. 2017", "1702.08591")
_BOOT = "paired bootstrap over the test examples of one trained network and its twin"
_SEEDS = "t interval over seeds (each seed trains its own networks)"

FINDINGS = {f.key: f for f in (
    Finding(
        "veit_lesion", "Deleting one block", *_VEIT,
        "Deleting a single block that does not downsample barely changes a residual "
        "network's test error, while deleting a layer of a plain network sends it to chance.",
        "ResNet-110 on CIFAR-10: single deletions of non-downsampling blocks leave the error "
        "within about a point of the intact 6.x%; removing one layer of VGG-15 gives about "
        "chance (90% error).",
        (C("median_rise", "median over non-downsampling blocks of the rise in test error when "
           "the block is deleted (its shortcut kept)", "<=", 2.0, "points",
           "'barely changes': at most 2 points, the paper's scale for ResNet-110"),
         C("plain_error", "median test error of a plain network that trains with one "
           "non-downsampling layer (block) deleted", ">=", 70.0, "points",
           "'about chance': within 20 points of chance (90% for 10 classes)"),
         C("plain_intact_error", "test error of that plain network intact", "<=", 50.0,
           "points", "the plain network must work before its lesions mean anything (VGG-15 "
           "did)", precondition=True)),
        "paired bootstrap over the test examples of one trained ResNet and the plain "
        "network", "the lab's trained ResNet and a plain network that trains, as Veit et al. "
        "compared ResNet-110 with the shallower VGG-15: plain-20, or the plain twin of a "
        "ResNet-20 (lesion_study)"),
    Finding(
        "veit_k_deletion", "Deleting k blocks", *_VEIT,
        "Deleting k random blocks raises a residual network's error smoothly with k: the "
        "network degrades like an ensemble losing members, without a cliff.",
        "ResNet-200 on ImageNet: error about 0.2 after 10 deletions, rising steadily to "
        "severe after 20.",
        (C("rank_correlation", "Spearman correlation between k and the mean test error over "
           "draws of k deleted blocks", ">=", 0.8, "correlation",
           "'error rises with k': a strong rank correlation"),
         C("largest_step_share", "largest rise of the mean test error from k to k + 1 "
           "deleted blocks, as a share of its rise from 0 to the most blocks deleted",
           "<=", 0.5, "fraction",
           "'without a cliff': no single extra deletion does half of the damage (the paper's "
           "curve rises step by step, a few points per block of ResNet-200)")),
        "bootstrap over the random draws of each k and over test examples",
        "the lab's trained ResNet (lesion_study, at least 20 draws per k)"),
    Finding(
        "veit_reorder", "Reordering blocks", *_VEIT,
        "Swapping random pairs of blocks raises the error smoothly as the order departs from "
        "the original one (as Kendall's tau falls).",
        "ResNet-110 on CIFAR-10: error rises smoothly as Kendall tau falls (figure, no "
        "number).",
        (C("tau_correlation", "Spearman correlation between Kendall's tau of the block order "
           "and the test error, over reorder draws", "<=", -0.5, "correlation",
           "'smooth increase as tau falls': a clearly negative rank correlation"),),
        "bootstrap over reorder draws and test examples",
        "the lab's trained ResNet (lesion_study)"),
    Finding(
        "veit_path_gradient", "Gradient per path length", *_VEIT,
        "The gradient through a path shrinks exponentially with the number of residual "
        "branches on it, so training is carried by paths far shorter than the network.",
        "ResNet-110 (54 blocks): magnitude decays exponentially with path length; the "
        "gradient comes mostly from paths of 5-17 blocks, 0.45% of all paths.",
        (C("decay_factor", "factor by which the input-gradient norm changes per extra branch "
           "on a path (exponential fit)", "<", 1.0, "ratio",
           "'decays with path length': a factor below 1"),
         C("peak_over_half", "length of the path length contributing most gradient, over "
           "half the number of blocks", "<", 1.0, "ratio",
           "'carried by short paths': the contribution peaks below n/2, where most paths "
           "are")),
        "bootstrap over the sampled (example, path) draws of each length",
        "the lab's trained ResNet (path_gradients)"),
    Finding(
        "jastrzebski_refinement", "Iterative refinement", *_JAS,
        "Each residual block moves its hidden state along the negative gradient of the loss: "
        "cos(F_i(h_i), -dL/dh_i) is positive.",
        "ResNets on CIFAR: the cosine is positive for every block, the last blocks near 0.1.",
        (C("mean_cosine", "mean over blocks of cos(F_i(h_i), -dL/dh_i) on test examples", ">",
           0.0, "cosine", "'positive': above 0"),),
        "bootstrap over test examples", "the lab's trained ResNet (refinement)"),
    Finding(
        "jastrzebski_first_block", "The first block changes most", *_JAS,
        "The first block of a residual network changes its input most; later blocks make "
        "small corrections.",
        "ResNets on CIFAR: ||F(h)||/||h|| up to 2 at the first block, far smaller later.",
        (C("first_over_rest", "||F(h)||/||h|| at the first block over its mean at the later "
           "blocks", ">", 1.0, "ratio", "'changes most': larger than the later blocks' "
           "mean"),),
        "bootstrap over test examples", "the lab's trained ResNet (refinement)"),
    Finding(
        "jastrzebski_sharing", "Sharing weights needs unshared batch norm", *_JAS,
        "Sharing one residual block's weights across steps naively makes activations grow at "
        "initialization and tests worse; separate batch-norm statistics per step fix it.",
        "CIFAR-10: ResNet-110 6.13% test error; shared with unshared batch norm (UBN) 6.62%; "
        "naive sharing overfits (no number).",
        (C("init_growth_ratio", "||h_L||/||h_0|| at initialization, naive sharing over "
           "per-step batch norm", ">=", 1.5, "ratio",
           "'activations grow at initialization': at least half as much again"),
         C("accuracy_gap", "test accuracy of per-step batch norm minus naive sharing, both "
           "evaluated with their stored (moving) batch-norm statistics", ">", 0.0,
           "accuracy points", "'tests worse': below, with moving statistics")),
        _SEEDS, "one block applied 6 times, on the 8x8 digits (compare_weight_sharing)"),
    Finding(
        "he_degradation", "Degradation with depth", "He et al. 2015", "1512.03385",
        "Deeper plain networks reach a higher training error than shallower ones, while "
        "deeper residual networks do not.",
        "CIFAR-10: plain-56 trains worse than plain-20 (plain-110 over 60% error); "
        "ResNet-20/56/110 reach 8.75/6.97/6.43% test error.",
        (C("plain_rise", "training error of the deep plain net minus the shallow one",
           ">", 0.0, "points", "'higher training error': above 0"),
         C("residual_rise", "training error of the deep ResNet minus the shallow one",
           "<=", 1.0, "points", "'do not degrade': at most 1 point higher")),
        _SEEDS, "plain and residual CIFAR networks at two depths (compare_depths)"),
    Finding(
        "greff_estimation", "Unrolled iterative estimation", "Greff, Srivastava & Schmidhuber "
        "2016", "1612.07771",
        "The blocks of a stage estimate the same features: the estimation error h_i - h_end "
        "has a mean near zero and a spread that shrinks block after block.",
        "ResNet-50 and highway nets on ImageNet: mean near 0, spread shrinking (figure).",
        (C("mean_over_spread", "largest |mean| / standard deviation of h_i - h_end over the "
           "blocks of a stage", "<=", 0.5, "ratio",
           "'mean near zero': small against the spread"),
         C("spread_change", "largest relative change of the spread from one block to the "
           "next within a stage", "<", 0.0, "ratio",
           "'shrinks block after block': falls at every step")),
        "bootstrap over test examples", "the lab's trained ResNet (estimation_errors)"),
    Finding(
        "srivastava_depth", "Highway networks train at depth", *_SRI,
        "Plain networks train worse as they get deeper; highway networks do not.",
        "MNIST/CIFAR: plain nets of 50-100 layers fail to train; highway nets of 50-100 "
        "layers match those of 10-20.",
        (C("plain_rise", "final training error of the deepest plain net minus the shallowest",
           ">", 5.0, "points", "'train worse as they get deeper': more than 5 points"),
         C("highway_rise", "final training error of the deepest highway net minus the "
           "shallowest", "<=", 2.0, "points", "'do not': within 2 points")),
        _SEEDS, "dense plain and highway nets at 10/20/50 layers on the 8x8 digits "
        "(compare_highway_depths)"),
    Finding(
        "srivastava_gates", "Late highway gates stay shut", *_SRI,
        "In a trained deep highway network many late layers are idle: their transform gates "
        "stay shut and lesioning them costs almost nothing.",
        "MNIST, 50 layers: layers 15-45 carry their input almost unchanged (lesion costs "
        "little).",
        (C("idle_fraction", "fraction of the late half of the layers whose gate lesion "
           "(T = 0) costs at most 1 point of accuracy", ">=", 0.5, "fraction",
           "'many late layers idle': at least half"),
         C("gate_change", "mean transform gate of the late layers after training minus at "
           "initialization", "<=", 0.0, "gate",
           "'stay shut': not opened by training (compared with their initial value)")),
        _SEEDS, "the deepest highway net of srivastava_depth"),
    Finding(
        "abdi_multires", "Multi-residual at equal parameters", "Abdi & Nahavandi 2016",
        "1609.05672",
        "At equal parameters, fewer blocks with several residual branches each are at least "
        "as accurate as more blocks with one.",
        "CIFAR-10 at 10.2M parameters: Multi-ResNet-200 (k = 5) 4.35% vs Pre-ResNet-1001 "
        "4.62% test error (CIFAR-100: 20.42 vs 22.71%).",
        (C("accuracy_gap", "test accuracy of the k-branch net minus the 1-branch net, paired "
           "by seed", ">=", -1.0, "accuracy points",
           "'at least as accurate': not worse by more than 1 point"),),
        _SEEDS, "2 blocks of k = 4 against 8 of k = 1, equal parameters, on the 8x8 digits "
        "(compare_multi_residual)"),
    Finding(
        "szegedy_scaling", "Scaling the residual branch", "Szegedy et al. 2016", "1602.07261",
        "Without batch norm a deep residual stack with full-size branches blows up; scaling "
        "each branch by 0.1-0.3 keeps it bounded and trainable.",
        "Inception-ResNet with over 1,000 filters 'died' early in training; scaling by "
        "0.1-0.3 fixed it and never hurt accuracy (no number).",
        (C("growth_ratio", "log10 of ||h_L||/||h_0|| at initialization, s = 1 over s = 0.1",
           ">=", 1.0, "log10 ratio", "'blows up': at least ten times the growth"),
         C("scaled_accuracy", "test accuracy of the stack with s = 0.1", ">=", 50.0,
           "accuracy points", "'trainable': well above chance (10%)")),
        _SEEDS, "30 residual blocks without batch norm on the 8x8 digits "
        "(compare_residual_scales)"),
    Finding(
        "balduzzi_shattering", "Shattered gradients", *_BAL,
        "The input gradients of a deep plain network decorrelate into white noise with "
        "depth; a residual network's stay correlated much longer.",
        "Feedforward nets: white noise by about 24 layers (covariance ~ 1/2^L); ResNets "
        "with batch norm decay like 1/sqrt(L).",
        (C("plain_lag1", "|lag-1 autocorrelation| of the gradient of the deepest plain net "
           "with batch norm", "<=", 0.1875, "correlation",
           "'white noise': inside the band 3/sqrt(256 points)"),
         C("residual_minus_plain", "lag-1 autocorrelation of the residual net minus the "
           "plain net at that depth", ">", 0.2, "correlation",
           "'stay correlated': clearly more")),
        "t interval over initialization seeds", "networks at initialization (shattering)"),
    Finding(
        "balduzzi_looks_linear", "Looks-linear initialization", *_BAL,
        "A deep plain network trains from the looks-linear initialization, where the He "
        "initialization fails.",
        "Plain nets of about 200 layers train with the looks-linear initialization "
        "(figure, no number).",
        (C("accuracy_gap", "final training accuracy from the looks-linear initialization "
           "minus from the He initialization", ">", 20.0, "accuracy points",
           "'trains where He fails': more than 20 points better"),),
        _SEEDS, "a 50-layer plain dense net on the 8x8 digits (compare_initializations)"),
    Finding(
        "li_hessian", "Hessian at zero initialization", "Li, Jiao, Han & Weissman 2016",
        "1611.01186",
        "At zero initialization of a linear network, shortcuts of 2 layers give a Hessian "
        "whose condition number does not depend on depth, 1-layer shortcuts one that grows "
        "with depth, and 3-layer shortcuts a zero Hessian.",
        None,
        (C("n2_spread", "relative spread of the condition number over depths, 2-layer "
           "shortcuts", "<=", 1e-6, "ratio", "'independent of depth': equal to rounding"),
         C("n1_growth", "condition number at the largest depth over the smallest, 1-layer "
           "shortcuts", ">=", 3.0, "ratio", "'grows with depth': at least 3 times"),
         C("n3_norm", "largest |eigenvalue| of the Hessian, 3-layer shortcuts", "<=", 1e-9,
           "eigenvalue", "'zero': at rounding level")),
        "range over regression tasks (exact computations: each task must clear the "
        "threshold)", "linear networks at zero initialization (zero_init_hessian)"),
    Finding(
        "chu_filters", "Filters refined across blocks", "Chu, Yang & Tadinada 2017",
        "1701.02362",
        "The same channel at consecutive blocks of a residual stage responds to the same "
        "pattern, refined, unlike in a network without shortcuts.",
        None,
        (C("score", "correlation of a channel with itself at the next block minus with a "
           "random channel, ResNet", ">", 0.0, "correlation",
           "'the same pattern': above what a random channel gives"),
         C("score_over_twin", "that score minus the plain twin's", ">", 0.0, "correlation",
           "'unlike without shortcuts': above the plain twin's")),
        "bootstrap over channels", "the lab's trained ResNet and its twin (filter_refinement)"),
    Finding(
        "kornblith_cka", "Blocks refine, not replace", "Kornblith et al. 2019", "1905.00414",
        "Consecutive blocks of a residual stage represent their input more alike (linear "
        "CKA) than the layers of a network without shortcuts: they refine rather than "
        "replace it.",
        None,
        (C("cka_gap", "mean linear CKA of consecutive blocks within a stage, ResNet minus "
           "plain twin", ">", 0.0, "CKA", "'more alike': above the plain twin"),),
        _BOOT, "the lab's trained ResNet and its twin (block_similarity)"),
)}


def finding(key):
    """The registry entry ``key`` (ValueError listing the keys otherwise)."""
    if key not in FINDINGS:
        raise ValueError(f"unknown finding {key!r}; the registry has: {', '.join(FINDINGS)}.")
    return FINDINGS[key]


def _threshold(c):
    return f"{c.comparison} {c.threshold:g} {c.unit}"


def findings_table():
    """README's findings table (Markdown), generated from the registry."""
    lines = ["| finding | paper | claim | statistic: rule | paper's number | interval |",
             "|---|---|---|---|---|---|"]
    for f in FINDINGS.values():
        rules = "; ".join(f"{'(precondition) ' if c.precondition else ''}{c.statistic}: "
                          f"{_threshold(c)}" for c in f.criteria)
        lines.append(f"| `{f.key}` | {f.paper}, arXiv {f.arxiv} | {f.claim} | {rules} | "
                     f"{f.paper_number or 'none given'} | {f.uncertainty} |")
    return "\n".join(lines) + "\n"
