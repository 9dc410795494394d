"""The hub's HTTP client for plugins: typed errors, retries, circuit breaker, rate limits.

No real network (``responses`` answers every call) and no real waiting: each client gets a fake
clock whose ``sleep`` records the wait and moves the clock on.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from hub.core import http
from hub.core.http import (
    AuthError,
    BusinessError,
    CircuitOpen,
    HttpClient,
    HttpError,
    ParseError,
    RateLimit,
    RateLimited,
    Timeout,
    Unavailable,
)

URL = "https://api.example.test/orders/v0/orders"
NAME = "amazon:connection:7"


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fresh_registries() -> Iterator[None]:
    http.reset_for_tests()
    yield
    http.reset_for_tests()


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(fake_time: FakeTime) -> Callable[..., HttpClient]:
    def make(name: str = NAME, **kw: Any) -> HttpClient:
        client = HttpClient(name, **kw)
        client.sleep = fake_time.sleep
        client.clock = fake_time.clock
        return client

    return make


def refused() -> requests.ConnectionError:
    """What requests raises when nothing listens on the port: nothing was sent."""
    cause = NewConnectionError(None, "Failed to establish a new connection: Connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, URL, cause))  # type: ignore[arg-type]


def reset_mid_answer() -> requests.ConnectionError:
    """What requests raises when the server hangs up after reading the request."""
    cause = ConnectionResetError(104, "Connection reset by peer")
    return requests.ConnectionError(ProtocolError("Connection aborted.", cause))


# --- classification ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (401, AuthError, False),
        (403, AuthError, False),
        (404, BusinessError, False),
        (422, BusinessError, False),
        (429, RateLimited, True),
        (500, Unavailable, True),
        (502, Unavailable, True),
        (503, Unavailable, True),
    ],
)
def test_status_codes_become_typed_errors(
    rsps: responses.RequestsMock,
    make_client: Callable[..., HttpClient],
    status: int,
    kind: type[HttpError],
    retryable: bool,
) -> None:
    rsps.get(URL, status=status, body='{"errors": [{"code": "X"}]}')

    with pytest.raises(kind) as caught:
        make_client(retries=0).request("GET", URL)

    assert type(caught.value) is kind
    assert caught.value.retryable is retryable
    assert caught.value.status == status
    assert caught.value.body == '{"errors": [{"code": "X"}]}'
    assert (caught.value.method, caught.value.url) == ("GET", URL)


@pytest.mark.parametrize(
    ("raised", "kind", "words"),
    [
        (requests.ConnectTimeout(), Timeout, "could not connect within 10 s"),
        (requests.ReadTimeout(), Timeout, "no answer within 10 s"),
        (refused(), Unavailable, "could not connect"),
        (reset_mid_answer(), Unavailable, "connection broke"),
    ],
)
def test_network_failures_become_retryable_errors(
    rsps: responses.RequestsMock,
    make_client: Callable[..., HttpClient],
    raised: Exception,
    kind: type[HttpError],
    words: str,
) -> None:
    rsps.get(URL, body=raised)

    with pytest.raises(kind) as caught:
        make_client(retries=0).request("GET", URL)

    assert caught.value.retryable is True
    assert caught.value.status is None
    assert words in str(caught.value)


def test_a_body_that_is_not_json_is_a_parse_error(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    rsps.get(URL, body="<html>maintenance</html>", content_type="text/html")

    with pytest.raises(ParseError) as caught:
        make_client().json("GET", URL)

    assert caught.value.retryable is False
    assert caught.value.status == 200
    assert caught.value.body == "<html>maintenance</html>"
    assert len(rsps.calls) == 1
    assert f"{NAME}: GET {URL} → 200 OK but the body is not JSON" == str(caught.value)


def test_json_decodes_the_answer(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    rsps.get(URL, json={"payload": {"Orders": []}})

    assert make_client().json("GET", URL) == {"payload": {"Orders": []}}


def test_statuses_listed_as_ok_are_returned_not_raised(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    rsps.get(URL, status=404)

    assert make_client().request("GET", URL, ok=(200, 404)).status_code == 404


def test_the_error_body_is_truncated(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    rsps.get(URL, status=422, body="x" * 50_000)

    with pytest.raises(BusinessError) as caught:
        make_client().request("GET", URL)

    assert caught.value.body is not None
    assert 1000 <= len(caught.value.body) <= 2000


@pytest.mark.parametrize(
    ("header", "low", "high"),
    [
        ({"Retry-After": "7"}, 7, 7),
        ({"Retry-After": "soon"}, None, None),
        ({}, None, None),
    ],
)
def test_rate_limited_carries_retry_after_in_seconds(
    rsps: responses.RequestsMock,
    make_client: Callable[..., HttpClient],
    header: dict[str, str],
    low: float | None,
    high: float | None,
) -> None:
    rsps.get(URL, status=429, headers=header)

    with pytest.raises(RateLimited) as caught:
        make_client(retries=0).request("GET", URL)

    assert caught.value.retry_after == low == high


def test_retry_after_as_an_http_date(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    rsps.get(URL, status=429, headers={"Retry-After": when})

    with pytest.raises(RateLimited) as caught:
        make_client(retries=0).request("GET", URL)

    assert caught.value.retry_after is not None
    assert 18 <= caught.value.retry_after <= 20


# --- retries -------------------------------------------------------------------------------


def test_server_trouble_is_retried_then_the_last_error_is_raised(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient], fake_time: FakeTime
) -> None:
    rsps.get(URL, status=502)

    with pytest.raises(Unavailable) as caught:
        make_client(retries=3).request("GET", URL)

    assert len(rsps.calls) == 4
    assert len(fake_time.waits) == 3
    assert caught.value.attempts == 4


def test_a_retry_that_succeeds_returns_the_answer(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    rsps.get(URL, status=503)
    rsps.get(URL, body=requests.ReadTimeout())
    rsps.get(URL, json={"ok": True})

    assert make_client().json("GET", URL) == {"ok": True}
    assert len(rsps.calls) == 3


def test_retries_can_be_set_per_call(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    rsps.get(URL, status=500)

    with pytest.raises(Unavailable):
        make_client(retries=3).request("GET", URL, retries=1)

    assert len(rsps.calls) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_errors_that_will_not_change_are_not_retried(
    rsps: responses.RequestsMock,
    make_client: Callable[..., HttpClient],
    fake_time: FakeTime,
    status: int,
) -> None:
    rsps.get(URL, status=status)

    with pytest.raises(HttpError):
        make_client(retries=3).request("GET", URL)

    assert len(rsps.calls) == 1
    assert fake_time.waits == []


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ({"status": 500}, Unavailable),
        ({"status": 502}, Unavailable),
        ({"body": requests.ReadTimeout()}, Timeout),
        ({"body": reset_mid_answer()}, Unavailable),
    ],
)
def test_post_is_not_repeated_when_the_server_may_have_processed_it(
    rsps: responses.RequestsMock,
    make_client: Callable[..., HttpClient],
    answer: dict[str, Any],
    kind: type[HttpError],
) -> None:
    rsps.post(URL, **answer)

    with pytest.raises(kind) as caught:
        make_client(retries=3).request("POST", URL, json={"order": 1})

    assert len(rsps.calls) == 1
    assert caught.value.retryable is True  # a job queue may retry it with an idempotency key
    assert "not retried: the server may have processed the POST" in str(caught.value)


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 503},
        {"status": 429},
        {"body": requests.ConnectTimeout()},
        {"body": refused()},
    ],
)
def test_post_is_repeated_when_the_server_surely_did_not_process_it(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient], answer: dict[str, Any]
) -> None:
    rsps.post(URL, **answer)

    with pytest.raises(HttpError):
        make_client(retries=2).request("POST", URL, json={"order": 1})

    assert len(rsps.calls) == 3


def test_patch_is_treated_like_post(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    rsps.patch(URL, status=500)

    with pytest.raises(Unavailable):
        make_client(retries=3).request("PATCH", URL)

    assert len(rsps.calls) == 1


def test_idempotent_overrides_the_method_default(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    rsps.post(URL, status=500)
    rsps.put(URL, status=500)
    client = make_client(retries=2)

    with pytest.raises(Unavailable):
        client.request("POST", URL, idempotent=True)  # e.g. a search sent as POST
    with pytest.raises(Unavailable):
        client.request("PUT", URL, idempotent=False)

    assert [c.request.method for c in rsps.calls] == ["POST", "POST", "POST", "PUT"]


def test_backoff_grows_exponentially_up_to_max_backoff(
    rsps: responses.RequestsMock,
    make_client: Callable[..., HttpClient],
    fake_time: FakeTime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Full jitter draws each wait from [0, ceiling]; drawing the ceiling shows the ceilings.
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    rsps.get(URL, status=503)

    with pytest.raises(Unavailable):
        make_client(retries=6, backoff=0.5, max_backoff=5, breaker_failures=10).request("GET", URL)

    assert fake_time.waits == [0.5, 1, 2, 4, 5, 5]


def test_backoff_is_jittered_below_the_ceiling(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient], fake_time: FakeTime
) -> None:
    rsps.get(URL, status=503)

    with pytest.raises(Unavailable):
        make_client(retries=40, backoff=0.5, max_backoff=3, breaker_failures=100).request(
            "GET", URL
        )

    ceilings = [min(3, 0.5 * 2**n) for n in range(40)]
    assert all(0 <= w <= c for w, c in zip(fake_time.waits, ceilings, strict=True))
    assert len(set(fake_time.waits)) > 30  # random, not a fixed schedule


@pytest.mark.parametrize(("retry_after", "waited"), [("4", 4), ("3600", 30)])
def test_retry_after_is_honoured_up_to_max_backoff(
    rsps: responses.RequestsMock,
    make_client: Callable[..., HttpClient],
    fake_time: FakeTime,
    retry_after: str,
    waited: float,
) -> None:
    rsps.get(URL, status=429, headers={"Retry-After": retry_after})
    rsps.get(URL, json={})

    make_client(max_backoff=30).request("GET", URL)

    assert fake_time.waits == [waited]


# --- circuit breaker -----------------------------------------------------------------------


def trip(client: HttpClient, rsps: responses.RequestsMock, failures: int) -> None:
    rsps.get(URL, status=503)
    for _ in range(failures):
        with pytest.raises(Unavailable):
            client.request("GET", URL)


def test_the_breaker_opens_after_consecutive_server_failures_and_sends_nothing(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    client = make_client(retries=0, breaker_failures=3, breaker_reset=30)
    trip(client, rsps, 3)

    with pytest.raises(CircuitOpen) as caught:
        client.request("GET", URL)

    assert len(rsps.calls) == 3
    assert caught.value.retryable is True
    assert "circuit open after 3 consecutive server failures; next trial in 30 s" in str(
        caught.value
    )


def test_timeouts_count_as_server_failures(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    rsps.get(URL, body=requests.ReadTimeout())
    client = make_client(retries=1, breaker_failures=2)

    with pytest.raises(Timeout):
        client.request("GET", URL)
    with pytest.raises(CircuitOpen):
        client.request("GET", URL)

    assert len(rsps.calls) == 2


def test_after_the_reset_one_trial_goes_through_and_success_closes_the_circuit(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient], fake_time: FakeTime
) -> None:
    client = make_client(retries=0, breaker_failures=2, breaker_reset=30)
    trip(client, rsps, 2)
    fake_time.now += 29
    with pytest.raises(CircuitOpen):
        client.request("GET", URL)

    fake_time.now += 1
    rsps.replace(responses.GET, URL, json={"ok": True})

    assert client.json("GET", URL) == {"ok": True}
    assert client.circuit_state == "closed"
    assert client.json("GET", URL) == {"ok": True}
    assert len(rsps.calls) == 4


def test_a_failed_trial_opens_the_circuit_again(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient], fake_time: FakeTime
) -> None:
    client = make_client(retries=0, breaker_failures=2, breaker_reset=30)
    trip(client, rsps, 2)
    fake_time.now += 30

    with pytest.raises(Unavailable):
        client.request("GET", URL)  # the trial
    with pytest.raises(CircuitOpen):
        client.request("GET", URL)

    assert len(rsps.calls) == 3


def test_only_one_trial_is_in_flight_while_half_open(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient], fake_time: FakeTime
) -> None:
    client = make_client(retries=0, breaker_failures=1, breaker_reset=30)
    trip(client, rsps, 1)
    fake_time.now += 30
    during_trial: list[str] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        # While the trial is on the wire, another thread of the worker asks for the account.
        if not during_trial:
            try:
                make_client(retries=0).request("GET", URL)
                during_trial.append("sent")
            except CircuitOpen as exc:
                during_trial.append(str(exc))
        return 200, {}, "{}"

    rsps.replace(responses.CallbackResponse(responses.GET, URL, callback=answer))

    client.request("GET", URL)

    assert len(during_trial) == 1
    assert "trial request is still in flight" in during_trial[0]
    assert len(rsps.calls) == 2  # the failure that tripped it, then the trial


def test_when_the_circuit_opens_mid_retry_the_server_error_is_raised_at_once(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient], fake_time: FakeTime
) -> None:
    rsps.get(URL, status=503)

    with pytest.raises(Unavailable) as caught:
        make_client(retries=5, breaker_failures=2).request("GET", URL)

    assert len(rsps.calls) == 2
    assert len(fake_time.waits) == 1
    assert str(caught.value).endswith("gave up after 2 attempts; the circuit is now open")


@pytest.mark.parametrize(
    "answer",
    [{"status": 401}, {"status": 404}, {"status": 422}, {"status": 429}, {"body": "not json"}],
)
def test_answers_that_show_the_server_is_up_do_not_trip_the_breaker(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient], answer: dict[str, Any]
) -> None:
    rsps.get(URL, **answer)
    client = make_client(retries=0, breaker_failures=2)

    for _ in range(5):
        with pytest.raises(HttpError) as caught:
            client.json("GET", URL)
        assert not isinstance(caught.value, CircuitOpen)

    assert len(rsps.calls) == 5


def test_a_success_resets_the_failure_count(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    client = make_client(retries=0, breaker_failures=3)
    rsps.get(URL, status=503)
    rsps.get(URL, status=503)
    rsps.get(URL, json={})
    rsps.get(URL, status=503)
    rsps.get(URL, status=503)

    for _ in range(5):
        with contextlib.suppress(Unavailable):
            client.request("GET", URL)

    assert client.circuit_state == "closed"


def test_clients_with_the_same_name_share_the_breaker(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    first = make_client(NAME, retries=0, breaker_failures=2)
    trip(first, rsps, 2)

    with pytest.raises(CircuitOpen):
        make_client(NAME, retries=0).request("GET", URL)
    with pytest.raises(Unavailable):
        make_client("amazon:connection:8", retries=0).request("GET", URL)

    assert len(rsps.calls) == 3


# --- rate limits ---------------------------------------------------------------------------


def test_calls_are_paced_to_the_rate_limit(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient], fake_time: FakeTime
) -> None:
    rsps.get(URL, json={})
    limit = RateLimit("getOrders", per_second=0.5, burst=2)
    client = make_client()

    for _ in range(4):
        client.request("GET", URL, limit=limit)

    assert fake_time.waits == pytest.approx([2.0, 2.0])
    assert len(rsps.calls) == 4


def test_an_idle_bucket_refills_only_up_to_its_burst(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient], fake_time: FakeTime
) -> None:
    rsps.get(URL, json={})
    limit = RateLimit("getOrders", per_second=0.5, burst=2)
    client = make_client()
    client.request("GET", URL, limit=limit)
    fake_time.now += 3600

    for _ in range(3):
        client.request("GET", URL, limit=limit)

    assert fake_time.waits == pytest.approx([2.0])


def test_buckets_are_shared_per_client_name_and_limit_name(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient], fake_time: FakeTime
) -> None:
    rsps.get(URL, json={})
    orders = RateLimit("getOrders", per_second=1, burst=1)
    items = RateLimit("getOrderItems", per_second=1, burst=1)

    make_client(NAME).request("GET", URL, limit=orders)
    make_client("amazon:connection:8").request("GET", URL, limit=orders)
    make_client(NAME).request("GET", URL, limit=items)
    assert fake_time.waits == []

    make_client(NAME).request("GET", URL, limit=orders)
    assert fake_time.waits == pytest.approx([1.0])


def test_threads_sharing_a_bucket_each_wait_for_their_own_token(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    rsps.get(URL, json={})
    client = make_client()
    waits: list[float] = []
    lock = threading.Lock()

    def record(seconds: float) -> None:
        with lock:
            waits.append(seconds)

    client.sleep = record  # the clock stands still: every token is reserved at once
    limit = RateLimit("getOrders", per_second=0.5, burst=2)
    threads = [
        threading.Thread(target=client.request, args=("GET", URL), kwargs={"limit": limit})
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(waits) == pytest.approx([2, 4, 6, 8, 10, 12])


def test_a_rate_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="per_second"):
        RateLimit("getOrders", per_second=0, burst=1)


# --- what is sent and what is said ----------------------------------------------------------


def test_the_hub_sets_the_user_agent_and_the_timeout(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    rsps.get(URL, json={})
    client = make_client(timeout=7)

    client.request("GET", URL, headers={"Accept": "application/json"})
    client.request("GET", URL, timeout=2)

    first, second = rsps.calls
    assert first.request.headers["User-Agent"].startswith("OrderHub/")
    assert first.request.headers["Accept"] == "application/json"
    assert first.request.req_kwargs["timeout"] == 7
    assert second.request.req_kwargs["timeout"] == 2


def test_the_message_names_client_method_url_status_and_attempts(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    rsps.get(URL, status=429)

    with pytest.raises(RateLimited) as caught:
        make_client(retries=3).request("GET", URL)

    assert str(caught.value) == (
        f"{NAME}: GET {URL} → 429 Too Many Requests (rate limited); gave up after 4 attempts"
    )


def test_tokens_never_reach_messages_or_logs(
    rsps: responses.RequestsMock,
    make_client: Callable[..., HttpClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    rsps.get(URL, status=503)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(Unavailable) as caught:
        make_client(retries=2).request(
            "GET",
            URL + "?access_token=SECRET-Q",
            params={"sign": "SECRET-P"},
            headers={"Authorization": "Bearer SECRET-H"},
        )

    said = str(caught.value) + caplog.text
    assert "attempt 2 of 3" in caplog.text
    assert "SECRET" not in said
    assert URL in said


def test_a_plugin_can_reword_an_error(
    rsps: responses.RequestsMock, make_client: Callable[..., HttpClient]
) -> None:
    rsps.get(URL, status=403, body='{"errors": []}')

    with pytest.raises(AuthError) as caught:
        make_client().request("GET", URL)
    reworded = AuthError("Amazon refused: re-authorise", status=caught.value.status)

    assert str(reworded) == "Amazon refused: re-authorise"
    assert (reworded.status, reworded.retryable) == (403, False)
