"""The escalation policy's signal detectors and the lexicons they read.

Each detector looks at the customer's message (and, for repeats, the conversation) and
returns :class:`~supportbot.escalation.reasons.Evidence` or None. They are pure and
deterministic: regular expressions, word lists and the VADER sentiment lexicon; no
model call, so they are table-tested and cheap enough to run on every turn.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any

from supportbot.conversation import Turn
from supportbot.escalation.reasons import Evidence, Reason
from supportbot.keyword import tokenize
from supportbot.retrieve import identifiers

__all__ = [
    "acronym_words",
    "detect_account_specific",
    "detect_frustration",
    "detect_human_request",
    "detect_repeated_failure",
    "frustration_score",
    "is_vague",
    "sensitive_matcher",
    "text_similarity",
    "vague_tokens",
]


# --------------------------------------------------------------------------- helpers


def _norm(text: str) -> str:
    """Lower case, curly apostrophes straightened, whitespace collapsed."""
    return " ".join(text.lower().replace("\u2019", "'").split())


def _found(patterns: Iterable[tuple[str, re.Pattern[str]]], text: str) -> tuple[str, ...]:
    """The matched substrings of every pattern that matches ``text`` (names the rule)."""
    out: list[str] = []
    for _name, pattern in patterns:
        m = pattern.search(text)
        if m:
            out.append(m.group(0).strip())
    return tuple(dict.fromkeys(out))


# ------------------------------------------------------------------- HUMAN_REQUESTED

# Words for a person at the company. "agent" alone is ambiguous ("the agent light",
# "user agent"), so the patterns below only accept it after a verb of contact, a request
# verb, or as the whole message.
_PERSON = (
    r"(?:human(?:\s+being)?s?|person|people|agents?|agnet|agrnt|reps?|representatives?|"
    r"manager(?!\s+(?:account|role|access|permission|rights|app|invite))|supervisors?|"
    r"operators?|someone|somebody|some\s?one|somenoe|anyone|anybody|staff|employees?|"
    r"executives?|specialists?|experts?|technicians?|advis[oe]rs?|assistant(?!\s+app)|"
    r"support\s+(?:team|staff|agent|person|rep)|live\s+chat)"
)
# The company's service as a whole: asking to *talk* to it is a request for a person,
# but asking for its hours or number is a question the knowledge base answers.
_SERVICE = (
    r"(?:customer\s*(?:service|support|care|assistance|caree?)|cust(?:omer)?\s+care|"
    r"coustmer\s+\w+|call\s*cent(?:er|re)|help\s*desk|support)"
)
_FILLER = (
    r"(?:\s+(?:a|an|the|your|ur|some|one\s+of\s+your|real|live|actual|human|proper|"
    r"goddamn|damn|bloody|fucking|freaking|competent|customer(?:\s+service)?|chat))*"
)
_CONTACT_VERB = r"(?:talk|speak|chat|contact|reach|connect|get\s+in\s+touch|put\s+me\s+through)\w*"
_INFO = re.compile(
    r"\b(?:hours?|what\s+time|open|opening|closed?|numbers?|no\.|phone|e-?mail|mail|"
    r"address|website|weekends?|saturdays?|sundays?|holidays?)\b"
)
# Who may be *requested* ("I need someone", "get me a rep"); narrower than _PERSON.
_PERSON_REQ = (
    r"(?:human|person|agents?|reps?|representative|"
    r"manager(?!\s+(?:account|role|access|permission|rights|app|invite))|supervisor|"
    r"operator|somebody|someone|executive)\b(?!\s+(?:light|led|app|software|mode|string))"
)
_HUMAN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "contact verb + person",
        re.compile(
            rf"\b{_CONTACT_VERB}(?:\s+(?:me|us))?(?:\s+(?:to|with|through\s+to))?"
            rf"{_FILLER}\s+{_PERSON}\b(?!')"
        ),
    ),
    (
        "connect me",
        re.compile(
            rf"\b(?:connect|transfer|put|pass|hand|send|get|give|find|bring)\s+(?:me|us)"
            rf"(?:\s+(?:to|with|through\s+to|over\s+to))?{_FILLER}\s+{_PERSON_REQ}"
        ),
    ),
    (
        "I want a person",
        re.compile(
            r"\b(?:i|we)(?:'d|'m|\s+would|\s+really|\s+just|\s+do|\s+still)?\s+"
            r"(?:want|need|like|prefer|request|demand|am\s+requesting|rather\s+have)"
            rf"(?:\s+to\s+(?:have|get|see))?{_FILLER}\s+{_PERSON_REQ}"
            r"|^\W*(?:need|want|get|requesting)(?:\s+to\s+(?:have|get|see))?"
            rf"{_FILLER}\s+{_PERSON_REQ}"
            rf"|\b(?:can|could|may)\s+(?:i|we)\s+(?:please\s+)?(?:get|have|see){_FILLER}\s+"
            rf"{_PERSON_REQ}"
        ),
    ),
    ("real person", re.compile(r"\b(?:real|live|actual)\s+(?:human|person|people|agent)s?\b")),
    (
        "anyone available",
        re.compile(
            r"\b(?:is|are)\s+(?:there|ther)\s+(?:any|some)(?:one|body)\s+(?:available|there|"
            r"real|who\s+can\s+(?:help|assist)|to\s+(?:help|assist|talk))"
            r"|\b(?:any|some)(?:one|body)\s+(?:available|there\s*\?|real)"
        ),
    ),
    (
        "whole message names a person",
        re.compile(
            r"^\W*(?:(?:a|an|the|live|real|human|chat|support|customer\s+service)\s+)*"
            r"(?:agent|agnet|agrnt|human|humans|person|operator|representative|rep|manager|"
            r"supervisor|executive|someone|somebody)"
            r"(?:\s+(?:please|pls|plz|now|asap|right\s+now|to\s+chat|to\s+talk))*\W*$"
        ),
    ),
    (
        # "call me back", "call me at 555..."; not "call me Bob" or "call me an Uber".
        "call me",
        re.compile(
            r"\b(?:call|ring|phone)\s+me(?:\s+(?:back|at|on|asap|now|please|pls|today|"
            r"tomorrow|when|regarding|about|right\s+away)\b|\s*\d|\s*[.,!?]|\s*$)"
        ),
    ),
    (
        "I need customer support",
        re.compile(
            r"^\W*(?:i\s+|we\s+)?(?:need|want|require)\s+(?:to\s+(?:contact|reach)\s+)?"
            r"(?:customer|cust)\s*(?:service|support|care|assistance)\W*$"
        ),
    ),
    ("escalate", re.compile(r"\bescalat\w*\s+(?:this|it|my|me|the)\b")),
    (
        "not a bot",
        re.compile(
            r"\b(?:not|no|stop)\s+(?:a|the|this|talking\s+to\s+a)?\s*(?:bot|robot|machine)s?\b"
            r"(?!\s+(?:detection|protection|traffic))"
        ),
    ),
)
_SERVICE_TALK = re.compile(rf"\b{_CONTACT_VERB}(?:\s+(?:to|with))?{_FILLER}\s+{_SERVICE}\b")


def detect_human_request(question: str) -> Evidence | None:
    """Evidence that the customer asks for a person, or None.

    Explicit wording only ("talk to a person", "get me a rep", "agent", "call me"): a
    question *about* contacting support ("what number do I call", "are you open on
    Saturday") is answered from the knowledge base, and a device "agent" or the app's
    household "manager" role is not a person.

    Args:
        question: the customer's message.
    """
    text = _norm(question)
    matched = list(_found(_HUMAN_PATTERNS, text))
    # "talk to customer service" is a request; "what hours can I call customer service"
    # is a question the contact page answers.
    m = _SERVICE_TALK.search(text)
    if m and not _INFO.search(text):
        matched.append(m.group(0).strip())
    if not matched:
        return None
    return Evidence(
        Reason.HUMAN_REQUESTED,
        "The customer asked to speak with a person.",
        None,
        tuple(dict.fromkeys(matched)),
    )


# ----------------------------------------------------------------------- FRUSTRATION

# Words that are neutral in a router manual but negative in VADER's general lexicon:
# "E-120 configuration corrupted, will I lose my settings" describes a fault, not a mood.
_TECHNICAL_WORDS = (
    "error errors fail fails failed failing failure broken break breaks dead died die dies "
    "lost lose loses losing loss problem problems kill killed kills block blocked blocks "
    "blocking attack attacks threat threats crash crashed crashes drop dropped dropping drops "
    "shock fire warning warnings stuck weak cut cuts delay delayed danger dangerous risk "
    "damage damaged hacked spam mess wrong poor low limit limits limited no disconnect "
    "disconnected suspicious unknown reject rejected rejects denied deny missing unable "
    "forgot forget regret charged charge charges cancel cancelled burning smoke smoking "
    "fraud trouble worried worry hard"
).split()
# Words VADER scores positive that angry customers use sarcastically ("this bot is a joke").
_SARCASTIC_WORDS = "joke jokes joking kidding serious seriously funny great wow".split()

# Abuse, profanity and formal complaints: frustration VADER misses or underrates
# ("this bot is a joke", "im DONE with this garbage company", "file a complaint").
_INSULTS = (
    r"useless|garbage|junk|rubbish|trash|crap|crappy|shit\w*|bullshit|fuck\w*|wtf|"
    r"damn|goddamn|bloody|the\s+hell|joke|pathetic|ridiculous|unacceptable|stupid|dumb|"
    r"idiots?|incompetent|worst|terrible|horrible|awful|disgusting|scam\w*|hopeless|"
    r"sucks?|waste\s+(?:of\s+)?(?:my\s+)?(?:time|money)|waste\s+app|fed\s+up|sick\s+of|"
    r"tired\s+of|had\s+enough|i'?m\s+done|i\s+am\s+done|done\s+with|are\s+you\s+(?:serious|"
    r"kidding)|(?:bad|poor|lousy)\s+(?:customer\s+)?(?:service|support|experience|product|app)|"
    r"never\s+again|complain\w*|reclamation|(?:consumer|customer)\s+claim|"
    # ultimatums: "... or I'm filing a chargeback", "or else"
    r"or\s+(?:else|i'?m|im|i\s+will|i'?ll|we\s+will|we'?ll)\s+(?:going\s+to\s+)?"
    r"(?:\w+ing|cancel|report|sue|file|take|leave|switch|call|go)|"
    r"claim\s+against|not\s+helpful|aren'?t\s+(?:being\s+)?helpful|unhelpful"
)
_INSULT = re.compile(rf"\b(?:{_INSULTS})\b")
# Common technical and business acronyms, written in capitals without shouting. A
# product's own names ([product] names) are added by the policy.
_ACRONYMS = frozenset(
    "WIFI WPA WPA2 WPA3 VPN ISP LED LEDS DNS DHCP MTU PPPOE USB NAT WAN LAN SSID MAC QOS UPNP "
    "IOS APP API TCP UDP DSL ATT RMA FAQ PDF ETH POE NTFS FAT EXFAT GHZ MBPS GBPS DFS "
    "MESH IPV IPV4 IPV6 VLAN HDMI TV UPS PIN SIM ONT CEO USA UK EU LTE WPS OK "
    "URL HTTP HTTPS SSL TLS SSH FTP SMTP IMAP POP CPU GPU RAM SSD HDD PC OS UI CSV XML JSON "
    "HTML SQL ID IDS VAT IBAN GDPR SMS OTP SSO MFA TOTP AWS CLI SDK GUI PST EST UTC GMT".split()
)
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
_SHOUT_PUNCT = re.compile(r"!{2,}|\?{3,}|[?!]*\?![?!]*|[?!]*!\?[?!]*")
_AGAIN = re.compile(
    r"\b(?:again|(?:\d+(?:st|nd|rd|th)|third|fourth|fifth|so\s+many|how\s+many|\d+)\s+times?)\b"
)
# Bonuses subtracted from the VADER compound. An insult also fires on its own (see
# detect_frustration); capitals or "!!!" alone do not ("WHERE IS THE WPS BUTTON??").
_BONUS_INSULT = 0.6
_BONUS_SHOUT = 0.25
_BONUS_PUNCT = 0.2
_BONUS_AGAIN = 0.1


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    """VADER, loaded once, with technical vocabulary made neutral."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    for word in (*_TECHNICAL_WORDS, *_SARCASTIC_WORDS):
        analyzer.lexicon.pop(word, None)
    return analyzer


@lru_cache(maxsize=4096)
def _compound(text: str) -> float:
    return float(_analyzer().polarity_scores(text)["compound"])


def frustration_score(
    question: str, acronyms: Collection[str] = ()
) -> tuple[float, tuple[str, ...]]:
    """An adjusted sentiment in [-1, 0] (lower is angrier) and the signals behind it.

    VADER's compound score (with technical words such as "error" or "dead" neutral, and
    capped at 0 so that "please" or "thanks" never offsets an insult) is lowered by
    insults, profanity, ultimatums and formal complaints, shouting (words in capitals),
    runs of "!!" or "???" and "again"/"3rd time": customers show frustration with these
    more often than with sentiment words.

    Args:
        question: the customer's message.
        acronyms: further words (upper case) that are not shouting, e.g. the product's
            names; added to the built-in acronyms.

    Returns:
        ``(score, matched)``: the adjusted score and the signals that lowered it.
    """
    compound = min(0.0, _compound(question))
    matched: list[str] = []
    bonus = 0.0
    insults = [m.group(0) for m in _INSULT.finditer(_norm(question))]
    if insults:
        bonus += _BONUS_INSULT * min(2, len(insults))
        matched.extend(insults)
    words = _WORD.findall(question)
    shouted = [
        w
        for w in words
        if len(w) >= 3
        and w.isupper()
        and w.replace("'", "") not in _ACRONYMS
        and w.replace("'", "") not in acronyms
    ]
    if len(shouted) >= 2 or (shouted and len(words) <= 3):
        bonus += _BONUS_SHOUT
        matched.append("CAPS: " + " ".join(shouted[:5]))
    elif shouted:
        bonus += _BONUS_SHOUT / 2
        matched.append("CAPS: " + shouted[0])
    punct = _SHOUT_PUNCT.findall(question)
    if punct:
        bonus += _BONUS_PUNCT
        matched.append(punct[0])
    again = _AGAIN.search(_norm(question))
    if again:
        bonus += _BONUS_AGAIN
        matched.append(again.group(0))
    if compound < 0:
        matched.insert(0, f"sentiment {compound:+.2f}")
    return max(-1.0, compound - bonus), tuple(dict.fromkeys(matched))


def detect_frustration(
    question: str, threshold: float, acronyms: Collection[str] = ()
) -> Evidence | None:
    """Evidence of an angry or exasperated customer, or None.

    Insults, profanity, ultimatums and formal complaints are enough on their own; other
    messages need an adjusted sentiment at or below ``threshold``.

    Args:
        question: the customer's message.
        threshold: :attr:`EscalationSettings.frustration`.
        acronyms: words in capitals that are not shouting (see :func:`frustration_score`).
    """
    score, matched = frustration_score(question, acronyms)
    if score > threshold and not _INSULT.search(_norm(question)):
        return None
    return Evidence(
        Reason.FRUSTRATION,
        f"The customer sounds frustrated (adjusted sentiment {score:+.2f}).",
        score,
        matched,
    )


# ------------------------------------------------------------------- SENSITIVE_TOPIC

# Topics the knowledge base *does* cover as policy ("what is your refund policy", "how
# do I delete my account"): they need a human only when the customer demands the action
# or disputes it ("I want a refund NOW", "close my account today").
_POLICY_TOPICS = (
    "refund",
    "money back",
    "close my account",
    "delete my account",
    "cancel my account",
)
_DEMAND = re.compile(
    # "I want a refund", not "can I request a refund" (a policy question).
    r"(?<!can\s)(?<!could\s)(?<!may\s)(?<!do\s)(?<!how\s)(?<!if\s)"
    r"\b(?:i|we)(?:'d|'m|\s+am|\s+would|\s+just|\s+really|\s+still)?\s+"
    r"(?:want|need|demand|expect|deserve|request|requested|insist\s+on|like|asked\s+for|"
    r"asking\s+for|am\s+owed|was\s+promised|'m\s+owed)\s+"
    r"(?:(?:a|an|my|the|full|complete|whole|to|get|have|receive|be|all|of)\s+)*(?:\w+\s+)?"
    r"(?:refund|money|close|delete|cancel|closed|deleted|cancelled)"
    r"|\b(?:give|send|issue|process|refund|pay)\s+(?:me|us)\b"
    r"|\bmy\s+refund\b"
    r"|\b(?:still|haven'?t|have\s+not|never|didn'?t|did\s+not|not\s+yet)\b[^.?!]{0,30}"
    r"\b(?:refund|money)\b"
    r"|^\W*(?:please\s+|pls\s+|just\s+|now\s+)?(?:close|delete|cancel|refund|remove)\b"
    r"|\b(?:now|immediately|today|asap|right\s+away)\b"
)
_CONDITIONAL = re.compile(r"^\W*(?:if|when|whether|what\s+if|suppose)\b")


def _phrase_pattern(phrase: str) -> str:
    """A regex for ``phrase`` that accepts simple inflections and short insertions.

    "smoke" also matches "smoking", "shocked" also "a shock", "close my account" also
    "close my brightwave account"; words stay whole ("sue" never matches "suite").
    """
    parts = []
    for word in phrase.lower().split():
        w = word
        for suffix in ("ing", "ed", "es", "s"):
            if w.endswith(suffix) and len(w) - len(suffix) >= 4:
                w = w[: -len(suffix)]
                break
        if w.endswith("y") and len(w) > 4:
            parts.append(re.escape(w[:-1]) + r"(?:y|ies|ied|e|ed|es|ing)")
        elif w.endswith("e"):
            parts.append(re.escape(w[:-1]) + r"(?:e|es|ed|ing|er|ers)")
        else:
            parts.append(re.escape(w) + r"(?:e|s|es|ed|ing|er|ers|t)?")
    return r"\b" + r"\s+(?:[\w'-]+\s+){0,2}?".join(parts) + r"\b"


# Phrases that look sensitive but are products ("Fire TV", "Kindle Fire").
_NOT_SENSITIVE = re.compile(r"\bfire\s*(?:tv|stick|tablet|hd|os)\b|\b(?:kindle|amazon)\s+fire\b")


def sensitive_matcher(phrases: Sequence[str]) -> Callable[[str], Evidence | None]:
    """Build a detector for :data:`~supportbot.config.DEFAULT_SENSITIVE_TOPICS`-style phrases.

    Args:
        phrases: the configured phrases (case-insensitive, matched as whole words with
            simple inflections).

    Returns:
        A function ``question -> Evidence | None``.
    """
    compiled = [
        (p.lower().strip(), re.compile(_phrase_pattern(p)))
        for p in dict.fromkeys(phrases)
        if p.strip()
    ]

    def detect(question: str) -> Evidence | None:
        text = _NOT_SENSITIVE.sub(" ", _norm(question))
        hard: list[str] = []
        policy: list[str] = []
        for phrase, pattern in compiled:
            m = pattern.search(text)
            if not m:
                continue
            (policy if phrase in _POLICY_TOPICS else hard).append(m.group(0))
        demanded = bool(policy) and bool(_DEMAND.search(text)) and not _CONDITIONAL.search(text)
        matched = hard + (policy if demanded else [])
        if not matched:
            return None
        return Evidence(
            Reason.SENSITIVE_TOPIC,
            "The message touches a topic only staff may handle (legal, safety, payment "
            "dispute, refund or account closure).",
            None,
            tuple(dict.fromkeys(matched)),
        )

    return detect


# ------------------------------------------------------------------ ACCOUNT_SPECIFIC

# Records a customer has with us (not devices: "my router is not showing" is a fault).
_RECORD = (
    r"(?:order|orders|invoice|bill|billing|statement|payment|payments|charges?|"
    r"subscription|plan|renewal|rma|claim|ticket|case|refund|replacement|repair|shipment|"
    r"package|parcel|delivery|balance|deposit|withdrawal|wallet|transaction|bonus|credit|"
    r"cashback|receipt|purchase|money|amount)"
)
# Records that travel or get processed, for "where is my ...".
_TRACKABLE = (
    r"(?:order|package|parcel|delivery|shipment|refund|replacement|repair|rma|claim|money|"
    r"deposit|bonus|balance|credit|withdrawal|cashback|new\s+unit)"
)
_AMOUNT = r"(?:[$\u20ac\u00a3]\s?\d|\b\d+(?:\.\d\d)?\s?(?:usd|eur|dollars|rs|rupees)\b)"
_ACCOUNT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "why was I charged",
        re.compile(
            r"\bwhy\b[^.?!]{0,40}\b(?:charged|charge|charges|billed|debited|deducted)\b"
            r"|\b(?:what|whats|what's)\s+(?:is\s+)?(?:this|that)\s+(?:charge|payment|debit)\b"
        ),
    ),
    (
        "billing error",
        re.compile(
            r"\b(?:charged|billed)\s+(?:me\s+)?(?:twice|two\s+times|double|again|wrong)\b"
            r"|\b(?:double|over)[-\s]?(?:charged|billed)\b"
        ),
    ),
    (
        "an amount taken or paid",
        re.compile(
            r"\b(?:i|me|my|we|us)\b[^.?!]{0,40}\b(?:charged|billed|paid|deducted|debited|"
            rf"deposit(?:ed)?|took|taken|credited|added|add)\b[^.?!]{{0,30}}{_AMOUNT}"
            rf"|{_AMOUNT}[^.?!]{{0,30}}\b(?:charged|billed|deducted|debited|taken|credited|"
            r"deposited)\b"
        ),
    ),
    (
        "their record is wrong or missing",
        re.compile(
            rf"\bmy\s+(?:[\w-]+\s+){{0,2}}?{_RECORD}\s+(?:is|was|are|has|got|shows?|showing)?"
            r"\s*(?:still\s+)?(?:wrong|incorrect|missing|gone|less|not\s+(?:showing|visible|"
            r"there|credited|received|updated|reflected|arrived|shipped|processed))\b"
            rf"|\b(?:can'?t|cannot|can\s+not|unable\s+to)\s+(?:see|find)\s+my\s+{_RECORD}\b"
            rf"|\bmy\s+(?:[\w-]+\s+){{0,2}}?{_RECORD}\b[^.?!]{{0,30}}\bnot\s+(?:show|shown|"
            r"showing|credited|reflected|updated|received|visible)\b"
        ),
    ),
    (
        "not received",
        re.compile(
            r"\b(?:didn'?t|did\s+not|haven'?t|have\s+not|never|not|yet\s+to)\s+"
            r"(?:\w+\s+)?(?:receiv\w*|recieve\w*|get|got|gotten|arrived?)\s+"
            r"(?:(?:my|the|a|any)\s+)?"
            r"(?:\w+\s+){0,2}?(?:refund|order|package|parcel|bonus|money|replacement|invoice|"
            r"confirmation|tracking|credit|cashback|amount)"
            r"|\b(?:still\s+)?no\s+(?:tracking|shipping|confirmation)\s+(?:email|number|info|"
            r"link|yet)\b"
        ),
    ),
    (
        "where is my order",
        re.compile(
            rf"\bwhere(?:'s|\s+is|\s+are|\s+did)?\s+(?:\w+\s+)?my\s+(?:[\w-]+\s+){{0,2}}?"
            rf"{_TRACKABLE}\b"
            r"|\b(?:ordered|bought|purchased|paid\s+for|sent\s+(?:in|back))\b[^.?!]{0,60}"
            r"[.?!,]?\s*(?:where\s+is\s+it|where's\s+it|hasn'?t\s+(?:arrived|shipped|come)|"
            r"not\s+(?:arrived|received|shipped)|still\s+(?:no|waiting|nothing|hasn'?t)|"
            r"when\s+will\s+it)"
        ),
    ),
    (
        "status of my case",
        re.compile(
            r"\b(?:status|update|progress|tracking)\s+(?:of|on|for)\s+my\s+"
            rf"(?:[\w-]+\s+){{0,2}}?{_RECORD}\b"
        ),
    ),
    (
        "look at my account",
        re.compile(
            r"\b(?:you|someone|somebody|anyone|agent|rep|staff)\s+(?:to\s+)?(?:\w+\s+)?"
            r"(?:look\s+(?:at|into)|check|review|verify|investigate|pull\s+up|access|fix|"
            r"sort\s+out)"
            r"\s+(?:on\s+)?my\s+(?:\w+\s+)?(?:billing|bill|account|invoice|order|payment|"
            r"charges?|subscription|records?|history)\b"
            r"|^\W*(?:please\s+|pls\s+)?(?:check|look\s+(?:at|into)|review|investigate|fix)\s+"
            r"my\s+(?:\w+\s+)?(?:billing|bill|account|invoice|order|payment|charges?|"
            r"subscription)\b"
        ),
    ),
    (
        "my warranty or renewal",
        re.compile(
            r"\bis\s+my\s+(?:[\w-]+\s+){0,3}?(?:still\s+)?(?:under|in|covered\s+by|within)\s+"
            r"(?:the\s+)?warranty\b"
            r"|\bwhen\s+(?:does|will|did|do|is)\s+my\s+(?:[\w-]+\s+){0,3}?(?:renew|expire|"
            r"end|ship|arrive|be\s+(?:delivered|shipped|charged|billed)|charge|bill|run\s+out)\w*"
            r"|\b(?:which|what)\s+card\s+(?:is|was|will|did)\s+(?:it|this|that|you|my|the)\b"
        ),
    ),
    (
        "serial or order number",
        re.compile(
            r"\bserial(?:\s+(?:number|no\.?|#))?\s*(?:is|:|=|#)?\s*[a-z]{0,4}-?\d{5,}"
            r"|\b(?:order|purchase|invoice|case|ticket|rma|claim|receipt|transaction|account)"
            r"\s*(?:number|no\.?|#|id)?\s*[:#]?\s*[a-z]{0,4}-?\d{5,}"
        ),
    ),
)


def detect_account_specific(
    question: str, identifiers: Sequence[re.Pattern[str]] = ()
) -> Evidence | None:
    """Evidence that answering needs the customer's own records, or None.

    The knowledge base explains billing, warranties and orders in general; it cannot
    say why *this* card was charged $99.99, where *this* order is, or whether *this*
    serial number is under warranty. Questions about how things work ("do you charge my
    card for a replacement?", "how do I stop it renewing") are not matched.

    Args:
        question: the customer's message.
        identifiers: the product's customer-identifier patterns (``[product]
            identifier_patterns``, e.g. a serial-number format): quoting one is about the
            customer's own device, order or account.
    """
    matched = _found(_ACCOUNT_PATTERNS, _norm(question)) + tuple(
        m.group(0).strip() for p in identifiers if (m := p.search(question))
    )
    if not matched:
        return None
    return Evidence(
        Reason.ACCOUNT_SPECIFIC,
        "Answering needs the customer's own account, order or billing records.",
        None,
        matched,
    )


# ------------------------------------------------------------------ REPEATED_FAILURE

# "None of that helped", "still blue", "did all of that, anything else?": the customer
# tried the bot's answer and it did not work.
_DID_NOT_HELP = re.compile(
    r"\b(?:didn'?t|did\s+not|hasn'?t|has\s+not|haven'?t|have\s+not)\s+"
    r"(?:help|work|fix|solve|change|make\s+(?:a|any)\s+difference)\w*\b"
    r"|\b(?:that|this|it|those|these|which)\s+(?:doesn'?t|does\s+not|won'?t|don'?t)\s+"
    r"(?:help|work|fix|solve)\w*\b"
    r"|\bnone\s+of\s+(?:that|this|those|these|it|your|the)\b"
    r"|\b(?:no|not\s+any)\s+(?:luck|joy|change|difference|better)\b"
    r"|\bnot\s+(?:fixed|solved|resolved|working\s+still)\b"
    r"|\bstill\s+(?:not|no|doesn'?t|does\s+not|won'?t|can'?t|cant|cannot|isn'?t|isnt|"
    r"failing|fails|failed|broken|the\s+same|same|getting|showing|says|saying|stuck|blue|"
    r"red|amber|orange|white|off|dropping|down|happening|there|having|nothing|disconnect\w*)\b"
    r"|\bsame\s+(?:error|problem|issue|thing|message|result|code)\b"
    r"|\b(?:tried|did|done)\s+(?:all\s+)?(?:of\s+)?(?:that|this|those|everything|it\s+all)\b"
    r"[^?]*\b(?:anything\s+else|what\s+now|now\s+what|nothing|again)\b"
    r"|\b(?:as\s+i\s+said|i\s+already\s+(?:said|told|asked|did|tried)|i\s+(?:just\s+)?told\s+you)\b"
)


# Words that say "I am asking again" without changing the question.
_REASK_WORDS = frozenset(
    "again asked ask asking said say told tell already still question questions repeat "
    "answer reply help pls plz".split()
)


def _token_alike(a: str, b: str) -> bool:
    """Same word, or a typo of it; codes and numbers must match exactly (E-104 != E-108)."""
    if a == b:
        return True
    if any(ch.isdigit() for ch in a + b) or min(len(a), len(b)) < 4:
        return False
    return SequenceMatcher(None, a, b, autojunk=False).ratio() >= 0.8


# A customer re-asking types a question, not an essay: compare at most this many content
# words of each message, and only the latest answered questions. Together they bound the
# repeated-question check whatever the history holds (a hostile client may send
# thousands of long messages).
_SIMILARITY_WORDS = 48
_REPEAT_WINDOW = 12


def _content_words(text: str) -> list[str]:
    words = dict.fromkeys(t for t in tokenize(text[:2000]) if t not in _REASK_WORDS)
    return list(words)[:_SIMILARITY_WORDS]


def text_similarity(a: str, b: str) -> float:
    """How alike two questions are, 0..1: Jaccard overlap of their content words.

    Words match when equal or one typo apart ("rest"/"reset"); stop words and re-ask
    words ("again", "I asked") are left out, so "I asked how to reset the router" equals
    "how do I reset the router". Word overlap rather than character overlap, because
    support questions come in minimal pairs that are *different* questions: "what does
    solid amber mean" vs "what does blinking amber mean" share 87% of their characters
    but only 3 of 5 content words. Exact matches are counted first; the fuzzy comparison
    only looks at the words left over, of similar length, so its cost stays bounded.
    """
    ta, tb = _content_words(a), _content_words(b)
    if not ta or not tb:
        return 0.0
    exact = set(ta) & set(tb)
    free = [w for w in tb if w not in exact]
    matched = len(exact)
    for word in ta:
        if word in exact:
            continue
        hit = next(
            (w for w in free if abs(len(w) - len(word)) <= 2 and _token_alike(word, w)), None
        )
        if hit is not None:
            matched += 1
            free.remove(hit)
    return matched / (len(ta) + len(tb) - matched)


def detect_repeated_failure(
    question: str,
    history: Sequence[Turn],
    repeat_similarity: float,
    thumbs_down_limit: int,
) -> Evidence | None:
    """Evidence that the bot already failed this customer, or None.

    Three signals, each only after the bot has answered at least once: the customer
    asks (nearly) the same question again; says the answer did not help ("none of that
    helped", "still blue"); or rated enough answers down (``meta["feedback"] == "down"``).

    Args:
        question: the customer's message.
        history: earlier turns, oldest first.
        repeat_similarity: :attr:`EscalationSettings.repeat_similarity`.
        thumbs_down_limit: :attr:`EscalationSettings.thumbs_down_limit`.
    """
    downs = sum(1 for t in history if t.role == "assistant" and t.meta.get("feedback") == "down")
    if downs >= thumbs_down_limit:
        return Evidence(
            Reason.REPEATED_FAILURE,
            f"The customer rated {downs} answers as unhelpful.",
            float(downs),
            ("feedback: down",),
        )
    answered: list[str] = []  # the latest questions the bot answered, newest first
    replied = False
    for turn in reversed(history):
        if turn.role == "assistant":
            replied = True
        elif replied:
            answered.append(turn.text)
            if len(answered) >= _REPEAT_WINDOW:
                break
    if not answered:
        return None
    best, asked = max(((text_similarity(question, q), q) for q in answered), default=(0.0, ""))
    if best >= repeat_similarity:
        return Evidence(
            Reason.REPEATED_FAILURE,
            f"The customer is asking again (similarity {best:.2f} to an earlier question).",
            best,
            (asked,),
        )
    m = _DID_NOT_HELP.search(_norm(question))
    if m:
        return Evidence(
            Reason.REPEATED_FAILURE,
            "The customer says the previous answer did not solve the problem.",
            None,
            (m.group(0),),
        )
    return None


# ------------------------------------------------------------------------- CLARIFY

# Words that name no particular question, whatever the product: "help", "app not
# working". A product's own ("router", "wifi") come from [product] vague_words and names.
_GENERIC = frozenset(
    "help problem problems issue issues question questions "
    "internet app support working work works device devices network hey "
    "need something thing stuff info information yes yeah ok okay sure hmm "
    "connection setup set account broken error".split()
)


def is_vague(question: str, history: Sequence[Turn], vague_words: Collection[str] = ()) -> bool:
    """True when a first message is too vague to search for.

    One content word ("help", "warranty"), or two generic ones ("app problem"), with
    no code or model number and no earlier turn to lean on. Asking back costs the
    customer one message; a guessed answer or an agent costs more.

    Args:
        question: the customer's message.
        history: earlier turns; any history makes a short message a follow-up.
        vague_words: the product's own generic words (tokens, lower case: see
            :func:`vague_tokens`), added to the built-in ones.
    """
    if history or identifiers(question):
        return False
    words = tokenize(question)
    return len(words) <= 1 or (
        len(words) == 2 and all(w in _GENERIC or w in vague_words for w in words)
    )


def vague_tokens(words: Iterable[str]) -> frozenset[str]:
    """The tokens :func:`is_vague` compares for configured words ("Wi-Fi", "R1 Pro")."""
    return frozenset(t for w in words for t in (w.lower().strip(), *tokenize(w)) if t)


def acronym_words(words: Iterable[str]) -> frozenset[str]:
    """Configured names as :func:`frustration_score` sees capitals ("Nexa" -> "NEXA")."""
    return frozenset(w.upper().replace("'", "") for text in words for w in _WORD.findall(text))
