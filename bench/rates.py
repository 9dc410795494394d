"""Rate-shopping benchmark: a batch of 10,000 distinct shipments quoted through
``hub.core.rates.shop`` (the code the API runs), (a) with the ``table_rate`` carrier alone and
(b) with the ``easypost`` and ``ups`` carriers against a local fake of their APIs that answers
every quote after 50 ms; then the same batch sizes through ``POST /api/v1/rates``.

Why this exists: a multi-carrier quote is mostly waiting on carriers' servers, so what decides
its speed is how well the waits overlap. (a) has nothing to wait for — it is the hub's own
cost per quote (request keys, the cache, the pool, choosing) plus a rate card — and is the
ceiling (b) is measured against. The serial lower bound of (b) is 10,000 x 50 ms = 500 s (one
call at a time, the two carriers of a shipment asked together); the overlap factor is that
bound over the measured wall time.

The fake carrier runs in a subprocess (``--serve``, so it does not share this process's GIL)
over HTTPS with a self-signed certificate made here (the plugins accept only https API bases;
``REQUESTS_CA_BUNDLE`` makes the hub's client trust it). Its answers are the EasyPost Shipment
and UPS Rating "Shoptimeintransit" documents the plugins' own tests record
(tests/test_carrier_easypost.py, tests/test_carrier_ups.py). Every shipment's parcel weighs
something different, so no quote is answered from the cache: the JSON says how many distinct
requests each run had. A last run repeats (b) at once to show the cache (no HTTP call).

Run: ``.venv/bin/python bench/rates.py`` (``--help`` for sizes); results go to
``bench/results/rates.json``. Everything is in a temporary folder (SQLite: the database only
holds the tenant and its accounts here), removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import ipaddress
import json
import os
import platform
import shlex
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the carriers' recorded answers

import orders as ob  # noqa: E402  (bench/orders.py: git state, free ports)

DELAY = 0.05
SERIAL_CALL_SECONDS = DELAY  # the two carriers of one shipment are asked together
ORIGIN = {
    "country": "US",
    "postcode": "94104",
    "city": "San Francisco",
    "region": "CA",
    "line1": "417 Montgomery Street",
    "name": "OrderHub Warehouse",
}
DESTINATIONS = ("90277", "10001", "60601", "98101", "33101", "02108", "75201", "80202")


# --- the fake carrier (subprocess) -------------------------------------------------------------


def serve(port: int, cert: str, key: str) -> None:
    """EasyPost's and UPS's APIs, as far as quoting needs them: every quote answered after
    DELAY seconds with the document the plugins' tests record; GET /_stats counts calls."""
    import test_carrier_easypost as easypost
    import test_carrier_ups as ups

    answers = {
        "/v2/shipments": json.dumps(easypost.a_shipment(easypost.usps_rates())).encode(),
        "/security/v1/oauth/token": json.dumps(ups.token_answer()).encode(),
        "/api/rating/v2409/Shoptimeintransit": json.dumps(
            ups.rate_response(
                ups.rated("03", "14.84"),
                ups.rated("02", "27.62", days="2"),
                ups.rated("01", "52.03", days="1"),
            )
        ).encode(),
    }
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real carrier APIs

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = answers.get(self.path)
            with lock:
                counts[self.path] += 1
            if body is None:
                self.send_error(404)
                return
            if self.path != "/security/v1/oauth/token":
                time.sleep(DELAY)
            self._send(body)

        def do_GET(self) -> None:
            with lock:
                self._send(json.dumps(counts).encode())

        def _send(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("ready", flush=True)
    server.serve_forever()


def self_signed(folder: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1, so the fake speaks https like the real APIs."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def stats(base: str, cert: str) -> dict[str, int]:
    context = ssl.create_default_context(cafile=cert)
    with urllib.request.urlopen(f"{base}/_stats", context=context) as answer:
        return json.loads(answer.read())


# --- the hub ---------------------------------------------------------------------------------


def shipments(n: int, offset: int) -> list[dict[str, Any]]:
    """n shipments, each with its own parcel weight (so none is quoted from the cache)."""
    return [
        {
            "origin": ORIGIN,
            "destination": {"country": "US", "postcode": DESTINATIONS[i % len(DESTINATIONS)]},
            "parcels": [
                {
                    "weight_kg": str(Decimal(offset + i + 1) / 1000 + Decimal("0.2")),
                    "length_cm": "30",
                    "width_cm": "20",
                    "height_cm": "10",
                }
            ],
            "reference": f"B{offset + i}",
        }
        for i in range(n)
    ]


def request_of(shipment: dict[str, Any]) -> Any:
    """The ShipmentRequest the API makes of one of these shipments."""
    from hub.core.adapters import Parcel, Place, ShipmentRequest

    [parcel] = shipment["parcels"]
    return ShipmentRequest(
        Place(**shipment["origin"]),
        Place(**shipment["destination"]),
        (
            Parcel(
                *(Decimal(parcel[k]) for k in ("weight_kg", "length_cm", "width_cm", "height_cm"))
            ),
        ),
        reference=shipment["reference"],
    )


def measure_shop(
    runtime: Any, tenant_id: int, batch: list[dict[str, Any]], carriers: int
) -> dict[str, Any]:
    from hub.core import rates

    requests = [request_of(s) for s in batch]
    cpu, started = time.process_time(), time.perf_counter()
    results = rates.shop(runtime, tenant_id, requests)
    seconds = time.perf_counter() - started
    return {
        **summary(results, requests, seconds, carriers),
        **cpu_use(cpu, seconds, batch, carriers),
    }


def cpu_use(cpu: float, seconds: float, batch: list[Any], carriers: int) -> dict[str, Any]:
    """The hub process's CPU time over the run: near wall time x 1 core means the run was
    bound by Python's own work (one interpreter lock), not by waiting on the carriers."""
    used = time.process_time() - cpu
    return {
        "hub_process_cpu_s": round(used, 2),
        "hub_cpu_ms_per_call": round(used * 1000 / (len(batch) * carriers), 3),
        "hub_cores_busy": round(used / seconds, 2),
    }


def summary(results: list[Any], requests: list[Any], seconds: float, carriers: int) -> dict:
    from hub.core import rates

    errors = Counter(e.type for r in results for e in r.errors)
    accounts = Counter(len({x.carrier_account for x in r.rates}) for r in results)
    return {
        "shipments": len(results),
        "distinct_requests": len({rates.request_key(r) for r in requests}),
        "carrier_accounts": carriers,
        "wall_s": round(seconds, 3),
        "quotes_per_s": round(len(results) / seconds, 1),
        "calls_per_s": round(len(results) * carriers / seconds, 1),
        "rates": sum(len(r.rates) for r in results),
        "shipments_quoted_by_every_account": accounts.get(carriers, 0),
        "errors": dict(errors),
    }


def measure_post(client: Any, token: str, batch: list[dict[str, Any]], carriers: int) -> dict:
    body = json.dumps({"shipments": batch})
    cpu, started = time.process_time(), time.perf_counter()
    response = client.post(
        "/api/v1/rates",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    seconds = time.perf_counter() - started
    answer = response.get_json()
    assert response.status_code == 200, answer
    results = answer["results"]
    return {
        "status": response.status_code,
        "request_bytes": len(body),
        "response_bytes": len(response.data),
        "shipments": len(results),
        "distinct_requests": answer["distinct"],
        "carrier_accounts": carriers,
        "wall_s": round(seconds, 3),
        "quotes_per_s": round(len(results) / seconds, 1),
        "errors": dict(Counter(e["type"] for r in results for e in r["errors"])),
        "selected": sum(1 for r in results if r["selected"]),
        **cpu_use(cpu, seconds, batch, carriers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="shipments per batch")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "rates.json")
    parser.add_argument("--serve", nargs=3, metavar=("PORT", "CERT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], args.serve[2])
        return
    with tempfile.TemporaryDirectory(prefix="orderhub-rates-") as folder:
        run(args.n, args.out, Path(folder))


def run(n: int, out: Path, folder: Path) -> None:
    cert, key = self_signed(folder)
    os.environ["REQUESTS_CA_BUNDLE"] = cert  # the hub's client trusts the fake's certificate
    port = ob.free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), cert, key],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        base = f"https://127.0.0.1:{port}"
        report = bench(n, folder, base, cert)
    finally:
        server.terminate()
        server.wait()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("results", "comparison")}, indent=2))


def bench(n: int, folder: Path, base: str, cert: str) -> dict[str, Any]:
    from hub import create_app
    from hub.core import auth, carriers, migrate, rates, tenancy
    from plugins.carriers.easypost import EasyPostCarrier
    from plugins.carriers.table_rate import EXAMPLE_SETTINGS, TableRate
    from plugins.carriers.ups import UpsCarrier

    config = folder / "config"
    (config / "tenants").mkdir(parents=True)
    for slug in ("table", "http"):
        (config / "tenants" / f"{slug}.toml").write_text("[shipping]\ndeadline_seconds = 10\n")
    # The fake carriers live on 127.0.0.1, which the hub calls only when the operator allows it.
    (config / "hub.toml").write_text(f'[outbound]\nallow = ["{urlsplit(base).netloc}"]\n')
    app = create_app(
        {
            "database_url": f"sqlite:///{folder / 'hub.db'}",
            "broker_url": "embedded",
            "config_dir": config,
            "data_dir": folder / "var",
            "secret_key": "bench",
            "log_level": "WARNING",
            "max_body_bytes": 64 * 1024 * 1024,
        }
    )
    runtime = app.extensions["orderhub"]
    migrate.upgrade(runtime.engine)
    tenants: dict[str, tuple[int, str]] = {}
    accounts = {
        "table": [(TableRate, "table-rate", EXAMPLE_SETTINGS)],
        "http": [
            (EasyPostCarrier, "easypost", {"api_key": "EZTK-bench", "api_base": base}),
            (
                UpsCarrier,
                "ups",
                {
                    "client_id": "bench",
                    "client_secret": "bench",
                    "account_number": "A1B2C3",
                    "api_base": base,
                },
            ),
        ],
    }
    with runtime.transaction() as session:
        for slug, made in accounts.items():
            tenant = tenancy.create_tenant(session, slug)
            session.info["orderhub.tenant_id"] = tenant.id
            for cls, name, settings in made:
                carriers.create_account(
                    session, tenant.id, cls, name, settings, box=runtime.secrets, actor="bench"
                )
            user = auth.create_user(session, tenant.id, "bench", "bench-password", "admin", "b")
            tenants[slug] = (tenant.id, auth.create_token(session, user, "bench"))

    load_start = os.getloadavg()
    results: dict[str, Any] = {}
    # (a) and (b) through rates.shop, in this process: the code the API runs.
    results["a_table_rate_shop"] = measure_shop(runtime, tenants["table"][0], shipments(n, 0), 1)
    before = stats(base, cert)
    results["b_easypost_ups_shop"] = measure_shop(runtime, tenants["http"][0], shipments(n, 0), 2)
    after = stats(base, cert)
    results["b_easypost_ups_shop"]["fake_server_requests"] = {
        path: after.get(path, 0) - before.get(path, 0) for path in after
    }
    # The same batch again at once: every answer from the cache, no HTTP call.
    repeat = measure_shop(runtime, tenants["http"][0], shipments(n, 0), 2)
    repeat["fake_server_requests"] = sum(stats(base, cert).values()) - sum(after.values())
    results["b_repeated_from_cache"] = repeat
    # One POST /api/v1/rates each, through the Flask test client (JSON in and out, schema
    # validation, the policy's choice); other weights, so nothing comes from the cache.
    client = app.test_client()
    results["a_table_rate_post"] = measure_post(client, tenants["table"][1], shipments(n, n), 1)
    results["b_easypost_ups_post"] = measure_post(client, tenants["http"][1], shipments(n, n), 2)
    load_end = os.getloadavg()
    runtime.close()

    a, b = results["a_table_rate_shop"], results["b_easypost_ups_shop"]
    serial = n * SERIAL_CALL_SECONDS
    return {
        "benchmark": (
            f"rate shopping: a batch of {n} distinct shipments through hub.core.rates.shop"
            " (a) with table_rate alone, (b) with easypost + ups against a local HTTPS fake"
            f" answering every quote after {DELAY * 1000:.0f} ms; then one POST /api/v1/rates"
            " of each batch through the Flask test client"
        ),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in load_start],
            "loadavg_at_end": [round(x, 2) for x in load_end],
            "note": (
                "the hub, its quote threads and the fake carrier (its own process) share these"
                " cores, and other jobs (test suites) may run on the box at the same time: the"
                " figures are noisy; compare the ratios, measured in the same run"
            ),
        },
        "code": ob.git_state(),
        "settings": {
            "pool_size": rates.POOL_SIZE,
            "deadline_seconds": 10,
            "cache_seconds": rates.CACHE_SECONDS,
            "fake_delay_ms": DELAY * 1000,
            "database": "sqlite (holds only the tenants and their accounts here)",
        },
        "results": results,
        "comparison": {
            "serial_lower_bound_b_s": serial,
            "serial_lower_bound_meaning": (
                f"{n} shipments x {DELAY * 1000:.0f} ms, one shipment at a time with its two"
                " carriers asked together"
            ),
            "overlap_factor_b": round(serial / b["wall_s"], 1),
            "b_vs_a_quotes_per_s": round(b["quotes_per_s"] / a["quotes_per_s"], 3),
            "ideal_b_wall_s_at_pool_size": round(n * 2 * DELAY / rates.POOL_SIZE, 2),
        },
        "notes": [
            f"(b) is bound by the hub process's CPU, not by waiting on the carriers:"
            f" {b['hub_process_cpu_s']} s of CPU in {b['wall_s']} s ({b['hub_cores_busy']}"
            " cores busy; one interpreter lock), i.e."
            f" {b['hub_cpu_ms_per_call']} ms of CPU per HTTP call (requests, TLS, http.client"
            f" and the plugins' JSON) against {a['hub_cpu_ms_per_call']} ms per table_rate"
            " quote; the waits alone would allow"
            f" {round(n * 2 * DELAY / rates.POOL_SIZE, 1)} s at this pool size",
            "more quote threads would not make (b) faster on this machine; more processes"
            " would (each process has its own pool), e.g. batches split across worker"
            " processes",
            "UPS tokens: the first wave of concurrent quotes each asked for one (see"
            " fake_server_requests), until the first answer was kept by the adapter",
            "the POST runs add JSON parsing and validation of the 3 MB body, the policy's"
            " choice per shipment and the answer's serialisation to the shop() runs",
        ],
        "reproduce": [
            ".venv/bin/pip install -e '.[test]'",
            ".venv/bin/python bench/rates.py" + (f" -n {n}" if n != 10_000 else ""),
        ],
        "command": shlex.join([sys.executable, *sys.argv]),
    }


if __name__ == "__main__":
    main()
