"""Find and replace personal data (PII) in customer text before it leaves the bot.

Hand-off packets, webhook bodies and log lines carry redacted text only; the raw
transcript stays in the local conversation store.

Detection runs on Microsoft Presidio's analyzer (``presidio-analyzer``), with pattern
recognisers only: Presidio's own (email, phone via ``phonenumbers``, credit card with
Luhn, IBAN with its mod-97 checksum, IP, US SSN, UK NINO, Spanish NIF/NIE, Italian
codice fiscale) and ours, registered as Presidio recognisers, where Presidio lacks a type
or misses formats customers type (street addresses, national phone formats, 2-series
Mastercard and 15-digit JCB card numbers, French NIR, Dutch BSN). Presidio's NLP step
gets a *blank* spaCy English pipeline built in memory (a tokenizer, no model), so nothing
is ever downloaded, and the e-mail recogniser's domain check uses ``tldextract``'s bundled
public-suffix snapshot, never fetching the live list. Nothing here touches the network.

===========  ===============================================================  ============
kind         what is detected                                                 validated
===========  ===============================================================  ============
EMAIL        ``name@domain.tld``                                              pattern, PSL
PHONE        international (``+44 20 7946 0958``, ``0044 ...``, ``+49 (0)     digit count,
             30 901820``), North American (``(415) 555-0132``,                phonenumbers
             ``1-800-555-0142``), national numbers with a trunk 0 (``020
             7946 0958``, ``01 23 45 67 89``, ``(0161) 496 0066``), and bare
             digit runs right after "phone", "call me", "mobile"...
CARD         12-19 digits, optionally grouped by spaces or dashes             Luhn + IIN
IBAN         ``DE89 3704 0044 0532 0130 00`` (grouped or compact, any case)   mod 97
SSN          ``078-05-1120`` / ``078 05 1120``, or 9 bare digits after "SSN"  area rules
NATIONAL_ID  UK NINO, French NIR (INSEE), Spanish NIF/NIE, Italian codice     checksums
             fiscale, Dutch BSN (after "BSN"/"burgerservicenummer")
IP           IPv4 and IPv6 addresses that can point at a customer (below)     ipaddress
ADDRESS      house number + street name + suffix (``221B Baker Street``,      stop words
             ``12 oak st``, ``350 5th Ave, Apt 4``), European forms
             (``Hauptstraße 12``, ``12, rue de la Paix``, ``Via Roma 5``,
             ``Calle Mayor 3``, ``Kerkstraat 4``) and ``PO Box 123``
===========  ===============================================================  ============

Kept on purpose: error codes (``E-104``), part numbers (``BW-PSU-12-2A``), serial numbers
(``BWN20473318``: a device identifier the agent needs; the hand-off masks it separately),
prices, versions (``3.4.2``), dates, times and digit runs that fail the Luhn check.
Presidio's weaker signals (a bare 9-digit number as an SSN, a 12-digit number as a
card, ...) count only with a context word nearby ("SSN", "card", "BSN").

IP addresses in private and special ranges (``10/8``, ``172.16/12``, ``192.168/16``,
loopback, link-local, multicast/reserved such as the netmask ``255.255.255.0``) are kept:
they are the same in millions of homes (the router's ``192.168.50.1``), say nothing about
who the customer is, and the agent needs them to troubleshoot. Carrier-grade NAT
addresses (``100.64/10``) are kept for the same reason: one is shared by many
subscribers, and seeing one tells the agent the customer is behind CGNAT. Every other
address, including the documentation ranges (``203.0.113.0/24``), is treated as a
public address and redacted.

The company's own public contact details look like PII to the patterns (the support line
``1-800-555-0142`` is a phone number): pass them in ``allow`` to keep them.

The analyzer is built once per process, on first use (importing Presidio takes a few
seconds), behind a lock; ``import supportbot`` does not import it. Recall per kind on
Faker-generated values in seven locales is measured by ``python bench/pii_recall.py``
(figures in docs/measured.md).

Example:
    >>> redact("Call me on +44 20 7946 0958 or mail jane@example.com")
    'Call me on [PHONE] or mail [EMAIL]'
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import threading
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

__all__ = ["PII_KINDS", "PiiKind", "PiiSpan", "find_pii", "luhn_valid", "mask", "redact"]

PiiKind = Literal["EMAIL", "PHONE", "CARD", "IBAN", "SSN", "NATIONAL_ID", "IP", "ADDRESS"]

PII_KINDS: tuple[PiiKind, ...] = (
    "EMAIL",
    "IBAN",
    "NATIONAL_ID",
    "CARD",
    "SSN",
    "IP",
    "PHONE",
    "ADDRESS",
)
"""Every kind, in the order overlaps are settled (an earlier kind wins)."""


class PiiSpan(NamedTuple):
    """One piece of personal data: its kind and ``text[start:end]``."""

    kind: PiiKind
    start: int
    end: int


# -- patterns --------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)

# A number must not continue a word, a code (E-104, BW-PSU-12-2A) or a decimal/version.
_NUM_START = r"(?<![\w+\-.,/$€£])"
_NUM_END = r"(?![\w\-/]|[.,:]\d)"
_NUM_BEFORE = frozenset("+-.,/$€£")
_SEP = r"[ .\-]"
_EXT = r"(?:\s*(?i:x|ext\.?|extension)\s*\d{1,5})?"
_EXT_SPLIT = re.compile(r"\s*(?:x|ext\.?|extension)\s*(?=\d)", re.IGNORECASE)

_PHONE_PATTERNS: list[tuple[re.Pattern[str], int, int]] = [
    # (pattern, fewest digits, most digits)
    # +CC or 00CC, an optional "(0)" trunk, then 1-6 groups: +44 (0)20 7946 0958,
    # +49(0)6812415868, +33 1 83 41 77 76, 0049 30 901820.
    (
        re.compile(
            rf"{_NUM_START}(?:\+|00)\s?[1-9]\d{{0,2}}(?:\s?\(0\))?"
            rf"(?:{_SEP}?\(\d{{1,5}}\)|{_SEP}?\d{{1,8}})"
            rf"(?:{_SEP}?\d{{2,8}}){{0,5}}{_EXT}{_NUM_END}"
        ),
        8,
        17,
    ),
    # North American: (415) 555-0132, (591)341-7776, 415.555.0132, 1-800-555-0142.
    (
        re.compile(
            rf"{_NUM_START}(?:1{_SEP}?)?(?:\(\d{{3}}\)\s?|\d{{3}}{_SEP})\d{{3}}{_SEP}\d{{4}}"
            rf"{_EXT}{_NUM_END}"
        ),
        10,
        11,
    ),
    # ... and written without separators (valid area code and exchange only).
    (re.compile(rf"{_NUM_START}1?[2-9]\d{{2}}[2-9]\d{{6}}{_EXT}{_NUM_END}"), 10, 11),
    # National numbers with a trunk 0: 020 7946 0958, 07700 900123, 030 1234567.
    (
        re.compile(rf"{_NUM_START}0\d{{2,4}}[ \-]?\d{{3,4}}[ \-]?\d{{3,4}}{_EXT}{_NUM_END}"),
        10,
        11,
    ),
    # ... with the area code in parentheses: (0161) 496 0066, (03449) 78690, (0406)-812415.
    (
        re.compile(rf"(?<![\w(])\(0\d{{1,5}}\)[ \-]?\d{{2,8}}(?:[ \-]\d{{2,5}})?{_EXT}{_NUM_END}"),
        7,
        12,
    ),
    # French style pairs: 01 23 45 67 89.
    (re.compile(rf"{_NUM_START}0[1-9](?:{_SEP}?\d{{2}}){{4}}{_EXT}{_NUM_END}"), 10, 10),
]
# Words after which a bare run of digits is a phone number ("call me on 3420837783").
_PHONE_CONTEXT = re.compile(
    r"\b(?:phone|telephone|tel|mobile|cell|cellphone|landline|whatsapp|sms|text me"
    r"|call me|ring me|reach me|call back|callback|contact number|fax|handy|telefono"
    r"|t[eé]l[eé]phone|portable|m[oó]vil|cellulare|telefoon|mobiel)\b[^\d\n]{0,24}$",
    re.IGNORECASE,
)
_PHONE_BARE = re.compile(rf"{_NUM_START}\(?\+?\d[\d ().\-]{{6,18}}\d{_NUM_END}")

_CARD = re.compile(rf"{_NUM_START}\d(?:[ \-]?\d){{11,18}}{_NUM_END}")
# Words after which a 12-digit number, or one with an unusual IIN, is a card number.
_CARD_CONTEXT = re.compile(
    r"\b(?:card|cards|visa|master ?card|maestro|amex|american express|discover|jcb|diners"
    r"|debit|credit|cc|payment|paid|pay|charged?|billed|refund(?:ed)?|tarjeta|carte"
    r"|karte|carta|kaart)\b[^\n]{0,40}$",
    re.IGNORECASE,
)

_IBAN = re.compile(
    r"(?<![\w-])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)(?![\w-])",
    re.IGNORECASE,
)

_SSN = re.compile(rf"{_NUM_START}(?!000|666)\d{{3}}([ \-])(?!00)\d{{2}}\1(?!0000)\d{{4}}{_NUM_END}")
_SSN_BARE = re.compile(
    r"\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?)\b\D{0,20}?"
    r"(?<!\d)((?!000|666)\d{3}(?!00)\d{2}(?!0000)\d{4})(?!\d)",
    re.IGNORECASE,
)

# UK National Insurance number: two prefix letters (HMRC's rules), six digits, A-D.
_NINO = (
    r"\b(?!BG|GB|NK|KN|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
)
# French NIR (numéro de sécurité sociale): sex, year, month, department, commune,
# order, then a 2-digit key = 97 - (number mod 97); often written in groups.
_NIR = (
    r"(?<![\w+\-.,/])[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3}"
    r" ?\d{2}(?![\w\-/]|[.,:]\d)"
)
# Dutch BSN: 9 digits passing the "11-proef"; any 9-digit number could be one, so only
# right after the word.
_BSN = re.compile(
    r"\b(?:bsn|burgerservicenummer|sofi-?nummer|citizen service number)\b"
    r"[^\d\n]{0,20}(?<!\d)(\d{4}[ .]?\d{2}[ .]?\d{3})(?!\d)",
    re.IGNORECASE,
)

_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?![\w]|\.\d)"
)
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_NON_PERSONAL_NETS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private (RFC 1918)
        "100.64.0.0/10",  # carrier-grade NAT: shared by many subscribers of an ISP
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local
        "172.16.0.0/12",  # private (RFC 1918)
        "192.168.0.0/16",  # private (RFC 1918): home LANs, the Nexa default 192.168.50.x
        "224.0.0.0/3",  # multicast, reserved, broadcast and netmasks like 255.255.255.0
        "::/128",
        "::1/128",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "ff00::/8",  # multicast
    )
)

_STREET_SUFFIXES = (
    "Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Way|Place|Pl|"
    "Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Close|Crescent|"
    "Cres|Loop|Plaza|Alley|Grove|Gardens|Row|Walk|Mews|"
    # more USPS street suffixes, as in real (and Faker's) US addresses
    "Alley|Branch|Bridge|Brook|Burg|Bypass|Camp|Canyon|Cape|Causeway|Center|Centre|"
    "Common|Corner|Corners|Course|Cove|Creek|Crest|Crossing|Crossroad|Curve|Dale|Dam|"
    "Divide|Estate|Estates|Expressway|Extension|Falls|Ferry|Field|Fields|Flat|Flats|"
    "Ford|Forest|Forge|Fork|Forks|Fort|Freeway|Garden|Gateway|Glen|Glens|Green|Greens|"
    "Harbor|Harbour|Haven|Heights|Hill|Hills|Hollow|Inlet|Island|Islands|Isle|Junction|"
    "Key|Keys|Knoll|Knolls|Lake|Lakes|Landing|Light|Lights|Lock|Locks|Lodge|Manor|"
    "Manors|Meadow|Meadows|Mill|Mills|Mission|Motorway|Mount|Mountain|Neck|Orchard|"
    "Oval|Overpass|Park|Parks|Pass|Passage|Path|Pike|Pine|Pines|Plain|Plains|Point|"
    "Points|Port|Ports|Prairie|Radial|Ramp|Ranch|Rapid|Rapids|Rest|Ridge|Ridges|River|"
    "Route|Shoal|Shoals|Shore|Shores|Skyway|Spring|Springs|Spur|Spurs|Squares|Station|"
    "Stravenue|Stream|Streets|Summit|Throughway|Trace|Track|Trafficway|Tunnel|Turnpike|"
    "Underpass|Union|Unions|Valley|Valleys|Via|Viaduct|View|Views|Village|Villages|"
    "Ville|Vista|Wall|Wells|Ways|Run|Bend|Bluff|Bluffs|Bottom|Cliff|Cliffs|Club|Mall|"
    "Pointe|Shoal|Loaf"
)
# Suffixes that are also everyday words ("1 hard drive", "one easy way") need a
# capitalised street name; these do not.
_STRONG_SUFFIXES = frozenset(
    "street st avenue ave road rd boulevard blvd lane ln terrace parkway pkwy highway hwy".split()
)
_DIRECTION = r"(?:[NSEW]|N[EW]|S[EW]|North|South|East|West)\.?"
_UNIT = (
    r"(?:\.?,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|#)\.?\s*#?\s*"
    r"[A-Za-z0-9\-]{1,6}\b)?"
)
_ADDRESS = re.compile(
    rf"{_NUM_START}(?P<number>\d{{1,6}}(?:-\d{{1,6}})?[A-Za-z]?)\s+"
    rf"(?:{_DIRECTION}\s+)?"
    r"(?P<name>(?:(?:[A-Za-z][A-Za-z'.\-]*|\d{1,3}(?:st|nd|rd|th))\s+){1,4})"
    rf"(?P<suffix>(?:{_STREET_SUFFIXES})s?)\b"
    # A trailing "." is taken only when more of the address follows ("St. NW").
    rf"(?:\.?\s+{_DIRECTION}(?![\w']))?" + _UNIT,
    re.IGNORECASE,
)
# Continental forms: the street word is a suffix (Hauptstraße 12, Kerkstraat 4,
# Dörschnerallee 254) or a prefix (rue de la Paix, Via Roma, Calle Mayor, Piazza Duomo),
# and the house number follows the name or, in French, comes first ("12, rue ...").
# Names are capitalised words with a lower-case letter ("Roma", not "USB": "via USB 3"
# is not an address).
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ][\w'’\-]*"
_CONNECTOR = (
    r"(?:de|del|de la|de las|de los|des|du|d'|di|della|delle|dei|degli|la|le|les|l'"
    r"|van|van de|van der|der|den|am|an|im|zum|zur|y)"
)
_STREET_PREFIX = (
    r"(?:Rue|Avenue|Boulevard|Bd|Chemin|Place|Impasse|Allée|Quai|Route|Cours|Calle|C\."
    r"|Avenida|Avda\.|Plaza|Paseo|Camino|Ronda|Carrer|Travesía|Glorieta|Acceso|Callejón"
    r"|Cañada|Alameda|Rambla|Pasaje|Pasadizo|Cuesta|Vial|Urbanización|Via|Viale|Piazza"
    r"|Piazzale|Corso|Vicolo|Largo|Borgo|Contrada|Strada|Rotonda|Incrocio|Stretto|Canale"
    r"|Lungomare|Salita)"
)
_FRENCH_PREFIX = r"(?i:rue|avenue|boulevard|bd|chemin|place|impasse|allée|quai|route|cours)"
_STREET_SUFFIX_WORD = (
    r"(?i:straße|strasse|str\.|weg|platz|allee|gasse|ring|damm|ufer|chaussee|pfad"
    r"|straat|laan|plein|gracht|kade|singel|dijk|pad|steeg|dreef|hof|baan|boulevard)"
)
_HOUSE_NO = r"\d{1,5}(?:\s?[a-zA-Z](?![\w]))?(?:\s?[/\-]\s?\d{1,4}[a-zA-Z]?)?"
_UNIT_EU = (
    r"(?:,?\s+(?i:Appartamento|Piano|Interno|Scala|Apt\.?|Piso|Puerta|Escalera|Bus"
    r"|Etage|Wohnung)\s*\d{1,4}[A-Za-z]?)?"
)
_NAMES = rf"(?:{_CONNECTOR}\s+|d'|l')?(?:{_NAME_WORD}\s+(?:{_CONNECTOR}\s+)?){{0,3}}{_NAME_WORD}"
_ADDRESS_EU = re.compile(
    # suffix form: David-Bachmann-Straße 4, Dörschnerallee 254, Youssefpad 5, Am Ring 3
    rf"(?<![\w\-])(?:{_NAME_WORD}[ \-]){{0,3}}(?=[A-ZÀ-ÖØ-Þ])[\w\-]*?{_STREET_SUFFIX_WORD}"
    rf"\s+{_HOUSE_NO}(?![\w]|[.,]\d){_UNIT_EU}"
    # prefix form, number after: Calle de Alicia Pastor 983, Via Roma, 5
    rf"|(?<![\w\-]){_STREET_PREFIX}\s+{_NAMES},?\s+{_HOUSE_NO}(?![\w]|[.,]\d){_UNIT_EU}"
    # prefix form, number first: 12, rue de la Paix / 16 chemin Hélène Lenoir
    rf"|{_NUM_START}\d{{1,5}}(?:\s?(?:bis|ter))?,?\s+{_FRENCH_PREFIX}\s+{_NAMES}"
    # French street without a number: rue de Pons, chemin Hélène Lenoir
    rf"|(?<![\w\-])(?i:rue|chemin|impasse|allée|boulevard|avenue)\s+{_NAMES}"
)
# British: the flat before the street, on its own line or not ("Flat 3, 12 Baker St"
# is found by _ADDRESS; "Studio 22G\nJames Trail" has no house number).
_ADDRESS_UNIT_FIRST = re.compile(
    r"\b(?:Flat|Studio|Apartment|Apt\.?|Unit|Suite)\s+\d{1,4}[A-Za-z]?,?\s+"
    rf"(?:{_NAME_WORD}\s+){{1,3}}(?i:{_STREET_SUFFIXES})s?\b"
)
_PO_BOX = re.compile(r"\bP\.?\s?O\.?\s+Box\s+\d{1,8}\b", re.IGNORECASE)
_STOP_WORDS = frozenset(
    "a an and are at by down for from has have i in into is it its my of off on or our "
    "out over per than that the their then there this to up was were with your about "
    "across along around near past through".split()
)


# -- validators ------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """Whether a digit string passes the Luhn checksum used by payment card numbers.

    Example:
        >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
        (True, False)
    """
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_valid(compact: str) -> bool:
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _nir_valid(text: str) -> bool:
    compact = re.sub(r"\s", "", text).upper()
    if len(compact) != 15:
        return False
    # Corsica: 2A and 2B are counted as 19 and 18 for the key.
    body = compact[:13].replace("2A", "19").replace("2B", "18")
    if not body.isdigit() or not compact[13:].isdigit():
        return False
    return 97 - int(body) % 97 == int(compact[13:])


def _bsn_valid(text: str) -> bool:
    digits = _digits(text)[-9:]
    if len(digits) != 9 or digits == "000000000":
        return False
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return sum(w * int(d) for w, d in zip(weights, digits, strict=True)) % 11 == 0


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _ip_personal(text: str) -> bool:
    # Presidio also reports "/24" prefixes and "%eth0" zones: judge the address itself.
    address = text.split("/")[0].split("%")[0]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not any(ip.version == net.version and ip in net for net in _NON_PERSONAL_NETS)


def _card_plausible(text: str, start: int, end: int) -> bool:
    """Whether a Luhn-valid digit run is a card number.

    It is without help when it has 13-19 digits from a major network's range, and with a
    payment word just before it otherwise (12-digit Maestro, 15-digit JCB ``1800...``).
    """
    digits = _digits(text[start:end])
    if not 12 <= len(digits) <= 19 or not luhn_valid(digits):
        return False
    if len(digits) >= 13 and digits[0] in "23456":
        return True
    return bool(_CARD_CONTEXT.search(text, max(0, start - 60), start))


# -- finders, one per kind -------------------------------------------------------------

_Finder = Callable[[str], Iterator[tuple[int, int]]]


def _find_email(text: str) -> Iterator[tuple[int, int]]:
    for m in _EMAIL.finditer(text):
        yield m.span()


def _find_iban(text: str) -> Iterator[tuple[int, int]]:
    for m in _IBAN.finditer(text):
        groups = m.group().split(" ")
        # A trailing word ("... 7034 from") can look like a group: try shorter candidates.
        for n in range(len(groups), 0, -1):
            if _iban_valid("".join(groups[:n]).upper()):
                yield m.start(), m.start() + len(" ".join(groups[:n]))
                break


def _find_card(text: str) -> Iterator[tuple[int, int]]:
    for m in _CARD.finditer(text):
        if _card_plausible(text, *m.span()):
            yield m.span()


def _find_ssn(text: str) -> Iterator[tuple[int, int]]:
    for m in _SSN.finditer(text):
        yield m.span()
    for m in _SSN_BARE.finditer(text):
        yield m.span(1)


def _find_national_id(text: str) -> Iterator[tuple[int, int]]:
    for m in _BSN.finditer(text):
        if _bsn_valid(m.group(1)):
            yield m.span(1)


def _find_ip(text: str) -> Iterator[tuple[int, int]]:
    for pattern in (_IPV4, _IPV6):
        for m in pattern.finditer(text):
            if _ip_personal(m.group()):
                yield m.span()


def _find_phone(text: str) -> Iterator[tuple[int, int]]:
    for pattern, fewest, most in _PHONE_PATTERNS:
        for m in pattern.finditer(text):
            number = _EXT_SPLIT.split(m.group())[0]
            if fewest <= len(_digits(number)) <= most:
                yield m.span()
    for m in _PHONE_BARE.finditer(text):
        start, end = m.span()
        if text[start] == "(" and ")" not in text[start:end]:
            start += 1
        if 7 <= len(_digits(text[start:end])) <= 15 and _PHONE_CONTEXT.search(
            text, max(0, start - 40), start
        ):
            yield start, end


def _find_address(text: str) -> Iterator[tuple[int, int]]:
    for m in _ADDRESS.finditer(text):
        words = m.group("name").split()
        if any(w.lower().strip(".") in _STOP_WORDS for w in words):
            continue
        suffix = m.group("suffix")
        if suffix.lower() not in _STRONG_SUFFIXES:
            # "1 Gbps Ethernet ports", "my 1 hard drive": a weak suffix needs a
            # capitalised name and suffix on one line.
            titled = all(w[0].isupper() or w[0].isdigit() for w in words)
            if not (titled and suffix[0].isupper()) or "\n" in m.group():
                continue
        yield m.span()
    for pattern in (_ADDRESS_EU, _ADDRESS_UNIT_FIRST):
        for m in pattern.finditer(text):
            yield m.span()
    for m in _PO_BOX.finditer(text):
        yield m.span()


_FINDERS: dict[PiiKind, _Finder] = {
    "EMAIL": _find_email,
    "IBAN": _find_iban,
    "CARD": _find_card,
    "SSN": _find_ssn,
    "NATIONAL_ID": _find_national_id,
    "IP": _find_ip,
    "PHONE": _find_phone,
    "ADDRESS": _find_address,
}


def _normalise(value: str) -> str:
    return re.sub(r"[\W_]+", "", value).lower()


# -- Presidio --------------------------------------------------------------------------

# Presidio entity -> our kind. Ours are registered as SUPPORTBOT_<KIND>.
_ENTITY_KIND: dict[str, PiiKind] = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CARD",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP",
    "US_SSN": "SSN",
    "UK_NINO": "NATIONAL_ID",
    "ES_NIF": "NATIONAL_ID",
    "ES_NIE": "NATIONAL_ID",
    "IT_FISCAL_CODE": "NATIONAL_ID",
    "DE_TAX_ID": "NATIONAL_ID",
    "DE_SOCIAL_SECURITY": "NATIONAL_ID",
    "FR_NIR": "NATIONAL_ID",
    **{f"SUPPORTBOT_{kind}": kind for kind in PII_KINDS},
}
# Kinds written with digits: a detection must not continue a code, version or decimal.
# A number right after "order", "ticket", "invoice"... is that identifier, not a phone
# number, however much it looks like one ("order 012345678").
_NOT_A_PHONE_BEFORE = re.compile(
    r"\b(?:order|ticket|invoice|case|ref|reference|tracking|serial|account|customer|booking"
    r"|contract|claim|rma|model|part)\b(?:\s*(?:number|no\.?|num|id|#))?\s*(?:is|was|:|=)?"
    r"\s*#?\s*$",
    re.IGNORECASE,
)
_MASKED_EMAIL = re.compile(r"[^@\s]\*+@")
_NUMERIC_KINDS = frozenset({"PHONE", "CARD", "SSN"})
# Below this (Presidio's scale, after context words have raised it) a detection is
# ignored: it drops Presidio's "very weak" SSN shapes unless "SSN" is nearby.
_MIN_SCORE = 0.4
# Regions whose numbering plans phonenumbers checks (the Faker bench locales and the
# neighbours customers most often call from).
_PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IE", "BE", "CH", "AT", "CA", "AU")

_analyzer_lock = threading.Lock()
_analyzer_instance: AnalyzerEngine | None = None


def _build_analyzer() -> AnalyzerEngine:
    """Presidio's analyzer with pattern recognisers only and a blank spaCy pipeline."""
    try:
        import spacy
        import tldextract
        from presidio_analyzer import (
            AnalyzerEngine,
            LocalRecognizer,
            Pattern,
            PatternRecognizer,
            RecognizerRegistry,
            RecognizerResult,
        )
        from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            DeSocialSecurityRecognizer,
            DeTaxIdRecognizer,
            EmailRecognizer,
            EsNieRecognizer,
            EsNifRecognizer,
            IbanRecognizer,
            IpRecognizer,
            ItFiscalCodeRecognizer,
            PhoneRecognizer,
            UkNinoRecognizer,
            UsSsnRecognizer,
        )
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise ImportError(
            f"PII redaction needs presidio-analyzer and spaCy ({exc}); "
            "reinstall supportbot: python -m pip install -e ."
        ) from exc

    class BlankSpacyNlpEngine(SpacyNlpEngine):
        """spaCy's tokenizer only: no model file, so nothing to download.

        Presidio's default engine loads ``en_core_web_lg`` (and downloads it when
        missing, which fails offline). Pattern recognisers need tokens only: for
        context words ("SSN", "card"), whose matching compares lemmas, the blank
        pipeline's empty lemmas are replaced by the lower-cased token.
        """

        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}  # type: ignore[assignment]

        def _doc_to_nlp_artifact(self, doc: Any, language: str) -> NlpArtifacts:
            artifacts = NlpArtifacts(
                entities=[],
                tokens=doc,
                tokens_indices=[t.idx for t in doc],
                lemmas=[t.lemma_ or t.lower_ for t in doc],
                nlp_engine=self,
                language=language,
                scores=[],
            )
            # The context enhancer tests every token for membership in `keywords`: as a
            # list, that makes long texts quadratic.
            artifacts.keywords = set(artifacts.keywords)  # type: ignore[assignment]
            return artifacts

    # The bundled public-suffix snapshot, never the live list (which tldextract fetches
    # by default), and no cache directory either.
    offline_tld = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's e-mail recogniser with an offline public-suffix check."""

        def validate_result(self, pattern_text: str) -> bool:
            return bool(offline_tld(pattern_text).fqdn)

    class FinderRecognizer(LocalRecognizer):
        """One of this module's finders as a Presidio recogniser."""

        def __init__(self, kind: PiiKind, finder: _Finder) -> None:
            self._finder = finder
            super().__init__(
                supported_entities=[f"SUPPORTBOT_{kind}"],
                name=f"Supportbot{kind.title()}Recognizer",
                supported_language="en",
            )

        def load(self) -> None:
            pass

        def analyze(
            self, text: str, entities: list[str], nlp_artifacts: Any = None
        ) -> list[RecognizerResult]:
            entity = self.supported_entities[0]
            return [RecognizerResult(entity, start, end, 1.0) for start, end in self._finder(text)]

    class CheckedPatternRecognizer(PatternRecognizer):
        """A pattern recogniser whose matches must pass a checksum."""

        def __init__(self, entity: str, regex: str, check: Callable[[str], bool]) -> None:
            self._check = check
            super().__init__(
                supported_entity=entity,
                name=f"Supportbot{entity.title().replace('_', '')}Recognizer",
                patterns=[Pattern(entity.lower(), regex, 0.5)],
                global_regex_flags=0,
            )

        def validate_result(self, pattern_text: str) -> bool:
            return self._check(pattern_text)

    recognizers = [
        OfflineEmailRecognizer(),
        PhoneRecognizer(supported_regions=_PHONE_REGIONS),
        CreditCardRecognizer(),
        IbanRecognizer(),
        IpRecognizer(),
        UsSsnRecognizer(),
        UkNinoRecognizer(),
        # Customer chats are analysed as English; these default to their own language.
        EsNifRecognizer(supported_language="en"),
        EsNieRecognizer(supported_language="en"),
        ItFiscalCodeRecognizer(supported_language="en"),
        DeTaxIdRecognizer(supported_language="en"),
        DeSocialSecurityRecognizer(supported_language="en"),
        PatternRecognizer(
            supported_entity="UK_NINO",
            name="SupportbotUkNinoRecognizer",
            patterns=[Pattern("nino", _NINO, 0.6)],
            global_regex_flags=re.IGNORECASE,
        ),
        CheckedPatternRecognizer("FR_NIR", _NIR, _nir_valid),
        *(FinderRecognizer(kind, finder) for kind, finder in _FINDERS.items()),
    ]
    # Presidio logs the words around every candidate at DEBUG, i.e. customer text: its
    # logger is held at WARNING unless the application has set a level for it.
    presidio_log = logging.getLogger("presidio-analyzer")
    if presidio_log.level == logging.NOTSET:
        presidio_log.setLevel(logging.WARNING)
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
    engine = BlankSpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank:en"}])
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


def _analyzer() -> AnalyzerEngine:
    """The process-wide analyzer, built on first use (thread-safe)."""
    global _analyzer_instance
    if _analyzer_instance is None:
        with _analyzer_lock:
            if _analyzer_instance is None:
                _analyzer_instance = _build_analyzer()
    return _analyzer_instance


def _bounded(text: str, start: int, end: int) -> bool:
    """Whether a numeric detection stands alone (not part of E-104, 3.4.2, $19.99...)."""
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] in _NUM_BEFORE):
        return False
    if end < len(text):
        after = text[end]
        if after.isalnum() or after in "-/":
            return False
        if after in ".,:" and end + 1 < len(text) and text[end + 1].isdigit():
            return False
    return True


_CHUNK_CHARS = 2000
_CHUNK_OVERLAP = 200


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """``text`` in pieces of about :data:`_CHUNK_CHARS`, cut at line breaks or spaces.

    Presidio's work grows faster than the text (context words are looked up around
    every candidate), so a 100 kB document is analysed a piece at a time. Each piece
    runs :data:`_CHUNK_OVERLAP` characters into the next, so a value cut in two by one
    cut is whole in the next piece (overlapping detections are merged).
    """
    start = 0
    while len(text) - start > _CHUNK_CHARS:
        window = text[start : start + _CHUNK_CHARS]
        cut = max(window.rfind("\n\n"), window.rfind("\n"))
        if cut < _CHUNK_CHARS // 2:
            cut = window.rfind(" ")
        if cut < _CHUNK_CHARS // 2:
            cut = _CHUNK_CHARS
        yield start, text[start : start + cut + _CHUNK_OVERLAP]
        start += cut
    yield start, text[start:]


def _detections(text: str) -> list[PiiSpan]:
    found: list[PiiSpan] = []
    for offset, piece in _chunks(text):
        found.extend(
            PiiSpan(s.kind, s.start + offset, s.end + offset) for s in _detections_in(piece)
        )
    return found


def _detections_in(text: str) -> list[PiiSpan]:
    found: list[PiiSpan] = []
    for r in _analyzer().analyze(text=text, language="en", score_threshold=_MIN_SCORE):
        kind = _ENTITY_KIND.get(r.entity_type)
        if kind is None:
            continue
        start, end = r.start, r.end
        if kind == "PHONE" and "," in text[start:end]:
            # phonenumbers takes ", ext. 12" into the number; a comma ends ours.
            end = start + text[start:end].index(",")
        # Presidio's patterns may take surrounding whitespace or punctuation.
        while start < end and not text[start].isalnum() and text[start] not in "+(":
            start += 1
        while end > start and not text[end - 1].isalnum() and text[end - 1] != ")":
            end -= 1
        if start >= end:
            continue
        ours = r.entity_type.startswith("SUPPORTBOT_")
        if not ours:
            if kind in _NUMERIC_KINDS and not _bounded(text, start, end):
                continue
            if kind == "IP" and not _ip_personal(text[start:end]):
                continue
            if kind == "CARD" and not _card_plausible(text, start, end):
                continue
            if kind == "PHONE" and len(_digits(text[start:end])) < 7:
                continue
            if kind == "EMAIL" and _MASKED_EMAIL.match(text, start, end):
                continue  # what mask() shows agents ("j***@example.com"), not an address
        if kind == "PHONE" and _NOT_A_PHONE_BEFORE.search(text, max(0, start - 40), start):
            continue
        found.append(PiiSpan(kind, start, end))
    return found


def _find(text: str, allowed: frozenset[str]) -> tuple[PiiSpan, ...]:
    order = {kind: i for i, kind in enumerate(PII_KINDS)}
    candidates = [
        s
        for s in _detections(text)
        if not (allowed and _normalise(text[s.start : s.end]) in allowed)
    ]
    # Overlapping detections of one kind (Presidio's and ours) are merged, so the union
    # is covered; then, across kinds, the kind listed first in PII_KINDS wins.
    merged: list[PiiSpan] = []
    for s in sorted(candidates, key=lambda s: (order[s.kind], s.start, -s.end)):
        last = merged[-1] if merged and merged[-1].kind == s.kind else None
        if last is not None and s.start < last.end:
            merged[-1] = PiiSpan(s.kind, last.start, max(last.end, s.end))
        else:
            merged.append(s)
    taken: list[PiiSpan] = []
    for s in merged:
        if not any(s.start < t.end and t.start < s.end for t in taken):
            taken.append(s)
    return tuple(sorted(taken, key=lambda s: s.start))


# A hand-off redacts each customer message several times (fields, transcript, summary).
_find_cached = functools.lru_cache(maxsize=2048)(_find)
_CACHED_CHARS = 4000  # longer texts (documents) are not kept in memory


# -- public API ------------------------------------------------------------------------


def find_pii(text: str, allow: Collection[str] = ()) -> list[PiiSpan]:
    """Every piece of personal data in ``text``, as non-overlapping spans in text order.

    When two detections overlap, the kind listed first in :data:`PII_KINDS` wins (a card
    number is not also reported as a phone number).

    Args:
        text: any text.
        allow: values to keep even though they look like PII, e.g. the company's public
            support number; compared ignoring case, spaces and punctuation.

    Example:
        >>> find_pii("mail jane@example.com")
        [PiiSpan(kind='EMAIL', start=5, end=21)]
    """
    if not text.strip():
        return []
    allowed = frozenset(_normalise(a) for a in allow)
    if len(text) > _CACHED_CHARS:
        return list(_find(text, allowed))
    return list(_find_cached(text, allowed))


def redact(text: str, allow: Collection[str] = ()) -> str:
    """``text`` with every piece of personal data replaced by ``[KIND]``.

    Args:
        text: any text.
        allow: values to keep verbatim (see :func:`find_pii`).

    Example:
        >>> redact("card 4111 1111 1111 1111, error E-104")
        'card [CARD], error E-104'
    """
    out = text
    for span in reversed(find_pii(text, allow)):
        out = f"{out[: span.start]}[{span.kind}]{out[span.end :]}"
    return out


def mask(value: str, keep: int = 4) -> str:
    """``value`` with all but its last ``keep`` characters replaced by ``*``.

    Emails keep their first character and domain instead (``j***@example.com``), so an
    agent can confirm them with the customer without seeing them whole.

    Example:
        >>> mask("BWN20473318"), mask("jane.doe@example.com")
        ('*******3318', 'j***@example.com')
    """
    value = value.strip()
    if _EMAIL.fullmatch(value):
        local, _, domain = value.partition("@")
        return f"{local[0]}***@{domain}"
    shown = max(keep, 0) if len(value) > keep else 0
    return "*" * (len(value) - shown) + value[len(value) - shown :]
