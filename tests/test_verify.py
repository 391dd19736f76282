"""The verifier keeps supported sentences, removes the rest, and fixes citations."""

from supportbot.embed import HashEmbedder
from supportbot.types import Chunk, Hit
from supportbot.verify import AnswerVerifier, critical_tokens, split_sentences


def _hits(*texts: str) -> list[Hit]:
    return [
        Hit(Chunk(id=f"c{i}", text=t, source="m.md", title="M"), score=0.5, rank=i)
        for i, t in enumerate(texts, start=1)
    ]


HITS = _hits(
    "Hold the reset button for 15 seconds until the light blinks amber to restore factory "
    "defaults. Settings are erased.",
    "Shield Plus costs $9.99 per month or $99.99 per year.",
)
V = AnswerVerifier(HashEmbedder(64), min_overlap=0.6, min_similarity=0.99)


def test_supported_sentence_is_kept_with_its_citation() -> None:
    out = V.verify("Hold the reset button for 15 seconds to restore factory defaults [1].", HITS)
    assert out.text == "Hold the reset button for 15 seconds to restore factory defaults [1]."
    assert out.cited == [1] and not out.removed


def test_wrong_number_is_removed_even_when_the_words_match() -> None:
    out = V.verify("Hold the reset button for 30 seconds to restore factory defaults [1].", HITS)
    assert out.text == ""
    assert "30" in out.removed[0].reason


def test_unsupported_sentence_is_removed_and_reason_recorded() -> None:
    out = V.verify("Shield Plus costs $9.99 per month [2]. Our office dog is named Rex [2].", HITS)
    assert out.text == "Shield Plus costs $9.99 per month [2]."
    assert [r.sentence for r in out.removed] == ["Our office dog is named Rex."]


def test_citation_pointing_nowhere_is_dropped_and_support_recited() -> None:
    out = V.verify("Shield Plus costs $99.99 per year [7].", HITS)
    assert out.dropped_citations == [7]
    assert out.text == "Shield Plus costs $99.99 per year [2]."


def test_miscited_sentence_is_recited_to_the_supporting_source() -> None:
    out = V.verify("Shield Plus costs $9.99 per month [1].", HITS)
    assert out.text == "Shield Plus costs $9.99 per month [2]."


def test_filler_list_numbers_repeats_and_short_claims_are_not_kept() -> None:
    out = V.verify(
        "Sure! 1. Shield Plus costs $9.99 per month. Shield Plus costs $9.99 per "
        "month. Yes, it does.",
        HITS,
    )
    assert out.text == "Shield Plus costs $9.99 per month [2]."
    assert [r.reason for r in out.removed] == ["too short to check against the sources"] * 2


def test_nothing_supported_gives_empty_text() -> None:
    out = V.verify("The moon is made of cheese.", HITS)
    assert out.text == "" and out.kept == 0 and out.supported_share == 0.0


def test_sentence_splitting_keeps_versions_prices_and_paths() -> None:
    assert split_sentences("Update to 3.4.2 now. It costs $9.99. Go to Settings > Wi-Fi.") == [
        "Update to 3.4.2 now.",
        "It costs $9.99.",
        "Go to Settings > Wi-Fi.",
    ]
    assert critical_tokens("Use BW-PSU-12-2A, not 12V, on Wi-Fi 6.") == {"bw-psu-12-2a", "12", "6"}
