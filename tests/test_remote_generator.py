"""The remote backend (OpenAIGenerator) against llama-cpp-python's own server on localhost.

The server is ``python -m llama_cpp.server`` (the ``llama-cpp-python[server]`` extra, in
the ``test`` extra of pyproject.toml) serving the packaged Gemma 3 270M GGUF, bound to
127.0.0.1 on a free port, with every "go online" switch turned off.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ingest import run_ingest
from supportbot.bot import Reply, SupportBot
from supportbot.config import Settings
from supportbot.errors import ModelError
from supportbot.generate import LlamaCppGenerator, OpenAIGenerator, PromptParts, default_gguf_path
from supportbot.prompt import INSTRUCTIONS, STOP

pytestmark = pytest.mark.model

N_CTX = 1024
# llama-cpp-python's server samples with repeat_penalty=1.1 unless the request says
# otherwise, and OpenAIGenerator sends none; the in-process reference must use the same.
SERVER_REPEAT_PENALTY = 1.1
START_TIMEOUT = 60.0

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "DO_NOT_TRACK": "1",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

# A prompt only the comparison test sends (see the comment there on why that matters).
CHARGING = PromptParts(
    INSTRUCTIONS,
    "[1] Plug the widget into the USB-C port.\n[2] A full charge takes 90 minutes.",
    "How do I charge it?",
)
WARNING_LIGHT = PromptParts(
    "Answer from the source.", "[1] W-42 means the widget is too hot.", "What does W-42 mean?"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env.update(OFFLINE_ENV)
    return env


@contextmanager
def _llama_server(log: Path, chat_format: str = "gemma") -> Iterator[str]:
    """Start llama-cpp-python's server on a free port; yield its ``/v1`` URL; stop it."""
    port = _free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(default_gguf_path()),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(N_CTX),
        # One thread: llama.cpp's worker threads spin-wait, and on a busy 2-core machine a
        # second batch thread made every prompt evaluation take ~3.5 s instead of ~0.2 s.
        "--n_threads", "1", "--n_threads_batch", "1",
        # The GGUF has no chat template (llama-cpp-python would fall back to llama-2);
        # use Gemma's own turn format for /v1/chat/completions.
        "--chat_format", chat_format,
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_offline_env())
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{_tail(log)}")
            try:
                if httpx.get(f"{base_url}/models", timeout=1.0, trust_env=False).is_success:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer in {START_TIMEOUT} s:\n{_tail(log)}")
            time.sleep(0.1)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx honours *_PROXY variables: make sure the client talks to 127.0.0.1 directly."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    for var, value in OFFLINE_ENV.items():
        monkeypatch.setenv(var, value)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server shared by the tests that only need *an* answer."""
    with _llama_server(tmp_path_factory.mktemp("llama-server") / "server.log") as url:
        yield url


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[str]:
    """A server that has evaluated nothing yet (for the exact comparison)."""
    with _llama_server(tmp_path / "server.log") as url:
        yield url


def test_completion_style_streams_what_the_in_process_model_writes(fresh_server: str) -> None:
    remote = OpenAIGenerator(fresh_server, style="completion", timeout=60)
    pieces = list(remote.stream(CHARGING, 40, STOP))
    text = "".join(pieces)
    assert len(pieces) > 1, pieces  # streamed, not one blob
    assert text.strip()

    # Greedy decoding (temperature 0) on the same GGUF, with the same sampling settings,
    # batch size and context, gives the same tokens in-process. Two conditions matter:
    # * repeat_penalty: the server applies its default (1.1) because OpenAIGenerator does
    #   not send one; LlamaCppGenerator's default is 1.15, which changes the answer.
    # * a clean KV cache on both sides: llama.cpp reuses the longest cached prompt prefix
    #   and, on a full match, re-evaluates the last prompt token alone; that one-token batch
    #   rounds differently from the whole-prompt batch, enough to flip a near-tie later in
    #   the answer (seen here: the same prompt sent twice in a row diverged after ~25
    #   tokens). Hence a fresh server, a prompt no other test sends, and reset().
    local = LlamaCppGenerator(n_ctx=N_CTX, n_threads=1, repeat_penalty=SERVER_REPEAT_PENALTY)
    local.llama.reset()
    expected = "".join(local.stream(CHARGING, 40, STOP))
    assert text.split()[:4] == expected.split()[:4], (text, expected)
    assert text == expected


def test_chat_style_streams_text_from_chat_completions(server: str) -> None:
    remote = OpenAIGenerator(server, style="chat", timeout=60)
    assert remote.style == "chat"
    pieces = list(remote.stream(WARNING_LIGHT, 16, []))
    assert len(pieces) > 1, pieces
    assert "".join(pieces).strip()


def test_a_server_that_is_down_raises_model_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there any more
    remote = OpenAIGenerator(url, timeout=5)
    with pytest.raises(ModelError, match="Could not reach the model server") as err:
        list(remote.stream(WARNING_LIGHT, 8, []))
    assert url in str(err.value)


def test_an_http_error_status_raises_model_error(server: str) -> None:
    wrong = server.removesuffix("/v1") + "/nope"
    with pytest.raises(ModelError, match="answered 404") as err:
        list(OpenAIGenerator(wrong, timeout=30).stream(WARNING_LIGHT, 8, []))
    assert wrong in str(err.value)


def test_a_failure_inside_the_stream_raises_model_error(server: str) -> None:
    huge = PromptParts(INSTRUCTIONS, "[1] " + "widget " * (N_CTX * 2), "Why?")
    with pytest.raises(ModelError):
        list(OpenAIGenerator(server, timeout=30).stream(huge, 8, []))


def test_every_stop_string_is_honoured(server: str) -> None:
    # The fifth stop string, a space, occurs in any English answer of a few tokens.
    stop = ["\nQuestion:", "Question:", "\n\n", "Sources (", " "]
    text = "".join(OpenAIGenerator(server, timeout=60).stream(WARNING_LIGHT, 24, stop))
    assert " " not in text, text


def test_supportbot_answers_through_the_remote_backend(
    server: str, kb_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        embedding={"backend": "hash"},
        llm={
            "backend": "openai",
            "base_url": server,
            "api_model": "x",
            "max_tokens": 48,
            "timeout": 60,
        },
        escalation={"enabled": False},
    )
    report = run_ingest([kb_dir], settings)
    assert report.ok and report.count("added") == 3

    bot = SupportBot.from_settings(settings)
    assert isinstance(bot._generator, OpenAIGenerator)
    reply = bot.ask("How long does a full charge of the widget take?")
    assert isinstance(reply, Reply)
    assert reply.mode in ("generated", "extract", "faq")
    assert reply.citations
    assert reply.answer
    if reply.mode != "faq":  # the model was asked: the server must have answered something
        assert reply.trace.raw_answer, reply
