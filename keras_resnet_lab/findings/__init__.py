"""The papers' findings: their rules (:mod:`.registry`), estimates with intervals and the three
verdicts (:mod:`.verdict`), and :func:`assess`, the one function that judges a finding.

Example:
    >>> from keras_resnet_lab.findings import assess, over_seeds
    >>> a = assess("abdi_multires", {"accuracy_gap": over_seeds([0.4, 1.1, -0.2])})
    >>> a.verdict
    'inconclusive'
"""

from __future__ import annotations

import dataclasses
import math

from keras_resnet_lab.findings.registry import FINDINGS, Criterion, Finding, finding
from keras_resnet_lab.findings.verdict import (
    HELD,
    INCONCLUSIVE,
    NOT_HELD,
    VERDICTS,
    Estimate,
    bootstrap,
    combine,
    judge,
    missing,
    over_range,
    over_seeds,
    tally,
)

__all__ = ["FINDINGS", "HELD", "INCONCLUSIVE", "NOT_HELD", "VERDICTS", "Assessment",
           "Criterion", "Estimate", "Finding", "assess", "bootstrap", "finding", "format_value",
           "from_dict", "missing", "over_range", "over_seeds", "tally"]


@dataclasses.dataclass
class Assessment:
    """A finding judged on one measurement.

    Attributes:
        finding: the registry entry.
        estimates: ``{criterion key: Estimate}``.
        verdicts: ``{criterion key: verdict}``.
        verdict: the finding's verdict (:func:`~keras_resnet_lab.findings.verdict.combine`).
        seeds: the seeds the measurement used.
        notes: what else a reader needs (the setting, the batch statistics used, ...).
    """

    finding: Finding
    estimates: dict
    verdicts: dict
    verdict: str
    seeds: tuple = ()
    notes: str = ""

    @property
    def key(self):
        return self.finding.key

    def to_dict(self):
        """JSON-ready: claim, statistic, estimate, interval, threshold, seeds, verdict and the
        paper's number, per criterion and for the finding."""
        f = self.finding
        criteria = []
        for c in f.criteria:
            e = self.estimates[c.key].to_dict()
            criteria.append({"key": c.key, "statistic": c.statistic, "estimate": e["value"],
                             "interval": e["interval"], "n": e["n"], "method": e["method"],
                             "samples": e["samples"], "comparison": c.comparison,
                             "threshold": c.threshold, "unit": c.unit, "meaning": c.meaning,
                             "precondition": c.precondition, "verdict": self.verdicts[c.key]})
        return {"key": f.key, "title": f.title, "paper": f.paper, "arxiv": f.arxiv,
                "claim": f.claim, "paper_number": f.paper_number, "verdict": self.verdict,
                "criteria": criteria, "seeds": list(self.seeds), "uncertainty": f.uncertainty,
                "notes": self.notes}

    def sentences(self):
        """One sentence per criterion, generated from its estimate and rule."""
        return [criterion_sentence(c, self.estimates[c.key], self.verdicts[c.key])
                for c in self.finding.criteria]

    def untestable(self):
        """The preconditions that did not hold (the finding cannot be tested here)."""
        return [c for c in self.finding.criteria
                if c.precondition and self.verdicts[c.key] != HELD]

    def describe(self):
        """A paragraph: the claim, each criterion's numbers and verdict, the finding's."""
        text = " ".join(self.sentences())
        why = ""
        if self.untestable():
            why = " Cannot be tested here: " + "; ".join(
                f"{c.statistic} is not shown to be {c.comparison} "
                f"{format_value(c.threshold, c.unit)}" for c in self.untestable()) + "."
        return (f"{self.finding.paper} (arXiv {self.finding.arxiv}): {self.finding.claim} "
                f"{text} Verdict: {self.verdict}.{why}" + (f" {self.notes}" if self.notes
                                                           else ""))


def assess(key, estimates, seeds=(), notes=""):
    """Judge finding ``key`` of the registry on ``estimates`` (``{criterion key: Estimate}``).

    Every criterion of the entry must be given (a :func:`missing` estimate where it could not
    be measured: it is then inconclusive).

    Raises:
        ValueError: unknown finding, or criteria missing or unknown.
    """
    entry = finding(key)
    wanted = [c.key for c in entry.criteria]
    if set(estimates) != set(wanted):
        raise ValueError(f"finding {key!r} is judged on the criteria {wanted}, got "
                         f"{sorted(estimates)}.")
    verdicts = {c.key: judge(c.comparison, c.threshold, estimates[c.key])
                for c in entry.criteria}
    claims = [verdicts[c.key] for c in entry.criteria if not c.precondition]
    untestable = [c for c in entry.criteria if c.precondition and verdicts[c.key] != HELD]
    verdict = INCONCLUSIVE if untestable else combine(claims)
    return Assessment(entry, dict(estimates), verdicts, verdict,
                      tuple(int(s) for s in seeds), notes)


def from_dict(data):
    """Rebuild an :class:`Assessment` from its ``to_dict()`` (as saved in JSON), judging it
    again with the registry's rule."""
    estimates = {}
    for c in data["criteria"]:
        low, high = (float("nan") if v is None else v for v in c["interval"])
        value = float("nan") if c["estimate"] is None else c["estimate"]
        estimates[c["key"]] = Estimate(value, low, high, int(c["n"]), c["method"],
                                       tuple(float("nan") if v is None else v
                                             for v in c.get("samples", ())))
    return assess(data["key"], estimates, data.get("seeds", ()), data.get("notes", ""))


def format_value(value, unit):
    """A statistic's value for text: points with one decimal, tiny values in e-notation."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if unit in ("points", "accuracy points"):
        return f"{value:+.1f} points" if unit == "accuracy points" else f"{value:.1f} points"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.1e}"
    if unit in ("correlation", "cosine", "CKA", "gate"):
        return f"{value:+.3f}"
    return f"{value:.3g}"


def criterion_sentence(c, estimate, verdict):
    """``statistic: value (interval, method); claim needs comparison threshold: verdict.``"""
    value = format_value(estimate.value, c.unit)
    if estimate.has_interval:
        where = (f"{value} (95% interval {format_value(estimate.low, c.unit)} to "
                 f"{format_value(estimate.high, c.unit)}, {estimate.method})")
    elif math.isfinite(estimate.value):
        where = f"{value} ({estimate.method})"
    else:
        where = f"not measured ({estimate.method})"
    need = f"{c.comparison} {format_value(c.threshold, c.unit)}"
    who = "testing the claim needs" if c.precondition else "the claim needs"
    return f"{c.statistic[0].upper()}{c.statistic[1:]}: {where}; {who} {need} " \
           f"({c.meaning}): {verdict}."
