"""Recall of PII redaction on Faker-generated personal data in support-chat messages.

    python bench/pii_recall.py [--per-type 500] [--seed 20261122] [--json out.json]

Values come from the ``Faker`` library with a fixed seed, in seven locales (en_US, en_GB,
de_DE, fr_FR, es_ES, it_IT, nl_NL): e-mail addresses, phone numbers, card numbers,
IBANs, public IP addresses, street addresses and personal names in every locale, and
each locale's national id (US SSN, UK NINO, French NIR, Spanish DNI/NIE, Italian codice
fiscale, Dutch BSN). Each value is put into a support-chat message template written for its type
("I was charged twice on my card {x}", "my public IP is {x} if that helps", "{x}").

* **recall**: a value counts as caught only if every character of it is covered by a
  detection of ``supportbot.safety.redact.find_pii`` (of any kind: it is redacted either way);
  ``as kind`` also requires the expected kind.
* **false positives**: share of knowledge-base sentences (kb/docs, the company's public
  contacts allowed, as an operator lists them in ``handoff.redact_allow``) in which
  anything is detected.
* **throughput**: messages per second through ``find_pii`` in one thread, once the
  analyzer is built (results are not cached between messages).

Two Faker quirks are worked around, both documented where they happen: ``en_GB``'s
``ssn()`` returns HMRC's reserved "ZZ ... T" placeholder, which is not a valid NINO (real
ones end in A-D), so NINOs are drawn from Faker's random generator in the real format;
and ``ipv6()`` can fall in private/link-local ranges that are kept on purpose, so those
are redrawn. Exits 1 when a pattern type's recall is under ``--min-recall`` (0.99).
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import json
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL")

# type -> the PiiKind find_pii should report for it
EXPECTED_KIND = {
    "EMAIL": "EMAIL",
    "PHONE": "PHONE",
    "CARD": "CARD",
    "IBAN": "IBAN",
    "IP": "IP",
    "US_SSN": "SSN",
    "UK_NINO": "NATIONAL_ID",
    "FR_NIR": "NATIONAL_ID",
    "ES_DNI_NIE": "NATIONAL_ID",
    "IT_CODICE_FISCALE": "NATIONAL_ID",
    "NL_BSN": "NATIONAL_ID",
    "ADDRESS": "ADDRESS",
    "NAME": "NAME",
}
# Types with a fixed format (and a checksum for most): the >= 0.99 recall target.
# Street addresses and personal names are free text found by heuristics (names: a name
# table and the words around them), reported but not gated.
PATTERN_TYPES = tuple(t for t in EXPECTED_KIND if t not in ("ADDRESS", "NAME"))

TEMPLATES: dict[str, tuple[str, ...]] = {
    "EMAIL": (
        "Hi, my account email is {x}, can you check why the app won't log me in?",
        "please send the RMA label to {x}",
        "{x}",
        "I changed my email to {x} last week and now I get no alerts",
        "Contact: {x} (preferred)",
        "you can email me at {x}.",
    ),
    "PHONE": (
        "Can someone call me back on {x}? The router keeps dropping.",
        "my number is {x}",
        "phone: {x}",
        "Best to reach me at {x} after 6pm",
        "{x} - that's my mobile",
        "I tried calling you from {x} but got cut off",
    ),
    "CARD": (
        "I was charged twice on my card {x}",
        "The payment with {x} failed, can you retry?",
        "Visa {x} exp 08/27, please refund to that one",
        "card number: {x}",
        "can you charge the extender to {x} instead?",
        "refund to {x} please, it's the card I ordered with",
    ),
    "IBAN": (
        "Please refund to my IBAN {x}",
        "bank details: {x}",
        "{x} is my account for the direct debit",
        "I changed bank, new IBAN is {x}.",
        "wire the refund to {x} thanks",
    ),
    "IP": (
        "my public IP is {x} if that helps",
        "the app says it can't reach {x}",
        "traceroute stops at {x}",
        "WAN address {x}, DNS fails",
        "{x} is what whatismyip shows",
    ),
    "US_SSN": (
        "My SSN is {x}, the credit check for the financing asks for it",
        "social security number: {x}",
        "SSN {x}",
        "for the financing form, ssn {x}",
    ),
    "UK_NINO": (
        "my national insurance number is {x}",
        "NI number: {x}",
        "NINO {x} for the contract",
        "{x} is my NI number",
        "{x}",
    ),
    "FR_NIR": (
        "mon numéro de sécurité sociale : {x}",
        "my French social security number is {x}",
        "numéro INSEE {x}",
        "{x}",
    ),
    "ES_DNI_NIE": (
        "mi DNI es {x}",
        "NIE: {x}",
        "my Spanish ID number is {x}",
        "{x} is my NIF for the invoice",
        "{x}",
    ),
    "IT_CODICE_FISCALE": (
        "il mio codice fiscale è {x}",
        "codice fiscale: {x}",
        "my tax code is {x}",
        "CF {x} per la fattura",
        "{x}",
    ),
    "NL_BSN": (
        "mijn BSN is {x}",
        "burgerservicenummer: {x}",
        "BSN {x}",
        "my BSN is {x}, needed for the contract",
    ),
    "ADDRESS": (
        "Please ship the replacement to {x}",
        "I live at {x}, the router is upstairs",
        "new address: {x}",
        "send the technician to {x} tomorrow",
        "{x}",
    ),
    # Faker's names, in the places support messages put them. The name table supportbot
    # uses is another source (nomquamgender), so this measures it on names it was not
    # built from; the hand-written set (bench/pii_handwritten.py) has the harder cases.
    "NAME": (
        "Hi, my name is {x} and the router keeps rebooting",
        "This is {x}, I called yesterday about the satellite",
        "Thanks for your help!\n\nKind regards,\n{x}",
        "I'm {x} and the app won't let me log in",
        "account holder: {x}",
        "please ask for {x} when you call back",
    ),
}


@dataclass(frozen=True)
class Case:
    """One generated message and where its PII value sits in it."""

    type: str
    locale: str
    value: str
    text: str
    start: int
    end: int


# -- values ------------------------------------------------------------------------------

_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
_NINO_BAD_PREFIXES = {"BG", "GB", "NK", "KN", "NT", "TN", "ZZ"}
_KEPT_NETS = tuple(
    ipaddress.ip_network(n) for n in ("fc00::/7", "fe80::/10", "ff00::/8", "::/8", "2001:db8::/32")
)


def _group(digits: str, sizes: list[int], sep: str) -> str:
    out, i = [], 0
    for size in sizes:
        out.append(digits[i : i + size])
        i += size
    return sep.join(part for part in out if part)


def _card(fake, rng: random.Random) -> str:  # type: ignore[no-untyped-def]
    number = fake.credit_card_number()
    style = rng.random()
    if style < 0.4:
        return number
    sep = " " if style < 0.8 else "-"
    if len(number) == 15:
        return _group(number, [4, 6, 5], sep)
    return _group(number, [4] * 5, sep)


def _iban(fake, rng: random.Random) -> str:  # type: ignore[no-untyped-def]
    iban = fake.iban()
    if rng.random() < 0.5:
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban.lower() if rng.random() < 0.1 else iban


def _ip(fake, rng: random.Random) -> str:  # type: ignore[no-untyped-def]
    if rng.random() < 0.7:
        return str(fake.ipv4_public())
    while True:
        value = str(fake.ipv6())
        if not any(ipaddress.ip_address(value) in net for net in _KEPT_NETS):
            return value


def _nino(fake, rng: random.Random) -> str:  # type: ignore[no-untyped-def]
    # Faker's en_GB ssn() gives "ZZ 12 34 56 T": HMRC's reserved prefix and a suffix no
    # real NINO has. Real format, in the same three spacings Faker uses.
    while True:
        prefix = fake.random_element(_NINO_FIRST) + fake.random_element(_NINO_SECOND)
        if prefix not in _NINO_BAD_PREFIXES:
            break
    digits = fake.numerify("######")
    suffix = fake.random_element("ABCD")
    return rng.choice(
        [
            f"{prefix}{digits}{suffix}",
            f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}",
            f"{prefix} {digits} {suffix}",
        ]
    )


def _nir(fake, rng: random.Random) -> str:  # type: ignore[no-untyped-def]
    nir = str(fake.ssn())
    return _group(nir, [1, 2, 2, 2, 3, 3, 2], " ") if rng.random() < 0.4 else nir


def _dni(fake, rng: random.Random) -> str:  # type: ignore[no-untyped-def]
    return str(fake.nif() if rng.random() < 0.6 else fake.nie())


def _ssn(fake, rng: random.Random) -> str:  # type: ignore[no-untyped-def]
    ssn = str(fake.ssn())
    return ssn.replace("-", " ") if rng.random() < 0.2 else ssn


Gen = Callable[..., str]
# type -> (locales, generator(fake, rng))
GENERATORS: dict[str, tuple[tuple[str, ...], Gen]] = {
    "EMAIL": (LOCALES, lambda f, r: f.email() if r.random() < 0.5 else f.free_email()),
    "PHONE": (LOCALES, lambda f, r: f.phone_number()),
    "CARD": (LOCALES, _card),
    "IBAN": (LOCALES, _iban),
    "IP": (LOCALES, _ip),
    "US_SSN": (("en_US",), _ssn),
    "UK_NINO": (("en_GB",), _nino),
    "FR_NIR": (("fr_FR",), _nir),
    "ES_DNI_NIE": (("es_ES",), _dni),
    "IT_CODICE_FISCALE": (("it_IT",), lambda f, r: f.ssn()),
    "NL_BSN": (("nl_NL",), lambda f, r: f.ssn()),
    "ADDRESS": (LOCALES, lambda f, r: f.street_address().strip()),
    "NAME": (LOCALES, lambda f, r: f"{f.first_name()} {f.last_name()}"),
}


def generate(per_type: int = 500, seed: int = 20261122) -> list[Case]:
    """``per_type`` messages for every type, the same for the same seed."""
    from faker import Faker

    fakers = {}
    for i, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed + i)
        fakers[locale] = fake
    rng = random.Random(seed)
    cases: list[Case] = []
    # Faker's es_ES nif()/nie() draw from the global `random` module, not the seeded
    # instance: seed it too (and put its state back afterwards).
    saved = random.getstate()
    random.seed(seed)
    try:
        for kind, (locales, gen) in GENERATORS.items():
            for n in range(per_type):
                locale = locales[n % len(locales)]
                value = gen(fakers[locale], rng)
                template = rng.choice(TEMPLATES[kind])
                start = template.index("{x}")
                text = template.replace("{x}", value)
                cases.append(Case(kind, locale, value, text, start, start + len(value)))
    finally:
        random.setstate(saved)
    return cases


# -- measuring ---------------------------------------------------------------------------


def caught(case: Case, spans: list, kind: str | None = None) -> bool:  # type: ignore[type-arg]
    """Whether every character of the value is inside a detection (of ``kind``)."""
    covered = bytearray(case.end - case.start)
    for s in spans:
        if kind is not None and s.kind != kind:
            continue
        lo, hi = max(s.start, case.start), min(s.end, case.end)
        for i in range(lo, hi):
            covered[i - case.start] = 1
    return all(covered)


Detector = Callable[[str], list]  # type: ignore[type-arg]


def measure_recall(
    cases: list[Case], detect: Detector | None = None
) -> dict[str, dict[str, object]]:
    """Per type: values, recall, recall as the expected kind, and a few misses.

    ``detect`` defaults to :func:`supportbot.safety.redact.find_pii`.
    """
    from supportbot.safety.redact import find_pii

    detect = detect or find_pii
    rows: dict[str, dict[str, object]] = {}
    for case in cases:
        row = rows.setdefault(case.type, {"n": 0, "caught": 0, "as_kind": 0, "missed": []})
        spans = detect(case.text)
        row["n"] += 1  # type: ignore[operator]
        if caught(case, spans):
            row["caught"] += 1  # type: ignore[operator]
        else:
            row["missed"].append(case.text)  # type: ignore[attr-defined]
        row["as_kind"] += caught(case, spans, EXPECTED_KIND[case.type])  # type: ignore[operator]
    for row in rows.values():
        row["recall"] = row["caught"] / row["n"]  # type: ignore[operator]
        row["recall_as_kind"] = row["as_kind"] / row["n"]  # type: ignore[operator]
    return rows


def unlabelled(cases: list[Case]) -> list[Case]:
    """The same values with no word saying what they are ("here you go: {x} thanks")."""
    prefix = "here you go: "
    return [
        Case(
            c.type,
            c.locale,
            c.value,
            f"{prefix}{c.value} thanks",
            len(prefix),
            len(prefix) + len(c.value),
        )
        for c in cases
    ]


@functools.cache
def _partial_analyzer(ours: bool):  # type: ignore[no-untyped-def]
    """An analyzer with only our recognisers, or only those Presidio ships."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    from supportbot.safety import redact

    full = redact._analyzer()
    subset = [r for r in full.registry.recognizers if r.name.startswith("Supportbot") == ours]
    registry = RecognizerRegistry(recognizers=subset, supported_languages=["en"])
    return AnalyzerEngine(registry=registry, nlp_engine=full.nlp_engine, supported_languages=["en"])


def _by_recognizer(text: str, ours: bool) -> list:  # type: ignore[type-arg]
    from supportbot.safety import redact

    results = _partial_analyzer(ours).analyze(
        text=text, language="en", score_threshold=redact._MIN_SCORE
    )
    return [
        redact.PiiSpan(redact._ENTITY_KIND[r.entity_type], r.start, r.end)
        for r in results
        if r.entity_type in redact._ENTITY_KIND
    ]


def presidio_only(text: str) -> list:  # type: ignore[type-arg]
    """Detections of the recognisers Presidio ships, alone (ablation, before filters)."""
    return _by_recognizer(text, ours=False)


def ours_only(text: str) -> list:  # type: ignore[type-arg]
    """Detections of supportbot's own recognisers alone (ablation, before filters)."""
    return _by_recognizer(text, ours=True)


def kb_sentences() -> list[str]:
    """Sentences of the knowledge base (kb/docs text files; HTML tags stripped)."""
    out: list[str] = []
    for path in sorted((ROOT / "kb" / "docs").iterdir()):
        if path.suffix not in (".md", ".txt", ".yaml", ".html"):
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".html":
            text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
            text = re.sub(r"<[^>]+>", "\n", text)
        for line in text.splitlines():
            for sentence in re.split(r"(?<=[.!?])\s+", line.strip()):
                if len(sentence.split()) >= 3:
                    out.append(sentence)
    return out


# The sample knowledge base's own published contacts: an operator lists them in
# ``handoff.redact_allow`` so that they stay (tests/test_handoff.py keeps the same list).
KB_PUBLIC_CONTACTS = (
    "1-800-555-0142",
    "support@brightwave.example",
    "1200 Harbor Point Drive, Suite 400",
)


def measure_false_positives(sentences: list[str]) -> dict[str, object]:
    """Share of knowledge-base sentences in which anything is detected."""
    from supportbot.config import HandoffSettings
    from supportbot.safety.redact import find_pii

    allow = [*KB_PUBLIC_CONTACTS, *HandoffSettings().redact_allow]
    flagged = []
    for s in sentences:
        spans = find_pii(s, allow)
        if spans:
            flagged.append([(p.kind, s[p.start : p.end]) for p in spans])
    return {
        "sentences": len(sentences),
        "flagged": len(flagged),
        "rate": len(flagged) / max(len(sentences), 1),
        "examples": flagged[:20],
    }


def measure_throughput(texts: list[str]) -> float:
    """Messages per second through find_pii, uncached, analyzer already built."""
    from supportbot.safety import redact

    redact.find_pii("warm-up: jane@example.com")
    redact._find_cached.cache_clear()
    t0 = time.perf_counter()
    for text in texts:
        redact.find_pii(text)
    elapsed = time.perf_counter() - t0
    redact._find_cached.cache_clear()
    return len(texts) / elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-type", type=int, default=500)
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--min-recall", type=float, default=0.99)
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--show-misses", type=int, default=3)
    args = ap.parse_args()

    from supportbot.safety import redact

    t0 = time.perf_counter()
    redact.find_pii("x")
    build_s = time.perf_counter() - t0
    cases = generate(args.per_type, args.seed)
    throughput = measure_throughput([c.text for c in cases])
    rows = measure_recall(cases)
    fp = measure_false_positives(kb_sentences())

    bare = measure_recall(unlabelled(cases))
    presidio = measure_recall(cases, presidio_only)
    ours = measure_recall(cases, ours_only)
    print(
        f"{'type':<18} {'locales':<20} {'n':>5} {'recall':>7} {'as kind':>8} "
        f"{'no label':>9} {'Presidio only':>14} {'ours only':>10}"
    )
    for kind, row in rows.items():
        locales = GENERATORS[kind][0]
        where = "all 7" if len(locales) == len(LOCALES) else ",".join(locales)
        print(
            f"{kind:<18} {where:<20} {row['n']:>5} {row['recall']:>7.3f} "
            f"{row['recall_as_kind']:>8.3f} {bare[kind]['recall']:>9.3f} "
            f"{presidio[kind]['recall']:>14.3f} {ours[kind]['recall']:>10.3f}"
        )
    print(
        f"\nknowledge-base sentences with a detection: {fp['flagged']}/{fp['sentences']} "
        f"({fp['rate']:.2%})"
    )
    print(
        f"throughput: {throughput:.0f} messages/s (one thread); analyzer built in {build_s:.1f} s"
    )
    for kind, row in rows.items():
        for text in row["missed"][: args.show_misses]:  # type: ignore[index]
            print(f"  missed {kind}: {text!r}")
    for example in fp["examples"][: args.show_misses * 3]:  # type: ignore[index]
        print(f"  kb detection: {example}")

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "per_type": args.per_type,
                    "seed": args.seed,
                    "recall": {
                        k: {kk: v for kk, v in r.items() if kk != "missed"}
                        | {"missed": r["missed"][:20]}  # type: ignore[index]
                        for k, r in rows.items()
                    },
                    "recall_no_label": {k: r["recall"] for k, r in bare.items()},
                    "recall_presidio_only": {k: r["recall"] for k, r in presidio.items()},
                    "recall_ours_only": {k: r["recall"] for k, r in ours.items()},
                    "kb_false_positives": fp,
                    "messages_per_s": throughput,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    low = [k for k in PATTERN_TYPES if rows[k]["recall"] < args.min_recall]  # type: ignore[operator]
    if low:
        print(f"recall under {args.min_recall}: {', '.join(low)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
