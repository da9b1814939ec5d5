"""Command-line flags and environment variables, parsed into one frozen ``Config``.

Every flag has an environment variable (``CHATUI_<FLAG>``); a flag beats its
variable, which beats the default. ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``
are honoured when the chatui variables are not set. The README's
configuration table is generated from the same names: keep them in sync.
The generation settings' flags (``--temperature`` ...) are derived from
``chatui.settings.FIELDS`` and refuse a value outside its range, like the
REST API and the Settings form.

``parse_config`` checks everything that needs nothing loaded (a malformed
``--api-base``, a port out of range, ``--share`` without logins, an API exposed
without a token, unreadable auth or token files) and raises ``ConfigError``
with one sentence, so a wrong start fails in a fraction of a second.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from chatui.errors import ConfigError, InvalidRequest
from chatui.network import TrustedProxies, is_loopback
from chatui.serverinfo import CONTINUE_MODES
from chatui.settings import FIELDS, SettingField, Settings


@dataclass(frozen=True, slots=True)
class Config:
    command: str = "serve"
    api_base: str | None = None
    api_key: str | None = None
    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    data_dir: Path = field(default_factory=lambda: Path("~/.chatui").expanduser())
    auth: tuple[tuple[str, str], ...] = ()
    share: bool = False
    api_token: str | None = None
    api_tokens: tuple[tuple[str, str], ...] = ()  # (user, token) from --api-tokens-file
    anonymous_users: bool | None = None  # None: when listening beyond loopback
    trusted_proxies: tuple[str, ...] = ()  # addresses/networks whose X-Forwarded-For is believed
    user_concurrency: int = 2
    user_requests_per_minute: int = 20
    user_max_documents: int = 100
    user_max_chunks: int = 50_000
    concurrency_limit: int = 16
    max_queue: int = 64
    context: int = 4096
    model_threads: int | None = None  # the embedded model's; None: embedded.default_threads()
    continue_mode: str = "auto"  # chatui.serverinfo.CONTINUE_MODES
    connect_timeout: float = 10.0
    first_token_timeout: float = 120.0
    stall_timeout: float = 60.0
    embedding_model: str | None = None
    max_upload_mb: float = 25.0
    max_document_chars: int = 2_000_000
    max_document_chunks: int = 5_000
    allowed_image_hosts: tuple[str, ...] = ()  # images in answers/documents from these load
    defaults: Settings = field(default_factory=Settings)

    @property
    def embedded(self) -> bool:
        """True when no backend is configured and the bundled model must run."""
        return self.api_base is None


def _env(environ: Mapping[str, str], name: str, *fallbacks: str) -> str | None:
    for key in (f"CHATUI_{name}", *fallbacks):
        value = environ.get(key)
        if value:
            return value
    return None


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    def env(name: str, *fallbacks: str) -> str | None:
        return _env(environ, name, *fallbacks)

    parser = argparse.ArgumentParser(
        prog="chatui",
        description="A local chat web app for OpenAI-compatible model servers.",
    )
    parser.add_argument("command", nargs="?", choices=["serve", "chat"], default="serve",
                        help="serve: the web app and REST API (default); "
                             "chat: chat in the terminal")
    backend = parser.add_argument_group("model server")
    backend.add_argument("--api-base", default=env("API_BASE", "OPENAI_BASE_URL"),
                         help="OpenAI-compatible base URL ending in /v1; "
                              "unset: run the embedded model")
    backend.add_argument("--api-key", default=env("API_KEY", "OPENAI_API_KEY"))
    backend.add_argument("--context", type=int, default=int(env("CONTEXT") or 4096),
                         help="context size in tokens (embedded server's n_ctx, prompt budget)")
    backend.add_argument("--model-threads", type=int,
                         default=int(env("MODEL_THREADS") or 0) or None,
                         help="the embedded model's CPU threads (default: half the CPUs)")
    backend.add_argument("--continue-mode", default=env("CONTINUE_MODE") or "auto",
                         choices=CONTINUE_MODES,
                         help="how Continue asks the server to extend an answer: "
                              "auto (detect), final-message (llama-server, vLLM), "
                              "completions (the model's template on /v1/completions), "
                              "resend (send the history again)")
    backend.add_argument("--connect-timeout", type=float,
                         default=float(env("CONNECT_TIMEOUT") or 10))
    backend.add_argument("--first-token-timeout", type=float,
                         default=float(env("FIRST_TOKEN_TIMEOUT") or 120))
    backend.add_argument("--stall-timeout", type=float, default=float(env("STALL_TIMEOUT") or 60))
    server = parser.add_argument_group("web server")
    server.add_argument("--host", default=env("HOST") or "127.0.0.1")
    server.add_argument("--port", type=int, default=int(env("PORT") or 7860))
    server.add_argument("--data-dir", default=env("DATA_DIR") or "~/.chatui")
    server.add_argument("--auth", action="append", default=None, metavar="USER:PASSWORD",
                        help="require a login; repeat for several users")
    server.add_argument("--auth-file", default=env("AUTH_FILE"),
                        help="file with one user:password per line")
    server.add_argument("--share", action="store_true", default=env("SHARE") == "1",
                        help="public share link (refused without --auth)")
    server.add_argument("--api-token", default=env("API_TOKEN"),
                        help="bearer token required on /api (required when not on loopback)")
    server.add_argument("--api-tokens-file", default=env("API_TOKENS_FILE"),
                        help="file with one user:token per line: each token acts as that user")
    server.add_argument("--anonymous-users", action=argparse.BooleanOptionalAction,
                        default=_flag(env("ANONYMOUS_USERS")),
                        help="without --auth, give every browser its own anonymous user "
                             "(default: on when --host is not loopback)")
    server.add_argument("--trusted-proxies", default=env("TRUSTED_PROXIES") or "",
                        metavar="ADDRESSES",
                        help="comma-separated reverse proxy addresses or networks whose "
                             "X-Forwarded-For names the client (default: none, header ignored)")
    limits = parser.add_argument_group("per-user limits (with --auth or anonymous users; 0: none)")
    limits.add_argument("--user-concurrency", type=int, default=int(env("USER_CONCURRENCY") or 2),
                        help="answers one user may have generating at once")
    limits.add_argument("--user-requests-per-minute", type=int,
                        default=int(env("USER_REQUESTS_PER_MINUTE") or 20),
                        help="answers one user may start per minute")
    limits.add_argument("--user-max-documents", type=int,
                        default=int(env("USER_MAX_DOCUMENTS") or 100),
                        help="documents one user may keep")
    limits.add_argument("--user-max-chunks", type=int,
                        default=int(env("USER_MAX_CHUNKS") or 50_000),
                        help="passages one user's documents may hold in all")
    server.add_argument("--concurrency-limit", type=int,
                        default=int(env("CONCURRENCY_LIMIT") or 16),
                        help="answers streamed at once across all users")
    server.add_argument("--max-queue", type=int, default=int(env("MAX_QUEUE") or 64))
    rag = parser.add_argument_group("documents")
    rag.add_argument("--embedding-model", default=env("EMBEDDING_MODEL"),
                     help="sentence-transformers model name or folder (default: bundled MiniLM)")
    rag.add_argument("--max-upload-mb", type=float, default=float(env("MAX_UPLOAD_MB") or 25))
    rag.add_argument("--max-document-chars", type=int,
                     default=int(env("MAX_DOCUMENT_CHARS") or 2_000_000),
                     help="most characters one file may unpack to")
    rag.add_argument("--max-document-chunks", type=int,
                     default=int(env("MAX_DOCUMENT_CHUNKS") or 5_000),
                     help="most passages one file may make (0: no limit)")
    server.add_argument("--allowed-image-hosts", default=env("ALLOWED_IMAGE_HOSTS") or "",
                        metavar="HOSTS",
                        help="comma-separated hosts (host or host:port) whose images in answers "
                             "and documents are shown; others are links (default: none)")
    _settings_flags(parser, env)
    return parser


SETTINGS_GROUP = "default generation settings (for new chats)"


def _settings_flags(
    parser: argparse.ArgumentParser, env: Callable[[str], str | None]
) -> None:
    """One flag per ``chatui.settings.FIELDS`` row, ``--top-p`` for ``top_p``; checked alike."""
    group = parser.add_argument_group(SETTINGS_GROUP)
    for setting in FIELDS:
        raw = env(setting.name.upper())
        unset = f"default: {setting.unset}"
        if setting.kind is bool:
            group.add_argument(setting.flag, action=argparse.BooleanOptionalAction,
                               default=_flag(raw) or setting.default,
                               help=f"{setting.help.rstrip('.')} ({unset}).")
            continue
        span = f"{setting.range_text}; " if setting.range_text else ""
        # A text default goes through ``type`` too, so a bad variable is refused like a bad flag.
        group.add_argument(setting.flag, type=_checked(setting), default=raw,
                           metavar=setting.kind.__name__.upper() if setting.kind is not str
                           else "TEXT", help=f"{setting.help.rstrip('.')} ({span}{unset}).")


def _checked(setting: SettingField) -> Callable[[str], object]:
    def parse(raw: str) -> object:
        try:
            return setting.parse(raw)
        except InvalidRequest as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = setting.kind.__name__  # argparse names the type in its messages
    return parse


def _flag(raw: str | None) -> bool | None:
    return None if raw is None or raw == "" else raw.lower() in ("1", "true", "yes", "on")


def _trusted_proxies(raw: str) -> tuple[str, ...]:
    entries = tuple(part.strip() for part in raw.split(",") if part.strip())
    try:
        TrustedProxies(entries)
    except ValueError as error:
        raise ConfigError(f"--trusted-proxies: {error}.") from None
    return entries


def _auth_pairs(
    flags: Sequence[str] | None, auth_file: str | None, environ: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    entries = list(flags or [])
    if not entries and (raw := _env(environ, "AUTH")):
        entries = [part for part in raw.split(",") if part]
    if auth_file:
        lines = Path(auth_file).expanduser().read_text().splitlines()
        entries += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    pairs = []
    for entry in entries:
        user, sep, password = entry.partition(":")
        if not sep or not user or not password:
            raise ConfigError(f"--auth expects USER:PASSWORD, got {entry!r}.")
        pairs.append((user, password))
    return tuple(pairs)


def read_api_tokens(path: str | Path) -> tuple[tuple[str, str], ...]:
    """``(user, token)`` pairs from a file of ``user:token`` lines (``#`` starts a comment)."""
    pairs = []
    for number, line in enumerate(Path(path).expanduser().read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, token = line.partition(":")
        if not sep or not user.strip() or not token.strip():
            raise ConfigError(f"{path}, line {number}: expected USER:TOKEN.")
        pairs.append((user.strip(), token.strip()))
    tokens = [token for _, token in pairs]
    if len(set(tokens)) != len(tokens):
        raise ConfigError(f"{path}: two users have the same token; give each their own.")
    return tuple(pairs)


def _checked_api_base(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        url = urlsplit(raw)
        _ = url.port  # a port that is not a number raises here
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(
            f"--api-base must be an http:// or https:// URL such as "
            f"http://127.0.0.1:8080/v1, not {raw!r}."
        )
    return raw.rstrip("/")


def check_exposure(config: Config) -> None:
    """Serving the REST API beyond this machine needs a token (``ConfigError`` if none)."""
    if config.command != "serve" or config.api_token or config.api_tokens:
        return
    if config.share or not is_loopback(config.host):
        where = "through a public share link" if config.share else f"on {config.host}"
        raise ConfigError(
            f"chatui would serve its REST API {where} without a password. "
            "Set a token with --api-token TOKEN (or CHATUI_API_TOKEN); API clients then send "
            "'Authorization: Bearer TOKEN'. Or listen on 127.0.0.1 only."
        )


def parse_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """The configuration from flags and environment; ``ConfigError`` (one sentence) if unusable.

    argparse itself still exits with status 2 and its usage line for an
    unknown flag or a value of the wrong type.
    """
    environ = os.environ if environ is None else environ
    args = _parser(environ).parse_args(argv)
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, not {args.port}.")
    if args.model_threads is not None and args.model_threads < 1:
        raise ConfigError(f"--model-threads must be at least 1, not {args.model_threads}.")
    try:
        config = _config(args, environ)
    except OSError as error:  # --auth-file or --api-tokens-file cannot be read
        raise ConfigError(f"Cannot read {error.filename}: {error.strerror}.") from None
    if config.share and not config.auth:
        raise ConfigError(
            "--share makes the app reachable by anyone who has the link. "
            "Add --auth USER:PASSWORD (or --auth-file) so only people you choose can log in."
        )
    check_exposure(config)
    if config.continue_mode == "completions" and not config.embedded:
        raise ConfigError("--continue-mode completions works only with the embedded model "
                          "(its chat template is read from its file); with --api-base use "
                          "final-message, resend or auto.")
    return config


def _config(args: argparse.Namespace, environ: Mapping[str, str]) -> Config:
    return Config(
        command=args.command,
        api_base=_checked_api_base(args.api_base),
        api_key=args.api_key,
        model=args.model,
        host=args.host,
        port=args.port,
        data_dir=Path(args.data_dir).expanduser(),
        auth=_auth_pairs(args.auth, args.auth_file, environ),
        share=args.share,
        api_token=args.api_token,
        api_tokens=read_api_tokens(args.api_tokens_file) if args.api_tokens_file else (),
        anonymous_users=args.anonymous_users,
        trusted_proxies=_trusted_proxies(args.trusted_proxies),
        user_concurrency=args.user_concurrency,
        user_requests_per_minute=args.user_requests_per_minute,
        user_max_documents=args.user_max_documents,
        user_max_chunks=args.user_max_chunks,
        concurrency_limit=args.concurrency_limit,
        max_queue=args.max_queue,
        context=args.context,
        model_threads=args.model_threads,
        continue_mode=args.continue_mode,
        connect_timeout=args.connect_timeout,
        first_token_timeout=args.first_token_timeout,
        stall_timeout=args.stall_timeout,
        embedding_model=args.embedding_model,
        max_upload_mb=args.max_upload_mb,
        max_document_chars=args.max_document_chars,
        max_document_chunks=args.max_document_chunks,
        allowed_image_hosts=tuple(
            host.strip().lower() for host in args.allowed_image_hosts.split(",") if host.strip()),
        # ``--model`` is kept apart: the server's first model stands in when it is unset.
        defaults=Settings(**{
            setting.name: getattr(args, setting.name) for setting in FIELDS
            if setting.name != "model" and getattr(args, setting.name) is not None
        }),
    )
