"""200 orders race for 50 units, from several processes at once: nothing is oversold."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub import create_app
from hub.core import inventory
from hub.core.models import Allocation, Order, StockLedger, StockLevel

PROCESSES = 4
THREADS = 5
ORDERS = 200


def _place_orders(
    db_url: str, config_dir: str, data_dir: str, token: str, count: int, first: int
) -> list[tuple[int, str]]:
    """Runs in a child process: its own app, engine and pool, several threads posting orders."""
    app = create_app(
        {
            "database_url": db_url,
            "broker_url": "embedded",
            "config_dir": config_dir,
            "data_dir": data_dir,
            "secret_key": "t",
        }
    )

    def place(i: int) -> tuple[int, str]:
        response = app.test_client().post(
            "/api/v1/orders",
            json={
                "lines": [{"sku": "HOT", "quantity": 1}],
                "customer": {"email": f"buyer{i}@example.com"},
                "consignee": {"name": f"Buyer {i}", "address": {"country": "US"}},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        body = response.get_json()
        return response.status_code, body.get("status") or body["error"]["message"]

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            return list(pool.map(place, range(first, first + count)))
    finally:
        app.extensions["orderhub"].close()


@pytest.mark.slow
def test_200_concurrent_orders_for_50_units_reserve_exactly_50(
    api, runtime, db_url, config_dir: Path, tmp_path: Path
):
    # Given a SKU with 50 units: 30 in MAIN and 20 in WEST
    status, _ = api.post("/products", {"sku": "HOT", "name": "Flash sale item", "price": "9.99"})
    assert status == 201
    api.post("/stock/inbound", {"warehouse": "MAIN", "items": [{"sku": "HOT", "quantity": 30}]})
    api.post("/stock/inbound", {"warehouse": "WEST", "items": [{"sku": "HOT", "quantity": 20}]})

    lowest: list[int] = []
    done = threading.Event()

    def watch_balances() -> None:
        while not done.is_set():
            with runtime.transaction() as session:
                lowest.append(
                    session.scalar(select(func.min(StockLevel.on_hand - StockLevel.reserved)))
                )
            done.wait(0.05)

    watcher = threading.Thread(target=watch_balances)
    watcher.start()
    # When 200 buyers in 4 processes order one each at the same time
    per_process = ORDERS // PROCESSES
    ctx = multiprocessing.get_context("spawn")
    try:
        with ctx.Pool(PROCESSES) as pool:
            batches = pool.starmap(
                _place_orders,
                [
                    (
                        db_url,
                        str(config_dir),
                        str(tmp_path / "var"),
                        api.token,
                        per_process,
                        p * per_process,
                    )
                    for p in range(PROCESSES)
                ],
            )
    finally:
        done.set()
        watcher.join()

    results = [r for batch in batches for r in batch]
    # Then every request succeeded, exactly 50 were confirmed and 150 held as backorders
    assert [s for s, _ in results].count(201) == ORDERS, results
    assert sorted({state for _, state in results}) == ["confirmed", "held"]
    assert [state for _, state in results].count("confirmed") == 50
    with runtime.transaction() as session:
        levels = session.execute(
            select(StockLevel.on_hand, StockLevel.reserved)
            .join(inventory.Product, inventory.Product.id == StockLevel.product_id)
            .where(inventory.Product.sku == "HOT")
        ).all()
        assert sum(r.reserved for r in levels) == 50
        assert sum(r.on_hand for r in levels) == 50
        allocated = session.scalar(
            select(func.sum(Allocation.quantity))
            .join(Order, Order.id == Allocation.order_id)
            .where(Order.status == "confirmed")
        )
        assert allocated == 50
        reserved_in_ledger = session.scalar(
            select(func.sum(StockLedger.reserved_delta))
            .join(inventory.Product, inventory.Product.id == StockLedger.product_id)
            .where(inventory.Product.sku == "HOT")
        )
        assert reserved_in_ledger == 50
        assert session.scalar(select(func.count()).where(Order.status == "held")) == 150
        # and the ledger explains every balance, and no balance was ever negative.
        assert inventory.verify(session) == []
    assert lowest and min(v for v in lowest if v is not None) >= 0
