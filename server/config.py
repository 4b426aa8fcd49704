"""Parley's configuration: one typed object, read from the environment.

Every limit the server enforces has a name and a default here, so an operator can find and
change all of them in one place. Names are ``PARLEY_<FIELD>`` unless the field documents a
conventional name of its own (``DATABASE_URL``, ``REDIS_URL``, ``OPENAI_BASE_URL``, ...).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

DoubleTextingPolicy = Literal["queue", "reject", "interrupt"]
LogFormat = Literal["auto", "json", "text"]
DemoErpMode = Literal["host", "pack", "off"]
RedisModeName = Literal["auto", "standalone", "cluster", "sentinel"]


def _setting(default: Any, doc: str, *, env: str | None = None, secret: bool = False) -> Any:
    # Secrets stay out of repr() so a logged Settings object can never leak them.
    return field(default=default, repr=not secret, metadata={"doc": doc, "env": env})


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every setting of a Parley server, with its default."""

    # Deployment and services.
    dev: bool = _setting(False, "development mode: dev token route, dev secret, demo seed data")
    host: str = _setting("127.0.0.1", "address `parley serve` binds to")
    port: int = _setting(8000, "port `parley serve` listens on", env="PORT")
    workers: int = _setting(1, "worker processes `parley serve` runs on the port (2+: REDIS_URL)")
    database_url: str = _setting(
        "sqlite+aiosqlite:///./parley.db", "SQLAlchemy URL of the database", env="DATABASE_URL"
    )
    redis_url: str | None = _setting(
        None, "Redis URL; unset runs the embedded single-process store", env="REDIS_URL"
    )
    redis_mode: RedisModeName = _setting(
        "auto",
        "how to reach REDIS_URL: auto (a redis+sentinel:// URL means sentinel, a node with "
        "cluster_enabled:1 means cluster, else standalone), standalone, cluster or sentinel",
    )
    redis_prefix: str = _setting("parley:", "prefix of every Redis key and channel")
    redis_max_connections: int = _setting(
        64, "Redis connections: the blocking pool's size; per node on a cluster"
    )
    worker_id: str | None = _setting(
        None, "name of this worker in leases and logs (random if unset)"
    )

    # The model.
    openai_base_url: str | None = _setting(
        None, "OpenAI-compatible endpoint; unset uses the scripted dev model", env="OPENAI_BASE_URL"
    )
    openai_api_keys: tuple[str, ...] = _setting(
        (),
        "API keys, comma-separated; the next one is used on 429",
        env="OPENAI_API_KEY",
        secret=True,
    )
    model: str = _setting("gpt-4o-mini", "model name sent to the endpoint")
    model_context_tokens: int = _setting(
        16_000, "context budget for the conversation window sent to the model"
    )
    model_max_output_tokens: int = _setting(1_024, "tokens reserved for the model's reply")
    model_timeout_s: float = _setting(60.0, "whole-request timeout of one model call")
    model_stream_idle_timeout_s: float = _setting(
        30.0, "longest silence allowed between two streamed chunks"
    )
    model_max_attempts: int = _setting(3, "attempts per model call on 429/5xx/connect errors")
    model_max_retry_after_s: float = _setting(20.0, "longest Retry-After honoured before failing")
    model_prices: str = _setting(
        "gpt-4o-mini=0.15/0.60,gpt-4o=2.50/10.00,gpt-4.1=2.00/8.00,gpt-4.1-mini=0.40/1.60",
        "USD per million input/output tokens by model: name=in/out,...",
    )
    system_prompt: str = _setting(
        "You are Parley, an assistant inside the user's business application. Answer concisely. "
        "Use the tools to read data; actions that change data are confirmed by the user.",
        "system prompt placed first in every model request",
    )
    dev_model_token_rate: float = _setting(40.0, "dev model: tokens per second (0 = no delay)")

    # Authentication.
    jwt_secret: str | None = _setting(
        None, "HS256 secret the host app signs tokens with", secret=True
    )
    jwt_public_key_file: str | None = _setting(None, "PEM public key for RS256/ES256 tokens")
    jwt_audience: str | None = _setting(None, "required `aud` claim, if set")
    jwt_issuer: str | None = _setting(None, "required `iss` claim, if set")
    jwt_leeway_s: float = _setting(10.0, "clock skew tolerated on `exp`/`nbf`")
    dev_secret_file: str = _setting(".parley-dev-secret", "dev mode: file holding the dev secret")
    auth_cookie: str | None = _setting(None, "cookie name that may carry the token")
    reauth_grace_s: float = _setting(
        30.0, "after `token_expired`, time a socket has to send hello with a fresh token (4401)"
    )
    jwt_jwks_file: str | None = _setting(
        None, "JWKS file (JSON Web Key Set) of public keys for RS256/ES256 tokens, chosen by `kid`"
    )
    allowed_origins: tuple[str, ...] = _setting(
        (),
        "browser origins allowed to open a socket, comma-separated (`https://*.example.com` "
        "matches subdomains, `*` any origin); the server's own origin is always allowed",
    )
    require_origin: bool = _setting(
        False, "refuse handshakes without an Origin header (non-browser clients)"
    )

    # WebSocket protocol limits.
    hello_timeout_s: float = _setting(10.0, "time a socket has to send a valid hello")
    max_frame_bytes: int = _setting(64 * 1024, "largest frame accepted from a client (close 1009)")
    max_message_chars: int = _setting(8_000, "longest user message text")
    # Bytes bound the memory; frames are many and small (a delta per 5 ms), and half of this
    # is what a resuming tab may be replayed (about 100 s of a reply at 50 deltas a second).
    send_queue_frames: int = _setting(10_000, "frames queued for one socket before it is dropped")
    send_queue_bytes: int = _setting(2 * 1024 * 1024, "bytes queued for one socket before drop")
    send_close_timeout_s: float = _setting(
        5.0, "time a closing socket gets to take its close frame before it is cut"
    )
    keepalive_interval_s: float = _setting(20.0, "protocol-level ping interval of the server")
    keepalive_timeout_s: float = _setting(20.0, "time to answer a protocol-level ping")
    ws_compression: bool = _setting(False, "permessage-deflate; off against CRIME/BREACH leaks")

    # Abuse and cost limits (0 turns a limit off). Rate windows are fixed: they open with the
    # first hit, last `rate_window_s`, and every hit past the limit is refused until they end.
    rate_window_s: float = _setting(60.0, "length of the rate windows (the per-minute limits)")
    user_messages_per_minute: int = _setting(20, "user messages per user per rate window")
    tenant_messages_per_minute: int = _setting(600, "user messages per tenant per rate window")
    actions_per_minute: int = _setting(20, "action approvals (executions) per user per window")
    refused_confirms_per_minute: int = _setting(
        60, "confirm frames that decided nothing (unknown, expired, decided) per user per window"
    )
    max_connections_per_user: int = _setting(20, "open sockets per user (close 4429 above)")
    max_connections_per_ip: int = _setting(200, "open sockets per client address (close 4429)")
    connection_presence_ttl_s: float = _setting(
        60.0, "a socket's connection slot lapses this long after its worker stopped renewing it"
    )
    frames_per_second: float = _setting(
        20.0, "frames a socket may send per second, sustained (flooding closes with 1008)"
    )
    frame_burst: int = _setting(60, "frames a socket may send at once before the rate applies")
    max_messages_per_conversation: int = _setting(
        500, "messages (user and assistant) one conversation may hold"
    )
    budget_conversation_tokens: int = _setting(400_000, "tokens one conversation may use")
    budget_conversation_usd: float = _setting(5.0, "cost in USD one conversation may run up")
    budget_user_daily_tokens: int = _setting(2_000_000, "tokens per user per UTC day")
    budget_user_daily_usd: float = _setting(10.0, "cost in USD per user per UTC day")
    budget_tenant_daily_tokens: int = _setting(50_000_000, "tokens per tenant per UTC day")
    budget_tenant_daily_usd: float = _setting(500.0, "cost in USD per tenant per UTC day")
    budget_warning_ratio: float = _setting(
        0.8, "share of a budget after which each turn sends a budget_warning"
    )

    # Sensitive fields in tool results and host context, removed before the model sees them.
    redact_fields: tuple[str, ...] = _setting(
        ("ssn", "password", "api_key", "card_number", "iban"),
        "field names removed from tool results and context (case, '-' and '_' ignored)",
    )
    redact_patterns: str = _setting(
        "",
        "regular expressions masked in tool results and context: a JSON list, or one per line",
    )
    redact_builtin_patterns: bool = _setting(
        True, "also mask card numbers, IBANs and signed tokens (JWTs) found in text"
    )

    # Turns.
    double_texting: DoubleTextingPolicy = _setting(
        "queue", "a message while a turn runs: queue, reject or interrupt"
    )
    turn_lease_ttl_s: float = _setting(15.0, "lease on a running turn; renewed at a third of it")
    turn_max_s: float = _setting(600.0, "hard limit on one turn, tool waits included")
    turn_queue_max: int = _setting(5, "messages queued behind a running turn per conversation")
    tool_rounds_max: int = _setting(8, "model rounds with tool calls allowed in one turn")
    confirmation_ttl_s: float = _setting(300.0, "time the user has to approve or reject an action")
    page_tool_timeout_s: float = _setting(
        10.0, "time a tab has to answer a page tool call before the model hears a tool error"
    )
    page_tools_max: int = _setting(32, "page tools one connection may register")
    page_tools_max_bytes: int = _setting(
        32 * 1024, "bytes (as JSON) of one connection's page tool registration"
    )
    # A message that is one of these words, alone (case and trailing punctuation ignored),
    # decides the conversation's one pending approval as the card's buttons would.
    confirm_yes_words: tuple[str, ...] = _setting(
        (
            "yes", "y", "confirm", "go ahead", "proceed", "approve", "ok",
            "ja", "bestätigen", "weiter", "genehmigen", "fortfahren",
        ),
        "typed words that approve the one pending action of a conversation, comma-separated",
    )  # fmt: skip
    confirm_no_words: tuple[str, ...] = _setting(
        ("no", "n", "cancel", "reject", "stop", "nein", "abbrechen", "ablehnen", "stopp"),
        "typed words that reject the one pending action of a conversation, comma-separated",
    )
    pending_note_max: int = _setting(
        5, "pending approvals named to the model in one turn's note (the rest are counted)"
    )
    tools: tuple[str, ...] = _setting(
        ("examples.erp:pack",), "tool packs to load: import paths, comma-separated"
    )
    tool_sources: str | None = _setting(
        None, "TOML file of host apps whose tools Parley calls over the network ([[source]])"
    )
    profiles: str | None = _setting(
        None,
        "TOML file of assistant profiles ([[profile]]: prompt, tools, model, roles, budgets); "
        "unset: one default profile made of these settings",
    )
    demo_erp: DemoErpMode = _setting(
        "host",
        "dev mode: what `parley serve` makes of the demo ERP pack named in PARLEY_TOOLS: host "
        "starts the demo ERP app (python -m examples.erp) beside Parley and reaches it only as "
        "the tool source `erp`; pack loads the pack in-process; off leaves it out",
    )
    demo_erp_port: int = _setting(
        0, "dev mode, PARLEY_DEMO_ERP=host: port of the demo ERP app on 127.0.0.1 (0: a free one)"
    )
    demo_erp_database_url: str | None = _setting(
        None,
        "dev mode, PARLEY_DEMO_ERP=host: the demo ERP app's own database (unset: erp-demo.db "
        "beside Parley's SQLite file, or ./erp-demo.db)",
    )
    demo_erp_url: str | None = _setting(
        None,
        "dev mode: URL of the demo ERP app whose live books the demo page shows (set by "
        "`parley serve` when it starts the app)",
    )
    demo_knowledge: str | None = _setting(
        None,
        "dev mode: manifest of the demo's knowledge collections, which each worker loads once it "
        "runs (set by `parley serve` with the demo ERP)",
    )
    tool_timeout_s: float = _setting(
        10.0, "time one attempt of a call to a tool source may take, unless the source sets one"
    )
    tool_response_max_bytes: int = _setting(
        256 * 1024, "bytes of a tool source's answer read; the rest is cut with a note"
    )
    tool_document_max_bytes: int = _setting(
        5 * 1024 * 1024, "largest OpenAPI document (or tool list) a source may publish"
    )
    tool_result_max_chars: int = _setting(
        16_000, "characters of one tool result (or action outcome) the model reads; more is cut"
    )
    tool_error_max_chars: int = _setting(
        500, "characters of a host's error message passed on to the model and the user"
    )
    tool_source_concurrency: int = _setting(
        16, "calls one worker makes to one tool source at once; more wait their turn"
    )
    tool_query_attempts: int = _setting(
        3, "attempts of a query on connection errors and 5xx answers"
    )
    tool_action_attempts: int = _setting(
        3, "attempts of an approved action where no answer came, all with the same key"
    )
    tool_retry_base_s: float = _setting(
        0.2, "pause before the second attempt of a tool call; doubles with every further one"
    )
    tool_breaker_failures: int = _setting(
        5, "failures in a row after which a tool source's circuit opens (its tools are hidden)"
    )
    tool_breaker_reset_s: float = _setting(
        30.0, "time an open circuit waits before one trial call may go to the source again"
    )
    tool_source_retry_s: float = _setting(
        15.0, "how often a worker tries again to load a tool source that is down"
    )
    tool_token_ttl_s: float = _setting(
        30.0, "lifetime of the JWT on each call to a tool source (at most 60)"
    )
    tool_token_issuer: str = _setting("parley", "`iss` claim of the JWTs sent to tool sources")
    tool_signing_key_file: str | None = _setting(
        None,
        "PEM private key (EC P-256 or RSA) signing tool-source JWTs of sources without a "
        "`secret`; its public half is served at /.well-known/jwks.json",
    )
    dev_signing_key_file: str = _setting(
        ".parley-dev-signing-key.pem", "dev mode: file holding the generated tool-signing key"
    )
    # Views of tool results (tables, charts, metrics) and their CSV exports.
    view_max_rows: int = _setting(
        50, "rows of a table or chart view sent to the browser; the rest are counted in total_rows"
    )
    view_max_bytes: int = _setting(
        48 * 1024, "largest encoded view sent to the browser; rows are dropped until it fits"
    )
    snapshot_tool_lines: int = _setting(
        40, "tool lines of stored answers in a rebuilding tab's ready snapshot; the newest are sent"
    )
    snapshot_tool_views: int = _setting(
        8, "of those, the newest that carry their view; older lines come without it"
    )
    export_max_rows: int = _setting(
        10_000, "rows of a view kept for its CSV export; a longer result is cut there"
    )
    export_max_per_user: int = _setting(
        200, "CSV exports kept per user; making one more removes the oldest"
    )
    history_max_messages: int = _setting(100, "newest messages read when building the window")
    delta_flush_ms: float = _setting(5.0, "streamed text is batched this long before logging")
    delta_flush_chars: int = _setting(200, "or until this many characters are waiting")
    delta_max_waiting_chars: int = _setting(
        4_000,
        "streamed text held while a delta is being logged; past it the model is read no "
        "further until the log catches up",
    )
    context_cache_ttl_s: float = _setting(900.0, "how long a conversation window stays cached")
    context_cache_max_bytes: int = _setting(256 * 1024, "largest window kept in the cache")
    sweep_interval_s: float = _setting(
        5.0, "how often a worker looks for lapsed turns and stalled queues"
    )
    shutdown_drain_s: float = _setting(10.0, "on SIGTERM, time running turns get to finish")

    # Frame log.
    # At least two minutes of a turn logging as fast as the batching window lets it (one
    # response_delta per 5 ms: 200 a second), with room for the frames around it.
    log_max_frames: int = _setting(25_000, "frames kept per user for resume")
    log_max_age_s: float = _setting(600.0, "age after which logged frames may be trimmed")

    # Logs.
    log_level: str = _setting("INFO", "root log level")
    log_format: LogFormat = _setting("auto", "json lines, text, or auto (text on a terminal)")

    # REST API.
    api_page_size: int = _setting(20, "items per page of a REST list when `limit` is not given")
    api_page_max: int = _setting(100, "largest `limit` a REST list accepts")
    api_requests_per_minute: int = _setting(
        600, "REST requests per user per rate window (429 above; 0 = no limit)"
    )
    api_usage_groups_max: int = _setting(1_000, "most groups one usage report returns")

    # Escalation to a human: the help-desk webhook.
    escalation_webhook_url: str | None = _setting(
        None, "URL that receives a signed POST for every escalated conversation (unset: none)"
    )
    escalation_webhook_secret: str | None = _setting(
        None, "HMAC-SHA256 key of the webhook's X-Parley-Signature header", secret=True
    )
    webhook_timeout_s: float = _setting(10.0, "time one webhook delivery attempt may take")
    webhook_max_attempts: int = _setting(8, "delivery attempts before a webhook is given up")
    webhook_retry_base_s: float = _setting(
        5.0, "delay before the first webhook retry; doubles with every further attempt"
    )
    webhook_retry_max_s: float = _setting(600.0, "longest delay between two webhook attempts")
    webhook_poll_interval_s: float = _setting(
        5.0, "how often a worker looks for webhook deliveries that are due"
    )

    # Knowledge (documents the assistant searches and cites).
    knowledge_collections: tuple[str, ...] = _setting(
        (),
        "collections `search_knowledge` searches, comma-separated; empty: every collection of "
        "the tenant the user's roles allow",
    )
    knowledge_chunk_tokens: int = _setting(300, "largest chunk of a document, in tokens")
    knowledge_chunk_overlap_tokens: int = _setting(
        40, "tokens consecutive chunks of one section share"
    )
    knowledge_document_max_bytes: int = _setting(
        5 * 1024 * 1024, "largest document (file or REST body) a collection takes"
    )
    knowledge_search_results: int = _setting(5, "chunks one `search_knowledge` call returns")
    knowledge_query_max_terms: int = _setting(
        32, "words of a question that go into the full-text query; the rest are ignored"
    )
    knowledge_snippet_chars: int = _setting(
        300, "characters of a chunk shown as a citation's snippet"
    )
    knowledge_embeddings: bool = _setting(
        False,
        "also rank by vector similarity, with embeddings from the model endpoint's "
        "/v1/embeddings (reciprocal-rank fusion with full-text search)",
    )
    knowledge_embedding_model: str = _setting(
        "text-embedding-3-small", "model name sent to /v1/embeddings"
    )
    knowledge_embedding_batch: int = _setting(64, "texts embedded per /v1/embeddings request")
    knowledge_vector_scan_max: int = _setting(
        5_000,
        "embedded chunks one search compares exactly (per tenant and collections), when the "
        "database has no pgvector",
    )
    knowledge_pgvector: bool = _setting(
        True,
        "with embeddings on PostgreSQL: let pgvector compare the vectors in the database when "
        "the `vector` extension is installed there (detected at startup); off: always the "
        "bounded exact scan",
    )
    knowledge_numbered_turns_max: int = _setting(
        1_000, "running turns per worker whose citation numbers are remembered between searches"
    )

    # Metrics.
    metrics_enabled: bool = _setting(
        True, "serve Prometheus metrics at /metrics (multi-process with PROMETHEUS_MULTIPROC_DIR)"
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``), then apply ``overrides``.

        Raises:
            ValueError: a variable holds a value its setting cannot take.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            name = env_name(item)
            # An empty variable means "unset", except for lists, where it means "none".
            if name in env and (env[name] != "" or isinstance(item.default, tuple)):
                values[item.name] = _parse(item, env[name])
        values.update(overrides)
        return cls(**values)

    @property
    def embedded_state(self) -> bool:
        return self.redis_url is None

    @property
    def dev_model(self) -> bool:
        return self.openai_base_url is None

    def price_per_million(self, model: str) -> tuple[float, float] | None:
        """The (input, output) USD price per million tokens of ``model``, if configured."""
        for entry in self.model_prices.split(","):
            name, _, prices = entry.strip().partition("=")
            if name == model and "/" in prices:
                price_in, _, price_out = prices.partition("/")
                return float(price_in), float(price_out)
        return None


def env_name(item: dataclasses.Field[Any]) -> str:
    """The environment variable that sets ``item``."""
    return item.metadata.get("env") or f"PARLEY_{item.name.upper()}"


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting, for ``--help`` and the docs."""
    rows = []
    for item in dataclasses.fields(Settings):
        default = item.default
        shown = ",".join(default) if isinstance(default, tuple) else str(default)
        rows.append((env_name(item), "" if default is None else shown, item.metadata["doc"]))
    return rows


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(item: dataclasses.Field[Any], raw: str) -> Any:
    kind = _resolved_types()[item.name]
    if typing.get_origin(kind) in (types.UnionType, typing.Union):
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    name = env_name(item)
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ValueError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if typing.get_origin(kind) is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
        if raw not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return raw
    return raw


def _resolved_types() -> dict[str, Any]:
    return typing.get_type_hints(Settings, globalns=globals())
