"""Generator plumbing without running a model (llama_cpp.Llama is patched where needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from supportbot import generate
from supportbot.errors import ModelError
from supportbot.generate import LlamaCppGenerator, PromptParts, ScriptedGenerator
from supportbot.prompt import build_prompt
from supportbot.types import Chunk, Hit

PROMPT = PromptParts(
    "Answer from the sources.",
    "[1] The sky is blue.",
    "What colour is the sky?",
    history=(("user", "hi"), ("assistant", "hello")),
)


class FakeLlama:
    def __init__(self, template: str | None) -> None:
        self.metadata = {"tokenizer.chat_template": template} if template else {}
        self.calls: list[tuple[str, Any]] = []

    def create_chat_completion(self, **kw: Any) -> Any:
        self.calls.append(("chat", kw))
        return iter(
            [
                {"choices": [{"delta": {"content": "Blue"}}]},
                {"choices": [{"delta": {"content": " [1]."}}]},
            ]
        )

    def create_completion(self, **kw: Any) -> Any:
        self.calls.append(("completion", kw))
        return iter([{"choices": [{"text": " Blue [1]."}]}])

    def tokenize(self, data: bytes, add_bos: bool = False, special: bool = False) -> list[int]:
        return list(range(len(data.split())))


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    p = tmp_path / "my-chat-model.gguf"
    p.write_bytes(b"GGUF")
    return p


def test_chat_models_use_the_template_from_their_metadata(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeLlama("{% for m in messages %}...{% endfor %}")
    monkeypatch.setattr(generate, "load_llama", lambda *a: fake)
    gen = LlamaCppGenerator(gguf)
    assert gen.style == "chat"
    assert "".join(gen.stream(PROMPT, 20, ["\n\n"])) == "Blue [1]."
    kind, kw = fake.calls[0]
    assert kind == "chat" and kw["messages"][0]["role"] == "system"
    assert "The sky is blue." in kw["messages"][-1]["content"]


def test_base_models_get_a_completion_prompt(gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLlama(None)
    monkeypatch.setattr(generate, "load_llama", lambda *a: fake)
    gen = LlamaCppGenerator(gguf)
    assert gen.style == "completion"
    assert "".join(gen.stream(PROMPT, 20, [])) == " Blue [1]."
    prompt = fake.calls[0][1]["prompt"]
    assert prompt.endswith("Question: What colour is the sky?\nAnswer:")
    assert "Customer: hi\nAgent: hello" in prompt
    assert gen.count_tokens("one two three") == 3


def test_missing_gguf_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="SUPPORTBOT_LLM__MODEL_PATH"):
        generate.load_llama(tmp_path / "absent.gguf", 512, 0)


def test_corrupt_gguf_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all")
    with pytest.raises(ModelError, match="Could not load"):
        generate.load_llama(bad, 512, 0)


def test_scripted_generator_records_prompts_and_honours_stops() -> None:
    gen = ScriptedGenerator()
    gen.enqueue("Blue [1].\n\nQuestion: more?")
    assert "".join(gen.stream(PROMPT, 10, ["\n\n"])) == "Blue [1]."
    assert gen.history == [PROMPT]


def test_prompt_budget_keeps_the_best_sources_that_fit() -> None:
    hits = [
        Hit(Chunk(id=str(i), text=" ".join(["word"] * 50), source="s", title="T"), 0.5, i)
        for i in range(1, 6)
    ]
    parts, used = build_prompt("q", hits, lambda t: len(t.split()), budget=120)
    assert len(used) == 2 and parts.sources.startswith("[1] word") and "[3]" not in parts.sources
    parts, used = build_prompt("q", hits, lambda t: len(t.split()), budget=20)
    assert len(used) == 1 and len(parts.sources.split()) <= 20  # the best one, cut to fit
