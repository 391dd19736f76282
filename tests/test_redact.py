"""supportbot.safety.redact on Presidio: offline set-up, national ids, Presidio's share, caching,
the formats customers type (dotted cards, irregular IBANs, spelled-out e-mail addresses, short
local numbers, addresses without a house number) and personal names.

The table tests of every kind and of what is kept on purpose (E-104, part numbers,
private IPs, prices, versions, the allow list) are in tests/test_handoff.py.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from supportbot.safety import redact as redact_module
from supportbot.safety.redact import find_pii, luhn_valid, mask, redact

ROOT = Path(__file__).resolve().parent.parent


def _nir(body: str) -> str:
    return f"{body}{97 - int(body) % 97:02d}"


def _nif(number: int) -> str:
    return f"{number:08d}{'TRWAGMYFPDXBNJZSQVHLCKE'[number % 23]}"


def _luhn(number: str) -> str:
    """``number`` with its last digit replaced so that it passes the Luhn check."""
    body = number[:-1]
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my NI number is AB 12 34 56 C", "my NI number is [NATIONAL_ID]"),
        ("NINO: ab123456c thanks", "NINO: [NATIONAL_ID] thanks"),
        (f"numéro INSEE {_nir('1850578006084')}", "numéro INSEE [NATIONAL_ID]"),
        ("sécu 1 85 05 78 006 084 " + _nir("1850578006084")[-2:], "sécu [NATIONAL_ID]"),
        (f"mi DNI es {_nif(12345678)}", "mi DNI es [NATIONAL_ID]"),
        ("NIE: X1234567L", "NIE: [NATIONAL_ID]"),
        ("codice fiscale RSSMRA85T10A562S", "codice fiscale [NATIONAL_ID]"),
        ("mijn BSN is 111222333", "mijn BSN is [NATIONAL_ID]"),
        ("burgerservicenummer: 1112.22.333 ok", "burgerservicenummer: [NATIONAL_ID] ok"),
        ("Steuer-ID 86095742719", "Steuer-ID [NATIONAL_ID]"),
    ],
)
def test_national_ids_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 111222333 shipped",  # a valid BSN shape, but no "BSN": an order number
        "order #0123456789 never arrived",  # shaped like a national phone number
        "my order 012345678 is late, ticket number: 020 7946 0958",
        "BSN 111222334",  # fails the 11-proef
        f"numéro INSEE {_nir('1850578006084')[:-2]}00",  # wrong key
        "mi DNI es 12345678A",  # wrong control letter
        f"ticket {_luhn('123456789012')} is open",  # passes Luhn, 12 digits, no card word
        "plugged in via HDMI 2 and the Nexa 2 is upstairs",
        "I moved the satellite to the Place de la Gare? no, to the hallway",
    ],
)
def test_lookalikes_are_kept(text: str) -> None:
    assert find_pii(text) == [], [text[s.start : s.end] for s in find_pii(text)]


def test_payment_words_unlock_short_and_unusual_card_numbers() -> None:
    # 12-digit Maestro and 15-digit JCB "1800..." numbers are cards only next to a
    # payment word; 13-19 digits in a major network's range need none.
    maestro, jcb = _luhn("675941110000"), _luhn("180001234567891")
    assert len(maestro) == 12 and len(jcb) == 15
    assert redact(f"my maestro card {maestro}") == "my maestro card [CARD]"
    assert redact(f"charged on {jcb[:4]} {jcb[4:10]} {jcb[10:]}") == "charged on [CARD]"
    assert redact(f"ticket {maestro}") == f"ticket {maestro}"
    assert redact("ref 4111111111111111") == "ref [CARD]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # card numbers grouped with dots, as printed
        ("refund to 4111.1111.1111.1111 please", "refund to [CARD] please"),
        ("amex 3714.496353.98431", "amex [CARD]"),
        # NI numbers with dashes or dots; any two letters right after "NI number"
        ("NI no. JT-48-21-93-B", "NI no. [NATIONAL_ID]"),
        ("national insurance: ST.91.42.07.A", "national insurance: [NATIONAL_ID]"),
        ("my NI number is QQ-12-34-56-C", "my NI number is [NATIONAL_ID]"),
        # IBANs in the groups banks print, or any other
        ("IBAN GB29 NWBK 601613 31926819 thanks", "IBAN [IBAN] thanks"),
        ("FR76 30006 00001 12345678901 89", "[IBAN]"),
        ("ES91-2100-0418-4502-0005-1332", "[IBAN]"),
        ("DE18 50010517 5403241893 from my bank", "[IBAN] from my bank"),
        # e-mail addresses spelled out against robots
        ("mail priya.raman(at)gmail(dot)com ok", "mail [EMAIL] ok"),
        ("hannah [at] lindqvist [dot] se", "[EMAIL]"),
        ("write to marco dot bianchi at libero dot it", "write to [EMAIL]"),
        ("MEGAN.O.BRIEN AT GMAIL DOT COM", "[EMAIL]"),
        ("kev.obrien (at) hotmail.co.uk", "[EMAIL]"),
        # 7-digit local numbers after "call", "ring", "my number is"
        ("call 555-0132 tomorrow", "call [PHONE] tomorrow"),
        ("ring me on 496 0066", "ring me on [PHONE]"),
        ("my number is 867 5309", "my number is [PHONE]"),
        # addresses without a house number, grown to their postcode
        ("Flat B, Rosewood Court, Leeds LS6 2AB", "[ADDRESS]"),
        (
            "ship to The Old Rectory, Church Lane, Oxford OX44 7QD please",
            "ship to [ADDRESS] please",
        ),
        ("Apartment 12, The Maltings, Bray, Co. Wicklow A98 X2Y5", "[ADDRESS]"),
        # street addresses take the town when a postcode follows
        ("14 Elm Grove, Bristol BS6 5HT and my phone", "[ADDRESS] and my phone"),
        ("2210 N Halsted St Apt 3F, Chicago, IL 60614", "[ADDRESS]"),
        ("88 Queen St W, Toronto, ON M5H 2N2", "[ADDRESS]"),
        ("Lindenstraße 27, 04109 Leipzig.", "[ADDRESS]."),
        ("Prinsengracht 263-1, 1016 GV Amsterdam en ik", "[ADDRESS] en ik"),
        ("8 rue des Lilas, 69003 Lyon", "[ADDRESS]"),
        ("12 Kingfisher Close\nNorthampton\nNN4 0RT", "[ADDRESS]"),
    ],
)
def test_formats_customers_type_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "My R1 shows E-104 since 3.4.2, build 2026.0915.1234.5678",
        "the manual is available at brightwave.example and at docs dot example",
        "look at the LED, it's amber",
        "part QQ-12-34-56-C is on back order",  # NINO-shaped, no NI word
        "BE9300 mesh with 2 satellites",  # starts like an IBAN
        "call 3 times a day, version 4.1.2",
        "order number 555-0132 shipped",
        "Threat Protection and Ad Blocking",
        "Who Can Get the 30-Day Free Trial",
        "Asia Pacific: Japan, Singapore, Australia",
    ],
)
def test_new_patterns_keep_lookalikes(text: str) -> None:
    assert find_pii(text) == [], [text[s.start : s.end] for s in find_pii(text)]


def test_a_town_without_a_postcode_is_kept() -> None:
    assert redact("I live at 221B Baker Street, London") == "I live at [ADDRESS], London"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # after "my name is" and the like, whatever the name looks like
        ("Hi, my name is Siobhan O'Sullivan and", "Hi, my name is [NAME] and"),
        ("my name is lucía fernández and my DNI", "my name is [NAME] and my DNI"),
        ("cardholder name is JOHN A SMITH, card", "cardholder name is [NAME], card"),
        (
            "Account holder: Zofia Kowalczyk-Nowak, order 100241177",
            "Account holder: [NAME], order 100241177",
        ),
        ("Hola, soy Ana María de la Cruz, tengo", "Hola, soy [NAME], tengo"),
        ("From: Giulia Romano <x>", "From: [NAME] <x>"),
        # titles
        ("account name Mr D. Okafor", "account name Mr [NAME]"),
        ("tel. 06 12 34 56 78, Mme Dubois", "tel. [PHONE], Mme [NAME]"),
        # a given name from the table after "I'm", "this is", relations, greetings
        ("I'm Kwame Mensah, I bought", "I'm [NAME], I bought"),
        ("This is Pieter van der Berg, I called", "This is [NAME], I called"),
        ("my husband Jürgen set up the satellites", "my husband [NAME] set up the satellites"),
        ("please ask for Mehmet when you call", "please ask for [NAME] when you call"),
        ("Ingrid here. Guest network", "[NAME] here. Guest network"),
        ("I'm Torquato Verdone and", "I'm [NAME] and"),  # rarer name, with a surname
        # sign-offs
        ("it works now.\n\nThanks, Aoife", "it works now.\n\nThanks, [NAME]"),
        ("Cheers,\nDave", "Cheers,\n[NAME]"),
        ("Kind regards,\nTomasz Wiśniewski", "Kind regards,\n[NAME]"),
        ("Regards, S. Okoro", "Regards, [NAME]"),
        ("Danke, Katrin", "Danke, [NAME]"),
        # the message ends with a name
        ("Can you call me back?\n-- Gary", "Can you call me back?\n-- [NAME]"),
        ("sent from my phone, Tunde", "sent from my phone, [NAME]"),
        # a full name anywhere
        ("Olusegun Adeyemi, router upstairs", "[NAME], router upstairs"),
        ("refund please (Stefan Krüger)", "refund please ([NAME])"),
    ],
)
def test_personal_names_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Mark the satellite as offline?",
        "Will the R1 work with Virgin Media? Will I need modem mode?",
        "Is the Nexa available in Rose Gold?",
        "Hi team, thanks. Dear Sir or Madam,",
        "The network name: Nexa-4F2A is on the label",
        "I'm happy with it, it's great, the LED is Amber",
        "Thanks, I will try that tonight",
        "Thanks,\nPlease call me back",
        "I called Brightwave Support yesterday",
        "Shield Plus and Shield Basic",
    ],
)
def test_words_that_are_also_names_are_kept(text: str) -> None:
    assert find_pii(text) == [], [text[s.start : s.end] for s in find_pii(text)]


def test_agent_names_can_be_kept() -> None:
    # The agent's name from the account goes into `allow`: kept whole or by a part of it,
    # while a customer who shares the first name is still redacted.
    allow = ["Maria Lopez"]
    assert redact("Hi Maria, thanks for taking this", allow) == "Hi Maria, thanks for taking this"
    assert redact("Thanks, Maria Lopez", allow) == "Thanks, Maria Lopez"
    assert redact("my name is Maria Garcia", allow) == "my name is [NAME]"


def test_an_allowed_address_stays_when_its_town_and_zip_follow() -> None:
    text = "Brightwave Networks, Inc., 1200 Harbor Point Drive, Suite 400, Portland, OR 97209."
    assert find_pii(text, ["1200 Harbor Point Drive, Suite 400"]) == []
    assert redact(text) == "Brightwave Networks, Inc., [ADDRESS]."


def test_presidio_recognisers_add_what_our_patterns_miss() -> None:
    # Unicode e-mail addresses: Presidio's pattern takes them, our ASCII one does not.
    text = "mail josé.garcía@correo.es please"
    assert list(redact_module._find_email(text)) == []
    assert redact(text) == "mail [EMAIL] please"
    # Numbering-plan validation (phonenumbers) for a German number with no +49 and no
    # grouping our regexes know.
    text = "ruf mich an unter 030/9018200"
    assert list(redact_module._find_phone(text)) == []
    assert redact(text) == "ruf mich an unter [PHONE]"


def test_masked_values_are_not_detected_again() -> None:
    shown = mask("jane.doe@example.com")
    assert find_pii(f"customer email {shown}") == []


def test_value_cut_by_a_chunk_boundary_is_still_found() -> None:
    # Long texts are analysed in overlapping pieces; put a phone number on every cut.
    filler = "word " * (redact_module._CHUNK_CHARS // 5 - 3)
    text = (filler + "call +44 20 7946 0958 ") * 4
    spans = [s for s in find_pii(text) if s.kind == "PHONE"]
    assert [text[s.start : s.end] for s in spans] == ["+44 20 7946 0958"] * 4


def test_a_long_document_is_analysed_in_linear_time() -> None:
    page = (ROOT / "kb" / "docs" / "release-notes.txt").read_text(encoding="utf-8")
    find_pii("warm up")
    t0 = time.perf_counter()
    find_pii(page)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    find_pii(page * 8 + " ")
    eight = time.perf_counter() - t0
    assert eight < max(one, 0.01) * 8 * 3  # Presidio's context step alone is quadratic


def test_the_analyzer_is_built_once_for_all_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []
    real = redact_module._build_analyzer

    def counting() -> object:
        time.sleep(0.05)  # widen the race window
        built.append(real())
        return built[-1]

    monkeypatch.setattr(redact_module, "_analyzer_instance", None)
    monkeypatch.setattr(redact_module, "_build_analyzer", counting)
    got: list[object] = []
    threads = [
        threading.Thread(target=lambda: got.append(redact_module._analyzer())) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len(got) == 8 and all(a is built[0] for a in got)


NO_NETWORK = r"""
import socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args[1:] if len(args) > 1 else args)
    raise OSError("network disabled by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse
socket.create_connection = refuse
import spacy.cli
def no_download(*a, **k):
    raise AssertionError(f"spaCy download attempted: {a}")
spacy.cli.download = no_download

import supportbot, supportbot.handoff.packet
assert "presidio_analyzer" not in sys.modules and "spacy.lang.en" not in sys.modules, "not lazy"
from supportbot.safety.redact import redact
out = redact("mail jane.doe@example.co.uk or josé@correo.es, call +44 20 7946 0958, IBAN "
             "DE89 3704 0044 0532 0130 00, card 4111 1111 1111 1111, ip 81.2.69.160. "
             "Thanks, Aoife")
print(out)
print("ATTEMPTS", attempts)
"""


def test_detection_never_touches_the_network_and_imports_lazily(tmp_path: Path) -> None:
    # A fresh interpreter with sockets and spaCy's downloader disabled: Presidio, spaCy
    # and tldextract are imported, the name table read and the analyzer built under the
    # guard. The home folder is empty, so no cached model or suffix list can help.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", NO_NETWORK],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert lines[-1] == "ATTEMPTS []"
    assert lines[-2] == (
        "mail [EMAIL] or [EMAIL], call [PHONE], IBAN [IBAN], card [CARD], ip [IP]. Thanks, [NAME]"
    )
    assert not (tmp_path / ".cache" / "python-tldextract").exists()
