"""The runtime: settings, database, plugins and job queue, built once per process and shared
by the web app, the worker and the CLI (one factory for all three)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from hub.core import events, intake, orders, outbound, scoping
from hub.core.adapters import CarrierAdapter, ChannelAdapter
from hub.core.db import make_engine, make_session_factory
from hub.core.errors import Invalid
from hub.core.http import HttpClient
from hub.core.models import CarrierAccount, Connection, Tenant
from hub.core.rules import Rules
from hub.core.secret_box import SecretBox
from hub.plugins import Plugins
from hub.settings import Settings, TenantSettings

logger = logging.getLogger("orderhub")
# How long the webhook route trusts its cached lookup of a connection (see hook_connection).
CONNECTION_TTL = 5.0


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.database_url.startswith("sqlite:///"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.database_url)
        self.sessions = make_session_factory(self.engine)
        scoping.install(self.sessions)
        event.listen(self.sessions, "after_commit", self._after_commit)
        event.listen(self.sessions, "after_rollback", self._after_rollback)
        self.plugins = Plugins(disabled=settings.disabled_plugins)
        # Process-wide: every HttpClient, even one a bare adapter makes, obeys it.
        outbound.allow(settings.outbound_allow)
        self._listening: dict[tuple[int, str, int], bool] = {}
        self._rules: dict[int, Rules] = {}
        self._adapters: dict[int, tuple[tuple[Any, ...], ChannelAdapter]] = {}
        self._hook_connections: dict[tuple[str, int], tuple[float, intake.ConnectionFacts]] = {}
        self.secrets = SecretBox(settings.secret_key)
        from hub.worker.broker import Jobs

        self.jobs = Jobs(self)

    def session(self, tenant_id: int | None = None) -> Session:
        session = self.sessions()
        session.info[events.LISTENS_KEY] = self.listens
        session.info[orders.RULES_KEY] = self.rules_for
        if tenant_id is not None:
            session.info[scoping.TENANT_KEY] = tenant_id
        return session

    @contextmanager
    def transaction(self, tenant_id: int | None = None) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any exception."""
        with self.session(tenant_id) as session, session.begin():
            yield session

    def listens(self, session: Session, tenant_id: int, event: str) -> bool:
        """Does anyone hear this tenant's event: a notifier's route or an enabled plugin's
        hook? Settings are fixed for the process's life, so the answer can be cached."""
        key = (tenant_id, event, self.plugins.generation)
        answer = self._listening.get(key)
        if answer is None:
            slug = session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))
            tenant = self.tenant_settings(slug) if slug else None
            answer = tenant is not None and (
                tenant.notifications.hears(event) or self.plugins.implements(event, tenant)
            )
            self._listening[key] = answer
        return answer

    def rules_for(self, session: Session, tenant_id: int) -> Rules:
        """The tenant's order rules; settings are fixed for the process's life."""
        rules = self._rules.get(tenant_id)
        if rules is None:
            slug = session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))
            rules = self.tenant_settings(slug).rules if slug else Rules()
            self._rules[tenant_id] = rules
        return rules

    def channel_adapter(self, connection: Connection) -> ChannelAdapter:
        """The plugin's adapter for a connection, with its secrets decrypted (or resolved
        from the environment) and an HTTP client of its own: each connection has its own
        circuit breaker and rate-limit buckets, so one failing account never stops another."""
        cls = self.plugins.adapters("channels").get(connection.plugin)
        if cls is None:
            raise Invalid(
                f"channel plugin {connection.plugin!r} is not installed or failed to load"
            )
        return cls(  # type: ignore[return-value]
            self.secrets.open(connection.settings, references=connection.source == "config"),
            http=HttpClient(f"{connection.plugin}:connection:{connection.id}"),
        )

    def carrier_adapter(
        self, account: CarrierAccount, *, timeout: float | None = None
    ) -> CarrierAdapter:
        """The plugin's adapter for a carrier account, with its secrets opened and an HTTP
        client named ``<plugin>:account:<id>``: the account's circuit breaker and rate-limit
        buckets are shared by every adapter of that account in the process and by no other
        account. ``timeout`` lowers the client's per-request timeout (a quote under a
        deadline), so a hung carrier does not hold a thread long after its answer stopped
        mattering."""
        cls = self.plugins.adapters("carriers").get(account.plugin)
        if cls is None:
            raise Invalid(f"carrier plugin {account.plugin!r} is not installed or failed to load")
        name = f"{account.plugin}:account:{account.id}"
        http = HttpClient(name) if timeout is None else HttpClient(name, timeout=timeout)
        opened = self.secrets.open(account.settings, references=account.source == "config")
        return cls(opened, http=http)  # type: ignore[return-value]

    def adapter_for(self, connection: intake.ConnectionFacts) -> ChannelAdapter:
        """``channel_adapter``, built once per connection and kept while its plugin, its
        stored settings and the loaded plugins stay the same: building one decrypts secrets,
        and every delivery needs one twice (verify, then parse). Shared between threads, so
        only for verify, delivery and parse, which keep no state; polling and fulfilment
        (tokens, clocks) build their own."""
        key = (connection.plugin, connection.settings, self.plugins.generation)
        cached = self._adapters.get(connection.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        adapter = self.channel_adapter(connection)  # type: ignore[arg-type]
        self._adapters[connection.id] = (key, adapter)
        return adapter

    def hook_connection(
        self, db: intake.DbConnection, slug: str, connection_id: int
    ) -> intake.ConnectionFacts | None:
        """The connection a webhook URL names, looked up at most every CONNECTION_TTL
        seconds rather than with a round trip per delivery. Only its settings can change
        meanwhile (``orderhub channels sync``), seen after that long at most; being paused
        does not matter here, and the ingest job reads the connection under its lock."""
        now = time.monotonic()
        cached = self._hook_connections.get((slug, connection_id))
        if cached is not None and cached[0] > now:
            return cached[1]
        connection = intake.push_connection(db, slug, connection_id)
        if connection is not None:
            self._hook_connections[(slug, connection_id)] = (now + CONNECTION_TTL, connection)
        return connection

    def tenant_settings(self, slug: str) -> TenantSettings:
        return self.settings.tenant(slug)

    def _after_commit(self, session: Session) -> None:
        for event_id in events.take_emitted(session):
            self.jobs.send("dispatch_event", event_id)
        for actor, arg in session.info.pop(events.AFTER_COMMIT_JOBS, []):
            self.jobs.send(actor, arg)

    def _after_rollback(self, session: Session) -> None:
        events.take_emitted(session)
        session.info.pop(events.AFTER_COMMIT_JOBS, None)

    def close(self) -> None:
        self.jobs.close()
        self.engine.dispose()

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Runtime db={self.engine.url!r} broker={self.settings.broker_url!r}>"
