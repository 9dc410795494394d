"""Rate shopping: every shipment quoted by every enabled rating account of the tenant at once,
and the tenant's policy picking one rate.

What a user notices, and how it is made so:

* One failing or slow carrier never fails the quote. Its error comes back typed (timeout,
  auth, rate_limit, unavailable, business, parse, circuit_open, internal) and says whether a
  retry may help; the other carriers' rates come back all the same.
* The answer does not wait for a hung carrier. Each (account, shipment) call has the tenant's
  deadline from the moment it starts; the waiting side stops waiting then (a Python thread
  cannot be killed, so the call's own HTTP timeout is lowered to the deadline too, and its
  thread frees itself soon after). An account with ``GIVE_UP_AFTER`` calls over the deadline
  in one batch is not asked again in that batch: its remaining shipments get a timeout error
  at once instead of a deadline each.
* Calls run concurrently on one thread pool per process, sized for waiting on the network
  (``POOL_SIZE``); each ``shop`` keeps at most ``POOL_SIZE`` of its calls in the pool at a
  time, so a batch of 10,000 cannot queue ahead of a single quote asked meanwhile.
* The same shipment is quoted once. Shipments are keyed on a hash of their normalised
  description (origin, destination, parcels, declared value; not the reference or the
  recipient's name, phone and e-mail); a batch quotes each distinct one once per account, and
  answers are kept ``CACHE_SECONDS`` in memory (cachetools' TTLCache, per runtime, so per
  process) keyed on the account, its settings and that hash. Errors are never cached.
* Each account's adapter is kept between quotes too (keyed on its settings), so its HTTP
  connections stay open and a token it fetched serves the next quote.

The pool is per process: a hub whose quotes are bound by Python's own per-call work (HTTP,
TLS and JSON, about 2 ms a call; see bench/rates.py) scales with more processes, not threads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache
from sqlalchemy import select

from hub.core.adapters import CarrierAdapter, PayloadError, Place, Rate, ShipmentRequest
from hub.core.carriers import allowed_services
from hub.core.errors import HubError, Invalid
from hub.core.http import (
    AuthError,
    BusinessError,
    CircuitOpen,
    HttpError,
    ParseError,
    RateLimited,
    Timeout,
    Unavailable,
)
from hub.core.models import CarrierAccount, Tenant
from hub.settings import POLICIES, Shipping

if TYPE_CHECKING:
    from hub.runtime import Runtime

log = logging.getLogger(__name__)

# Threads that mostly wait on carriers' servers: many more than cores, bounded so a burst of
# batches cannot open thousands of sockets at once.
POOL_SIZE = 48
CACHE_SECONDS = 60
CACHE_ENTRIES = 50_000
GIVE_UP_AFTER = 3
ERROR_TYPES = (
    "timeout",
    "auth",
    "rate_limit",
    "unavailable",
    "business",
    "parse",
    "circuit_open",
    "internal",
)


# --- what a quote answers --------------------------------------------------------------------


@dataclass(frozen=True)
class QuotedRate:
    """One rate, with the account that offered it (the one to buy it from)."""

    carrier_account_id: int
    carrier_account: str
    carrier: str
    service: str
    amount: Decimal
    currency: str
    estimated_days: int | None
    estimated_delivery: date | None
    carrier_ref: str | None = None


@dataclass(frozen=True)
class QuoteError:
    """Why one account gave no rates for one shipment, or left one of its rates out."""

    carrier_account_id: int
    carrier_account: str
    carrier: str
    error: str
    type: str
    retryable: bool


@dataclass
class QuoteResult:
    """The quote of one shipment: every account's rates, cheapest first, and the errors of
    the accounts that gave none."""

    request: ShipmentRequest
    rates: list[QuotedRate] = field(default_factory=list)
    errors: list[QuoteError] = field(default_factory=list)


def rate_view(rate: QuotedRate) -> dict[str, Any]:
    return {
        "carrier_account": rate.carrier_account,
        "carrier_account_id": rate.carrier_account_id,
        "carrier": rate.carrier,
        "service": rate.service,
        "amount": rate.amount,
        "currency": rate.currency,
        "estimated_days": rate.estimated_days,
        "estimated_delivery": rate.estimated_delivery,
        "carrier_ref": rate.carrier_ref,
    }


def error_view(error: QuoteError) -> dict[str, Any]:
    return {
        "carrier_account": error.carrier_account,
        "carrier_account_id": error.carrier_account_id,
        "carrier": error.carrier,
        "error": error.error,
        "type": error.type,
        "retryable": error.retryable,
    }


# --- choosing --------------------------------------------------------------------------------


def choose(
    rates: Sequence[QuotedRate],
    policy: str,
    *,
    country: str | None,
    promised: date | None,
    preferred: Mapping[str, str],
    currency: str | None = None,
) -> QuotedRate | None:
    """The rate the tenant's policy picks, or None when there is none.

    * "cheapest": the lowest amount (then the quickest, then by account and service name, so
      the same rates always give the same choice).
    * "fastest": the earliest estimated delivery (then the cheapest); rates with no
      estimate come last.
    * "cheapest_on_time": the cheapest rate delivering by ``promised``; when none can, the
      fastest — late is better than not shipped, and it is the least late. With no promise
      it is "cheapest".

    ``preferred`` maps a destination country ("*": any other) to an account name; when that
    account offers a rate the policy picks among its rates only, unless none of them keeps
    the promise that another account's rate keeps. Amounts in different currencies are not
    converted: with ``currency`` given, rates in other currencies are considered only when no
    rate is in that currency.
    """
    if policy not in POLICIES:
        raise Invalid(f"unknown shipping policy {policy!r}; policies: {', '.join(POLICIES)}")
    candidates = list(rates)
    if currency is not None and any(r.currency == currency for r in candidates):
        candidates = [r for r in candidates if r.currency == currency]
    if not candidates:
        return None
    account = preferred.get((country or "").upper()) or preferred.get("*")
    own = [r for r in candidates if r.carrier_account == account]
    if own:
        pick = _by_policy(own, policy, promised)
        if not (policy == "cheapest_on_time" and promised and not _on_time(pick, promised)):
            return pick
        elsewhere = _by_policy(candidates, policy, promised)
        return elsewhere if _on_time(elsewhere, promised) else pick
    return _by_policy(candidates, policy, promised)


def _by_policy(rates: Sequence[QuotedRate], policy: str, promised: date | None) -> QuotedRate:
    if policy == "fastest":
        return min(rates, key=_fastest)
    if policy == "cheapest_on_time" and promised is not None:
        on_time = [r for r in rates if _on_time(r, promised)]
        return min(on_time, key=_cheapest) if on_time else min(rates, key=_fastest)
    return min(rates, key=_cheapest)


def _on_time(rate: QuotedRate, promised: date | None) -> bool:
    return (
        promised is not None
        and rate.estimated_delivery is not None
        and (rate.estimated_delivery <= promised)
    )


def _cheapest(r: QuotedRate) -> tuple[Any, ...]:
    return (r.amount, _arrival(r), r.carrier_account, r.service)


def _fastest(r: QuotedRate) -> tuple[Any, ...]:
    return (_arrival(r), r.amount, r.carrier_account, r.service)


def _arrival(r: QuotedRate) -> date:
    return r.estimated_delivery or date.max


def working_days_after(start: date, days: int) -> date:
    """``start`` plus ``days`` working days, Saturdays and Sundays not counted (carriers
    quote transit in working days; public holidays differ per carrier and are not known)."""
    day = start
    while days > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day


def promised_date(shipping: Shipping, today: date, given: date | None = None) -> date | None:
    """The delivery promised for a shipment: its own date when it has one, else the
    tenant's ``promise_days`` working days from today, else none."""
    if given is not None:
        return given
    if shipping.promise_days is None:
        return None
    return working_days_after(today, shipping.promise_days)


# --- quoting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """An account ready to quote, read from its row before any thread starts (threads never
    touch the database session)."""

    id: int
    name: str
    plugin: str
    fingerprint: str
    allowed: frozenset[str] | None
    adapter: CarrierAdapter | None
    problem: str | None = None


@dataclass(eq=False)
class _Call:
    target: _Target
    key: str
    request: ShipmentRequest
    started: float | None = None
    outcome: _Answer | QuoteError | None = None


@dataclass(frozen=True)
class _Answer:
    """One account's rates for one shipment, and its notes on rates it left out."""

    rates: tuple[Rate, ...]
    notes: tuple[str, ...] = ()


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_states: weakref.WeakKeyDictionary[Runtime, _State] = weakref.WeakKeyDictionary()
_states_lock = threading.Lock()


class _Locked:
    """A TTLCache behind a lock: cachetools' caches are not thread-safe."""

    def __init__(self, entries: int, seconds: float) -> None:
        self._data: TTLCache[Hashable, Any] = TTLCache(entries, seconds)
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            return self._data.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value


class _State:
    """What a runtime keeps between quotes: the answers (``CACHE_SECONDS``), and each
    account's adapter, so its HTTP connections stay open and a token it fetched (UPS's OAuth)
    serves the next quote too. Adapters are keyed on the account's settings and the plugin
    set, so a changed account or a new plugin gets a new one."""

    def __init__(self) -> None:
        self.quotes = _Locked(CACHE_ENTRIES, CACHE_SECONDS)
        self.adapters = _Locked(1024, 3600)


def _executor() -> ThreadPoolExecutor:
    """One pool per process, made on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="orderhub-quote")
        return _pool


def _forget_pool_after_fork() -> None:
    """A forked child has none of its parent's threads: a pool made before the fork (a
    server that quoted before forking its workers, a test harness) would take the child's
    quotes and never run them. The child makes its own."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _state(runtime: Runtime) -> _State:
    with _states_lock:
        state = _states.get(runtime)
        if state is None:
            state = _states[runtime] = _State()
        return state


def shop(
    runtime: Runtime,
    tenant_id: int,
    requests: Sequence[ShipmentRequest],
    *,
    deadline: float | None = None,
    accounts: Sequence[CarrierAccount] | None = None,
    today: date | None = None,
) -> list[QuoteResult]:
    """Quote each request with every enabled account of the tenant whose plugin rates (or
    with ``accounts``, when given: rows read by the caller). One result per request, in
    order. ``deadline`` defaults to the tenant's ``[shipping] deadline_seconds``.

    Reads what it needs in a short session of its own unless given it; the quoting itself
    holds no database connection, so call it outside a transaction."""
    if accounts is None or deadline is None:
        with runtime.session(tenant_id) as session:
            if deadline is None:
                slug = session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))
                deadline = runtime.tenant_settings(slug or "").shipping.deadline_seconds
            if accounts is None:
                accounts = session.scalars(
                    select(CarrierAccount)
                    .where(CarrierAccount.tenant_id == tenant_id, CarrierAccount.enabled)
                    .order_by(CarrierAccount.id)
                ).all()
    state = _state(runtime)
    targets = _targets(runtime, state, accounts, deadline)
    today = today or date.today()
    results = [QuoteResult(r) for r in requests]
    if not targets or not requests:
        return results
    keys = [request_key(r) for r in requests]
    cache = state.quotes
    answers: dict[tuple[int, str], _Answer | QuoteError] = {}
    calls: list[_Call] = []
    # Distinct shipments in the order they first appear, each once per account.
    distinct = dict(zip(keys, requests, strict=True))
    for key, request in distinct.items():
        for target in targets:
            if target.adapter is None:
                answers[(target.id, key)] = _error(target, target.problem or "", "internal")
                continue
            cached = cache.get((target.id, target.fingerprint, key))
            if cached is not None:
                answers[(target.id, key)] = cached
            else:
                calls.append(_Call(target, key, request))
    _run(calls, deadline)
    for call in calls:
        assert call.outcome is not None
        answers[(call.target.id, call.key)] = call.outcome
        if not isinstance(call.outcome, QuoteError):
            cache.put((call.target.id, call.target.fingerprint, call.key), call.outcome)
    for result, key in zip(results, keys, strict=True):
        for target in targets:
            answer = answers[(target.id, key)]
            if isinstance(answer, QuoteError):
                result.errors.append(answer)
                continue
            # A rate the plugin left out (see adapters.Rates) is noted with the errors; the
            # account's other rates stand.
            result.errors.extend(_error(target, note, "parse") for note in answer.notes)
            result.rates.extend(
                _quoted(target, rate, today)
                for rate in answer.rates
                if target.allowed is None or rate.service in target.allowed
            )
        result.rates.sort(key=_cheapest)
    return results


def _targets(
    runtime: Runtime, state: _State, accounts: Iterable[CarrierAccount], deadline: float
) -> list[_Target]:
    """The enabled accounts whose plugin rates, each with its adapter (kept by ``state``
    between quotes). An account that cannot be built (plugin gone, a referenced variable
    unset) stays, to answer every shipment with that problem rather than vanish from the
    quote unexplained."""
    carriers = runtime.plugins.adapters("carriers")
    targets = []
    for account in accounts:
        cls = carriers.get(account.plugin)
        if not account.enabled or (cls is not None and "rating" not in cls.capabilities):
            continue
        fingerprint = hashlib.sha256(
            json.dumps([account.plugin, account.settings], sort_keys=True, default=str).encode()
        ).hexdigest()
        built = (account.id, fingerprint, deadline, runtime.plugins.generation)
        adapter: CarrierAdapter | None = state.adapters.get(built)
        problem = None
        if adapter is None:
            try:
                adapter = runtime.carrier_adapter(account, timeout=deadline)
            except HubError as exc:
                problem = exc.message
            else:
                state.adapters.put(built, adapter)
        targets.append(
            _Target(
                account.id,
                account.name,
                account.plugin,
                fingerprint,
                allowed_services(account),
                adapter,
                problem,
            )
        )
    return targets


def _run(calls: list[_Call], deadline: float) -> None:
    """Run the calls on the shared pool, at most POOL_SIZE at a time, giving each
    ``deadline`` seconds from its start; fills every call's ``outcome``."""
    queue = deque(calls)
    running: dict[Future[_Answer | QuoteError], _Call] = {}
    overdue: dict[int, int] = {}
    pool = _executor()
    while queue or running:
        while queue and len(running) < POOL_SIZE:
            call = queue.popleft()
            if overdue.get(call.target.id, 0) >= GIVE_UP_AFTER:
                call.outcome = _error(
                    call.target,
                    f"not asked: {GIVE_UP_AFTER} earlier shipments of this batch got no answer"
                    f" within {deadline:g} s",
                    "timeout",
                    retryable=True,
                )
                continue
            running[pool.submit(_quote, call)] = call
        if not running:
            break
        started = [c.started for c in running.values() if c.started is not None]
        now = time.monotonic()
        wait_for = min(started) + deadline - now if started else deadline
        done, _ = wait(running, timeout=max(wait_for, 0.0), return_when=FIRST_COMPLETED)
        for future in done:
            running.pop(future).outcome = future.result()
        now = time.monotonic()
        for future, call in list(running.items()):
            if call.started is not None and now - call.started >= deadline:
                # Left to finish on its own; what it answers now is ignored.
                del running[future]
                overdue[call.target.id] = overdue.get(call.target.id, 0) + 1
                call.outcome = _error(
                    call.target, f"no answer within {deadline:g} s", "timeout", retryable=True
                )


def _quote(call: _Call) -> _Answer | QuoteError:
    """One account's quote of one shipment, on a pool thread; never raises. It writes only
    ``call.started``: the outcome is the waiter's to record, so a call it gave up on cannot
    change the answer afterwards."""
    call.started = time.monotonic()
    target = call.target
    assert target.adapter is not None
    try:
        rates = target.adapter.quote(call.request)
        return _Answer(tuple(rates), getattr(rates, "notes", ()))
    except Exception as exc:  # every failure becomes that account's typed error
        return _classified(target, exc)


def _classified(target: _Target, exc: Exception) -> QuoteError:
    if isinstance(exc, HttpError):
        kind = next(
            (name for cls, name in _HTTP_TYPES if isinstance(exc, cls)),
            "unavailable",
        )
        return _error(target, str(exc), kind, retryable=exc.retryable)
    if isinstance(exc, PayloadError):
        return _error(target, str(exc), "parse")
    log.exception("carrier account %s (%s) failed to quote", target.name, target.plugin)
    return _error(
        target, f"the {target.plugin} plugin failed ({type(exc).__name__}); it was logged"
    )


# Most specific first: CircuitOpen and RateLimited are retryable HttpErrors like the rest.
_HTTP_TYPES: tuple[tuple[type[HttpError], str], ...] = (
    (CircuitOpen, "circuit_open"),
    (Timeout, "timeout"),
    (RateLimited, "rate_limit"),
    (AuthError, "auth"),
    (Unavailable, "unavailable"),
    (BusinessError, "business"),
    (ParseError, "parse"),
)


def _error(
    target: _Target, message: str, kind: str = "internal", *, retryable: bool = False
) -> QuoteError:
    return QuoteError(target.id, target.name, target.plugin, message, kind, retryable)


def _quoted(target: _Target, rate: Rate, today: date) -> QuotedRate:
    delivery = rate.estimated_delivery
    if delivery is None and rate.estimated_days is not None:
        delivery = working_days_after(today, rate.estimated_days)
    return QuotedRate(
        target.id,
        target.name,
        rate.carrier,
        rate.service,
        rate.amount,
        rate.currency,
        rate.estimated_days,
        delivery,
        rate.carrier_ref,
    )


def request_key(request: ShipmentRequest) -> str:
    """A hash of what prices a shipment: the two places (not who is there, beyond the
    company, which some carriers price as commercial), the parcels, the declared value and
    its currency; written so the same shipment always hashes alike (case, spaces, 1.0 vs
    1.00)."""
    data = {
        "from": _place(request.origin),
        "to": _place(request.destination),
        "parcels": [
            [_number(p.weight_kg), _number(p.length_cm), _number(p.width_cm), _number(p.height_cm)]
            for p in request.parcels
        ],
        "value": _number(request.declared_value),
        "currency": request.currency.upper(),
    }
    return hashlib.sha256(json.dumps(data, separators=(",", ":")).encode()).hexdigest()


def _place(place: Place) -> list[str | None]:
    return [
        _text(place.country),
        _text(place.postcode),
        _text(place.city),
        _text(place.region),
        _text(place.line1),
        _text(place.line2),
        _text(place.company),
    ]


def _text(value: str | None) -> str | None:
    """Upper case with single spaces; empty is None."""
    return " ".join((value or "").upper().split()) or None


def _number(value: Decimal | float | None) -> str | None:
    if value is None:
        return None
    return format(Decimal(str(value)).normalize(), "f")
