"""The composition root: the only place that turns settings into parts.

Everything else receives its parts by constructor injection, which keeps tests free to
pass fakes and keeps backend choice in one readable ``match``. :func:`build` builds
one of each part per call and hands the shared ones (the hand-off queue, the
conversation store, the store and embedder) to both facades, so a process that serves
customers and agents holds one queue object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from supportbot.accounts import AccountStore
from supportbot.audit import AuditLog
from supportbot.config import HandoffSettings, Settings
from supportbot.conversation import (
    ConversationStore,
    MemoryConversationStore,
    SqliteConversationStore,
)
from supportbot.embed import Embedder, HashEmbedder, SentenceTransformerEmbedder
from supportbot.errors import ConfigError
from supportbot.gaps import AgentAnswers, GapFinder
from supportbot.generate import Generator, LlamaCppGenerator, OpenAIGenerator, ScriptedGenerator
from supportbot.handoff.packet import HandoffPacket
from supportbot.handoff.queue import SqliteHandoffQueue
from supportbot.store import ChromaStore, open_chroma_client

__all__ = [
    "Services",
    "build",
    "build_accounts",
    "build_answers",
    "build_gap_finder",
    "build_audit",
    "build_conversations",
    "build_embedder",
    "build_generator",
    "build_outbox",
    "build_queue",
    "build_sinks",
    "build_store",
]

logger = logging.getLogger("supportbot.factory")

if TYPE_CHECKING:
    from supportbot.bot import SupportBot
    from supportbot.desk import AgentDesk
    from supportbot.handoff.dispatch import Dispatcher
    from supportbot.handoff.outbox import Outbox
    from supportbot.handoff.sinks import HandoffSink


def build_embedder(settings: Settings, *, tuned: bool = True) -> Embedder:
    """The embedder named by ``settings.embedding.backend``.

    With ``tuned`` (the default), the model ``supportbot tune`` trained for this index
    when its record in the data folder says one is live (:mod:`supportbot.tuned`);
    ``tuned=False`` is ``embedding.model`` itself (what ``--revert`` goes back to).
    """
    from supportbot.tuned import live_tuned_model

    cfg = settings.embedding
    match cfg.backend:
        case "sentence-transformers":
            live = live_tuned_model(settings) if tuned else None
            model = str(live.path) if live is not None else cfg.model
            return SentenceTransformerEmbedder(model, batch_size=cfg.batch_size, device=cfg.device)
        case "hash":
            return HashEmbedder(cfg.hash_dimension)
    raise AssertionError(f"unhandled embedding backend {cfg.backend!r}")  # pragma: no cover


def build_store(settings: Settings) -> ChromaStore:
    """A Chroma server when ``store.url`` is set, else the embedded database on disk."""
    if settings.store.url:
        client = open_chroma_client(url=settings.store.url)
    else:
        client = open_chroma_client(path=str(settings.store_path))
    return ChromaStore(client, settings.store.collection)


def build_generator(settings: Settings) -> Generator:
    """The answering model named by ``settings.llm.backend`` (and ``llm.model``, a pack).

    Raises:
        ConfigError: a pack is named that is not installed (or changed since it was
            verified), or 'openai' without a URL.
    """
    llm = settings.llm
    match llm.backend:
        case "llama-cpp":
            path, n_ctx, style = llm.model_path, llm.n_ctx, llm.prompt_style
            if path is None and llm.model != "default":
                from supportbot.models import get_pack, resolve_pack

                # A pack: its verified file, its prompt style and (unless set) its context.
                pack = get_pack(llm.model)
                path = resolve_pack(pack, settings.models_path)
                if style == "auto":
                    style = "chat" if pack.chat else "completion"
                if "n_ctx" not in llm.model_fields_set:
                    n_ctx = pack.n_ctx
            return LlamaCppGenerator(
                path,
                n_ctx=n_ctx,
                n_threads=llm.n_threads,
                style=style,
                temperature=llm.temperature,
                repeat_penalty=llm.repeat_penalty,
            )
        case "openai":
            if not llm.base_url:
                raise ConfigError(
                    "SUPPORTBOT_LLM__BACKEND=openai needs SUPPORTBOT_LLM__BASE_URL, e.g. "
                    "http://localhost:8080/v1."
                )
            style = "completion" if llm.prompt_style == "auto" else llm.prompt_style
            return OpenAIGenerator(
                llm.base_url,
                model=llm.api_model,
                api_key=llm.api_key,
                style=style,
                timeout=llm.timeout,
                temperature=llm.temperature,
                repeat_penalty=llm.repeat_penalty,
            )
        case "scripted":
            return ScriptedGenerator()
    raise AssertionError(f"unhandled llm backend {llm.backend!r}")  # pragma: no cover


def build_conversations(settings: Settings) -> ConversationStore:
    """In-memory or SQLite conversation storage."""
    if settings.conversation.backend == "sqlite":
        return SqliteConversationStore(settings.conversations_path)
    return MemoryConversationStore()


def build_audit(settings: Settings) -> AuditLog:
    """The audit log in the data folder (``<data_dir>/audit.db``)."""
    return AuditLog(settings.audit_path)


def build_accounts(settings: Settings, audit: AuditLog | None = None) -> AccountStore:
    """The local account store (``<data_dir>/accounts.db``), recording changes in ``audit``."""
    ui = settings.ui
    return AccountStore(
        settings.accounts_path,
        audit=audit,
        max_failures=ui.sign_in_attempts,
        lock_seconds=ui.sign_in_lock_seconds,
    )


def build_answers(settings: Settings, audit: AuditLog | None = None) -> AgentAnswers:
    """The managed FAQ of agents' answers (``<data_dir>/agent-answers.yaml``), audited."""
    g = settings.gaps
    return AgentAnswers(
        settings.agent_answers_path,
        title=g.faq_title,
        allow=settings.public_values,
        audit=audit,
        max_also_asked=g.also_asked,
    )


def build_gap_finder(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    conversations: ConversationStore | None = None,
    queue: SqliteHandoffQueue | None = None,
    answers: AgentAnswers | None = None,
) -> GapFinder:
    """The knowledge-gap report over the conversations and hand-offs in the data folder.

    Alone (the CLI), it reads the SQLite conversation store whatever
    ``conversation.backend`` says: the web UI, where customers rate answers, keeps
    conversations there.
    """
    if conversations is None:
        conversations = SqliteConversationStore(settings.conversations_path)
    return GapFinder(
        settings.gaps,
        embedder=embedder or build_embedder(settings),
        conversations=conversations,
        queue=queue or build_queue(settings),
        answers=answers or build_answers(settings),
        allow=settings.public_values,
    )


def build_queue(settings: Settings) -> SqliteHandoffQueue:
    """The hand-off queue (and its outbox) in ``<data_dir>/handoffs.db``."""
    return SqliteHandoffQueue(settings.handoff_queue_path)


def build_outbox(
    settings: HandoffSettings, queue: SqliteHandoffQueue, *, start: bool = True
) -> Outbox | None:
    """The durable outbox worker for ``settings.webhook_url`` (None when it is not set).

    Its rows live in ``queue``'s database; ``start`` runs its worker thread now, which
    also resumes deliveries an earlier process left pending.

    Raises:
        ConfigError: the URL is not an http(s) URL.
    """
    from supportbot.handoff.outbox import Outbox
    from supportbot.handoff.sinks import WebhookSink

    if not settings.webhook_url:
        return None
    webhook = WebhookSink(
        settings.webhook_url,
        secret=settings.webhook_secret,
        retries=settings.webhook_retries,
        backoff=settings.webhook_backoff,
        timeout=settings.webhook_timeout,
        dead_letter=queue,
    )
    return Outbox(queue, webhook, start=start)


def build_sinks(
    settings: HandoffSettings,
    queue: SqliteHandoffQueue,
    callback: Callable[[HandoffPacket], None] | None = None,
) -> list[HandoffSink]:
    """The delivery sinks named in ``settings.sinks``, besides the queue itself.

    The queue is the system of record and always gets every packet ('sqlite' in
    ``sinks`` names it, for clarity). A webhook is delivered by the durable outbox
    (:func:`build_outbox`): rows in ``queue``'s database, sent by a worker thread, so a
    slow helpdesk never delays the customer and nothing is lost when the process ends.

    Raises:
        ConfigError: 'webhook' without ``webhook_url``, or 'callback' without a callback.
    """
    from supportbot.handoff.sinks import CallbackSink

    sinks: list[HandoffSink] = []
    for name in dict.fromkeys(settings.sinks):
        if name == "sqlite":
            continue
        if name == "webhook":
            if not settings.webhook_url:
                raise ConfigError(
                    "handoff.sinks includes 'webhook' but handoff.webhook_url is not set. Set "
                    "it ([handoff] webhook_url in supportbot.toml or "
                    "SUPPORTBOT_HANDOFF__WEBHOOK_URL) or remove 'webhook' from handoff.sinks."
                )
            outbox = build_outbox(settings, queue)
            assert outbox is not None
            sinks.append(outbox)
        elif name == "callback":
            if callback is None:
                raise ConfigError(
                    "handoff.sinks includes 'callback' but no callback function was given. "
                    "Pass one (a function taking a HandoffPacket), or remove 'callback' from "
                    "handoff.sinks."
                )
            sinks.append(CallbackSink(callback))
        else:  # pragma: no cover - settings validation forbids other names
            raise ConfigError(f"Unknown hand-off sink {name!r}; use sqlite, webhook or callback.")
    if "sqlite" not in settings.sinks and not sinks:
        logger.warning("handoff.sinks is empty: hand-offs reach only the local queue")
    return sinks


@dataclass(frozen=True)
class Services:
    """Everything one process serves, sharing one set of parts.

    Attributes:
        bot: the customer side (ask, stream, escalate, feedback).
        desk: the agent side (hand-off queue, claim, reply, resolve, hand back).
        settings: the settings both were built from.
        embedder: the embedding model, shared with an in-process ingest (the KB page).
        store: the vector store, shared with an in-process ingest or document removal.
        audit: the audit log the desk writes to (and the knowledge-base page).
        dispatcher: hands conversations over for both (the queue, the outbox worker).
        gaps: the knowledge-gap report (questions the documents did not answer).
        answers: the managed FAQ of agents' answers (publish it with ``ingest/answers.py``).
    """

    bot: SupportBot
    desk: AgentDesk
    settings: Settings
    embedder: Embedder
    store: ChromaStore
    audit: AuditLog | None = None
    dispatcher: Dispatcher | None = None
    gaps: GapFinder | None = None
    answers: AgentAnswers | None = None

    def close(self) -> None:
        """Stop the outbox worker (what it has not sent stays in the outbox)."""
        if self.dispatcher is not None:
            self.dispatcher.close()


def build(
    settings: Settings | None = None,
    on_handoff: Callable[[HandoffPacket], None] | None = None,
    *,
    embedder: Embedder | None = None,
    store: ChromaStore | None = None,
    generator: Generator | None = None,
    conversations: ConversationStore | None = None,
    audit: AuditLog | None = None,
) -> Services:
    """Build every part from ``settings`` and the two facades over them.

    Args:
        settings: what to build (defaults, ``supportbot.toml`` and ``SUPPORTBOT_*``
            variables when None).
        on_handoff: the Python callback of the 'callback' hand-off sink.
        embedder: use this embedder instead of building one (e.g. one already loaded).
        store: use this vector store instead of opening the configured one.
        generator: use this model instead of building one (e.g. a scripted fake).
        conversations: use this conversation store (e.g. the helpdesk's own).
        audit: use this audit log (default: ``<data_dir>/audit.db``).

    Raises:
        ConfigError: the settings name something that cannot be built.

    Example:
        >>> services = build(load_settings())
        >>> services.bot.ask("What does E-104 mean?").answer
        >>> services.desk.handoffs("open")
    """
    from supportbot.bot import SupportBot
    from supportbot.desk import AgentDesk
    from supportbot.escalation import EscalationPolicy
    from supportbot.handoff.dispatch import Dispatcher
    from supportbot.retrieve import HybridRetriever
    from supportbot.safety.ratelimit import RateLimiter
    from supportbot.span import SpanSelector
    from supportbot.verify import AnswerVerifier

    settings = settings or Settings()
    embedder = embedder or build_embedder(settings)
    store = store or build_store(settings)
    conversations = conversations or build_conversations(settings)
    queue = build_queue(settings)
    h = settings.handoff
    dispatcher = Dispatcher(
        queue,
        build_sinks(h, queue, on_handoff),
        redact_pii=h.redact_pii,
        allow=settings.public_values,
        identifiers=settings.product.identifier_patterns,
    )
    r, v, cs = settings.retrieval, settings.verify, settings.conversation
    retriever = HybridRetriever(
        embedder,
        store,
        candidates=r.candidates,
        rrf_k=r.rrf_k,
        calibrated=settings.calibration.enabled,
    )
    bot = SupportBot(
        settings=settings,
        embedder=embedder,
        retriever=retriever,
        selector=SpanSelector(
            embedder,
            retriever.keyword.section_of,
            retriever.keyword.idf,
            max_words=settings.answer.selection_words,
            passages=settings.answer.selection_passages,
            whole_section=settings.answer.whole_section_words,
        ),
        generator=generator or build_generator(settings),
        verifier=AnswerVerifier(embedder, v.min_overlap, v.min_similarity),
        policy=EscalationPolicy(settings.escalation, settings.product),
        conversations=conversations,
        handoffs=queue,
        dispatcher=dispatcher,
        # Per conversation, shared by every conversation this process serves.
        rate_limiter=RateLimiter(cs.rate_limit_messages, cs.rate_limit_window),
    )
    audit = audit or build_audit(settings)
    desk = AgentDesk(
        settings=settings,
        handoffs=queue,
        conversations=conversations,
        dispatcher=dispatcher,
        audit=audit,
    )
    answers = build_answers(settings, audit)
    gaps = build_gap_finder(
        settings, embedder=embedder, conversations=conversations, queue=queue, answers=answers
    )
    return Services(bot, desk, settings, embedder, store, audit, dispatcher, gaps, answers)
