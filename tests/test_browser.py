"""The web UI in a real browser: Debian's headless Chromium driven by Selenium.

Starts ``streamlit run app.py`` on a free localhost port over a copy of the sample kb/
index (real embedder, real Gemma model), asks kb/ questions and waits for answers with
citations, takes a screenshot, and checks that two browser sessions at once each get
their own answer. An anonymous browser opening the agent console or the knowledge-base
page gets a sign-in form and no hand-off or document data; an account made with
``supportbot users add`` then signs in and sees the console.
``scripts/install-test-deps.sh`` (part of the README's test command) installs chromium
and chromium-driver; the test is skipped, with the reason printed, only when they are not
on the machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from test_offline import GUARD

from supportbot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
CITED = re.compile(r"\[1[\],]")  # a sources expander: "[1] ..." or "[1, 2] ..."
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [pytest.mark.model, pytest.mark.slow]

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    print(
        "test_browser: chromium/chromedriver not installed; run scripts/install-test-deps.sh "
        "(needs root or sudo and Debian's apt)",
        file=sys.stderr,
    )
    pytest.skip(
        "Chromium and ChromeDriver are not installed (scripts/install-test-deps.sh installs "
        "them with apt; it needs root or sudo)",
        allow_module_level=True,
    )


LAUNCH = """
import atexit, json, os, sys
sys.path.insert(0, os.environ["GUARD_DIR"])
import offline_guard  # before anything else

def dump():
    with open(os.environ["GUARD_OUT"], "w") as f:
        json.dump(offline_guard.ATTEMPTS, f)

atexit.register(dump)
from streamlit.web import cli
sys.argv = ["streamlit", "run", *sys.argv[1:]]
cli.main()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.5)
    return False


HANDOFF_MARKER = "Quokka-7731"  # in a hand-off's summary: shown only to signed-in agents


@pytest.fixture(scope="module")
def data_dir(kb_index: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's data folder: the kb index and one open hand-off."""
    from supportbot.conversation import Turn
    from supportbot.handoff.packet import build_packet
    from supportbot.handoff.queue import SqliteHandoffQueue

    data = tmp_path_factory.mktemp("browser") / "data"
    shutil.copytree(kb_index.data_dir, data)
    turns = [Turn("user", f"My order {HANDOFF_MARKER} never arrived, I want a person")]
    packet = build_packet("b" * 32, turns, ["HUMAN_REQUESTED"], redact_pii=False)
    SqliteHandoffQueue(data / "handoffs.db").deliver(packet)
    return data


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[str]:
    """The app served on localhost; yields its URL."""
    data = data_dir
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTBOT_")} | {
        "SUPPORTBOT_DATA_DIR": str(data),
        "HF_HUB_OFFLINE": "1",
    }
    # The server runs under the offline test's socket guard: every non-loopback
    # connection or DNS look-up it tries is refused and listed in attempts.json.
    guard = data.parent / "guard"
    guard.mkdir()
    (guard / "offline_guard.py").write_text(GUARD)
    attempts = guard / "attempts.json"
    env |= {"GUARD_DIR": str(guard), "GUARD_OUT": str(attempts)}
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            LAUNCH,
            str(ROOT / "app.py"),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not _wait_for_port(port, proc, 120):
            log.seek(0)
            pytest.fail(f"streamlit did not start on port {port}:\n{log.read()[-3000:]}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.seek(0)
        text = log.read()
        assert "Traceback" not in text, text[-3000:]
        # Streamlit did not look up the machine's external IP (checkip.amazonaws.com),
        # and nothing in the server tried the network.
        assert "External URL" not in text and "external IP" not in text, text[-3000:]
        assert attempts.is_file(), f"the guarded server did not exit cleanly:\n{text[-3000:]}"
        tried = json.loads(attempts.read_text())
        assert tried == [], "\n\n".join(f"{a['call']} {a['address']}\n{a['stack']}" for a in tried)


def _browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1200,1400",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


@pytest.fixture
def browsers(tmp_path: Path) -> Iterator[list[Any]]:
    """Two independent browser sessions (separate profiles)."""
    made: list[Any] = []
    try:
        for i in range(2):
            made.append(_browser(tmp_path / f"profile{i}"))
        yield made
    finally:
        for b in made:
            b.quit()


def _ask(driver: Any, url: str, question: str) -> str:
    """Open the chat, send ``question``, wait for the answer with a citation; page text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, 180)
    box = wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='stChatInputTextArea']"))
    )
    box.send_keys(question)
    box.send_keys(Keys.ENTER)

    def answered(d: Any) -> bool:
        msgs = d.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']")
        expanders = d.find_elements(By.CSS_SELECTOR, "[data-testid='stExpander']")
        return len(msgs) >= 2 and any(CITED.search(e.text) for e in expanders)

    wait.until(answered)
    return str(driver.find_element(By.TAG_NAME, "body").text)


def test_a_customer_asks_and_sees_a_cited_answer(
    server: str, browsers: list[Any], tmp_path: Path
) -> None:
    from PIL import Image

    driver = browsers[0]
    text = _ask(driver, server, "What does error E-104 mean on the Nexa router?")
    assert "E-104" in text
    assert CITED.search(text), text  # the first source, e.g. "[1] Guide > ..."
    assert "?c=" in driver.current_url  # the conversation id, for reloads

    shot = tmp_path / "chat.png"
    assert driver.save_screenshot(str(shot))
    with Image.open(shot) as img:
        assert img.size[0] >= 800 and img.size[1] >= 600
        colours = img.convert("RGB").getcolors(maxcolors=1_000_000) or []
        assert len(colours) > 50, "the screenshot looks blank"
    keep = os.environ.get("BROWSER_TEST_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)

    # A reload shows the same conversation.
    driver.refresh()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(
        lambda d: (
            "E-104" in d.find_element(By.TAG_NAME, "body").text
            and len(d.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']")) >= 2
        )
    )


def test_two_browser_sessions_get_their_own_answers(server: str, browsers: list[Any]) -> None:
    questions = (
        "How do I factory reset the Nexa router?",
        "What does the blinking blue light on the S1 satellite mean?",
    )
    with ThreadPoolExecutor(2) as pool:
        pages = list(
            pool.map(lambda bq: _ask(bq[0], server, bq[1]), zip(browsers, questions, strict=True))
        )
    assert questions[0] in pages[0] and questions[1] not in pages[0]
    assert questions[1] in pages[1] and questions[0] not in pages[1]
    assert browsers[0].current_url != browsers[1].current_url


def _body(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


def _sign_in_form(driver: Any, url: str) -> str:
    """Open ``url``, wait for the sign-in form; the page text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 120).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "input[type='password']"))
    )
    time.sleep(1)  # let the rest of the page render, if it were going to
    return _body(driver)


def test_console_and_kb_need_a_sign_in(server: str, browsers: list[Any], data_dir: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browsers[0]
    for path, title in (("agent", "Agent console"), ("kb", "Knowledge base")):
        text = _sign_in_form(driver, f"{server}/{path}")
        assert title in text and "Sign in" in text
        for secret in (HANDOFF_MARKER, "HUMAN_REQUESTED", "Open (", "Documents", "Audit log"):
            assert secret not in text, (path, secret, text)
        assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stExpander']")
        assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stFileUploader']")

    # An account made on the server with the CLI signs in and gets the console.
    password = "a long browser password"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTBOT_")}
    made = subprocess.run(
        [sys.executable, "-c", "from supportbot.cli import main; main()"]
        + ["users", "add", "robin", "--role", "agent", "--password-stdin"],
        input=password,
        text=True,
        capture_output=True,
        env=env | {"SUPPORTBOT_DATA_DIR": str(data_dir)},
        cwd=ROOT,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr

    _sign_in_form(driver, f"{server}/agent")
    driver.find_element(By.CSS_SELECTOR, "input[aria-label='Name']").send_keys("robin")
    driver.find_element(By.CSS_SELECTOR, "input[aria-label='Password']").send_keys("wrong one!")
    driver.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
    wait = WebDriverWait(driver, 180)
    wait.until(lambda d: "Wrong name or password." in _body(d))
    assert HANDOFF_MARKER not in _body(driver)

    driver.find_element(By.CSS_SELECTOR, "input[aria-label='Name']").send_keys("robin")
    driver.find_element(By.CSS_SELECTOR, "input[aria-label='Password']").send_keys(password)
    driver.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
    wait.until(lambda d: HANDOFF_MARKER in _body(d) and "Open (1)" in _body(d))
    text = _body(driver)
    assert "robin" in text and "Your name" not in text
    assert not driver.find_elements(By.CSS_SELECTOR, "input[type='password']")

    driver.find_element(By.XPATH, "//button[contains(normalize-space(), 'Sign out')]").click()
    # Signed out: the sign-in form comes back and the hand-off goes (the page re-renders in
    # steps, so wait for both rather than reading it mid-way).
    wait.until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "input[type='password']")
            and HANDOFF_MARKER not in _body(d)
        )
    )
