"""What the report shows of an analysis' finding: a verdict badge, a headline and the details.

An analysis' headline starts with its verdict (``"agrees — 3 InPCA axes keep 0.91 ..."``), so
that it reads whole where it stands alone (the CLI). The report and the notebook show the verdict
as a badge beside it: :func:`without_verdict` drops the verdict from the headline there, in one
place, so that it is not read twice.

An analysis' ``finding`` is either a ``Finding``-like object (attributes ``verdict``,
``headline``, ``details`` and an optional ``reason``) or, from analyses that describe their
result as one text, a string. :func:`shown_finding` reads both into one :class:`ShownFinding`,
so that the report does not depend on which of the two an analysis returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The verdicts a finding can state, in the order of the legend of the report.
VERDICTS = ("agrees", "inconclusive", "disagrees", "not applicable")
#: Longest headline the report shows in full; a longer one is cut at a word and ends in "…".
HEADLINE_CHARS = 140


@dataclass(frozen=True)
class ShownFinding:
    """A finding as the report shows it.

    Attributes
    ----------
    verdict : str
        One of :data:`VERDICTS`, or ``""`` when the analysis states none.
    headline : str
        At most :data:`HEADLINE_CHARS` characters, without the verdict it may start with (the
        badge shows it).
    details : str
        The whole text (may be empty).
    reason : str or None
        Why the verdict is what it is (why "not applicable", say).
    """

    verdict: str
    headline: str
    details: str
    reason: str | None = None


def normalise_verdict(text) -> str:
    """The verdict of :data:`VERDICTS` that ``text`` starts with (case and spaces ignored), or
    ``""``: ``"inconclusive (2 of 8 runs ...)"`` → ``"inconclusive"``."""
    text = " ".join(str(text or "").lower().replace("_", " ").split())
    return next((v for v in VERDICTS if text.startswith(v)), "")


def shorten(text: str, limit: int = HEADLINE_CHARS) -> str:
    """``text`` on one line, cut at the last word boundary before ``limit`` characters ("…")."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…"


def without_verdict(headline: str, verdict: str) -> str:
    """``headline`` less the ``verdict`` it starts with (case ignored) and the dash, colon or
    comma after it: ``"agrees — 3 axes keep 0.91"`` → ``"3 axes keep 0.91"``. A headline that
    does not start with the verdict as a whole word is returned as it is."""
    words = str(verdict or "").replace("_", " ").split()
    if not words:
        return headline
    # the verdict's words, any spaces between them, then a separator ("—", "–", "-", ":", ",")
    pattern = r"\s*" + r"\s+".join(map(re.escape, words)) + r"\b\s*[—–:,-]?\s*"
    found = re.match(pattern, headline, flags=re.IGNORECASE)
    return headline[found.end() :] if found else headline


def _first_sentence(text: str) -> str:
    # A sentence ends at ". " (decimals such as "0.91" have no space after the point).
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def shown_finding(result) -> ShownFinding:
    """The verdict, headline, details and reason of ``result.finding`` (an `AnalysisResult`).

    A ``Finding``-like object is read through its attributes; a string finding gets its verdict
    from ``result.summary["verdict"]`` (or "not applicable" with the text after ``"not
    applicable: "`` as the reason when ``result.applicable`` is false), its first sentence as
    the headline, and the rest of the text (all of it when the headline was cut) as the details.
    Either headline loses the verdict it starts with (:func:`without_verdict`).
    """
    finding = result.finding
    if not isinstance(finding, str):
        stated = str(getattr(finding, "verdict", "") or "")
        verdict = normalise_verdict(stated)
        headline = without_verdict(str(getattr(finding, "headline", "") or ""), stated)
        details = str(getattr(finding, "details", "") or "")
        reason = getattr(finding, "reason", None)
        return ShownFinding(verdict, shorten(headline), details, reason)
    text = " ".join(finding.split())
    if not getattr(result, "applicable", True) or text.startswith("not applicable"):
        reason = text.split(":", 1)[1].strip() if ":" in text else None
        # the badge says "not applicable": the headline is the reason alone
        return ShownFinding("not applicable", shorten(reason or text), "", reason)
    summary = getattr(result, "summary", None) or {}
    verdict = normalise_verdict(summary.get("verdict", ""))
    first = _first_sentence(text)
    headline = shorten(first)
    # the details repeat nothing the headline shows whole
    details = text[len(first) :].strip() if headline == first else text
    return ShownFinding(verdict, without_verdict(headline, verdict), details, None)


__all__ = [
    "HEADLINE_CHARS",
    "VERDICTS",
    "ShownFinding",
    "normalise_verdict",
    "shorten",
    "shown_finding",
    "without_verdict",
]
