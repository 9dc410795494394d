"""Stock movements from CSV: ``warehouse,sku,quantity[,reason]`` with a header row.

All or nothing: every row is checked before anything moves, and an error names its line
(counting the header as line 1, as a spreadsheet does).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from hub.core import inventory
from hub.core.errors import Invalid, line_problem

KINDS = ("inbound", "outbound", "adjust")
MAX_ROWS = 200_000
CHUNK = 500
REQUIRED = ("warehouse", "sku", "quantity")


def parse(text: str) -> tuple[list[dict[str, Any]], list[int]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise line_problem(
            1, f"the header must name {', '.join(REQUIRED)} (missing {', '.join(missing)})"
        )
    reader.fieldnames = header
    rows, lines = [], []
    for row in reader:
        line = reader.line_num
        if len(rows) >= MAX_ROWS:
            raise Invalid(f"more than {MAX_ROWS} rows; split the file")
        if None in row:
            raise line_problem(line, "more columns than the header")
        if not any((v or "").strip() for v in row.values()):
            continue
        raw_qty = (row.get("quantity") or "").strip()
        try:
            quantity = int(raw_qty)
        except ValueError:
            raise line_problem(line, f"quantity {raw_qty!r} is not a whole number") from None
        sku = (row.get("sku") or "").strip()
        if not sku:
            raise line_problem(line, "no SKU")
        rows.append(
            {
                "warehouse": (row.get("warehouse") or "").strip() or None,
                "sku": sku,
                "quantity": quantity,
                "reason": (row.get("reason") or "").strip() or None,
            }
        )
        lines.append(line)
    if not rows:
        raise Invalid("the file has no rows")
    return rows, lines


def apply(
    session: Session,
    tenant_id: int,
    text: str,
    *,
    kind: str,
    actor: str,
    reference: str | None = None,
    reason: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    if kind not in KINDS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}")
    rows, lines = parse(text)
    minimum = -inventory.MAX_QUANTITY if kind == "adjust" else 1
    movements = inventory.resolve_movements(session, tenant_id, rows, None, lines, minimum=minimum)
    # One transaction (the caller's), moved in chunks so a progress bar can follow along.
    for start in range(0, len(movements), CHUNK):
        chunk, chunk_lines = movements[start : start + CHUNK], lines[start : start + CHUNK]
        if kind == "inbound":
            inventory.receive(session, tenant_id, chunk, reference=reference, actor=actor)
        elif kind == "outbound":
            inventory.dispatch(
                session,
                tenant_id,
                chunk,
                reference=reference,
                actor=actor,
                line_numbers=chunk_lines,
            )
        else:
            inventory.adjust(
                session,
                tenant_id,
                chunk,
                reason=reason or "CSV adjustment",
                actor=actor,
                absolute=False,
                line_numbers=chunk_lines,
            )
        if progress:
            progress(len(chunk))
    return len(movements)
