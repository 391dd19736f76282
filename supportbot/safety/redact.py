"""Find and replace personal data (PII) in customer text before it leaves the bot.

Hand-off packets, webhook bodies and log lines carry redacted text only; the raw
transcript stays in the local conversation store.

Detection runs on Microsoft Presidio's analyzer (``presidio-analyzer``), with pattern
recognisers and a name table only: Presidio's own (email, phone via ``phonenumbers``,
credit card with Luhn, IBAN with its mod-97 checksum, IP, US SSN, UK NINO, Spanish
NIF/NIE, Italian codice fiscale) and ours, registered as Presidio recognisers, where
Presidio lacks a type or misses formats customers type (street addresses and postcodes,
national and local phone formats, spelled-out e-mail addresses, dotted card numbers,
irregular IBAN groups, 2-series Mastercard and 15-digit JCB card numbers, French NIR,
Dutch BSN, personal names). Presidio's NLP step
gets a *blank* spaCy English pipeline built in memory (a tokenizer, no model), so nothing
is ever downloaded, and the e-mail recogniser's domain check uses ``tldextract``'s bundled
public-suffix snapshot, never fetching the live list. Nothing here touches the network.

===========  ===============================================================  ============
kind         what is detected                                                 validated
===========  ===============================================================  ============
EMAIL        ``name@domain.tld``, and spelled out against robots              pattern, PSL
             (``jane(at)example(dot)com``, ``jane at example dot com``)
PHONE        international (``+44 20 7946 0958``, ``0044 ...``, ``+49 (0)     digit count,
             30 901820``), North American (``(415) 555-0132``,                phonenumbers
             ``1-800-555-0142``), national numbers with a trunk 0 (``020
             7946 0958``, ``01 23 45 67 89``, ``(0161) 496 0066``), and bare
             digit runs right after "phone", "call", "my number is"...
             (``call 555-0132``)
CARD         12-19 digits, optionally grouped by spaces, dashes or dots       Luhn + IIN
IBAN         ``DE89 3704 0044 0532 0130 00`` (compact, in fours, or in any    length per
             groups with spaces or dashes, any case)                          country,
                                                                              mod 97
SSN          ``078-05-1120`` / ``078 05 1120``, or 9 bare digits after "SSN"  area rules
NATIONAL_ID  UK NINO (spaces, dashes or dots; any letters after "NI           checksums
             number"), French NIR (INSEE), Spanish NIF/NIE, Italian codice
             fiscale, Dutch BSN (after "BSN"/"burgerservicenummer")
IP           IPv4 and IPv6 addresses that can point at a customer (below)     ipaddress
ADDRESS      house number + street name + suffix (``221B Baker Street``,      stop words
             ``12 oak st``, ``350 5th Ave, Apt 4``), European forms
             (``Hauptstraße 12``, ``12, rue de la Paix``, ``Via Roma 5``,
             ``Calle Mayor 3``, ``Kerkstraat 4``), ``PO Box 123``, and
             postcodes (UK, Canada, Eircode, US state + ZIP) with the parts
             before them (``Flat B, Rosewood Court, Leeds LS6 2AB``); a
             street address takes the town up to a following postcode
             (``14 Elm Grove, Bristol BS6 5HT``), not a town alone
NAME         personal names after a cue: "my name is", "account holder:",     a table of
             titles (``Mr D. Okafor``), sign-offs ("Thanks, Aoife", the line  given names
             under "Kind regards"), "I'm", "this is", "my son", "ask for",
             greetings, "... here";
             a name ending the message; a full name anywhere (``Helen
             Parker``) when its first name is in the name table
===========  ===============================================================  ============

Personal names: after a strong cue ("my name is", "cardholder name is", a title, the line
under a sign-off) the name is taken whatever it looks like (``lucía fernández``, ``JOHN
A SMITH``); otherwise its first word must be a given name in ``nomquamgender``'s table
(about 36,000 names from 36 public sources, read offline; rarer ones with a surname after
a cue), and words that are also names ("Mark the satellite", "Will it work", "Rose
Gold", "Hi team") count only after a strong cue. Agents' names go in ``allow``: an
allowed value keeps each of its words as a name ("Maria Lopez" keeps "Hi Maria").

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

The analyzer is built once per process, on first use (importing Presidio and reading
the name table take a few seconds), behind a lock; ``import supportbot`` does not import
it. Recall per kind on Faker-generated values in seven locales is measured by ``python
bench/pii_recall.py``, and on hand-written messages by ``python bench/pii_handwritten.py``
(figures in docs/measured.md).

Example:
    >>> redact("Call me on +44 20 7946 0958 or mail jane@example.com")
    'Call me on [PHONE] or mail [EMAIL]'
"""

from __future__ import annotations

import functools
import importlib.util
import ipaddress
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

__all__ = [
    "PII_KINDS",
    "PiiKind",
    "PiiSpan",
    "find_pii",
    "luhn_valid",
    "mask",
    "may_hold_contact",
    "redact",
]

PiiKind = Literal["EMAIL", "PHONE", "CARD", "IBAN", "SSN", "NATIONAL_ID", "IP", "ADDRESS", "NAME"]

PII_KINDS: tuple[PiiKind, ...] = (
    "EMAIL",
    "IBAN",
    "NATIONAL_ID",
    "CARD",
    "SSN",
    "IP",
    "PHONE",
    "ADDRESS",
    "NAME",
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

# Addresses written so that robots miss them: jane(at)example(dot)com, jane [at] example
# [dot] co [dot] uk, jane at example dot com, JANE AT GMAIL DOT COM, jane @ example.com.
# A bare " at " needs a spelled-out " dot " in the domain, or a local part that no
# sentence has ("j.doe at example.com"): "available at brightwave.example" is prose.
_OB_AT = r"(?:\s*[(\[{<]\s*(?:at|@)\s*[)\]}>]\s*|\s+at\s+|\s*@\s*)"
_OB_DOT = r"(?:\s*[(\[{<]\s*(?:dot|\.)\s*[)\]}>]\s*|\s+dot\s+|\.)"
_OB_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL_OBFUSCATED = re.compile(
    rf"(?<![\w.%+@-])(?P<local>[a-z0-9][a-z0-9_%+-]*(?:{_OB_DOT}[a-z0-9_%+-]+){{0,4}})"
    rf"(?P<at>{_OB_AT})(?P<domain>{_OB_LABEL}(?:{_OB_DOT}{_OB_LABEL}){{1,4}})(?![\w@]|\.\w)",
    re.IGNORECASE,
)
_OB_DOT_WORD = re.compile(r"\s*[(\[{<]\s*(?:dot|\.)\s*[)\]}>]\s*|\s+dot\s+", re.IGNORECASE)
_OB_AT_WORD = re.compile(r"\s*[(\[{<]\s*(?:at|@)\s*[)\]}>]\s*|\s+at\s+|\s*@\s*", re.IGNORECASE)

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
    # "call 555-0132", "my number is 867 5309": a 7-digit local number needs one of these
    r"|call|ring|dial|my number|number is|phone number|reach me at"
    r"|t[eé]l[eé]phone|portable|m[oó]vil|cellulare|telefoon|mobiel)\b[^\d\n]{0,24}$",
    re.IGNORECASE,
)
_PHONE_BARE = re.compile(rf"{_NUM_START}\(?\+?\d[\d ().\-]{{6,18}}\d{_NUM_END}")

_CARD = re.compile(rf"{_NUM_START}\d(?:[ \-]?\d){{11,18}}{_NUM_END}")
# ... and grouped with dots, one kind of group as printed on cards (4111.1111.1111.1111,
# 3714.496353.98431): a dot anywhere else is a version or a decimal, so groups must be
# 4 digits first, then 4-6.
_CARD_DOTTED = re.compile(rf"{_NUM_START}\d{{4}}(?:\.\d{{4,6}}){{2,3}}(?:\.\d{{1,4}})?{_NUM_END}")
# Words after which a 12-digit number, or one with an unusual IIN, is a card number.
_CARD_CONTEXT = re.compile(
    r"\b(?:card|cards|visa|master ?card|maestro|amex|american express|discover|jcb|diners"
    r"|debit|credit|cc|payment|paid|pay|charged?|billed|refund(?:ed)?|tarjeta|carte"
    r"|karte|carta|kaart)\b[^\n]{0,40}$",
    re.IGNORECASE,
)

# Country code, check digits, then the account part in any grouping customers type: compact,
# in fours, as the bank prints it (FR76 30006 00001 12345678901 89, GB29 NWBK 601613
# 31926819), with dashes. A candidate may run into the next words ("... 7034 from my
# bank"); the finder tries it group by group, longest first, against the country's
# length and the mod-97 check.
_IBAN = re.compile(r"(?<![\w-])[A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]){11,40}(?![\w-])", re.IGNORECASE)
_IBAN_SEP = re.compile(r"[ \-]")
# IBAN length per country (SWIFT's IBAN registry).
_IBAN_LENGTHS = {
    **dict.fromkeys(("NO",), 15),
    **dict.fromkeys(("BE",), 16),
    **dict.fromkeys(("DK", "FI", "FK", "FO", "GL", "NL", "SD"), 18),
    **dict.fromkeys(("MK", "SI"), 19),
    **dict.fromkeys(("AT", "BA", "EE", "KZ", "LT", "LU", "MN", "XK"), 20),
    **dict.fromkeys(("CH", "HR", "LI", "LV"), 21),
    **dict.fromkeys(("BG", "BH", "CR", "DE", "GB", "GE", "IE", "ME", "RS", "VA"), 22),
    **dict.fromkeys(("AE", "GI", "IL", "IQ", "OM", "SO", "TL"), 23),
    **dict.fromkeys(("AD", "CZ", "ES", "MD", "PK", "RO", "SA", "SE", "SK", "TN", "VG"), 24),
    **dict.fromkeys(("LY", "PT", "ST"), 25),
    **dict.fromkeys(("IS", "TR"), 26),
    **dict.fromkeys(("BI", "DJ", "FR", "GR", "IT", "MC", "MR", "SM"), 27),
    **dict.fromkeys(("AL", "AZ", "BY", "CY", "DO", "GT", "HU", "LB", "NI", "PL", "SV"), 28),
    **dict.fromkeys(("BR", "EG", "PS", "QA", "UA"), 29),
    **dict.fromkeys(("JO", "KW", "MU", "YE"), 30),
    **dict.fromkeys(("MT", "SC"), 31),
    **dict.fromkeys(("LC",), 32),
    **dict.fromkeys(("RU",), 33),
}

_SSN = re.compile(rf"{_NUM_START}(?!000|666)\d{{3}}([ \-])(?!00)\d{{2}}\1(?!0000)\d{{4}}{_NUM_END}")
_SSN_BARE = re.compile(
    r"\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?)\b\D{0,20}?"
    r"(?<!\d)((?!000|666)\d{3}(?!00)\d{2}(?!0000)\d{4})(?!\d)",
    re.IGNORECASE,
)

# UK National Insurance number: two prefix letters (HMRC's rules), six digits, A-D.
# Written compact, in pairs, or with dashes or dots (AB-12-34-56-C, AB.12.34.56.C).
_NINO = (
    r"\b(?!BG|GB|NK|KN|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"[ .\-]?\d{2}[ .\-]?\d{2}[ .\-]?\d{2}[ .\-]?[A-D]\b"
)
# Any two letters in the NINO shape count right after "NI number", "NINO", "national
# insurance": HMRC's example prefix QQ and mistyped letters are still someone's number.
_NINO_ANY = re.compile(
    r"\b(?:nino\b|ni\s*(?:number\b|no\b\.?|#)"
    r"|national\s+insurance\b(?:\s+(?:number\b|no\b\.?|#))?)"
    r"[^\w\n]{0,12}(?:is\s+)?[^\w\n]{0,4}"
    r"(?P<value>[A-Z]{2}[ .\-]?\d{2}[ .\-]?\d{2}[ .\-]?\d{2}[ .\-]?[A-D])\b",
    re.IGNORECASE,
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
_BUILDING_WORDS = (
    "House|Court|Cottage|Cottages|Mansions|Lodge|Tower|Towers|Building|Hall|Farm|Barn|Mill"
    "|Rectory|Vicarage|Apartments|Flats|Residence|Villa|Manor|Maltings|Wharf|Quay|Yard"
)
_ADDRESS_UNIT_FIRST = re.compile(
    r"\b(?:Flat|Studio|Apartment|Apt\.?|Unit|Suite)\s+(?:\d{1,4}[A-Za-z]?|[A-Z])\b,?\s+"
    rf"(?:{_NAME_WORD}\s+){{1,3}}(?:(?i:{_STREET_SUFFIXES})s?|{_BUILDING_WORDS})\b"
)
# Postcodes that pin an address down without a house number ("Flat B, Rosewood Court,
# Leeds LS6 2AB"): British, Canadian and Irish (Eircode) postcodes, and a US ZIP code
# after a state ("Chicago, IL 60614"). An address grows from one of these, or from a
# street address, over the comma- or line-separated parts next to it (below).
_POSTCODE = re.compile(
    # UK: outward code (no Q, V, X first; no I, J, Z second), inward code (no C I K M O V)
    r"\b(?:[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?|GIR) ?\d[ABD-HJLNP-UW-Z]{2}\b"
    # Canada
    r"|\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d\b"
    # Ireland: routing key, then a unique identifier of letters and digits
    r"|\b(?:[AC-FHKNPRTV-Y]\d{2}|D6W) ?(?=[0-9AC-FHKNPRTV-Y]{0,3}\d)(?=[0-9]{0,3}[AC-FHKNPRTV-Y])"
    r"[0-9AC-FHKNPRTV-Y]{4}\b"
    # US state and ZIP (+4)
    r"|\b(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|PR"
    r"|RI|S[CD]|T[NX]|UT|V[AT]|W[AIVY]) \d{5}(?:-\d{4})?\b"
)
# A European postal code inside a town part ("04109 Leipzig", "1016 GV Amsterdam").
_POSTCODE_EU = re.compile(r"(?<![\w.,])\d{4,5}(?![\w.,])")
# The parts an address is grown over: words (capitalised, or a town's lower-case joining
# word), numbers, 2-4 letter codes (state, province, postcode halves), "Co." Wicklow.
_PLACE_TOKEN = re.compile(
    r"(?<![\w'’\-])(?:Co\.|St\.|Mt\.|[A-ZÀ-ÖØ-Þ][\w'’\-]*|\d{1,5}[A-Za-z]?(?:-\d{1,4})?|[A-Z0-9]{2,4}"
    r"|(?:upon|on|le|la|les|de|del|della|di|du|sur|am|an|der|im|en|op|aan)(?= [A-ZÀ-ÖØ-Þ]))"
    r"(?![\w'’\-])"
)
_PART_SEP = re.compile(r"[ \t]*(?:,[ \t]*\n?|\n)[ \t]*")
_PART_SEP_BEFORE = re.compile(r"[ \t]*(?:\n?,|\n)[ \t]*$")
_UNIT_PART = re.compile(
    rf"^(?:(?:Flat|Studio|Apartment|Apt\.?|Unit|Suite|Room)\s+\w{{1,5}}|.*\b(?:{_BUILDING_WORDS}))$"
)
_PO_BOX = re.compile(r"\bP\.?\s?O\.?\s+Box\s+\d{1,8}\b", re.IGNORECASE)
_STOP_WORDS = frozenset(
    "a an and are at by down for from has have i in into is it its my of off on or our "
    "out over per than that the their then there this to up was were with your about "
    "across along around near past through".split()
)


# -- personal names ----------------------------------------------------------------------

# Given names are looked up in the name table of the ``nomquamgender`` package (Van
# Buskirk, Clauset and Larremore, ICWSM 2023; MIT licence): 720,000 given names collected
# from 36 public sources in many countries, each with the number of sources and of people
# that have it. It is read from the package's JSON file, not imported (the module loads
# pandas and the whole table). A name counts when 5 sources and 100 people have it (about
# 36,000 names); that leaves out the table's noise (words, typos, initials).
_NAME_MIN_SOURCES = 5
_NAME_MIN_PEOPLE = 100
# Rarer names (2 sources, 10 people: about 100,000 names, "Torquato", "Yinthe") count as
# the first of two or more names after a cue ("I'm Torquato Verdone").
_RARE_NAME_MIN_SOURCES = 2
_RARE_NAME_MIN_PEOPLE = 10
_NAME_ENTRY = re.compile(r'"([a-z][a-z\'\-]*)": \[(\d+), (\d+),')
# Words the table lists as given names that support messages use as words ("Mark the
# satellite", "Will it work", "solid Amber", "Rose Gold", "Thanks Team"): they count as a
# name only after a strong cue ("my name is", a title) or with a surname after them.
_COMMON_WORD_NAMES = frozenset(
    """
    all alexa amber apple april august autumn bay bill black blue bridge brook brown
    cable can case cash chance chase cloud crystal daisy dale dawn day dean december
    early east echo eve even faith fern field floor ford forest frank friday gale gift
    glen gold google grace grant gray great green grey guy harbor harmony hazel holly
    home hope hunter iris ivy jade january jewel joy july june key king kit lane lark
    laurel link live long lucky magenta major march mark may media memory mercy miles
    monday max mesh nexa north november october olive opal orange page pat pearl penny
    ping poppy price rain ray real red rich river robin rock rose ruby sage saturday
    september shade shield silver sky snow sonny spring star sterling stone storm summer
    sunday sunny sunshine support team there thursday tip trust tuesday victory violet
    virgin wednesday welcome west white will willow winter wood young sir madam madame
    dear everyone folks guys friend friends customer service admin user guest
    africa america asia europe india pacific atlantic little great grand saint lake
    """.split()
)
# Joining words inside a name: Pieter van der Berg, Ana María de la Cruz, Omar bin Laden.
_NAME_PARTICLES = frozenset(
    "van von der den de del della di da dos das du la le ter ten bin binti ibn al el y".split()
)
_STOP_WORDS = frozenset(
    # spaCy's English stop words (spacy.lang.en.stop_words), as of spaCy 3.8, less the
    # contractions: capitalised at the start of a sentence, they begin no name.
    """
    a about above across after afterwards again against all almost alone along already
    also although always am among amongst amount an and another any anyhow anyone
    anything anyway anywhere are around as at back be became because become becomes
    becoming been before beforehand behind being below beside besides between beyond
    both bottom but by ca call can cannot could did do does doing done down due during
    each eight either eleven else elsewhere empty enough even ever every everyone
    everything everywhere except few fifteen fifty first five for former formerly forty
    four from front full further get give go had has have he hence her here hereafter
    hereby herein hereupon hers herself him himself his how however hundred i if in
    indeed into is it its itself just keep last latter latterly least less made make
    many may me meanwhile might mine more moreover most mostly move much must my myself
    name namely neither never nevertheless next nine no nobody none noone nor not nothing
    now nowhere of off often on once one only onto or other others otherwise our ours
    ourselves out over own part per perhaps please put quite rather re really regarding
    same say see seem seemed seeming seems serious several she should show side since six
    sixty so some somehow someone something sometime sometimes somewhere still such take
    ten than that the their them themselves then thence there thereafter thereby therefore
    therein thereupon these they third this those though three through throughout thru
    thus to together too top toward towards twelve twenty two under unless until up upon
    us used using various very via was we well were what whatever when whence whenever
    where whereafter whereas whereby wherein whereupon wherever whether which while
    whither who whoever whole whom whose why will with within without would yet you your
    yours yourself yourselves
    """.split()
)
_NAME_TOKEN = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
_CONTRACTION = re.compile(r".+['’](?:m|re|ve|ll|d|t)$", re.IGNORECASE)
_NAME_FOLD = str.maketrans(
    {"ł": "l", "ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "đ": "d", "ı": "i", "þ": "th", "’": "'"}
)
# What comes right before a name. Strong: the name follows whatever it looks like
# ("my name is lucía fernández", "cardholder name is JOHN A SMITH"). A noun before
# "name" that makes it a thing's name ("network name: Nexa-4F2A") is not one.
_NAME_CUE_STRONG = re.compile(
    r"(?:\b(?P<name>(?:full\s+)?name)\s*(?::|-|is\b)"
    r"|\bmy\s+name['’]s"
    r"|\bname\s+on\s+(?:the|my)\s+(?:card|account)(?:\s+is)?"
    r"|\baccount\s+(?:holder|owner)(?:['’]s\s+name)?(?:\s+is)?"
    r"|\bcard\s*holder(?:['’]s)?(?:\s+name)?(?:\s+is)?"
    r"|\bin\s+the\s+name\s+of|\bunder\s+the\s+name(?:\s+of)?|\bregistered\s+(?:to|under)"
    r"|\bsigned\s*[,:]|\bfrom\s*:|\bcontact\s+(?:person|name)\s*:?"
    r"|\bje\s+m['’]appelle|\bmon\s+nom\s+est|\bich\s+hei(?:ß|ss)e|\bmein\s+name\s+ist"
    r"|\bmi\s+nombre\s+es|\bme\s+llamo|\bmi\s+chiamo|\bil\s+mio\s+nome\s+è"
    r"|\bmijn\s+naam\s+is|\ba\s+nombre\s+de|\bau\s+nom\s+de|\bintestat[oa]\s+a)"
    r"[ \t]*[:,\-]?[ \t]*",
    re.IGNORECASE,
)
_THING_NAME = re.compile(
    r"\b(?:network|wifi|wi-fi|ssid|device|user|host|file|model|product|domain|router|guest"
    r"|profile|display|company|business|brand|app|printer|screen)[ \t]+$",
    re.IGNORECASE,
)
# Weak: a given name from the table must follow ("I'm Kwame Mensah", "my son Oliver",
# "ask for Mehmet", "Hi Maria").
_NAME_CUE_WEAK = re.compile(
    r"\b(?:i['’]?m|i\s+am|it['’]?s|its|this\s+is|here\s+is|call\s+me|ask\s+for"
    r"|speak\s+(?:to|with)|spoke\s+(?:to|with)|talk(?:ed)?\s+(?:to|with)|named|called"
    r"|je\s+suis|ich\s+bin|soy|sono|ik\s+ben|hi|hello|hey|hiya|dear|hallo|bonjour|hola|ciao"
    r"|on\s+behalf\s+of"
    r"|(?:(?:my|your|our|his|her|the)\s+)?(?:wife|husband|partner|son|daughter|mother|mum|mom"
    r"|father|dad|brother|sister|friend|neighbou?r|landlord|landlady|flatmate|roommate"
    r"|housemate|boss|colleague|manager|grandson|granddaughter|grandmother|grandfather"
    r"|grandma|grandpa|nan|uncle|aunt|auntie|cousin|child|kid|tenant|engineer|technician"
    r"|installer|girlfriend|boyfriend|fianc[eé]e?|carer|assistant|agent|advisor|adviser"
    r"|rep|representative)(?:['’]s\s+name)?(?:\s+is)?)"
    r"[ \t]*[:,\-]?[ \t]*",
    re.IGNORECASE,
)
# Sign-offs: a name on the same line needs the table ("Thanks, Aoife"); the line after
# ("Kind regards,\nHiroshi Tanaka") is a signature whatever the name.
_NAME_SIGN_OFF = re.compile(
    r"\b(?:thanks(?:\s+again|\s+so\s+much|\s+a\s+lot|\s+in\s+advance)?"
    r"|thank\s+you(?:\s+so\s+much|\s+again)?|many\s+thanks|thx|ty|cheers"
    r"|(?:kind|best|warm|warmest)?\s*regards|best(?:\s+wishes)?|all\s+the\s+best|sincerely"
    r"|yours(?:\s+sincerely|\s+faithfully|\s+truly)?|love|take\s+care|talk\s+soon"
    r"|danke(?:\s+schön)?|vielen\s+dank|(?:mit\s+)?freundlichen\s+gr(?:ü|ue)(?:ß|ss)en"
    r"|(?:liebe|viele)?\s*gr(?:ü|ue|u)(?:ß|ss)(?:e|en)?|lg|merci(?:\s+beaucoup)?|cordialement"
    r"|bien\s+à\s+vous|gracias|saludos|un\s+saludo|grazie(?:\s+mille)?|saluti"
    r"|cordiali\s+saluti|bedankt|groetjes|groeten|met\s+vriendelijke\s+groet(?:en)?"
    r"|obrigad[oa])"
    r"(?P<tail>[ \t]*[,.!:\-–—]*[ \t]*(?:\n[ \t]*)*)",
    re.IGNORECASE,
)
_NAME_TITLE = re.compile(
    r"(?<![\w.])(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Herr|Frau|Mme|Mlle|Madame|Monsieur|Señor|Señora"
    r"|Sra|Srta|Signor|Signora|Sig|Dhr|Mevr|Mevrouw|Sir|Dame)(?:\.|\b)[ \t]*"
    r"|(?<![\w.])(?:M|Sr|Sig\.ra)\.[ \t]*"
)
# After the name: "Ingrid here", "Dr. Amara Okonkwo here", "Paul speaking".
_NAME_AFTER = re.compile(r"[ \t]*,?[ \t]*(?:here|speaking)\b", re.IGNORECASE)
# Before a name that ends the message: a line of its own, "- Cian", ", Tunde".
_NAME_LAST_BEFORE = re.compile(r"(?:^|[\n,;]|(?:^|\s)[-–—~]{1,2})[ \t]*$")
_PLACE_BEFORE_COMMA = re.compile(r"(?:\b[A-ZÀ-ÖØ-Þ][\w'’\-]*|\d)$")
_NAME_LAST_AFTER = re.compile(r"[\s.!?,:;)\]~*\-–—]*$")


def _fold(word: str) -> str:
    """Lower case without accents, as the name table spells names (Jürgen -> jurgen)."""
    decomposed = unicodedata.normalize("NFKD", word.lower().translate(_NAME_FOLD))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@functools.cache
def _given_names() -> tuple[frozenset[str], frozenset[str]]:
    """The name table's given names (folded, less stop words): (common, rarer)."""
    spec = importlib.util.find_spec("nomquamgender")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "PII redaction of personal names needs nomquamgender's name table; "
            "reinstall supportbot: python -m pip install -e ."
        )
    table = Path(next(iter(spec.submodule_search_locations))) / "name_data.json"
    raw = table.read_text(encoding="utf-8")
    common: set[str] = set()
    rare: set[str] = set()
    for m in _NAME_ENTRY.finditer(raw):
        sources, people = int(m.group(2)), int(m.group(3))
        if sources >= _NAME_MIN_SOURCES and people >= _NAME_MIN_PEOPLE:
            common.add(m.group(1))
        elif sources >= _RARE_NAME_MIN_SOURCES and people >= _RARE_NAME_MIN_PEOPLE:
            rare.add(m.group(1))
    return frozenset(common - _STOP_WORDS), frozenset(rare - _STOP_WORDS)


def _given_name(word: str, rare: bool = False) -> bool:
    """Whether ``word`` is a given name of the table (``rare``: among the rarer ones too)."""
    folded = _fold(word)
    if len(folded) < 2:
        return False
    common, rarer = _given_names()
    first = folded.split("-")[0]
    if folded in common or first in common:
        return True
    return rare and (folded in rarer or first in rarer)


class _Tok(NamedTuple):
    start: int
    end: int
    word: str


def _name_word(tok: _Tok, caps: bool, lower: bool) -> str | None:
    """What ``tok`` can be in a name: "word", "initial", "particle", or None."""
    w = tok.word
    if _CONTRACTION.match(w):
        return None
    if w.lower() in _NAME_PARTICLES and (w.islower() or len(w) <= 3):
        return "particle"
    if len(w) == 1:
        return "initial" if w.isupper() else None
    if _fold(w) in _STOP_WORDS or _NAME_TITLE.fullmatch(w):
        return None
    if w.isupper():
        return "word" if caps else None
    if w[0].isupper() or (lower and w.islower()):
        return "word"
    return None


def _name_run(text: str, toks: list[_Tok], i: int, caps: bool, lower: bool) -> int:
    """Index after the last word of the name that starts at ``toks[i]`` (``i``: none)."""
    end = i
    for j in range(i, min(len(toks), i + 6)):
        tok = toks[j]
        kind = _name_word(tok, caps, lower)
        if kind is None:
            break
        if j > i:
            gap = text[toks[j - 1].end : tok.start]
            after_initial = len(toks[j - 1].word) == 1 and gap in (".", ". ")
            if gap not in (" ", "  ") and not after_initial:
                break
        if kind == "initial":
            dotted = text[tok.end : tok.end + 1] == "."
            if not (dotted or (caps and tok.word != "I")):
                break
        elif kind == "word":
            end = j + 1
    return end


def _cue_positions(text: str) -> dict[int, str]:
    """Where a cue ends, and how strong it is ("strong", "weak", "title", "signature")."""
    cues: dict[int, str] = {}
    for m in _NAME_CUE_WEAK.finditer(text):
        cues[m.end()] = "weak"
    for m in _NAME_SIGN_OFF.finditer(text):
        cues[m.end()] = "signature" if "\n" in m.group("tail") else "weak"
    for m in _NAME_CUE_STRONG.finditer(text):
        if m.group("name") and _THING_NAME.search(text, max(0, m.start() - 12), m.start()):
            continue  # "network name: Nexa-4F2A"
        cues[m.end()] = "strong"
    for m in _NAME_TITLE.finditer(text):
        cues[m.end()] = "title"
    return cues


def _ends_with_name(text: str, start: int) -> bool:
    """Whether a name at ``start`` that ends the text stands on its own.

    On a line of its own, after a dash ("- Cian") or a comma ("sent from my phone, Tunde"),
    but not after a place ("Baker Street, London").
    """
    before = _NAME_LAST_BEFORE.search(text, max(0, start - 8), start)
    if before is None:
        return False
    if "," in before.group():
        # after a comma, not when a capitalised word or a number is before it: a place
        previous = text[: before.start() + before.group().index(",")].rstrip()
        return bool(previous) and not _PLACE_BEFORE_COMMA.search(previous)
    return True


_TITLE_CASE_BEFORE = re.compile(r"(?:[A-ZÀ-ÖØ-Þ][^\W\d_]*(?: [a-z]{1,3}){0,2} |[\d\-/])$")
_TITLE_CASE_AFTER = re.compile(r"(?: [a-z]{1,3}){0,2} [A-ZÀ-ÖØ-Þ]")
_PLACE_WORDS = frozenset(
    w.lower() for w in f"{_STREET_SUFFIXES}|{_BUILDING_WORDS}|City|County|Town|Bay|Beach".split("|")
)


def _full_name_alone(text: str, start: int, end: int) -> bool:
    """Whether a full name found without a cue ("Helen Parker") stands on its own.

    Not when it is part of a Title Case phrase ("Threat Protection and Ad Blocking",
    "Cancelling During the Free Trial", "30-Day Free Trial") or names a place
    ("Victoria Island", "Jackson Heights").
    """
    if text[start:end].split()[-1].lower() in _PLACE_WORDS:
        return False
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    return not (
        _TITLE_CASE_BEFORE.search(text, line_start, start)
        or _TITLE_CASE_AFTER.match(text, end, line_end)
    )


def _find_name(text: str) -> Iterator[tuple[int, int]]:
    toks = [_Tok(m.start(), m.end(), m.group()) for m in _NAME_TOKEN.finditer(text)]
    cues = _cue_positions(text)
    i = 0
    while i < len(toks):
        tok = toks[i]
        cue = cues.get(tok.start)
        strong = cue in ("strong", "title", "signature")
        end = _name_run(text, toks, i, caps=strong, lower=cue == "strong")
        if end == i:
            i += 1
            continue
        first, last = toks[i], toks[end - 1]
        words = [
            t for t in toks[i:end] if len(t.word) > 1 and t.word.lower() not in _NAME_PARTICLES
        ]
        known = bool(words) and _given_name(words[0].word)
        common = bool(words) and _fold(words[0].word) in _COMMON_WORD_NAMES
        # after a cue, two names or more may start with a rarer given name
        cued = cue == "weak" or bool(_NAME_AFTER.match(text, last.end))
        if cued and not known and not common and len(words) >= 2:
            known = _given_name(words[0].word, rare=True)
        if cued and not known and len(first.word) == 1 and words:
            known = True  # an initial and a surname: "Regards, S. Okoro"
        found = False
        if cue in ("strong", "title"):
            # lower case only with a given name first ("my name is jane doe")
            found = not first.word.islower() or known
        elif cue == "signature":
            # a line of its own under the sign-off
            line_end = text.find("\n", last.end)
            rest = text[last.end : line_end if line_end >= 0 else len(text)]
            found = rest.strip(" \t.,!") == ""
        elif known and (not common or len(words) >= 2):
            if cued:
                found = True
            elif _NAME_LAST_AFTER.match(text, last.end) and _ends_with_name(text, first.start):
                found = True  # the message ends with the name
            elif len(words) >= 2 and not common and words[1].word[0].isupper():
                found = _full_name_alone(text, first.start, last.end)
        if found:
            yield first.start, last.end
            i = end
        else:
            i += 1


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
    pos = 0
    while (ob := _EMAIL_OBFUSCATED.search(text, pos)) is not None:
        if _deobfuscated_email(ob):
            yield ob.span()
            pos = ob.end()
        else:  # "me at priya.raman(at)..." is no address, the one after "at" may be
            pos = ob.start() + 1


def _deobfuscated_email(m: re.Match[str]) -> bool:
    """Whether an obfuscated match spells an e-mail address (see _EMAIL_OBFUSCATED)."""
    local, at, domain = m.group("local"), m.group("at"), m.group("domain")
    spelled_dot = bool(_OB_DOT_WORD.search(domain))
    if at.strip() == "@" and not spelled_dot and not _OB_DOT_WORD.search(local):
        return False  # a plain address, or "jane @ example.com": the patterns above
    if at.strip().lower() == "at" and not (spelled_dot or re.search(r"[._%+\d]", local)):
        return False  # "available at brightwave.example": prose
    address = _OB_DOT_WORD.sub(".", local) + "@" + _OB_DOT_WORD.sub(".", domain)
    if not _EMAIL.fullmatch(address):
        return False
    return bool(_offline_tld()(address).suffix)


@functools.cache
def _offline_tld() -> Any:
    """A ``tldextract`` extractor on its bundled public-suffix snapshot, without a cache.

    Never the live list, which tldextract fetches by default.
    """
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _find_iban(text: str) -> Iterator[tuple[int, int]]:
    for m in _IBAN.finditer(text):
        value = m.group()
        expected = _IBAN_LENGTHS.get(value[:2].upper())
        if expected is None:
            continue  # not a country with IBANs
        # group ends, longest first: a trailing word ("... 7034 from") can look like a group
        ends = [g.start() for g in _IBAN_SEP.finditer(value)] + [len(value)]
        for end in reversed(ends):
            compact = _IBAN_SEP.sub("", value[:end]).upper()
            if len(compact) != expected:
                continue
            if _iban_valid(compact):
                yield m.start(), m.start() + end
                break


def _find_card(text: str) -> Iterator[tuple[int, int]]:
    for pattern in (_CARD, _CARD_DOTTED):
        for m in pattern.finditer(text):
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
    for m in _NINO_ANY.finditer(text):
        yield m.span("value")


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


# No phone number has fewer digits: the fewest of any pattern, _PHONE_BARE's 7, and the
# 7 Presidio's detections must have (see _detections_in).
_FEWEST_PHONE_DIGITS = min(7, *(fewest for _, fewest, _ in _PHONE_PATTERNS))


def _place_run(text: str, pos: int) -> int:
    """End of the run of place words starting at ``pos`` (``pos`` when there is none)."""
    end = pos
    for _ in range(8):
        m = _PLACE_TOKEN.match(text, pos)
        if not m:
            break
        end = m.end()
        if text[end : end + 1] != " ":
            break
        pos = end + 1
    return end


def _place_run_back(text: str, pos: int) -> int:
    """Start of the run of place words ending at ``pos`` (``pos`` when there is none)."""
    lo = max(text.rfind(",", 0, pos), text.rfind("\n", 0, pos), pos - 100, -1) + 1
    tokens = [m.span() for m in _PLACE_TOKEN.finditer(text, lo, pos)]
    start = pos
    for tok_start, tok_end in reversed(tokens[-8:]):
        if tok_end != start and not (tok_end == start - 1 and text[tok_end] == " "):
            break
        start = tok_start
    return start


def _fills_part(text: str, start: int) -> bool:
    """Whether ``start`` begins its comma- or line-separated part of ``text``."""
    before = text[:start].rstrip(" \t")
    return not before or before[-1] in ",\n"


def _grow_address(text: str, start: int, end: int, postcode: bool) -> tuple[int, int]:
    """An address span grown over the parts around it.

    Forward only as far as a postcode ("12 Elm Grove, Bristol BS6 5HT"; a town alone is
    not added: "221B Baker Street, London" stays a street address). Backward over flat
    and building parts ("Flat C, Alder House, ..."), and, from a postcode, over every part
    that is only place words (town, street, building: "Rose Cottage, Mill Lane, Great
    Ayton TS9 6AB") up to a street address with a number (then flats and buildings only:
    "Ms Harriet Fenwick-Lowe, 7 Saint Mary's Road, Ely CB7 4JW" leaves the name out).
    """
    pos = end
    for _ in range(3):
        sep = _PART_SEP.match(text, pos)
        if not sep:
            break
        run_end = _place_run(text, sep.end())
        if run_end == sep.end():
            break
        part = text[sep.end() : run_end]
        pos = run_end
        if _POSTCODE.search(part) or (_POSTCODE_EU.search(part) and re.search("[a-z]", part)):
            end = run_end
            break
    if postcode:
        start = _place_run_back(text, start)  # the town before the postcode
    any_part = postcode  # from a postcode: town and street parts, until a street address
    for _ in range(5):
        if not _fills_part(text, start):
            break
        sep = _PART_SEP.search(text, max(0, start - 6), start)
        if not sep or sep.end() != start:
            break
        run_start = _place_run_back(text, sep.start())
        if run_start == sep.start():
            break
        part = text[run_start : sep.start()]
        if not any_part and not _UNIT_PART.match(part):
            break
        if _ADDRESS.search(part) or _ADDRESS_EU.search(part):
            any_part = False  # above a street address only flats and buildings
        start = run_start
    return start, end


def _find_address(text: str) -> Iterator[tuple[int, int]]:
    for start, end, postcode in _address_cores(text):
        yield _grow_address(text, start, end, postcode)


def _address_cores(text: str) -> Iterator[tuple[int, int, bool]]:
    for m in _POSTCODE.finditer(text):
        yield m.start(), m.end(), True
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
        yield m.start(), m.end(), False
    for pattern in (_ADDRESS_EU, _ADDRESS_UNIT_FIRST, _PO_BOX):
        for m in pattern.finditer(text):
            yield m.start(), m.end(), False


_FINDERS: dict[PiiKind, _Finder] = {
    "EMAIL": _find_email,
    "IBAN": _find_iban,
    "CARD": _find_card,
    "SSN": _find_ssn,
    "NATIONAL_ID": _find_national_id,
    "IP": _find_ip,
    "PHONE": _find_phone,
    "ADDRESS": _find_address,
    "NAME": _find_name,
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
    offline_tld = _offline_tld()
    _given_names()  # read the name table now (about 1 s), not on the first message

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


class _Allowed(NamedTuple):
    """The ``allow`` values, prepared once per set of values."""

    values: frozenset[str]
    """Each value normalised (see :func:`_normalise`)."""
    words: frozenset[str]
    """Each word of each value, normalised: "Maria Lopez" keeps "Maria" too."""
    pattern: re.Pattern[str] | None
    """Any value where it occurs in a text, whatever its spacing and punctuation."""


@functools.lru_cache(maxsize=64)
def _prepare_allowed(allow: frozenset[str]) -> _Allowed:
    words = {_normalise(w) for a in allow for w in a.split() if len(_normalise(w)) >= 2}
    forms = sorted(
        (r"[\W_]*".join(map(re.escape, re.findall(r"[^\W_]+", a))) for a in allow),
        key=len,
        reverse=True,
    )
    forms = [f for f in forms if f]
    pattern = (
        re.compile(rf"(?<![^\W_])(?:{'|'.join(forms)})(?![^\W_])", re.IGNORECASE) if forms else None
    )
    return _Allowed(frozenset(_normalise(a) for a in allow), frozenset(words), pattern)


def _is_allowed(text: str, span: PiiSpan, allowed: _Allowed) -> bool:
    """Whether ``span`` is one of the allowed values (or, for a name, one of its words).

    A grown address that takes in an allowed one (the company's "1200 Harbor Point Drive,
    Suite 400, Portland, OR 97209") is the allowed address too.
    """
    value = _normalise(text[span.start : span.end])
    if value in allowed.values:
        return True
    if span.kind == "NAME" and all(
        _normalise(w) in allowed.words for w in text[span.start : span.end].split()
    ):
        return True
    if span.kind == "ADDRESS" and allowed.pattern is not None:
        return any(
            m.start() < span.end and span.start < m.end()
            for m in allowed.pattern.finditer(text, max(0, span.start - 200), span.end + 200)
        )
    return False


def _find(text: str, allow: frozenset[str]) -> tuple[PiiSpan, ...]:
    order = {kind: i for i, kind in enumerate(PII_KINDS)}
    allowed = _prepare_allowed(allow) if allow else None
    candidates = [
        s for s in _detections(text) if allowed is None or not _is_allowed(text, s, allowed)
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
    allowed = frozenset(a.strip() for a in allow if _normalise(a))
    if len(text) > _CACHED_CHARS:
        return list(_find(text, allowed))
    return list(_find_cached(text, allowed))


def may_hold_contact(text: str) -> bool:
    """Whether ``text`` could hold an e-mail address or a phone number, checked cheaply.

    False only when :func:`find_pii` cannot report an ``EMAIL`` or ``PHONE`` span in it:
    every e-mail pattern (Presidio's and ours, obfuscated ones too) needs an "@" or the
    spelled-out form, and every phone number at least 7 digits. Callers that want only
    those two kinds (the contact fields of a hand-off) skip the detector, which takes
    seconds to load, for text like "I want to talk to a person".
    """
    return (
        "@" in text
        or len(_digits(text)) >= _FEWEST_PHONE_DIGITS
        or _EMAIL_OBFUSCATED.search(text) is not None
    )


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
