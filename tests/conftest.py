"""Fixtures: a migrated database per test on SQLite and on PostgreSQL, the app on the stub
broker, and a tenant with a user (and token) for every role plus a stranger tenant.

PostgreSQL and Redis tests skip when the service is missing on a developer's machine, and
fail instead when ``CI=true``.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text

from hub import create_app
from hub.core import auth, catalog, http, inventory, migrate, outbound, tenancy
from hub.core.db import make_engine
from hub.runtime import Runtime

CI = os.environ.get("CI") == "true"
PG_ADMIN_URL = os.environ.get("ORDERHUB_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ORDERHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Per run, so two runs on one machine (a developer and CI, say) never drop each other's data.
PG_TEST_DB = f"orderhub_test_{os.getpid()}"
REDIS_NAMESPACE = f"orderhub-test-{os.getpid()}"
# The hub's public address in tests: the test client's own, so webhook URLs can be posted to.
PUBLIC_URL = "http://localhost"
ROLES = ("admin", "operator", "warehouse", "service", "analyst")
# Seeding hashes ten passwords per test; the production method would cost a second each time.
auth.PASSWORD_METHOD = "pbkdf2:sha256:1000"


# --- secrets that must never come back -----------------------------------------------------
# Distinctive values: a test fails when one appears in an answer of the app (body or headers)
# or in a log record. The hub's secret key is the app fixture's; the variable is set for the
# whole session, so an API that resolved ``{"$env": ...}`` for a tenant would show it.
HUB_SECRET_KEY = "canary-hub-secret-key-5e0c9d4a"
ENV_CANARY_NAME = "ORDERHUB_TEST_CANARY"
ENV_CANARY = "canary-env-value-b7f1e2c8"
os.environ[ENV_CANARY_NAME] = ENV_CANARY
_ALWAYS_WATCHED = (HUB_SECRET_KEY, ENV_CANARY)
_watched: set[str] = set(_ALWAYS_WATCHED)
_leaks: list[str] = []


def watch_secret(*values: str) -> None:
    """Fail the current test if any of these (a plugin secret it uses) leaks the same way."""
    _watched.update(v for v in values if v)


def _leaked(text: str | bytes, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in tuple(_watched):
        if secret.encode() in data:
            _leaks.append(f"{secret!r} in {where}")


def _scan_response(response: Response) -> Response:
    """after_request on the test app: cheap (a handful of substring searches per answer)."""
    from flask import request

    where = f"the answer to {request.method} {request.path}"
    _leaked(str(response.headers), f"headers of {where}")
    if not response.is_streamed:
        _leaked(response.get_data(), where)
    return response


class _LeakHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken record is not this handler's to report
            return
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        _leaked(text, f"a log record of {record.name}")


@pytest.fixture(autouse=True)
def _no_secret_leaks() -> Iterator[None]:
    _leaks.clear()
    _watched.clear()
    _watched.update(_ALWAYS_WATCHED)
    handler = _LeakHandler(level=logging.NOTSET)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    if _leaks:
        found, _leaks[:] = list(dict.fromkeys(_leaks)), []
        pytest.fail("a secret leaked: " + "; ".join(found[:5]), pytrace=False)


@pytest.fixture
def leaks() -> list[str]:
    """The leaks found so far in this test (the leak check's own test empties it). A fixture
    rather than ``conftest._leaks``: pytest may load this file afresh when it runs twice in
    one process (mutmut does), and the test module would then hold the other copy."""
    return _leaks


def missing_service(what: str, why: object) -> None:
    message = f"{what} is not reachable ({why})"
    if CI:
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)


# --- databases -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_http_state() -> Iterator[None]:
    """Circuit breakers, rate-limit buckets and the outbound allow list are per process; no
    test inherits another's."""
    http.reset_for_tests()
    outbound.allow(())
    yield
    http.reset_for_tests()
    outbound.allow(())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "hub.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this run, migrated once; tests truncate it between them."""
    admin = create_engine(_psycopg(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for (name,) in conn.execute(text(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'orderhub_test_%'")):
                if not _pid_alive(name.rsplit("_", 1)[-1]):  # left by a killed run
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_TEST_DB} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {PG_TEST_DB}"))
    except Exception as exc:
        missing_service("PostgreSQL", exc)
    finally:
        admin.dispose()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_TEST_DB}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_TEST_DB} WITH (FORCE)"))
    admin.dispose()


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


# One round trip: DELETE (with triggers and foreign keys off for this transaction) is far
# quicker than TRUNCATE on small tables; identities restart and per-tenant sequences go.
RESET_SQL = """
DO $$ DECLARE r record; BEGIN
  PERFORM set_config('session_replication_role', 'replica', true);
  FOR r IN SELECT tablename FROM pg_tables
           WHERE schemaname = 'public' AND tablename <> 'alembic_version' LOOP
    EXECUTE format('DELETE FROM %I', r.tablename);
  END LOOP;
  FOR r IN SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' LOOP
    IF r.sequencename LIKE 'orderhub\\_%' THEN
      EXECUTE format('DROP SEQUENCE %I', r.sequencename);
    ELSE
      EXECUTE format('ALTER SEQUENCE %I RESTART', r.sequencename);
    END IF;
  END LOOP;
END $$;
"""


def reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(RESET_SQL.replace("%", "%%"))  # no parameters: escape %
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database test runs on both engines."""
    if request.param == "sqlite":
        path = tmp_path / "hub.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return url


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """An empty config folder; tests write hub.toml or tenants/*.toml into it as needed."""
    path = tmp_path / "config"
    (path / "tenants").mkdir(parents=True)
    return path


def config_with_acme(tmp_path: Path, acme_toml: str) -> Path:
    """A config folder whose tenants/acme.toml is ``acme_toml``: for a module whose tests
    parametrize acme's settings (its ``config_dir`` fixture returns this)."""
    path = tmp_path / "config"
    (path / "tenants").mkdir(parents=True)
    (path / "tenants" / "acme.toml").write_text(acme_toml)
    return path


def allow_outbound(config_dir: Path, *hosts: str) -> None:
    """Let the hub call these hosts (a local fake over http, say) as an operator would: an
    ``[outbound] allow`` list in hub.toml. Call it before the app is built."""
    entries = ", ".join(f'"{h}"' for h in hosts)
    with (config_dir / "hub.toml").open("a", encoding="utf-8") as f:
        f.write(f"\n[outbound]\nallow = [{entries}]\n")


def seed_people(runtime: Any, people: dict[str, str], slug: str = "acme") -> dict[str, str]:
    """Users of tenant ``slug`` named in ``people`` (username -> role); their API tokens."""
    from hub.core.models import Tenant

    with runtime.transaction() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
        session.info["orderhub.tenant_id"] = tenant.id
        return _add_users(session, tenant.id, people)


def _add_users(session: Any, tenant_id: int, people: dict[str, str]) -> dict[str, str]:
    """Each user (username -> role) with password ``password-<username>``; their tokens."""
    tokens = {}
    for username, role in people.items():
        user = auth.create_user(session, tenant_id, username, f"password-{username}", role,
                                "seed")
        tokens[username] = auth.create_token(session, user, "seed")
    return tokens


def hub_env(db_url: str, config_dir: Path, tmp_path: Path, **more: str) -> dict[str, str]:
    """The environment of an ``orderhub`` command on the app's database, config and secret."""
    return {
        "ORDERHUB_CONFIG_DIR": str(config_dir),
        "ORDERHUB_DATA_DIR": str(tmp_path / "var"),
        "ORDERHUB_DATABASE_URL": db_url,
        "ORDERHUB_BROKER_URL": "embedded",
        "ORDERHUB_SECRET_KEY": HUB_SECRET_KEY,
        **more,
    }


@pytest.fixture
def cli_env(db_url: str, config_dir: Path, tmp_path: Path) -> dict[str, str | None]:
    """The CLI on the same database and secret key as the app."""
    return dict(hub_env(db_url, config_dir, tmp_path))


@pytest.fixture
def app(db_url: str, config_dir: Path, tmp_path: Path) -> Iterator[Flask]:
    app = create_app({"database_url": db_url, "broker_url": "embedded",
                      "config_dir": config_dir, "data_dir": tmp_path / "var",
                      "secret_key": HUB_SECRET_KEY, "public_url": PUBLIC_URL})
    app.after_request(_scan_response)
    yield app
    runtime = app.extensions["orderhub"]
    # Whatever a test did, the ledger must still explain every balance.
    with runtime.transaction() as session:
        assert inventory.verify(session) == [], "stock balances drift from the ledger"
    runtime.close()


@pytest.fixture
def runtime(app: Flask) -> Runtime:
    return app.extensions["orderhub"]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- data ----------------------------------------------------------------------------------


@dataclass
class Api:
    """Thin helper over the test client: JSON in, (status, JSON) out, with a bearer token."""

    client: FlaskClient
    token: str
    tokens: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
             **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        response = self.client.open(f"/api/v1{path}", method=method, json=body,
                                    headers=headers, **kwargs)
        return response.status_code, response.get_json(silent=True)

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.call("POST", path, {} if body is None else body, **kw)

    def patch(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        return self.call("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.call("DELETE", path, **kw)


def seed_tenant(runtime: Runtime, slug: str, stock: dict[str, dict[str, int]] | None = None,
                products: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """A tenant with two warehouses, products, stock, and a user + token per role."""
    with runtime.transaction() as session:
        tenant = tenancy.create_tenant(session, slug)
        session.info["orderhub.tenant_id"] = tenant.id
        for w in ({"code": "MAIN", "name": "Main", "region": "east", "country": "US",
                   "priority": 10},
                  {"code": "WEST", "name": "West", "region": "west", "country": "US",
                   "priority": 20}):
            catalog.create_warehouse(session, tenant.id, w, "seed")
        for p in products or [
            {"sku": "SKU-A", "name": "Alpha", "category": "tools", "brand": "Acme",
             "price": "10.00", "low_stock_threshold": 5},
            {"sku": "SKU-B", "name": "Bravo", "category": "tools", "brand": "Bolt",
             "price": "25.50", "low_stock_threshold": 0},
            {"sku": "SKU-C", "name": "Charlie", "category": "toys", "brand": "Acme",
             "price": "3.99", "low_stock_threshold": 2},
        ]:
            catalog.create_product(session, tenant.id, p, "seed",
                                   currency=runtime.tenant_settings(slug).currency)
        for code, skus in (stock if stock is not None else
                           {"MAIN": {"SKU-A": 20, "SKU-B": 10, "SKU-C": 5},
                            "WEST": {"SKU-A": 10, "SKU-C": 5}}).items():
            if skus:
                rows = [{"sku": s, "quantity": q} for s, q in skus.items()]
                inventory.receive(session, tenant.id,
                                  inventory.resolve_movements(session, tenant.id, rows, code),
                                  reference="seed", actor="seed")
        return _add_users(session, tenant.id, {role: role for role in ROLES})


@pytest.fixture
def api(client: FlaskClient, runtime: Runtime) -> Api:
    """Tenant 'acme' with every role's token (``api.tokens``) and a stranger tenant 'other'."""
    tokens = seed_tenant(runtime, "acme")
    other = seed_tenant(runtime, "other")
    tokens["stranger"] = other["admin"]
    return Api(client, tokens["admin"], tokens)


@pytest.fixture
def web(client: FlaskClient, api: Api) -> Any:
    """The web admin through the test client, with ``api``'s shops seeded: sign in with
    ``web.login(<role>)`` (users are named after their roles; password ``password-<name>``)."""
    from web_support import Web

    return Web(client)


ORDER = {
    "lines": [{"sku": "SKU-A", "quantity": 2, "unit_price": "10.00"},
              {"sku": "SKU-B", "quantity": 1, "unit_price": "25.50"}],
    "consignee": {"name": "Ann Lee", "phone": "+1 555 0100",
                  "address": {"line1": "1 Main St", "city": "Newark", "region": "NJ",
                              "postcode": "07101", "country": "US"}},
    "customer": {"email": "ann@example.com", "name": "Ann Lee"},
}


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The real Redis broker; queues live under a per-run namespace (setting
    ``broker_namespace``), removed afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as exc:
        missing_service("Redis", exc)
    yield REDIS_URL
    for key in client.scan_iter(f"{REDIS_NAMESPACE}*"):
        client.delete(key)
    client.close()


def waits_for_a_lock(
    engine: Any, work: Callable[[], Any]
) -> tuple[bool, threading.Thread, list[Any]]:
    """Start ``work`` in a thread and watch until it ends or PostgreSQL shows a session of
    this database waiting for a lock (one the caller holds on another connection). Returns
    whether it waited, the thread (join it once the lock is released) and a list that gets
    what ``work`` returned."""
    answer: list[Any] = []
    worker = threading.Thread(target=lambda: answer.append(work()))
    waited = False
    with engine.connect() as watcher:
        worker.start()
        while worker.is_alive() and not waited:
            waited = watcher.execute(_WAITING_FOR_A_LOCK).scalar_one() > 0
            watcher.commit()
            time.sleep(0.02)
    return waited, worker, answer


_WAITING_FOR_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND wait_event_type = 'Lock'"
)



# The browser tests' fixtures (a session-wide Chromium, the live server, tabs), declared here
# once so every module shares the one browser.
from browser_support import browser, live, tab, tab_zh  # noqa: E402, F401
