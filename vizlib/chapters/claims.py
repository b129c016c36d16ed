"""The papers' claims beside this run's numbers: one record, one vocabulary.

A chapter builds each :class:`Claim` from plain Python comparisons of the
numbers it prints beside it::

    share = ...; area = ...
    Claim.judge("Yu §5, Fig. 6", "high layers drop what is not the object",
                f"share on object {share:.2f}, object's area {area:.2f}", share > area)

The verdict is one of three words: *supported* (the comparison holds),
*not supported here* (it does not), *not testable here* (``holds=None``: the
data or the net cannot test it, e.g. a number that could not be measured, or
images with no background clutter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..core.net import ARCH_NAMES
from ..core.tables import Table

__all__ = ["SUPPORTED", "NOT_SUPPORTED", "NOT_TESTABLE", "VERDICTS", "Claim", "claims_table", "number",
           "training_recipe", "recipe_difference", "differing_recipes", "unless_same_recipe"]

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported here"
NOT_TESTABLE = "not testable here"
VERDICTS: tuple[str, ...] = (SUPPORTED, NOT_SUPPORTED, NOT_TESTABLE)


@dataclass(frozen=True)
class Claim:
    """A paper's claim, what this run measured for it, and the verdict.

    Attributes:
        source: where the claim is made (``"Zeiler §4.2, Fig. 7"``).
        claim: the claim, in a line.
        measured: the numbers that decide it, as printed (``"VGG 0.63 vs AlexNet 0.82"``).
        verdict: one of :data:`VERDICTS`.

    Example:
        >>> c = Claim.judge("Yu §5", "VGG-16's high layers are sparser", "VGG 0.80 vs AlexNet 0.70", 0.80 > 0.70)
        >>> c.verdict
        'supported'
        >>> Claim.judge("Zeiler §4.2", "the classifier uses the object, not its context", "no clutter here", None).verdict
        'not testable here'
    """

    source: str
    claim: str
    measured: str
    verdict: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"a verdict is one of {', '.join(map(repr, VERDICTS))}; got {self.verdict!r}")

    @classmethod
    def judge(cls, source: str, claim: str, measured: str, holds: bool | None) -> "Claim":
        """The claim with the verdict that ``holds`` gives: True, False, or None (not testable here).

        ``holds`` is the comparison of the printed numbers; a comparison with
        a NaN is False in Python, so give ``None`` where a number is missing.
        """
        if holds is None:
            return cls(source, claim, measured, NOT_TESTABLE)
        return cls(source, claim, measured, SUPPORTED if bool(holds) else NOT_SUPPORTED)

    def __str__(self) -> str:
        return f"{self.source}: {self.claim} | measured: {self.measured} | verdict: {self.verdict}"


def number(value: float | None, digits: int = 3) -> str:
    """A measured number for a claim's ``measured`` text: ``"—"`` when missing or NaN.

    Example:
        >>> number(0.81934), number(float("nan"))
        ('0.819', '—')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}g}" if abs(value) >= 1 or value == 0 else f"{value:.{digits}f}"


def claims_table(claims: Sequence[Claim], title: str = "The papers' claims against this run") -> Table:
    """The claims as a table: source, claim, measured, verdict.

    Example:
        >>> claims_table([Claim.judge("Zeiler §4", "features grow", "no snapshots", None)]).rows[0][-1]
        'not testable here'
    """
    return Table(["source", "claim", "measured", "verdict"], [[c.source, c.claim, c.measured, c.verdict] for c in claims],
                 title)


def training_recipe(record: Mapping[str, Any]) -> str:
    """A bundled training record's recipe in words: what two nets must share to be "trained the same way".

    The epochs, the batch size, learning rate and its annealing, weight decay, dropout,
    renormalisation and the first-layer penalties (not the seed, the snapshots, the classes or the
    memory format); empty without a record.

    Example:
        >>> training_recipe({"config": {"epochs": 20, "batch_size": 64, "lr": 0.01, "lr_factor": 0.1,
        ...                  "anneal_at": [12, 16], "weight_decay": 5e-4, "dropout": 0.0, "renorm": True,
        ...                  "first_layer_smooth": 0.1}})
        '20 epochs, batches of 64, lr 0.01 ×0.1 after epochs 12, 16, weight decay 0.0005, dropout 0, renormalised, c1 smoothness 0.1'
    """
    c = (record or {}).get("config") or {}
    if not c:
        return ""
    anneal = c.get("anneal_at") or []
    when = f"after epochs {', '.join(str(e) for e in anneal)}" if anneal else "on plateaus"
    parts = [f"{c.get('epochs')} epochs"]
    if c.get("batch_size"):
        parts.append(f"batches of {c['batch_size']}")
    parts += [f"lr {c.get('lr'):g} ×{c.get('lr_factor'):g} {when}",
              f"weight decay {c.get('weight_decay', 0):g}",
              f"dropout {c['dropout']:g}" if c.get("dropout") is not None else "dropout as built",
              "renormalised" if c.get("renorm", True) else "not renormalised"]
    if c.get("first_layer_decay"):
        parts.append(f"c1 decay {c['first_layer_decay']:g}")
    if c.get("first_layer_smooth"):
        parts.append(f"c1 smoothness {c['first_layer_smooth']:g}")
    return ", ".join(parts)


def recipe_difference(nets: Mapping[str, Any], archs: Sequence[str] = ("zfnet", "alexnet")) -> str:
    """Empty when the nets ``archs`` were trained the same way (or no record says how); else the two recipes.

    Zeiler's comparisons of AlexNet with ZFNet credit the difference to the design (filter size and
    stride); for the Bundled set that holds only when one recipe trained both. The records
    (:func:`training_recipe`) decide; nets without records (ImageNet, Random) are not compared.

    Example:
        >>> import vizlib as vl
        >>> recipe_difference({a: vl.load(a, "random") for a in ("zfnet", "alexnet")})
        ''
    """
    recipes = {a: training_recipe((getattr(nets[a], "extra", {}) or {}).get("record") or {})
               for a in archs if a in nets}
    return differing_recipes(recipes)


def differing_recipes(recipes: Mapping[str, str]) -> str:
    """``"trained differently: ..."`` with what differs between two or more recipes (arch -> words), or ``""``.

    Only the parts of :func:`training_recipe`'s words that the recipes do not share are named;
    empty recipes (no record) are left out, and fewer than two leave nothing to compare.

    Example:
        >>> differing_recipes({"zfnet": "10 epochs, dropout 0", "alexnet": "20 epochs, dropout 0, c1 smoothness 0.1"})
        'trained differently: ZFNet 10 epochs; AlexNet 20 epochs, c1 smoothness 0.1'
        >>> differing_recipes({"zfnet": "10 epochs", "alexnet": "10 epochs"})
        ''
    """
    recipes = {a: r for a, r in recipes.items() if r}
    if len(recipes) < 2 or len(set(recipes.values())) == 1:
        return ""
    parts = {a: r.split(", ") for a, r in recipes.items()}
    shared = set.intersection(*(set(p) for p in parts.values()))
    return "trained differently: " + "; ".join(
        f"{ARCH_NAMES.get(a, a)} {', '.join(x for x in p if x not in shared) or 'the rest'}" for a, p in parts.items())


def unless_same_recipe(text: str, v: dict[str, float] | None, differently: str) -> tuple[str, dict[str, float] | None]:
    """A comparison's printed numbers and values, made untestable (values ``None``) when ``differently`` says why.

    Example:
        >>> unless_same_recipe("a=1, b=2", {"a": 1.0, "b": 2.0}, "trained differently: ...")
        ('a=1, b=2 (trained differently: ...)', None)
    """
    if v is not None and differently:
        return f"{text} ({differently})", None
    return text, v
