"""What the model server can do, found out once: how it continues an answer, its context.

Continue must extend the same answer, and servers differ in how to ask:

- ``final-message``: llama.cpp's llama-server and vLLM take ``continue_final_message:
  true`` with ``add_generation_prompt: false`` on ``/v1/chat/completions``;
- ``completions``: the embedded llama-cpp-python server has no such field, so the
  model's own chat template (from its GGUF) is rendered up to the answer so far
  and the rest comes from ``/v1/completions`` (``chatui.template``);
- ``resend``: any other server gets the history ending in the answer (it may
  start a new reply: nothing better is defined for it).

``auto`` (the default of ``--continue-mode``) picks ``completions`` when the
embedded model's template is known, else asks the server: llama-server answers
``GET /props`` (which also gives its ``n_ctx`` and build, and means it can report
prompt progress), vLLM answers ``GET /version``. The answer is kept; a server that
cannot be reached is asked again next time. ``api_key`` goes with the probes, as
with every request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import httpx

from chatui.template import ChatTemplate

if TYPE_CHECKING:
    from chatui.client import BackendClient

ContinueMode = Literal["auto", "final-message", "completions", "resend"]
CONTINUE_MODES: tuple[str, ...] = get_args(ContinueMode)
ServerKind = Literal["llama-server", "vllm", "embedded", "other"]


@dataclass(frozen=True, slots=True)
class ServerInfo:
    kind: ServerKind
    continue_mode: ContinueMode
    context_tokens: int | None = None  # the server's n_ctx when it says
    build: str | None = None

    @property
    def reports_progress(self) -> bool:
        """Whether to ask for ``return_progress`` (llama-server's prompt progress)."""
        return self.kind == "llama-server"

    def continue_params(self) -> dict[str, Any]:
        if self.continue_mode == "final-message":
            return {"continue_final_message": True, "add_generation_prompt": False}
        return {}


class ServerFeatures:
    """The ``ServerInfo`` of one backend, probed on first use (thread-safe)."""

    def __init__(
        self,
        backend: BackendClient,
        mode: ContinueMode = "auto",
        template: ChatTemplate | None = None,
        embedded_context: int | None = None,
        api_key: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if mode not in CONTINUE_MODES:
            raise ValueError(f"--continue-mode must be one of {', '.join(CONTINUE_MODES)}.")
        if mode == "completions" and template is None:
            raise ValueError("--continue-mode completions needs the embedded model's "
                             "chat template (it is read from its GGUF file).")
        self._root = backend.base_url.removesuffix("/v1")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout
        self._mode = mode
        self.template = template
        self._embedded_context = embedded_context
        self._lock = threading.Lock()
        self._known: ServerInfo | None = None

    def info(self) -> ServerInfo:
        with self._lock:
            if self._known is None:
                info, final = self._probe()
                if not final:
                    return info
                self._known = info
            return self._known

    def _probe(self) -> tuple[ServerInfo, bool]:
        if self.template is not None and self._mode in ("auto", "completions"):
            return ServerInfo("embedded", "completions", self._embedded_context), True
        try:
            props = self._get_json("/props")
            version = None if props is not None else self._get_json("/version")
        except httpx.HTTPError:
            fallback = "resend" if self._mode == "auto" else self._mode
            return ServerInfo("other", fallback), False
        if props is not None:
            kind: ServerKind = "llama-server"
            auto: ContinueMode = "final-message"
        elif version is not None and "version" in version:
            kind, auto = "vllm", "final-message"
        else:
            kind, auto = "other", "resend"
        mode = auto if self._mode == "auto" else self._mode
        return ServerInfo(kind, mode, _n_ctx(props), _build(props)), True


    def _get_json(self, path: str) -> dict[str, Any] | None:
        """A JSON object the server answers at ``path`` beside ``/v1``, else None (no such
        route: not that kind of server). A probe, like ``supervisor``'s health check: not
        an answer, so not through ``chatui.client``."""
        response = httpx.get(self._root + path, headers=self._headers, timeout=self._timeout)
        try:
            payload = response.json() if response.is_success else None
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None


def _n_ctx(props: dict[str, Any] | None) -> int | None:
    if props is None:
        return None
    settings = props.get("default_generation_settings")
    nested = settings.get("n_ctx") if isinstance(settings, dict) else None
    for value in (props.get("n_ctx"), nested):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _build(props: dict[str, Any] | None) -> str | None:
    value = props.get("build_info") if props is not None else None
    return value[:200] if isinstance(value, str) and value else None
