"""Backend health: does the model server answer; the embedded one is kept alive.

Two watches behind one protocol, ``BackendWatch``; the service asks its watch
before an answer starts (``require_answering``) and after one failed
(``explain``), and the UI and REST read ``health()``:

- ``EmbeddedSupervisor`` owns the embedded server once it is started. A thread
  checks every ``poll_interval`` whether the child has exited and every
  ``probe_interval`` whether its HTTP server answers at all. A child that
  exited, or missed ``probe_failures`` probes in a row (it is then killed), is
  restarted on the same port after a backoff. At most ``len(backoff)``
  restarts happen within ``window`` seconds, the n-th waiting ``backoff[n-1]``;
  past that it gives up: state "failed", with the last lines of its log. While
  it is restarting or has failed, answers are refused with ``BackendDown``.
- ``ExternalWatch`` checks an ``--api-base`` server's ``/models`` on demand:
  reading its health starts a check in the background when the last one is
  older than ``max_age``; reading never waits for the network. Each check opens
  a connection of its own (no keep-alive), so it sees whether the server takes
  new ones. A failed answer makes the next read check again. It never refuses
  an answer: the request itself finds out soonest whether the server is back.

``BackendHealth`` is a plain value: ``state`` for programs, ``message`` for a
person, ``since`` (epoch seconds) when the state last changed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Literal, Protocol, Self

import httpx

from chatui.client import BackendClient
from chatui.embedded import EmbeddedServer, EmbeddedServerError, describe_exit
from chatui.errors import BackendDown, BackendError, BackendHTTPError

HealthState = Literal["unknown", "starting", "ok", "restarted", "restarting", "down", "failed"]
ANSWERING: frozenset[str] = frozenset({"ok", "restarted", "unknown"})
EXIT_SETTLE_SECONDS = 1.0  # a broken stream may reach us a moment before the child is reaped
EXTERNAL_MAX_AGE = 15.0  # seconds an external server's health is reused before checking again


@dataclass(frozen=True, slots=True)
class BackendHealth:
    kind: Literal["embedded", "external"]
    url: str
    state: HealthState
    message: str
    since: float
    restarts: int = 0  # of the embedded model, since the app started
    log_tail: str = ""  # the embedded model's last log lines, when it failed

    @property
    def answering(self) -> bool:
        """Whether an answer can be asked for now (as far as we know)."""
        return self.state in ANSWERING


class BackendWatch(Protocol):
    def health(self) -> BackendHealth: ...

    def require_answering(self) -> None:
        """Raise ``BackendDown`` if it is known that no answer can come now."""
        ...

    def explain(self, error: BackendError) -> BackendError:
        """The error to tell the user for an answer that failed with ``error``."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    backoff: tuple[float, ...] = (1.0, 2.0, 4.0)
    window: float = 600.0
    poll_interval: float = 1.0
    probe_interval: float = 10.0
    probe_timeout: float = 5.0
    probe_failures: int = 3


DEFAULT_POLICY = RestartPolicy()


def _clock_time(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


class EmbeddedSupervisor:
    """Starts the embedded server, restarts it when it dies or hangs, and says how it is."""

    def __init__(self, server: EmbeddedServer, policy: RestartPolicy | None = None) -> None:
        self._server = server
        self._policy = policy or DEFAULT_POLICY
        self._lock = threading.Lock()  # guards _health
        self._life = threading.Lock()  # one start/stop of the child at a time
        self._restart_times: list[float] = []
        self._restarts = 0
        self._health = self._value("starting", "The embedded model is starting.")
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._backends: list[BackendClient] = []
        self._hung_pid: int | None = None  # a child we killed because it stopped answering

    # ----- what others call ------------------------------------------------------

    def start(self) -> Self:
        """Start the server (``EmbeddedServerError`` if it cannot) and begin watching it."""
        try:
            with self._life:
                self._server.start()
        except EmbeddedServerError as error:
            self._set("failed", str(error), log_tail=self._server.log_tail())
            raise
        self._point_backends()
        self._set("ok", f"The embedded model ({self._server.alias}) is running.")
        self._thread = threading.Thread(
            target=self._watch, name="chatui-model-supervisor", daemon=True)
        self._thread.start()
        return self

    def follow(self, backend: BackendClient) -> Self:
        """Keep ``backend`` pointed at the server, should a restart need another port.

        May be called before ``start`` (which may then run in the background).
        """
        self._backends.append(backend)
        if self._server.port:
            backend.base_url = self._server.base_url
        return self

    def health(self) -> BackendHealth:
        with self._lock:
            return self._health

    def require_answering(self) -> None:
        health = self.health()
        if not health.answering:
            raise BackendDown(health.message)

    def explain(self, error: BackendError) -> BackendError:
        self._wake.set()  # look at the child now rather than at the next poll
        deadline = time.monotonic() + EXIT_SETTLE_SECONDS
        code = self._server.exit_code()
        while code is None and time.monotonic() < deadline:
            time.sleep(0.05)
            code = self._server.exit_code()
        if code is None:
            return error
        process = self._server.process
        if process is not None and process.pid == self._hung_pid:
            return BackendDown("The embedded model stopped answering in the middle of this "
                               "answer and was stopped, to be restarted.")
        return BackendDown(f"The embedded model {describe_exit(code)} while answering.")

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        if not self._life.acquire(blocking=False):
            self._server.kill()  # a restart under way fails fast instead of loading the model
            self._life.acquire()
        try:
            self._server.stop()
        finally:
            self._life.release()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- the watching thread -------------------------------------------------

    def _watch(self) -> None:
        policy = self._policy
        misses = 0
        next_probe = time.monotonic() + policy.probe_interval
        while True:
            self._wake.wait(policy.poll_interval)
            self._wake.clear()
            if self._closed.is_set():
                return
            code = self._server.exit_code()
            if code is not None:
                if not self._recover(describe_exit(code)):
                    return
                misses, next_probe = 0, time.monotonic() + policy.probe_interval
                continue
            if time.monotonic() < next_probe:
                continue
            next_probe = time.monotonic() + policy.probe_interval
            if self._server.answers(policy.probe_timeout):
                misses = 0
                continue
            misses += 1
            if misses >= policy.probe_failures:
                process = self._server.process
                self._hung_pid = process.pid if process is not None else None
                self._server.kill()
                if not self._recover(f"stopped answering (no reply to {misses} health "
                                     "checks in a row)"):
                    return
                misses, next_probe = 0, time.monotonic() + policy.probe_interval

    def _recover(self, what: str) -> bool:
        """Restart the child that ``what`` happened to; False once it gave up (or on close)."""
        policy = self._policy
        happened = time.time()
        tries = len(policy.backoff)
        failure = ""
        while True:
            now = time.monotonic()
            self._restart_times = [t for t in self._restart_times if now - t < policy.window]
            done = len(self._restart_times)
            if done >= tries:
                tail = self._server.log_tail(lines=10)
                reason = failure or (
                    f"it was already restarted {done} times in the last "
                    f"{policy.window / 60:g} minutes"
                )
                self._set("failed", f"The embedded model {what} and could not be restarted. "
                          f"{reason[:1].upper()}{reason[1:]}. Last lines of its log:\n{tail}",
                          log_tail=tail)
                return False
            self._set("restarting", f"The embedded model {what} at {_clock_time(happened)}; "
                      f"restarting it (try {done + 1} of {tries}).")
            if self._closed.wait(policy.backoff[done]):
                return False
            self._restart_times.append(time.monotonic())
            try:
                with self._life:
                    if self._closed.is_set():
                        return False
                    self._restarts += 1
                    self._server.restart()
            except EmbeddedServerError as error:
                failure = _first_line(str(error)).rstrip(".")  # "The … server exited with code 1 …"
                continue
            except OSError as error:  # the process could not even be created
                failure = f"The model server could not be started: {error}"
                continue
            self._point_backends()
            self._set("restarted", f"The embedded model {what} at {_clock_time(happened)} "
                      "and was restarted.")
            return True

    def _point_backends(self) -> None:
        for backend in self._backends:
            backend.base_url = self._server.base_url

    # ----- health values -------------------------------------------------------

    def _value(self, state: HealthState, message: str, log_tail: str = "") -> BackendHealth:
        return BackendHealth("embedded", self._server.base_url, state, message, time.time(),
                             self._restarts, log_tail)

    def _set(self, state: HealthState, message: str, log_tail: str = "") -> None:
        with self._lock:
            self._health = self._value(state, message, log_tail)


class ExternalWatch:
    """Whether an external model server answers, checked in the background on demand."""

    def __init__(
        self, base_url: str, api_key: str | None = None, *, connect_timeout: float = 10.0,
        timeout: float = 10.0, max_age: float | None = None,
    ) -> None:
        self._http = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
        self._backend = BackendClient(base_url, api_key, http=self._http,
                                      connect_timeout=connect_timeout, first_token_timeout=timeout)
        self._max_age = EXTERNAL_MAX_AGE if max_age is None else max_age
        self._lock = threading.Lock()
        url = self._backend.base_url
        self._health = BackendHealth(
            "external", url, "unknown", f"Checking whether the model server at {url} answers.",
            time.time())
        self._checked = float("-inf")  # monotonic time of the last finished check
        self._checking = False
        self._closed = False

    def health(self) -> BackendHealth:
        with self._lock:
            stale = time.monotonic() - self._checked >= self._max_age
            start = stale and not self._checking and not self._closed
            if start:
                self._checking = True
            health = self._health
        if start:
            threading.Thread(target=self._check, name="chatui-backend-check", daemon=True).start()
        return health

    def check(self) -> BackendHealth:
        """Ask the server now (blocks up to the connect timeout)."""
        url = self._backend.base_url
        try:
            self._backend.list_models()
        except BackendHTTPError as error:
            state: HealthState = "ok"
            message = f"The model server at {url} answers, but its model list failed: {error}"
        except BackendError as error:
            state, message = "down", f"The model server at {url} does not answer. {error}"
        else:
            state, message = "ok", f"The model server at {url} answers."
        with self._lock:
            self._checked = time.monotonic()
            old = self._health
            if old.state == state:
                self._health = replace(old, message=message)
            else:
                self._health = BackendHealth("external", url, state, message, time.time())
            return self._health

    def _check(self) -> None:
        try:
            self.check()
        except RuntimeError:  # the HTTP client was closed under the check: shutting down
            if not self._closed:
                raise
        finally:
            with self._lock:
                self._checking = False

    def require_answering(self) -> None:
        return None  # the request itself is the quickest way to find out

    def explain(self, error: BackendError) -> BackendError:
        with self._lock:
            self._checked = float("-inf")  # the next look at the health checks again
        return error

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
