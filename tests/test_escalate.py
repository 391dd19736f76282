"""The escalation policy, table by table: each reason with positive and tricky negative cases."""

from __future__ import annotations

import json

import pytest
from conftest import KB_PROFILE

from supportbot.config import EscalationSettings, load_settings
from supportbot.conversation import Turn
from supportbot.escalation import Decision, EscalationPolicy, Evidence, Reason
from supportbot.escalation.signals import (
    acronym_words,
    detect_account_specific,
    detect_frustration,
    detect_human_request,
    frustration_score,
    is_vague,
    sensitive_matcher,
    text_similarity,
)

RELEVANT = 0.9  # a top_score well above min_relevance: retrieval found the answer


@pytest.fixture
def policy() -> EscalationPolicy:
    return EscalationPolicy(EscalationSettings())


def reasons(policy: EscalationPolicy, text: str, history: list[Turn] | None = None) -> set[Reason]:
    return {e.reason for e in policy.message_signals(text, history or [])}


def answered(question: str, answer: str = "Here is how.", **meta: object) -> list[Turn]:
    return [Turn("user", question), Turn("assistant", answer, meta=dict(meta))]


# --------------------------------------------------------------------- HUMAN_REQUESTED


@pytest.mark.parametrize(
    "text",
    [
        "agent",
        "Agent please",
        "HUMAN",
        "can i talk to a real person pls",
        "real human please",
        "i want to speak to a manager",
        "speak to a representative",
        "get me a rep",
        "thanks but id rather go through this with someone on the phone, can you get me a rep?",
        "i need somebody to look at my billing",
        "connect me to a supervisor",
        "Connect to agent",
        "I want to chat with a live agent",
        "is there anyone available to assist",
        "please call me back",
        "call me at 555 0100",
        "I need to talk to customer service",
        "I need customer support",
        "this bot is a joke. get me a HUMAN right now",
        "want help chatting with a fucking agent",
    ],
)
def test_human_request_positive(text: str) -> None:
    ev = detect_human_request(text)
    assert ev is not None and ev.reason is Reason.HUMAN_REQUESTED and ev.matched


@pytest.mark.parametrize(
    "text",
    [
        "what does the agent light mean",
        "the agent in the app keeps crashing",
        "which user agent does the web admin need",
        "how do i add my wife as a manager in the app",
        "what number do i call you on and r u open saturdays",
        "what hours can i call customer service",
        "does the router support wpa3",
        "call me bob from now on",
        "can you call me an uber",
        "how do i transfer the router to someone else",
        "my phone cannot connect to anyone's hotspot",
        "does the nexa work with google assistant",
        "the app says E-104",
    ],
)
def test_human_request_negative(text: str) -> None:
    assert detect_human_request(text) is None


# ------------------------------------------------------------------------ FRUSTRATION


@pytest.mark.parametrize(
    "text",
    [
        "are you serious??? the app logged me out AGAIN. what a useless piece of junk",
        "THIS IS THE 3RD TIME THE INTERNET HAS DIED TODAY!!! worst router ive ever owned",
        "close my brightwave account today. im DONE with this garbage company",
        "this bot is a joke. get me a HUMAN right now",
        "i want a full refund for this router NOW or im filing a chargeback with my bank!!",
        "You are useless",
        "pathetic service",
        "I want to file a complaint against your company",
        "What the hell",
    ],
)
def test_frustration_positive(text: str) -> None:
    ev = detect_frustration(text, EscalationSettings().frustration)
    assert ev is not None and ev.reason is Reason.FRUSTRATION
    assert ev.score is not None and ev.score <= EscalationSettings().frustration


@pytest.mark.parametrize(
    "text",
    [
        "the app says E-104",
        "app says E-120 configuration corrupted. am i going to lose my wifi name and everything?",
        "can you ship the new unit before i send the dead one back? do you charge my card for that",
        "5ghz wifi cut out for like a minute and theres an E-116 alert, is something broken?",
        "router light went solid red and its still red after i unplugged it for a bit. now what",
        "wheres the wifi password for a brand new nexa?? its not on the paper in the box",
        "WHERE IS THE WPS BUTTON ON THE R1",
        "my WPA3 VPN and DNS settings",
        "thanks!!",
        "how do i file a warranty claim",
    ],
)
def test_frustration_negative(text: str) -> None:
    assert detect_frustration(text, EscalationSettings().frustration) is None


def test_frustration_score_explains_itself() -> None:
    score, matched = frustration_score("THIS IS USELESS!!!")
    assert score <= -0.5
    assert "useless" in matched and "!!!" in matched and any(m.startswith("CAPS") for m in matched)


def test_positive_words_do_not_offset_an_insult() -> None:
    assert frustration_score("thanks so much, great help, but this app is garbage")[0] <= -0.5


# -------------------------------------------------------------------- SENSITIVE_TOPIC


@pytest.mark.parametrize(
    "text",
    [
        "this is fraud and my lawyer will be contacting you",
        "my s1 satellite is smoking and smells like burning plastic, what do i do",
        "got a shock when i touched the router's power adapter earlier. is that normal?",
        "i want a full refund for this router",
        "give me my money back",
        "im filing a chargeback with my bank",
        "close my brightwave account today",
        "i want to delete my account",
        "i will sue you",
        "still no refund after three weeks",
        "my account was hacked",
    ],
)
def test_sensitive_positive(text: str) -> None:
    ev = sensitive_matcher(EscalationSettings().sensitive_topics)(text)
    assert ev is not None and ev.reason is Reason.SENSITIVE_TOPIC and ev.matched


@pytest.mark.parametrize(
    "text",
    [
        "how do refunds work for annual plans",
        "what is your refund policy",
        "if i pay for a whole year of shield and regret it after a week, can i get my money back?",
        "can i request a refund if i bought shield on the app store",
        "how do i delete my account",
        "my fire tv stick keeps dropping off the wifi",
        "is there a suite of parental controls",
        "the firmware update failed",
        "i'd like to know the refund policy",
    ],
)
def test_sensitive_negative(text: str) -> None:
    assert sensitive_matcher(EscalationSettings().sensitive_topics)(text) is None


def test_sensitive_topics_come_from_settings() -> None:
    detect = sensitive_matcher(["warranty void"])
    assert detect("is my warranty void now") is not None
    assert detect("my lawyer will call") is None


# ------------------------------------------------------------------- ACCOUNT_SPECIFIC


@pytest.mark.parametrize(
    "text",
    [
        "why did you guys charge my card $99.99 on the 4th? i never signed up for anything",
        "i got charged twice for shield this month",
        "is my router still under warranty? serial is BWN20473318",
        "ordered an s1 last tuesday, where is it? still no tracking email",
        "when does my shield plus renew and which card is it going on",
        "where is my order",
        "what's the status of my RMA",
        "my refund is still not showing",
        "why was i charged",
        "how can I cancel purchase 113542617735902?",
    ],
)
def test_account_specific_positive(text: str) -> None:
    ev = detect_account_specific(text)
    assert ev is not None and ev.reason is Reason.ACCOUNT_SPECIFIC and ev.matched


@pytest.mark.parametrize(
    "text",
    [
        "can you ship the new unit before i send the dead one back? do you charge my card for that",
        "ok will i get a warning before the card gets charged?",
        "bought shield on my old iphone but i switched to a samsung. how do i stop it renewing",
        "need my shield receipts to show my business name and tax id for expenses",
        "giving my old nexa to my sister, what do i have to do first",
        "where is my router's wps button",
        "my router is not showing in the app",
        "what cards do u take for shield? can i use paypal or amex",
        "how long is the warranty on the r1 pro",
        "what changed in firmware 3.4.0?",
    ],
)
def test_account_specific_negative(text: str) -> None:
    assert detect_account_specific(text) is None


# ------------------------------------------------------------------- REPEATED_FAILURE


@pytest.mark.parametrize(
    ("text", "history"),
    [
        # asked again after an answer
        ("how do i reset the router??", answered("how do i reset the router")),
        ("reset router how", answered("how to reset router")),
        # says the answer did not help
        ("none of that helped, the app still cant see my router", answered("app says E-113")),
        ("did all of that, anything else?", answered("satellite light is blue")),
        ("still failing with the pppoe login error", answered("router says E-102")),
        ("that didn't work", answered("my wifi is slow")),
    ],
)
def test_repeated_failure_positive(
    policy: EscalationPolicy, text: str, history: list[Turn]
) -> None:
    assert Reason.REPEATED_FAILURE in reasons(policy, text, history)


@pytest.mark.parametrize(
    ("text", "history"),
    [
        # the same question but never answered: nothing failed yet
        ("how do i reset the router", [Turn("user", "how do i reset the router")]),
        # a new, different question after an answer
        ("tried that and now the app says E-108", answered("how do i add another satellite")),
        ("and the satellites?", answered("how long is the warranty on the r1 pro")),
        ("how do i set up port forwarding for xbox", answered("how do i reset the router")),
        # no history at all
        ("still no internet after the storm", []),
        # one thumbs-down is below the default limit of 2
        ("what about 6ghz?", answered("does the r1 have wifi 7", feedback="down")),
    ],
)
def test_repeated_failure_negative(
    policy: EscalationPolicy, text: str, history: list[Turn]
) -> None:
    assert Reason.REPEATED_FAILURE not in reasons(policy, text, history)


def test_thumbs_down_limit(policy: EscalationPolicy) -> None:
    history = [
        *answered("does the r1 have wifi 7", feedback="down"),
        *answered("which bands does it have", feedback="down"),
    ]
    ev = [e for e in policy.message_signals("what about 6ghz?", history)]
    assert [e.reason for e in ev] == [Reason.REPEATED_FAILURE]
    assert ev[0].score == 2.0 and ev[0].matched == ("feedback: down",)
    strict = EscalationPolicy(EscalationSettings(thumbs_down_limit=3))
    assert not strict.message_signals("what about 6ghz?", history)


def test_text_similarity() -> None:
    assert text_similarity("how do I reset the router", "How do i reset the router?") > 0.95
    assert text_similarity("reset router how", "how to reset router") == 1.0
    assert text_similarity("what is E-104", "how do i set up parental controls") < 0.5


# ---------------------------------------------------------- answer signals via decide()


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"top_score": None}, {Reason.NO_RELEVANT_CONTEXT}),
        ({"top_score": 0.1}, {Reason.NO_RELEVANT_CONTEXT}),
        ({"top_score": RELEVANT}, set()),
        (
            {"top_score": RELEVANT, "reply_mode": "none", "confidence": 0.0},
            {Reason.UNSUPPORTED_ANSWER, Reason.LOW_CONFIDENCE},
        ),
        # A verbatim quote is grounded: only LOW_CONFIDENCE can send it to a human.
        ({"top_score": RELEVANT, "reply_mode": "extract", "confidence": 0.2}, set()),
        (
            {"top_score": RELEVANT, "reply_mode": "extract", "confidence": 0.1},
            {Reason.LOW_CONFIDENCE},
        ),
        ({"top_score": RELEVANT, "reply_mode": "extract", "confidence": 0.45}, set()),
        (
            {"top_score": RELEVANT, "reply_mode": "generated", "confidence": 0.1},
            {Reason.LOW_CONFIDENCE},
        ),
        (
            {
                "top_score": RELEVANT,
                "reply_mode": "generated",
                "confidence": 0.8,
                "supported_share": 0.3,
            },
            {Reason.UNSUPPORTED_ANSWER},
        ),
        ({"top_score": RELEVANT, "reply_mode": "generated", "confidence": 0.8}, set()),
        ({"top_score": RELEVANT, "reply_mode": "faq", "confidence": 0.95}, set()),
    ],
)
def test_answer_signals(kwargs: dict[str, object], expected: set[Reason]) -> None:
    # Thresholds pinned here so the table stays true when the defaults are re-tuned.
    policy = EscalationPolicy(EscalationSettings(min_relevance=0.25, min_confidence=0.15))
    d = policy.decide("how do i change the wifi password", [], **kwargs)  # type: ignore[arg-type]
    assert set(d.reasons) == expected
    assert d.action == ("escalate" if expected else "answer")


def test_min_relevance_comes_from_settings() -> None:
    loose = EscalationPolicy(EscalationSettings(min_relevance=0.05))
    assert loose.decide("how do i change the wifi password", [], top_score=0.1).action == "answer"


# -------------------------------------------------------------------- decide(): actions


@pytest.mark.parametrize(
    ("text", "history", "top_score", "action", "expected"),
    [
        ("what does E-104 mean", [], RELEVANT, "answer", ()),
        ("what does the agent light mean", [], RELEVANT, "answer", ()),
        ("how do refunds work for annual plans", [], RELEVANT, "answer", ()),
        ("the app says E-104", [], RELEVANT, "answer", ()),
        ("agent", [], RELEVANT, "escalate", (Reason.HUMAN_REQUESTED,)),
        (
            "any good pizza places near your portland office lol",
            [],
            0.05,
            "escalate",
            (Reason.NO_RELEVANT_CONTEXT,),
        ),
        (
            "this is fraud and my lawyer will be contacting you. i want to speak to a manager",
            [],
            RELEVANT,
            "escalate",
            (Reason.HUMAN_REQUESTED, Reason.SENSITIVE_TOPIC),
        ),
        # vague first messages are asked back, even when retrieval found little
        ("help", [], 0.05, "clarify", ()),
        ("router", [], RELEVANT, "clarify", ()),
        ("hi", [], None, "clarify", ()),
        ("app problem", [], 0.3, "clarify", ()),
        # ... but not with an identifier, enough words, or a conversation to lean on
        ("E-104", [], RELEVANT, "answer", ()),
        ("parental controls", [], RELEVANT, "answer", ()),
        (
            "and the satellites?",
            answered("how long is the warranty on the r1 pro"),
            RELEVANT,
            "answer",
            (),
        ),
        # a vague message that asks for a person still escalates
        ("human", [], 0.05, "escalate", (Reason.NO_RELEVANT_CONTEXT, Reason.HUMAN_REQUESTED)),
    ],
)
def test_decide(
    policy: EscalationPolicy,
    text: str,
    history: list[Turn],
    top_score: float | None,
    action: str,
    expected: tuple[Reason, ...],
) -> None:
    d = policy.decide(text, history, top_score=top_score)
    assert d.action == action
    assert d.reasons == expected
    assert d.escalate == (action == "escalate")
    assert {e.reason for e in d.evidence} == set(expected)
    assert 0.0 <= d.confidence <= 1.0


@pytest.mark.parametrize(
    ("text", "history", "vague"),
    [
        ("help", [], True),
        ("router", [], True),
        ("", [], True),
        ("thanks", [], True),
        ("app not working", [], True),
        ("wifi not working", [], False),  # a product's own vague words are data: see below
        ("E-104", [], False),
        ("BW-R1P", [], False),
        ("reset parental controls", [], False),
        ("help", [Turn("user", "hi"), Turn("assistant", "Hello!")], False),
    ],
)
def test_is_vague(text: str, history: list[Turn], vague: bool) -> None:
    assert is_vague(text, history) is vague


@pytest.fixture
def sample_policy() -> EscalationPolicy:
    """The policy with the sample knowledge base's product profile (kb/supportbot.toml)."""
    profile = load_settings(KB_PROFILE)
    return EscalationPolicy(profile.escalation, profile.product)


@pytest.mark.parametrize(
    ("text", "action", "expected"),
    [
        # its vague words and names, alone or with a generic word, are asked back
        ("wifi problem", "clarify", ()),
        ("wifi not working", "clarify", ()),
        ("nexa help", "clarify", ()),
        ("brightwave support", "clarify", ()),
        # a bare serial in its format is about the customer's own device
        ("my BWN20473318 is dead", "escalate", (Reason.ACCOUNT_SPECIFIC,)),
        # its names in capitals are not shouting
        ("NEXA R1 PRO keeps rebooting, how do I fix it", "answer", ()),
    ],
)
def test_the_product_profile_is_data(
    sample_policy: EscalationPolicy,
    policy: EscalationPolicy,
    text: str,
    action: str,
    expected: tuple[Reason, ...],
) -> None:
    d = sample_policy.decide(text, [], top_score=RELEVANT)
    assert (d.action, d.reasons) == (action, expected)
    # none of it is in the code: without the profile, each is a plain question
    assert policy.decide(text, [], top_score=RELEVANT).action == "answer"


def test_caps_of_a_product_name_are_shouting_only_without_its_profile() -> None:
    assert frustration_score("NEXA WONT CONNECT")[1] == ("CAPS: NEXA WONT CONNECT",)
    names = acronym_words(load_settings(KB_PROFILE).product.terms())
    assert frustration_score("NEXA WONT CONNECT", names)[1] == ("CAPS: WONT CONNECT",)


def test_reasons_are_ordered_and_unique(policy: EscalationPolicy) -> None:
    d = policy.decide(
        "THIS IS USELESS!!! i want a refund NOW, get me a manager", [], top_score=None
    )
    assert d.reasons == tuple(r for r in Reason if r in set(d.reasons))
    assert len(d.reasons) == len(set(d.reasons))
    assert {
        Reason.NO_RELEVANT_CONTEXT,
        Reason.HUMAN_REQUESTED,
        Reason.FRUSTRATION,
        Reason.SENSITIVE_TOPIC,
    } <= set(d.reasons)


def test_more_evidence_means_more_confidence(policy: EscalationPolicy) -> None:
    one = policy.decide("can i talk to a person", [], top_score=RELEVANT)
    two = policy.decide("this is useless, can i talk to a person", [], top_score=RELEVANT)
    assert two.confidence > one.confidence >= 0.9
    near = policy.decide("how do i change the wifi password", [], top_score=0.3)
    far = policy.decide("how do i change the wifi password", [], top_score=0.95)
    assert far.confidence > near.confidence >= 0.5


# ------------------------------------------------------------ suppress, disabled, data


def test_suppress_ignores_reasons(policy: EscalationPolicy) -> None:
    text = "can i talk to a real person pls"
    assert policy.decide(text, [], top_score=RELEVANT).escalate
    handed_back = policy.decide(
        text, [], top_score=RELEVANT, suppress=frozenset({Reason.HUMAN_REQUESTED})
    )
    assert handed_back.action == "answer" and not handed_back.reasons
    partial = policy.decide(
        "agent, this is useless",
        [],
        top_score=0.01,
        suppress=frozenset({Reason.HUMAN_REQUESTED}),
    )
    assert Reason.HUMAN_REQUESTED not in partial.reasons
    assert {Reason.FRUSTRATION, Reason.NO_RELEVANT_CONTEXT} <= set(partial.reasons)


def test_disabled_always_answers() -> None:
    off = EscalationPolicy(EscalationSettings(enabled=False))
    d = off.decide("agent!!! this is fraud", [], top_score=None, reply_mode="none")
    assert d == Decision("answer", (), (), 1.0)


def test_deterministic(policy: EscalationPolicy) -> None:
    args = ("i want a full refund NOW or im filing a chargeback!!", [])
    assert policy.decide(*args, top_score=0.2) == policy.decide(*args, top_score=0.2)


def test_to_dict_is_json_ready(policy: EscalationPolicy) -> None:
    d = policy.decide("this is fraud, get me a human", [], top_score=0.1)
    data = json.loads(json.dumps(d.to_dict()))
    assert data["action"] == "escalate" and data["escalate"] is True
    assert data["reasons"] == [r.value for r in d.reasons]
    assert "NO_RELEVANT_CONTEXT" in data["reasons"] and "HUMAN_REQUESTED" in data["reasons"]
    first = data["evidence"][0]
    assert set(first) == {"reason", "detail", "score", "matched"}
    assert isinstance(first["matched"], list) and isinstance(first["detail"], str)
    assert 0 <= data["confidence"] <= 1
    assert Decision("answer").to_dict() == {
        "action": "answer",
        "escalate": False,
        "reasons": [],
        "evidence": [],
        "confidence": 1.0,
    }


def test_reason_codes_are_stable() -> None:
    assert [r.value for r in Reason] == [r.name for r in Reason]
    assert Reason("HUMAN_REQUESTED") is Reason.HUMAN_REQUESTED
    assert Reason.SENSITIVE_TOPIC == "SENSITIVE_TOPIC"


def test_evidence_is_frozen() -> None:
    ev = Evidence(Reason.FRUSTRATION, "angry", -0.7, ("useless",))
    with pytest.raises(AttributeError):
        ev.score = 0.0  # type: ignore[misc]


def test_kb_eval_message_signals_match_labels(policy: EscalationPolicy) -> None:
    """Every kb/eval escalation whose labels are message signals is caught, and no
    answerable question fires one (retrieval-based reasons are measured by the bench)."""
    from pathlib import Path

    from evaluate.questions import load_questions

    root = Path(__file__).resolve().parent.parent
    message_reasons = {
        Reason.HUMAN_REQUESTED,
        Reason.FRUSTRATION,
        Reason.SENSITIVE_TOPIC,
        Reason.ACCOUNT_SPECIFIC,
        Reason.REPEATED_FAILURE,
    }
    for q in load_questions(root / "kb" / "eval" / "questions.jsonl"):
        history = [Turn(t.role, t.content) for t in q.history]
        got = reasons(policy, q.question, history)
        want = {Reason(r) for r in q.reasons} & message_reasons
        if q.decision == "answer":
            assert not got, (q.id, q.question, got)
        else:
            assert want <= got, (q.id, q.question, want - got)
