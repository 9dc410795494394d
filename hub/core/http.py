"""The hub's HTTP client for plugins: timeouts, retries with jittered backoff, a circuit breaker,
rate-limit pacing and typed errors, so that no channel or carrier plugin decides these itself.

One ``HttpClient`` is made per connection or account (``name``, e.g. ``"amazon:connection:7"``).
Clients with the same name share one circuit breaker and one token bucket per rate limit in the
process, because an account's health and its quota belong to the account, not to the adapter
object a job happened to build.

Errors are classified by what the caller can do about them: ``retryable`` says whether trying
again later may help, ``unprocessed`` says whether the server surely did not act on the request
(so even a POST may be repeated). Messages never carry request headers or query strings: they
hold tokens and signatures (SP-API access tokens, Shopee's ``access_token`` and ``sign``,
WooCommerce's ``consumer_secret``).

An error's text reaches the tenant (inbox reasons, poll and tracking errors, rate errors), so
it never carries the outside body either: the status with its standard phrase, the plugin's
reworded message, capped at MESSAGE_LIMIT. The raw body (truncated) is logged at debug level
only, and kept on the error (``body``) for the plugin to read the platform's documented error.

Every request goes only where ``hub.core.outbound`` allows: public hosts over https, checked
before sending and again on the address each connection is actually made to.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pybreaker
import requests
from requests.structures import CaseInsensitiveDict
from requests_hardened.ip_filter import InvalidIPAddress
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from urllib3.exceptions import ConnectTimeoutError, InvalidHeader, MaxRetryError
from urllib3.util.retry import Retry

from hub.core import outbound
from hub.metrics import BREAKERS_OPEN, OUTBOUND_ERRORS

__all__ = [
    "USER_AGENT",
    "AuthError",
    "BusinessError",
    "CircuitOpen",
    "HttpClient",
    "HttpError",
    "OutboundRefused",
    "ParseError",
    "RateLimit",
    "RateLimited",
    "Timeout",
    "Unavailable",
    "reset_for_tests",
]

log = logging.getLogger(__name__)

try:
    USER_AGENT = f"OrderHub/{version('orderhub')}"
except PackageNotFoundError:  # running from a source tree that was never installed
    USER_AGENT = "OrderHub/0+unknown"

# Enough of an error page to see what the server said, not so much that a log line balloons.
BODY_LIMIT = 2000
# What of an error's message its text shows (a plugin quoting a platform's error included).
MESSAGE_LIMIT = 300
URL_LIMIT = 200
# A POST or PATCH repeated after the server may have acted on it can create a second order or
# shipment; these are retried only when the server surely did not process them.
NON_IDEMPOTENT = frozenset({"POST", "PATCH"})


# --- errors --------------------------------------------------------------------------------


_E = TypeVar("_E", bound="HttpError")


class HttpError(Exception):
    """A failed HTTP call, classified. ``str()`` reads as one sentence for an operator:
    client, method, URL (without its query string), what happened and how often it was tried.

    Plugins may raise these too (re-worded, with ``status`` and ``body`` carried over); a
    plugin's message is kept as given.
    """

    retryable: bool = False
    # Set when the server surely did not act on the request, so a POST may be repeated.
    unprocessed: bool = False

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        body: str | None = None,
        url: str = "",
        method: str = "",
        client: str = "",
        retryable: bool | None = None,
        unprocessed: bool | None = None,
        attempts: int = 1,
        note: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.url = url
        self.method = method
        self.client = client
        if retryable is not None:
            self.retryable = retryable
        if unprocessed is not None:
            self.unprocessed = unprocessed
        self.attempts = attempts
        self.note = note

    def reworded(self, message: str, kind: type[_E] | None = None) -> _E:
        """The same failure (or one of ``kind``) told in words for whoever reads it — "ask
        the seller to authorise the app again" — keeping where it happened, what the server
        said and how often it was tried. Plugins use it; they never rebuild errors by hand."""
        cls = kind or type(self)
        return cls(  # type: ignore[return-value]
            message,
            status=self.status,
            body=self.body,
            url=self.url,
            method=self.method,
            client=self.client,
            attempts=self.attempts,
            note=self.note,
        )

    def __str__(self) -> str:
        message = _cap(" ".join(str(self.message).split()), MESSAGE_LIMIT)
        if not (self.method and self.url):
            return message
        text = f"{self.client}: " if self.client else ""
        text += f"{self.method} {_cap(self.url, URL_LIMIT)} → {message}"
        if self.attempts > 1:
            text += f"; gave up after {self.attempts} attempts"
        if self.note:
            text += f"; {self.note}"
        return text


class AuthError(HttpError):
    """401/403: credentials refused or revoked; trying again will not help until someone acts."""


class RateLimited(HttpError):
    """429: the account is over its quota; ``retry_after`` is the server's advice in seconds."""

    retryable = True
    unprocessed = True

    def __init__(self, message: str = "", *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class Timeout(HttpError):
    """Connect or read timeout: the server is slow or unreachable right now."""

    retryable = True


class Unavailable(HttpError):
    """5xx, or the connection failed: the server is in trouble right now."""

    retryable = True


class BusinessError(HttpError):
    """Other 4xx: the server understood and refused (validation, not found, a business rule)."""


class OutboundRefused(BusinessError):
    """The hub would not send it: not https, or the host is not public (``hub.core.outbound``).
    Nothing was sent; retrying cannot help until the setting (or the operator's allow list)
    changes."""

    unprocessed = True


class ParseError(HttpError):
    """The body is not JSON, or not the shape the API documents."""


class CircuitOpen(HttpError):
    """The account's circuit is open after repeated server failures: nothing was sent."""

    retryable = True
    unprocessed = True


# --- rate limits ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """A documented rate limit as a token bucket: ``burst`` calls at once, then ``per_second``.

    Shared by every client with the same name in the process, per limit ``name``; the first
    client to use a (client, limit) pair fixes its rate until ``reset_for_tests``.
    """

    name: str
    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError(f"rate limit {self.name}: per_second must be > 0 and burst >= 1")


class _Bucket:
    """A token bucket that hands out reservations: a caller takes a token even when none is
    left and is told how long to wait for it. Threads therefore queue in arrival order and
    nobody polls. (pyrate-limiter counts calls in sliding windows and sleeps with its own
    ``time.sleep``; neither fits a documented refill rate paced through an injectable sleep.)
    """

    def __init__(self, limit: RateLimit) -> None:
        self._rate = limit.per_second
        self._burst = float(limit.burst)
        self._tokens = float(limit.burst)
        self._stamp: float | None = None
        self._lock = threading.Lock()

    def reserve(self, now: float) -> float:
        """Take one token; the seconds to wait before using it (0 when one was there)."""
        with self._lock:
            if self._stamp is not None:
                elapsed = max(0.0, now - self._stamp)
                self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
            self._stamp = now
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


# --- circuit breaker -----------------------------------------------------------------------


class _ServerFailure(Exception):
    """Replayed into pybreaker to count one attempt as a server-side failure."""


def _succeed() -> None:
    return None


def _fail() -> None:
    raise _ServerFailure


class _Circuit:
    """One account's breaker. pybreaker keeps the count and the state transitions, but its
    ``call`` holds the breaker's lock for the whole wrapped call, which would let only one
    request per account be in flight across a worker's threads. So the request runs outside
    pybreaker and its outcome is replayed through ``breaker.call`` afterwards; admission
    (refuse while open, one trial when half-open) is decided here, on the injectable clock.
    """

    def __init__(self, name: str, failures: int, reset: float) -> None:
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=failures, reset_timeout=reset, name=name, throw_new_error_on_trip=False
        )
        self.opened_at = 0.0
        self.trial_in_flight = False
        self.lock = threading.Lock()

    def admit(self, now: float) -> str | None:
        """None when the request may go; otherwise why it may not."""
        with self.lock:
            state = self.breaker.current_state
            if state == pybreaker.STATE_OPEN:
                remaining = self.breaker.reset_timeout - (now - self.opened_at)
                if remaining > 0:
                    return (
                        f"circuit open after {self.breaker.fail_max} consecutive server"
                        f" failures; next trial in {remaining:.0f} s"
                    )
                self.breaker.half_open()
                state = pybreaker.STATE_HALF_OPEN
            if state == pybreaker.STATE_HALF_OPEN:
                if self.trial_in_flight:
                    return "circuit half-open and its trial request is still in flight"
                self.trial_in_flight = True
            return None

    def record(self, failed: bool | None, now: float) -> None:
        """Feed one attempt's outcome to the breaker; None abandons it (not an HTTP outcome)."""
        with self.lock:
            self.trial_in_flight = False
            before = self.breaker.current_state
            # Opened meanwhile by another thread: this outcome tells nothing new.
            if failed is None or before == pybreaker.STATE_OPEN:
                return
            with contextlib.suppress(_ServerFailure):
                self.breaker.call(_fail if failed else _succeed)
            after = self.breaker.current_state
            if after == pybreaker.STATE_OPEN:
                self.opened_at = now
            # /metrics counts the breakers not closed: one more when one trips, one fewer when
            # its trial succeeds (open → half-open → closed).
            if before == pybreaker.STATE_CLOSED and after != pybreaker.STATE_CLOSED:
                BREAKERS_OPEN.inc()
            elif before != pybreaker.STATE_CLOSED and after == pybreaker.STATE_CLOSED:
                BREAKERS_OPEN.dec()

    @property
    def state(self) -> str:
        return self.breaker.current_state


_registry_lock = threading.Lock()
_circuits: dict[str, _Circuit] = {}
_buckets: dict[tuple[str, str], _Bucket] = {}


def _circuit(name: str, failures: int, reset: float) -> _Circuit:
    with _registry_lock:
        circuit = _circuits.get(name)
        if circuit is None:
            circuit = _circuits[name] = _Circuit(name, failures, reset)
        return circuit


def _bucket(name: str, limit: RateLimit) -> _Bucket:
    with _registry_lock:
        bucket = _buckets.get((name, limit.name))
        if bucket is None:
            bucket = _buckets[(name, limit.name)] = _Bucket(limit)
        return bucket


def reset_for_tests() -> None:
    """Forget every breaker and bucket, so one test's failures or spent quota never leak into
    the next test that uses the same client name."""
    with _registry_lock:
        _circuits.clear()
        _buckets.clear()
        BREAKERS_OPEN.set(0)


# --- the client ----------------------------------------------------------------------------


class HttpClient:
    """Every HTTP call a plugin makes goes through one of these.

    ``sleep`` and ``clock`` are attributes so tests can replace them: every wait (backoff,
    Retry-After, rate-limit pacing) goes through ``sleep``; buckets and the breaker's reset
    read ``clock``.
    """

    def __init__(
        self,
        name: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        breaker_failures: int = 5,
        breaker_reset: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        if timeout <= 0 or retries < 0 or backoff < 0 or max_backoff < 0:
            raise ValueError("timeout must be > 0; retries, backoff and max_backoff >= 0")
        if breaker_failures < 1 or breaker_reset < 0:
            raise ValueError("breaker_failures must be >= 1 and breaker_reset >= 0")
        self.name = name
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.breaker_failures = breaker_failures
        self.breaker_reset = breaker_reset
        self.sleep: Callable[[float], None] = time.sleep
        self.clock: Callable[[], float] = time.monotonic
        self._session = session
        # requests does not promise a Session is thread-safe; without an injected one, each
        # worker thread gets its own (and its own connection pool).
        self._local = threading.local()

    @property
    def circuit_state(self) -> str:
        """The account's circuit: closed, open or half-open; for status pages and logs."""
        return self._circuit().state

    def request(self, method: str, url: str, **options: Any) -> requests.Response:
        """Send a request (``send``'s options); a failure is also counted for ``/metrics``
        by plugin and kind (``orderhub_outbound_errors_total``)."""
        try:
            return self.send(method, url, **options)
        except HttpError as exc:
            OUTBOUND_ERRORS.labels(self.name.split(":", 1)[0], type(exc).__name__).inc()
            raise

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: Any = None,
        timeout: float | None = None,
        retries: int | None = None,
        idempotent: bool | None = None,
        limit: RateLimit | None = None,
        ok: Container[int] = range(200, 300),
        allow_redirects: bool = True,
    ) -> requests.Response:
        """Send a request, retrying what may be retried; raise a typed ``HttpError`` otherwise.

        ``idempotent`` defaults to False for POST and PATCH: those are retried only when the
        server surely did not process them (connection never made, 429, 503). ``ok`` lists the
        statuses that are not errors (a plugin that expects a 404 says so here). Redirects
        are followed (each hop checked like the first) unless ``allow_redirects`` is False:
        then a 3xx is an answer like any other, an error unless ``ok`` lists it.
        """
        method = method.upper()
        refused = outbound.url_problem(url)
        if refused is not None:
            raise OutboundRefused(
                f"not sent: {refused}", url=_safe_url(url), method=method, client=self.name
            )
        if idempotent is None:
            idempotent = method not in NON_IDEMPOTENT
        attempts = (self.retries if retries is None else retries) + 1
        merged: CaseInsensitiveDict[str] = CaseInsensitiveDict({"User-Agent": USER_AGENT})
        merged.update(headers or {})
        send = {
            "params": params,
            "json": json,
            "data": data,
            "headers": merged,
            "auth": auth,
            "timeout": self.timeout if timeout is None else timeout,
            "allow_redirects": allow_redirects,
        }

        def may_retry(exc: BaseException) -> bool:
            if not isinstance(exc, HttpError) or isinstance(exc, CircuitOpen):
                return False
            return exc.retryable and (idempotent or exc.unprocessed)

        def circuit_stops() -> bool:
            # Once the circuit is open the next attempt would only be refused: stop now and
            # raise the server's own error rather than an uninformative CircuitOpen.
            return self.circuit_state == pybreaker.STATE_OPEN

        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=self._waiter(),
            retry=retry_if_exception(lambda exc: may_retry(exc) and not circuit_stops()),
            sleep=self.sleep,
            before_sleep=self._log_retry(attempts),
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, url, limit, ok, send)
        except HttpError as err:
            err.attempts = retrying.statistics.get("attempt_number", 1)
            if not err.retryable or isinstance(err, CircuitOpen):
                pass
            elif not may_retry(err):
                err.note = f"not retried: the server may have processed the {method}"
            elif err.attempts < attempts and circuit_stops():
                err.note = "the circuit is now open"
            raise

    def json(self, method: str, url: str, **kw: Any) -> Any:
        """``request`` and decode the body; ParseError when it is not JSON (use ``request``
        for calls that answer with no body)."""
        response = self.request(method, url, **kw)
        try:
            return response.json()
        except ValueError:
            raise self.parse_error(response, "the body is not JSON") from None

    def parse_error(self, response: requests.Response, why: str) -> ParseError:
        """A ParseError for a response whose body is not what the API documents, worded like
        the client's own errors; for plugins to raise when the shape is wrong."""
        request = response.request
        return ParseError(
            f"{response.status_code} {_reason(response)} but {why}",
            status=response.status_code,
            body=_body(response),
            url=_safe_url(response.url or (request.url if request else "") or ""),
            method=(request.method if request else None) or "",
            client=self.name,
        )

    # --- one attempt -----------------------------------------------------------------------

    def _attempt(
        self,
        method: str,
        url: str,
        limit: RateLimit | None,
        ok: Container[int],
        send: dict[str, Any],
    ) -> requests.Response:
        where = {"url": _safe_url(url), "method": method, "client": self.name}
        circuit = self._circuit()
        refused = circuit.admit(self.clock())
        if refused is not None:
            raise CircuitOpen(f"not sent: {refused}", **where)
        failed: bool | None = None
        try:
            if limit is not None:
                wait = _bucket(self.name, limit).reserve(self.clock())
                if wait > 0:
                    self.sleep(wait)
            try:
                response = self._session_for_thread().request(method, url, **send)
            except requests.RequestException as exc:
                # The exception's own text repeats the URL with its query string: not kept.
                raise _from_exception(exc, send["timeout"], where) from None
            if response.status_code not in ok:
                error = _from_response(response, where)
                log.debug("%s answered with this body: %s", error, error.body)
                raise error
            failed = False
            return response
        except (Unavailable, Timeout):
            failed = True
            raise
        except HttpError as err:
            # The server answered, so it is up; an error with no status is a bad request
            # (an invalid URL, say) that says nothing about the server either way.
            failed = False if err.status is not None else None
            raise
        finally:
            circuit.record(failed, self.clock())

    def _circuit(self) -> _Circuit:
        return _circuit(self.name, self.breaker_failures, self.breaker_reset)

    def _session_for_thread(self) -> requests.Session:
        if self._session is not None:
            return self._session
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = outbound.session()
        return session

    def _waiter(self) -> Callable[[RetryCallState], float]:
        jitter = wait_random_exponential(multiplier=self.backoff, max=self.max_backoff)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RateLimited) and exc.retry_after is not None:
                return min(exc.retry_after, self.max_backoff)
            return jitter(state)

        return wait

    @staticmethod
    def _log_retry(attempts: int) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "%s; attempt %d of %d in %.1f s", exc, state.attempt_number + 1, attempts, wait
            )

        return before_sleep


# --- classification ------------------------------------------------------------------------


def _from_response(response: requests.Response, where: dict[str, str]) -> HttpError:
    status = response.status_code
    what = f"{status} {_reason(response)}"
    fields: dict[str, Any] = {"status": status, "body": _body(response), **where}
    if status in (401, 403):
        word = "credentials refused" if status == 401 else "access denied"
        return AuthError(f"{what} ({word})", **fields)
    if status == 429:
        retry_after = _retry_after(response.headers.get("Retry-After"))
        return RateLimited(f"{what} (rate limited)", retry_after=retry_after, **fields)
    if status == 408:
        return Timeout(f"{what} (the server gave up waiting for the request)", **fields)
    if 400 <= status < 500:
        return BusinessError(f"{what} (request rejected)", **fields)
    if status >= 500:
        # A 503 says the server turned the request away before acting on it.
        return Unavailable(f"{what} (server trouble)", unprocessed=status == 503, **fields)
    return HttpError(f"{what} (unexpected status)", **fields)


def _from_exception(
    exc: requests.RequestException, timeout: float, where: dict[str, str]
) -> HttpError:
    kind = type(exc).__name__
    if isinstance(exc, outbound.Refused | InvalidIPAddress):
        refused = str(exc) if isinstance(exc, outbound.Refused) else outbound.NOT_PUBLIC
        return OutboundRefused(f"not sent: {refused}", **where)
    if isinstance(exc, requests.ConnectTimeout):
        return Timeout(f"could not connect within {timeout:g} s", unprocessed=True, **where)
    if isinstance(exc, requests.Timeout):
        return Timeout(f"no answer within {timeout:g} s (read timeout)", **where)
    if isinstance(exc, requests.ConnectionError):
        if _never_connected(exc):
            return Unavailable(f"could not connect ({kind})", unprocessed=True, **where)
        return Unavailable(f"connection broke before a full answer ({kind})", **where)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.RetryError):
        return Unavailable(f"connection broke before a full answer ({kind})", **where)
    return HttpError(f"request failed ({kind})", **where)


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the connection was never made (refused, DNS, connect timeout), so nothing
    was sent. A reset while waiting for the answer is a ConnectionError too, but the server
    may have acted on the request by then."""
    if isinstance(exc.__cause__, socket.gaierror):  # the name did not resolve
        return True
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, MaxRetryError) and isinstance(cause.reason, ConnectTimeoutError)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None when absent or
    unreadable."""
    if not value:
        return None
    try:
        # Shopify sends fractional seconds ("2.0"), which the RFC's delta-seconds (and so
        # urllib3) does not allow.
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds and seconds != float("inf") else None
    try:
        return float(Retry().parse_retry_after(value))
    except InvalidHeader:
        return None


def _reason(response: requests.Response) -> str:
    """The status's standard phrase; the server's own reason phrase is its text, not ours."""
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return ""


def _body(response: requests.Response) -> str | None:
    try:
        text = response.text
    except (RuntimeError, ValueError):
        return None
    return text[:BODY_LIMIT] if text else None


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _safe_url(url: str) -> str:
    """The URL without credentials, query or fragment: those carry tokens and signatures."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
