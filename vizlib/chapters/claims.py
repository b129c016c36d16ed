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
from typing import Sequence

from ..core.tables import Table

__all__ = ["SUPPORTED", "NOT_SUPPORTED", "NOT_TESTABLE", "VERDICTS", "Claim", "claims_table", "number"]

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
