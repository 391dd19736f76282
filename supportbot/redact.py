"""Find and replace personal data (PII) in customer text before it leaves the bot.

Hand-off packets, webhook bodies and log lines carry redacted text only; the raw
transcript stays in the local conversation store. Detection is a set of careful regular
expressions with checksums where the format has one, so it needs no model:

========  =====================================================================  =========
kind      what is detected                                                        validated
========  =====================================================================  =========
EMAIL     ``name@domain.tld``                                                     pattern
PHONE     international (``+44 20 7946 0958``, ``0044 ...``), North American     digit count
          (``(415) 555-0132``, ``415.555.0132``, ``1-800-555-0142``), national
          numbers with a trunk 0 (``020 7946 0958``, ``01 23 45 67 89``)
CARD      13-19 digits, optionally grouped by spaces or dashes                   Luhn + IIN
IBAN      ``DE89 3704 0044 0532 0130 00`` (grouped or compact, any case)         mod 97
SSN       ``078-05-1120`` / ``078 05 1120``, or 9 bare digits after "SSN"         area rules
IP        IPv4 and IPv6 addresses that can point at a customer (see below)       ipaddress
ADDRESS   house number + street name + suffix (``221B Baker Street``,             stop words
          ``12 oak st``, ``350 5th Ave, Apt 4``) and ``PO Box 123``
========  =====================================================================  =========

Kept on purpose: error codes (``E-104``), part numbers (``BW-PSU-12-2A``), serial numbers
(``BWN20473318``: a device identifier the agent needs; the hand-off masks it separately),
prices, versions (``3.4.2``), dates, times and digit runs that fail the Luhn check.

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

Example:
    >>> redact("Call me on +44 20 7946 0958 or mail jane@example.com")
    'Call me on [PHONE] or mail [EMAIL]'
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Iterator
from typing import Literal, NamedTuple

__all__ = ["PII_KINDS", "PiiKind", "PiiSpan", "find_pii", "luhn_valid", "mask", "redact"]

PiiKind = Literal["EMAIL", "PHONE", "CARD", "IBAN", "SSN", "IP", "ADDRESS"]

PII_KINDS: tuple[PiiKind, ...] = ("EMAIL", "IBAN", "CARD", "SSN", "IP", "PHONE", "ADDRESS")
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
_SEP = r"[ .\-]"
_EXT = r"(?:\s*(?i:x|ext\.?|extension)\s*\d{1,5})?"
_EXT_SPLIT = re.compile(r"\s*(?:x|ext\.?|extension)\s*(?=\d)", re.IGNORECASE)

_PHONE_PATTERNS: list[tuple[re.Pattern[str], int, int]] = [
    # (pattern, fewest digits, most digits)
    # +CC or 00CC, then 2-6 groups.
    (
        re.compile(
            rf"{_NUM_START}(?:\+|00)\s?[1-9]\d{{0,2}}(?:{_SEP}?\(\d{{1,5}}\)|{_SEP}?\d{{1,5}})"
            rf"(?:{_SEP}?\d{{2,5}}){{1,5}}{_EXT}{_NUM_END}"
        ),
        8,
        17,
    ),
    # North American: (415) 555-0132, 415-555-0132, 415.555.0132, 1-800-555-0142.
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
    # French style pairs: 01 23 45 67 89.
    (re.compile(rf"{_NUM_START}0[1-9](?:{_SEP}?\d{{2}}){{4}}{_EXT}{_NUM_END}"), 10, 10),
]

_CARD = re.compile(rf"{_NUM_START}[2-6](?:[ \-]?\d){{12,18}}{_NUM_END}")

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
    "Cres|Loop|Plaza|Alley|Grove|Gardens|Row|Walk|Mews"
)
# Suffixes that are also everyday words ("1 hard drive", "one easy way") need a
# capitalised street name; these do not.
_STRONG_SUFFIXES = frozenset(
    "street st avenue ave road rd boulevard blvd lane ln terrace parkway pkwy highway hwy".split()
)
_DIRECTION = r"(?:[NSEW]|N[EW]|S[EW]|North|South|East|West)\.?"
_ADDRESS = re.compile(
    rf"{_NUM_START}(?P<number>\d{{1,6}}(?:-\d{{1,6}})?[A-Za-z]?)\s+"
    rf"(?:{_DIRECTION}\s+)?"
    r"(?P<name>(?:(?:[A-Za-z][A-Za-z'.\-]*|\d{1,3}(?:st|nd|rd|th))\s+){1,4})"
    rf"(?P<suffix>{_STREET_SUFFIXES})\b"
    # A trailing "." is taken only when more of the address follows ("St. NW").
    rf"(?:\.?\s+{_DIRECTION}(?![\w']))?"
    r"(?:\.?,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|#)\.?\s*#?\s*[A-Za-z0-9\-]{1,6}\b)?",
    re.IGNORECASE,
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


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _ip_personal(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not any(ip.version == net.version and ip in net for net in _NON_PERSONAL_NETS)


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
        digits = _digits(m.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            yield m.span()


def _find_ssn(text: str) -> Iterator[tuple[int, int]]:
    for m in _SSN.finditer(text):
        yield m.span()
    for m in _SSN_BARE.finditer(text):
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


def _find_address(text: str) -> Iterator[tuple[int, int]]:
    for m in _ADDRESS.finditer(text):
        words = m.group("name").split()
        if any(w.lower().strip(".") in _STOP_WORDS for w in words):
            continue
        titled = all(w[0].isupper() or w[0].isdigit() for w in words)
        if not titled and m.group("suffix").lower() not in _STRONG_SUFFIXES:
            continue
        yield m.span()
    for m in _PO_BOX.finditer(text):
        yield m.span()


_FINDERS: dict[PiiKind, _Finder] = {
    "EMAIL": _find_email,
    "IBAN": _find_iban,
    "CARD": _find_card,
    "SSN": _find_ssn,
    "IP": _find_ip,
    "PHONE": _find_phone,
    "ADDRESS": _find_address,
}


def _normalise(value: str) -> str:
    return re.sub(r"[\W_]+", "", value).lower()


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
    allowed = {_normalise(a) for a in allow}
    taken: list[PiiSpan] = []
    for kind in PII_KINDS:
        for start, end in _FINDERS[kind](text):
            if allowed and _normalise(text[start:end]) in allowed:
                continue
            if any(start < t.end and t.start < end for t in taken):
                continue
            taken.append(PiiSpan(kind, start, end))
    return sorted(taken, key=lambda s: s.start)


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
