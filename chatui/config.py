"""Command-line flags and environment variables, parsed into one frozen ``Config``.

Every flag has an environment variable (``CHATUI_<FLAG>``); a flag beats its
variable, which beats the default. ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``
are honoured when the chatui variables are not set. The README's
configuration table is generated from the same names: keep them in sync.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chatui.tree import Settings
from chatui.users import read_api_tokens


@dataclass(frozen=True, slots=True)
class Config:
    command: str = "serve"
    api_base: str | None = None
    api_key: str | None = None
    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    data_dir: Path = Path("~/.chatui").expanduser()
    auth: tuple[tuple[str, str], ...] = ()
    share: bool = False
    api_token: str | None = None
    api_tokens: tuple[tuple[str, str], ...] = ()  # (user, token) from --api-tokens-file
    anonymous_users: bool | None = None  # None: when listening beyond loopback
    user_concurrency: int = 2
    user_requests_per_minute: int = 20
    user_max_documents: int = 100
    concurrency_limit: int = 16
    max_queue: int = 64
    context: int = 4096
    connect_timeout: float = 10.0
    first_token_timeout: float = 120.0
    stall_timeout: float = 60.0
    embedding_model: str | None = None
    max_upload_mb: float = 25.0
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
                        help="serve: the web app and REST API (default); chat: chat in the terminal")
    backend = parser.add_argument_group("model server")
    backend.add_argument("--api-base", default=env("API_BASE", "OPENAI_BASE_URL"),
                         help="OpenAI-compatible base URL ending in /v1; unset: run the embedded model")
    backend.add_argument("--api-key", default=env("API_KEY", "OPENAI_API_KEY"))
    backend.add_argument("--model", default=env("MODEL"),
                         help="default model (default: the first one the server lists)")
    backend.add_argument("--context", type=int, default=int(env("CONTEXT") or 4096),
                         help="context size in tokens (embedded server's n_ctx, prompt budget)")
    backend.add_argument("--connect-timeout", type=float, default=float(env("CONNECT_TIMEOUT") or 10))
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
    limits = parser.add_argument_group("per-user limits (with --auth or anonymous users; 0: none)")
    limits.add_argument("--user-concurrency", type=int, default=int(env("USER_CONCURRENCY") or 2),
                        help="answers one user may have generating at once")
    limits.add_argument("--user-requests-per-minute", type=int,
                        default=int(env("USER_REQUESTS_PER_MINUTE") or 20),
                        help="answers one user may start per minute")
    limits.add_argument("--user-max-documents", type=int,
                        default=int(env("USER_MAX_DOCUMENTS") or 100),
                        help="documents one user may keep")
    server.add_argument("--concurrency-limit", type=int,
                        default=int(env("CONCURRENCY_LIMIT") or 16),
                        help="answers streamed at once across all users")
    server.add_argument("--max-queue", type=int, default=int(env("MAX_QUEUE") or 64))
    rag = parser.add_argument_group("documents")
    rag.add_argument("--embedding-model", default=env("EMBEDDING_MODEL"),
                     help="sentence-transformers model name or folder (default: bundled MiniLM)")
    rag.add_argument("--max-upload-mb", type=float, default=float(env("MAX_UPLOAD_MB") or 25))
    gen = parser.add_argument_group("default generation settings")
    gen.add_argument("--system-prompt", default=env("SYSTEM_PROMPT") or "")
    for name, kind in (("temperature", float), ("top-p", float), ("top-k", int),
                       ("min-p", float), ("max-tokens", int), ("repeat-penalty", float),
                       ("seed", int)):
        raw = env(name.upper().replace("-", "_"))
        gen.add_argument(f"--{name}", type=kind, default=kind(raw) if raw else None)
    return parser


def _flag(raw: str | None) -> bool | None:
    return None if raw is None or raw == "" else raw.lower() in ("1", "true", "yes", "on")


def _auth_pairs(flags: Sequence[str] | None, auth_file: str | None, environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
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
            raise SystemExit(f"--auth expects USER:PASSWORD, got {entry!r}.")
        pairs.append((user, password))
    return tuple(pairs)


def parse_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    args = _parser(environ).parse_args(argv)
    config = Config(
        command=args.command,
        api_base=args.api_base.rstrip("/") if args.api_base else None,
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
        user_concurrency=args.user_concurrency,
        user_requests_per_minute=args.user_requests_per_minute,
        user_max_documents=args.user_max_documents,
        concurrency_limit=args.concurrency_limit,
        max_queue=args.max_queue,
        context=args.context,
        connect_timeout=args.connect_timeout,
        first_token_timeout=args.first_token_timeout,
        stall_timeout=args.stall_timeout,
        embedding_model=args.embedding_model,
        max_upload_mb=args.max_upload_mb,
        defaults=Settings(
            system_prompt=args.system_prompt, model=None, temperature=args.temperature,
            top_p=args.top_p, top_k=args.top_k, min_p=args.min_p, max_tokens=args.max_tokens,
            repeat_penalty=args.repeat_penalty, seed=args.seed,
        ),
    )
    if config.share and not config.auth:
        raise SystemExit(
            "--share makes the app reachable by anyone who has the link. "
            "Add --auth USER:PASSWORD (or --auth-file) so only people you choose can log in."
        )
    return config
