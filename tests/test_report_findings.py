"""What the report shows of a finding: verdict, headline (≤ 140 characters), details, reason,
from a text finding (today's analyses) or a Finding-like object."""

from dataclasses import dataclass

import pandas as pd
import pytest

from taskspace.report.findings import (
    HEADLINE_CHARS,
    normalise_verdict,
    shorten,
    shown_finding,
    without_verdict,
)
from taskspace.study.analyses._common import AnalysisResult, not_applicable


@dataclass(frozen=True)
class Finding:  # the shape of the analyses' Finding, without importing it
    verdict: str
    headline: str
    details: str
    reason: str | None = None


def result(finding, **summary):
    return AnalysisResult("x", "X", pd.DataFrame(), None, finding, summary=summary)


def test_finding_object_is_read_by_its_attributes():
    f = Finding("agrees", "agrees — 3 InPCA axes keep 0.91 (0.90–0.92) of the stress", "long")
    shown = shown_finding(result(f))
    assert (shown.verdict, shown.headline, shown.details, shown.reason) == (
        "agrees",
        "3 InPCA axes keep 0.91 (0.90–0.92) of the stress",  # the badge says "agrees"
        "long",
        None,
    )
    na = shown_finding(
        result(
            Finding(
                "not applicable",
                "not applicable — no hierarchy",
                "",
                reason="the store has no class hierarchy",
            )
        )
    )
    assert na.verdict == "not applicable" and na.reason == "the store has no class hierarchy"
    assert na.headline == "no hierarchy"


@pytest.mark.parametrize(
    ("headline", "verdict", "shown"),
    [
        ("agrees — 3 axes keep 0.91", "agrees", "3 axes keep 0.91"),
        ("Inconclusive: ρ = 0 (no interval)", "inconclusive", "ρ = 0 (no interval)"),
        ("not  applicable – no hierarchy", "not applicable", "no hierarchy"),
        ("not applicable — no hierarchy", "not_applicable", "no hierarchy"),
        ("disagrees — end/middle 2.6", "agrees", "disagrees — end/middle 2.6"),  # not a prefix
        ("agreesome text", "agrees", "agreesome text"),  # not the whole word
        ("3 axes keep 0.91", "agrees", "3 axes keep 0.91"),
        ("agrees — 3 axes", "", "agrees — 3 axes"),  # no verdict: nothing to drop
    ],
)
def test_without_verdict_drops_the_leading_verdict_and_its_separator(headline, verdict, shown):
    assert without_verdict(headline, verdict) == shown


def test_text_finding_verdict_from_summary_headline_is_first_sentence():
    text = (
        "The first 3 InPCA axes of 312 models explain 0.91 (95% CI 0.90–0.92) of the stress. "
        "Per method: supervised 0.95. Verdict: agrees."
    )
    shown = shown_finding(result(text, verdict="inconclusive (2 of 8 runs have not plateaued)"))
    assert shown.verdict == "inconclusive"
    assert shown.headline == text.split(". ")[0] + "."
    assert shown.details == "Per method: supervised 0.95. Verdict: agrees."  # not repeated


def test_long_text_is_cut_at_a_word_and_kept_whole_in_the_details():
    text = "word " * 100
    shown = shown_finding(result(text.strip()))
    assert len(shown.headline) <= HEADLINE_CHARS and shown.headline.endswith("…")
    assert shown.headline[:-1].split() == text.split()[: len(shown.headline[:-1].split())]
    assert shown.details == text.strip() and shown.verdict == ""


def test_not_applicable_text_gives_the_reason():
    shown = shown_finding(not_applicable("tree", "The tree", "the store has no class hierarchy"))
    assert shown.verdict == "not applicable"
    assert shown.reason == "the store has no class hierarchy"
    assert shown.headline == shown.reason  # the badge says "not applicable"


def test_verdicts_and_shortening():
    assert normalise_verdict("Agrees") == "agrees"
    assert normalise_verdict("not_applicable") == "not applicable"
    assert normalise_verdict("maybe") == ""
    assert shorten("a  b\nc") == "a b c"
    assert len(shorten("x" * 300)) <= HEADLINE_CHARS
