"""Pull channels: a poll lands each page in the inbox as it comes, saves the cursor only
after the last page, records what went wrong, runs once per connection at a time, and the
sweeper polls each connection when it is due — through the job, the API and the CLI.

The channel is a small one defined here (``Feed``): it serves the pages a test gives it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import timedelta
from importlib.metadata import EntryPoint
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from conftest import Api
from sqlalchemy import func, select, update

from hub import hookimpl
from hub import plugins as plugins_module
from hub.cli import cli
from hub.core import polling
from hub.core.adapters import PollPage, Pulled, StubChannel
from hub.core.db import utcnow
from hub.core.http import AuthError, Unavailable
from hub.core.models import Connection, InboxEntry, Order
from hub.runtime import Runtime
from hub.worker import actors

Step = PollPage | Exception | Callable[[], None]


class Feed(StubChannel):
    """A pull channel reading the Stub channel's JSON orders; ``steps`` are what its poll
    does in turn: yield a page, raise an error, or call a function (to look at the hub
    between two pages, or to hold the poll there)."""

    name = "feed"
    title = "Test feed (pull)"
    capabilities = frozenset({"pull"})
    poll_seconds = 60
    steps: ClassVar[list[Step]] = []
    cursors: ClassVar[list[str | None]] = []  # the cursor each poll started from

    def poll(self, cursor: str | None) -> Iterator[PollPage]:
        type(self).cursors.append(cursor)
        for step in self.steps:
            if isinstance(step, Exception):
                raise step
            if isinstance(step, PollPage):
                yield step
            else:
                step()


class FeedPlugin:
    @staticmethod
    @hookimpl
    def register_channels() -> list[type]:
        return [Feed, StubChannel]


@pytest.fixture(autouse=True)
def _feed_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Feed installed as a third-party plugin would be, so the app and the CLI both see it."""
    monkeypatch.setattr(Feed, "steps", [])
    monkeypatch.setattr(Feed, "cursors", [])
    original = plugins_module.entry_points
    feed = EntryPoint(name="feed", value="test_polling:FeedPlugin", group="orderhub")
    monkeypatch.setattr(
        plugins_module,
        "entry_points",
        lambda *, group: [*original(group=group), *([feed] if group == "orderhub" else [])],
    )
    monkeypatch.delenv("ORDERHUB_LOAD_PLUGINS", raising=False)


def order(order_id: str, sku: str = "SKU-A", quantity: int = 1) -> Pulled:
    body = {
        "id": order_id,
        "updated_at": "2026-11-01T10:00:00+00:00",
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": "10.00"}],
    }
    return Pulled(f"{order_id}@1", json.dumps(body).encode(), "order")


def connect(api: Api, name: str = "feed-1", plugin: str = "feed", **kw: Any) -> dict[str, Any]:
    status, body = api.post(
        "/connections", {"plugin": plugin, "name": name, "settings": {"secret": "s"}}, **kw
    )
    assert status == 201, body
    return body


@pytest.fixture
def feed(api: Api) -> dict[str, Any]:
    return connect(api)


def row(runtime: Runtime, connection_id: int) -> Connection:
    with runtime.session() as session:
        connection = session.get(Connection, connection_id)
        assert connection is not None
        return connection


def inbox_keys(runtime: Runtime) -> list[str]:
    with runtime.session() as session:
        return list(session.scalars(select(InboxEntry.delivery_key).order_by(InboxEntry.id)))


def feed_orders(runtime: Runtime) -> list[str]:
    with runtime.session() as session:
        return sorted(session.scalars(select(Order.external_id).where(Order.channel == "feed")))


def set_times(runtime: Runtime, connection_id: int, **values: Any) -> None:
    with runtime.transaction() as session:
        session.execute(update(Connection).where(Connection.id == connection_id).values(**values))


# --- the poll job ----------------------------------------------------------------------------


def test_a_poll_stores_every_page_and_saves_the_cursor_after_the_last(
    api: Api, runtime: Runtime, feed: dict[str, Any]
) -> None:
    seen: list[tuple[str | None, list[str]]] = []
    Feed.steps = [
        PollPage([order("A1"), order("A2")]),
        lambda: seen.append((row(runtime, feed["id"]).cursor, inbox_keys(runtime))),
        PollPage([order("A3")], cursor="2026-11-01T10:05:00Z"),
    ]
    runtime.jobs.start_worker(sweep=False)

    result = actors.poll_channel(runtime, feed["id"])
    runtime.jobs.join()

    assert (result["stored"], result["duplicates"], result["cursor"]) == (
        3,
        0,
        "2026-11-01T10:05:00Z",
    )
    # Between the pages the first page was already committed, and the cursor not yet moved.
    assert seen == [(None, ["A1@1", "A2@1"])]
    assert feed_orders(runtime) == ["A1", "A2", "A3"]
    # Stored as a webhook delivery is: the plugin's topic, and no request headers at all.
    with runtime.session() as session:
        stored = session.execute(select(InboxEntry.topic, InboxEntry.headers)).all()
    assert [tuple(r) for r in stored] == [("order", {})] * 3
    status, shown = api.get(f"/connections/{feed['id']}")
    assert status == 200
    assert shown["cursor"] == "2026-11-01T10:05:00Z"
    assert shown["last_polled_at"] is not None and shown["last_poll_error"] is None
    assert (shown["capabilities"], shown["source"], shown["backlog"]) == (["pull"], "api", 0)


def test_a_second_poll_starts_from_the_cursor_and_counts_repeats_as_duplicates(
    runtime: Runtime, feed: dict[str, Any]
) -> None:
    Feed.steps = [PollPage([order("B1"), order("B2")], cursor="c1")]
    assert actors.poll_channel(runtime, feed["id"])["stored"] == 2
    Feed.steps = [PollPage([order("B2"), order("B3")], cursor="c2")]

    result = actors.poll_channel(runtime, feed["id"])

    assert (result["stored"], result["duplicates"], result["cursor"]) == (1, 1, "c2")
    assert Feed.cursors == [None, "c1"]
    assert inbox_keys(runtime) == ["B1@1", "B2@1", "B3@1"]


def test_a_poll_that_fails_half_way_keeps_its_pages_and_the_old_cursor(
    api: Api, runtime: Runtime, feed: dict[str, Any]
) -> None:
    Feed.steps = [PollPage([order("C1")], cursor="c1")]
    actors.poll_channel(runtime, feed["id"])
    outage = Unavailable("503 Service Unavailable", status=503)
    Feed.steps = [PollPage([order("C2")]), outage, PollPage([order("C3")], cursor="c3")]
    runtime.jobs.start_worker(sweep=False)

    # A retryable error is raised again, so Dramatiq retries the job.
    with pytest.raises(Unavailable):
        actors.poll_channel(runtime, feed["id"])
    runtime.jobs.join()

    assert inbox_keys(runtime) == ["C1@1", "C2@1"]
    assert feed_orders(runtime) == ["C1", "C2"]  # the page before the failure is worked
    connection = row(runtime, feed["id"])
    assert connection.cursor == "c1"
    assert connection.last_poll_error == "Unavailable: 503 Service Unavailable"
    assert connection.last_poll_error_at is not None
    assert connection.poll_started_at is None  # the lease is given back
    _, shown = api.get(f"/connections/{feed['id']}")
    assert shown["last_poll_error"] == "Unavailable: 503 Service Unavailable"

    # Refused credentials are recorded, not retried: retrying cannot mend them.
    Feed.steps = [AuthError("401 Unauthorized: the refresh token was revoked", status=401)]
    result = actors.poll_channel(runtime, feed["id"])
    assert result["error"] == "AuthError: 401 Unauthorized: the refresh token was revoked"
    assert row(runtime, feed["id"]).last_poll_error == result["error"]

    # The next good poll starts again from the old cursor and clears the error.
    Feed.steps = [PollPage([order("C2"), order("C3")], cursor="c3")]
    result = actors.poll_channel(runtime, feed["id"])
    assert (result["stored"], result["duplicates"]) == (1, 1)
    assert Feed.cursors[-1] == "c1"
    connection = row(runtime, feed["id"])
    assert (connection.cursor, connection.last_poll_error) == ("c3", None)
    assert connection.last_poll_error_at is None


def test_a_paused_connection_is_not_polled(
    api: Api, runtime: Runtime, feed: dict[str, Any]
) -> None:
    Feed.steps = [PollPage([order("D1")], cursor="d1")]
    assert api.post(f"/connections/{feed['id']}/pause")[0] == 200

    result = actors.poll_channel(runtime, feed["id"])

    assert result["skipped"] == "the connection is paused"
    assert Feed.cursors == [] and inbox_keys(runtime) == []
    status, error = api.post(f"/connections/{feed['id']}/poll")
    assert status == 409 and "paused" in error["error"]["message"]


def test_a_push_channel_is_not_polled(api: Api, runtime: Runtime) -> None:
    shop = connect(api, "web-shop", plugin="stub")
    assert actors.poll_channel(runtime, shop["id"])["skipped"] == "'stub' is not a pull channel"
    status, error = api.post(f"/connections/{shop['id']}/poll")
    assert status == 409
    assert "is not a pull channel" in error["error"]["message"]
    assert api.get(f"/connections/{shop['id']}")[1]["capabilities"] == ["push", "refund"]


# --- one poll per connection -----------------------------------------------------------------


def test_two_polls_of_one_connection_at_once_only_one_runs(
    runtime: Runtime, feed: dict[str, Any]
) -> None:
    release = threading.Event()
    Feed.steps = [
        lambda: release.wait(30),  # the poll that got in waits here until the others are done
        PollPage([order("E1")], cursor="e1"),
    ]
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(actors.poll_channel, runtime, feed["id"]) for _ in range(4)]
        pending = set(futures)
        while len(pending) > 1:  # the three that found the lease taken return at once
            done, pending = wait(pending, timeout=30, return_when=FIRST_COMPLETED)
            assert done, "no poll returned"
        release.set()
        results = [f.result(timeout=30) for f in futures]

    ran = [r for r in results if r["skipped"] is None]
    assert len(ran) == 1 and ran[0]["stored"] == 1
    assert [r["skipped"] for r in results if r["skipped"]] == [
        "another poll of this connection is running"
    ] * 3
    assert Feed.cursors == [None]
    assert row(runtime, feed["id"]).cursor == "e1"


def test_a_crashed_pollers_lease_expires(runtime: Runtime, feed: dict[str, Any]) -> None:
    Feed.steps = [PollPage([order("F1")], cursor="f1")]
    set_times(runtime, feed["id"], poll_started_at=utcnow())  # a poll is running …
    assert actors.poll_channel(runtime, feed["id"])["skipped"]

    # … or was, until its process died: after the lease it is taken over.
    set_times(runtime, feed["id"], poll_started_at=utcnow() - polling.LEASE - timedelta(seconds=1))
    result = actors.poll_channel(runtime, feed["id"])
    assert (result["skipped"], result["stored"], result["cursor"]) == (None, 1, "f1")


# --- the schedule ----------------------------------------------------------------------------


def test_the_sweep_polls_only_connections_that_are_due(
    api: Api, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    long_ago = now - timedelta(seconds=Feed.poll_seconds + 5)
    ids = {
        name: connect(api, name)["id"]
        for name in (
            "never-polled",
            "polled-long-ago",
            "just-polled",
            "just-failed",
            "failed-long-ago",
            "being-polled",
            "dead-poller",
            "paused",
        )
    }
    connect(api, "webhooks", plugin="stub")
    set_times(runtime, ids["polled-long-ago"], last_polled_at=long_ago)
    set_times(runtime, ids["just-polled"], last_polled_at=now - timedelta(seconds=5))
    set_times(runtime, ids["just-failed"], last_polled_at=long_ago, last_poll_error_at=now)
    set_times(runtime, ids["failed-long-ago"], last_poll_error_at=long_ago)
    set_times(runtime, ids["being-polled"], poll_started_at=now)
    set_times(runtime, ids["dead-poller"], poll_started_at=now - polling.LEASE * 2)
    api.post(f"/connections/{ids['paused']}/pause")
    sent: list[tuple[str, tuple[Any, ...]]] = []
    monkeypatch.setattr(runtime.jobs, "send", lambda actor, *args: sent.append((actor, args)))

    actors.sweep(runtime)

    polled = {args[0] for actor, args in sent if actor == "poll_channel"}
    assert polled == {
        ids[name] for name in ("never-polled", "polled-long-ago", "failed-long-ago", "dead-poller")
    }
    assert all(args[1:] == (True,) for actor, args in sent if actor == "poll_channel")


def test_a_scheduled_poll_queued_twice_runs_once(runtime: Runtime, feed: dict[str, Any]) -> None:
    Feed.steps = [PollPage([order("G1")], cursor="g1")]
    first = actors.poll_channel(runtime, feed["id"], True)
    second = actors.poll_channel(runtime, feed["id"], True)

    assert first["stored"] == 1
    assert second["skipped"] == "not due, or being polled"
    assert Feed.cursors == [None]
    # Asked for by a person, it polls whenever it is free.
    assert actors.poll_channel(runtime, feed["id"])["skipped"] is None


def test_a_failed_scheduled_poll_is_retried_by_the_job_queue_not_the_sweep(
    runtime: Runtime, feed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    Feed.steps = [Unavailable("503 Service Unavailable", status=503)]
    with pytest.raises(Unavailable):
        actors.poll_channel(runtime, feed["id"], True)
    sent: list[tuple[str, tuple[Any, ...]]] = []
    monkeypatch.setattr(runtime.jobs, "send", lambda actor, *args: sent.append((actor, args)))
    actors.sweep(runtime)
    assert ("poll_channel", (feed["id"], True)) not in sent  # it failed just now

    Feed.steps = [PollPage([order("G2")], cursor="g2")]
    retried = actors.poll_channel(runtime, feed["id"], True)  # Dramatiq's retry, same args

    assert (retried["skipped"], retried["stored"], retried["cursor"]) == (None, 1, "g2")


def test_the_embedded_worker_polls_on_schedule(runtime: Runtime, feed: dict[str, Any]) -> None:
    Feed.steps = [PollPage([order("H1")], cursor="h1")]
    runtime.settings.sweep_seconds = 0.05
    runtime.jobs.start_worker()  # with the sweeper thread, as `orderhub serve` runs it
    deadline = utcnow() + timedelta(seconds=20)
    while row(runtime, feed["id"]).cursor != "h1" and utcnow() < deadline:
        time.sleep(0.05)
    runtime.jobs.join()

    assert row(runtime, feed["id"]).cursor == "h1"
    assert feed_orders(runtime) == ["H1"]
    assert Feed.cursors == [None]  # polled once: afterwards it was not due


# --- API and CLI ---------------------------------------------------------------------------


def test_the_api_queues_a_poll(api: Api, runtime: Runtime, feed: dict[str, Any]) -> None:
    Feed.steps = [PollPage([order("J1"), order("J2")], cursor="j2")]
    runtime.jobs.start_worker(sweep=False)

    status, body = api.post(f"/connections/{feed['id']}/poll")
    runtime.jobs.join()

    assert (status, body) == (202, {"queued": True})
    assert feed_orders(runtime) == ["J1", "J2"]
    _, listed = api.get("/connections")
    [shown] = listed["items"]
    assert (shown["cursor"], shown["last_poll_error"]) == ("j2", None)
    assert shown["last_polled_at"] is not None
    # Another tenant cannot poll acme's connection.
    status, _ = api.post(f"/connections/{feed['id']}/poll", token=api.tokens["stranger"])
    assert status == 404



def run(env: dict[str, str | None], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_cli_polls_in_the_foreground_and_the_orders_exist_when_it_ends(
    api: Api, runtime: Runtime, feed: dict[str, Any], cli_env: dict[str, str | None]
) -> None:
    Feed.steps = [
        PollPage([order("K1")]),
        PollPage([order("K2"), order("K3", sku="NOT-OURS")], cursor="k3"),
    ]
    code, out = run(cli_env, "channels", "poll", "feed-1", "--tenant", "acme")
    assert code == 0, out
    assert f"feed-1 (id {feed['id']}, feed): 3 stored, 0 duplicates, cursor k3" in out
    assert "ingested: 2 processed, 1 rejected" in out
    assert "unknown SKU 'NOT-OURS'" in out
    assert feed_orders(runtime) == ["K1", "K2"]

    code, out = run(cli_env, "channels", "poll", str(feed["id"]))  # by id
    assert code == 0, out
    assert "0 stored, 3 duplicates, cursor k3" in out

    # The same name in two tenants: the tenant must be named.
    connect(api, "feed-1", token=api.tokens["stranger"])
    code, out = run(cli_env, "channels", "poll", "feed-1")
    assert code == 1 and "add --tenant" in out
    code, out = run(cli_env, "channels", "poll", "feed-9", "--tenant", "acme")
    assert code == 1 and "no connection 'feed-9' in tenant 'acme'" in out


def test_cli_reports_a_failed_poll_and_a_push_channel(
    api: Api, runtime: Runtime, feed: dict[str, Any], cli_env: dict[str, str | None]
) -> None:
    Feed.steps = [PollPage([order("L1")]), Unavailable("502 Bad Gateway", status=502)]
    code, out = run(cli_env, "channels", "poll", "feed-1")
    assert code == 1
    assert "poll of feed-1" in out and "502 Bad Gateway" in out and "cursor did not move" in out
    assert feed_orders(runtime) == ["L1"]  # what came before the failure was kept and worked

    connect(api, "web-shop", plugin="stub")
    code, out = run(cli_env, "channels", "poll", "web-shop")
    assert code == 1 and "'stub' is not a pull channel" in out
    with runtime.session() as session:
        assert session.scalar(select(func.count()).select_from(InboxEntry)) == 1
