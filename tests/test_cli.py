"""The ``orderhub`` command, as a newcomer and an admin use it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from hub.cli import cli

ORDERHUB = str(Path(sys.executable).with_name("orderhub"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "config" / "tenants").mkdir(parents=True)
    return {
        "ORDERHUB_CONFIG_DIR": str(tmp_path / "config"),
        "ORDERHUB_DATA_DIR": str(tmp_path / "var"),
        "ORDERHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "ORDERHUB_BROKER_URL": "embedded",
    }


def run(env: dict[str, str], *args: str, input: str | None = None):
    result = CliRunner(env=env).invoke(cli, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_quick_start_init_demo_then_serve_answers_with_the_printed_token(tmp_path, env):
    # Given a fresh folder, the README's first command: init --demo, then serve
    full_env = {**os.environ, **env}
    init = subprocess.run(
        [ORDERHUB, "init", "--demo"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert init.returncode == 0, init.stderr
    token = next(
        line.split(": ", 1)[1]
        for line in init.stdout.splitlines()
        if line.startswith("API token: ")
    )
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [ORDERHUB, "serve", "--port", str(port)],
        env=full_env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Generous: on a loaded CI machine importing and migrating can take tens of seconds.
        deadline = time.monotonic() + 60
        while True:
            try:
                health = requests.get(f"{base}/readyz", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the hub did not start")
                time.sleep(0.1)
        assert health.status_code == 200
        assert health.json()["checks"]["broker"] == {"ok": True, "kind": "embedded", "worker": True}

        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {token}"
        api = f"{base}/api/v1"
        # When the printed token creates, queries, modifies, splits, merges and cancels orders
        codes = [w["code"] for w in s.get(f"{api}/warehouses", timeout=5).json()["items"]]
        assert codes == ["MAIN", "WEST"]
        body = {
            "lines": [
                {"sku": "TSHIRT-BLK-M", "quantity": 2, "unit_price": "19.90"},
                {"sku": "MUG-LOGO", "quantity": 1, "unit_price": "9.50"},
            ],
            "consignee": {
                "name": "Ann Lee",
                "phone": "+1 555 0100",
                "address": {
                    "line1": "1 Main St",
                    "city": "Newark",
                    "region": "NJ",
                    "postcode": "07101",
                    "country": "US",
                },
            },
            "customer": {"email": "ann@example.com", "name": "Ann Lee"},
        }
        first = s.post(f"{api}/orders", json=body, timeout=5)
        assert first.status_code == 201 and first.json()["status"] == "confirmed"
        second = s.post(f"{api}/orders", json=body, timeout=5).json()
        number = first.json()["number"]
        found = s.get(f"{api}/orders", params={"q": "Ann", "per_page": 1}, timeout=5).json()
        assert found["total"] == 2 and len(found["items"]) == 1
        changed = s.patch(
            f"{api}/orders/{number}",
            json={"lines": [{"sku": "TSHIRT-BLK-M", "quantity": 3}]},
            timeout=5,
        )
        assert changed.status_code == 200 and changed.json()["lines"][0]["quantity"] == 3
        child = s.post(
            f"{api}/orders/{number}/split",
            json={"lines": [{"sku": "TSHIRT-BLK-M", "quantity": 1}]},
            timeout=5,
        )
        assert child.status_code == 201
        merged = s.post(
            f"{api}/orders/merge", json={"numbers": [number, child.json()["number"]]}, timeout=5
        )
        assert merged.status_code == 200
        assert sum(line["quantity"] for line in merged.json()["lines"]) == 3
        cancelled = s.post(f"{api}/orders/{second['number']}/cancel", json={}, timeout=5)
        assert cancelled.json()["status"] == "cancelled"
        stock = s.get(f"{api}/stock", params={"sku": "TSHIRT-BLK-M"}, timeout=5).json()
        assert sum(i["reserved"] for i in stock["items"]) == 3
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        log.close()


def test_users_tokens_and_tenants(env):
    assert run(env, "init")[0] == 0
    assert run(env, "tenants", "add", "shop-1") == (0, "tenant shop-1 added\n")
    code, out = run(env, "tenants", "add", "shop-1")
    assert code == 1 and "already exists" in out
    code, out = run(env, "tenants", "add", "Bad Slug")
    assert code == 1 and "lower-case" in out

    code, out = run(
        env, "users", "add", "--tenant", "shop-1", "--username", "ops", "--role", "operator"
    )
    assert code == 0, out
    assert "password: " in out  # not a terminal: a password is generated and shown once
    code, out = run(
        env,
        "users",
        "add",
        "--tenant",
        "shop-1",
        "--username",
        "boss",
        "--role",
        "admin",
        "--password",
        "correct horse",
    )
    assert code == 0 and "password" not in out.split("as admin")[1]
    code, out = run(env, "users", "add", "--tenant", "shop-1", "--username", "x", "--role", "king")
    assert code == 2 and "king" in out

    code, out = run(env, "tokens", "create", "--tenant", "shop-1", "--user", "ops")
    assert code == 0
    assert len(out.splitlines()) == 1 and out.startswith("oh_")
    code, out = run(env, "tokens", "create", "--tenant", "shop-1", "--user", "nobody")
    assert code == 1 and "no user 'nobody'" in out


def test_stock_import_and_verify(env, tmp_path):
    assert run(env, "init", "--demo")[0] == 0
    csv = tmp_path / "asn.csv"
    rows = ["warehouse,sku,quantity"] + [f"MAIN,MUG-LOGO,{1 + i % 3}" for i in range(3000)]
    csv.write_text("\n".join(rows) + "\n")

    code, out = run(env, "stock", "import", str(csv), "--tenant", "demo")
    assert code == 0, out
    assert "3000 rows applied to demo" in out

    bad = tmp_path / "bad.csv"
    bad.write_text("warehouse,sku,quantity\nMAIN,MUG-LOGO,1\nMAIN,NOPE,2\n")
    code, out = run(env, "stock", "import", str(bad))
    assert code == 1 and "line 3: unknown SKU 'NOPE'" in out

    code, out = run(env, "stock", "verify")
    assert code == 0 and "no drift" in out

    # A balance changed behind the ledger's back is reported.
    engine = create_engine(env["ORDERHUB_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text("UPDATE stock_levels SET on_hand = on_hand + 7 WHERE id = 1"))
    engine.dispose()
    code, out = run(env, "stock", "verify")
    assert code == 1
    assert "DRIFT" in out and "1 balances drift" in out


def test_db_upgrade_downgrade_current(env):
    code, out = run(env, "db", "current")
    assert code == 0 and out.startswith("base (behind")
    assert run(env, "db", "upgrade")[0] == 0
    code, out = run(env, "db", "current")
    assert "(up to date)" in out
    code, out = run(env, "db", "downgrade", "base")
    assert code == 0 and out.strip() == "at base"


def test_serve_refuses_an_unmigrated_database(env):
    code, out = run(env, "serve", "--port", str(free_port()))
    assert code == 1 and "orderhub init" in out
