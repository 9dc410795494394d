"""Approval that cannot be bypassed: split and merge parts keep what was decided on the whole,
a larger total asks again, and with four eyes an order's creator never approves it and one
person never gives two levels.

The people are named apart from their roles (operators ann and bob, admins cho and dee): a
check comparing a username with a role name would pass with the seeded users "operator" and
"admin" and fail here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import ORDER, Api, seed_people

from hub.core import rules
from hub.settings import ConfigError, load_tenants

PEOPLE = {"ann": "operator", "bob": "operator", "cho": "admin", "dee": "admin"}


@pytest.fixture
def four_eyes() -> bool:
    """The tenant's [rules] four_eyes; a test parametrizes it to False."""
    return True


@pytest.fixture
def config_dir(tmp_path: Path, four_eyes: bool) -> Path:
    path = tmp_path / "config"
    (path / "tenants").mkdir(parents=True)
    (path / "tenants" / "acme.toml").write_text(
        f"[rules]\nfour_eyes = {'true' if four_eyes else 'false'}\n"
        '[[rules.approval]]\nabove = "5000"\nrole = "operator"\n'
        '[[rules.approval]]\nabove = "50000"\nrole = "admin"\n'
    )
    return path


@pytest.fixture
def who(api: Api, runtime: Any) -> dict[str, str]:
    """Tokens of ann, bob (operators), cho and dee (admins) of tenant acme."""
    return seed_people(runtime, PEOPLE)


def lines(unit_price: str, quantity: int = 1) -> list[dict[str, Any]]:
    return [{"sku": "SKU-A", "quantity": quantity, "unit_price": unit_price}]


def create(api: Api, token: str, unit_price: str, quantity: int = 1) -> dict[str, Any]:
    status, order = api.post(
        "/orders", {**ORDER, "lines": lines(unit_price, quantity)}, token=token
    )
    assert status == 201, order
    return order


def approve(api: Api, number: str, token: str) -> tuple[int, Any]:
    return api.post(f"/orders/{number}/approve", {}, token=token)


def read(api: Api, number: str) -> dict[str, Any]:
    status, order = api.get(f"/orders/{number}")
    assert status == 200, order
    return order


def history(api: Api, number: str, action: str) -> list[str]:
    items = api.get(f"/orders/{number}/history")[1]["items"]
    return [h["reason"] for h in items if h["action"] == action]


def state(order: dict[str, Any]) -> tuple[str, int, str | None]:
    """Status, number of levels needed, and the role of the next one."""
    approval = order["approval"] or {"levels": [], "next_role": None}
    return order["status"], len(approval["levels"]), approval["next_role"]


def split_one(api: Api, number: str, token: str) -> dict[str, Any]:
    status, child = api.post(
        f"/orders/{number}/split", {"lines": [{"sku": "SKU-A", "quantity": 1}]}, token=token
    )
    assert status == 201, child
    return child


# --- the threshold ---------------------------------------------------------------------------


def test_exactly_5000_needs_no_approval_and_a_cent_more_does(api: Api, who: dict[str, str]):
    # The rules say "above": 5,000.00 itself is not above 5,000.
    at = create(api, who["bob"], "5000.00")
    assert (at["status"], at["approval"]) == ("confirmed", None)

    above = create(api, who["bob"], "5000.01")
    assert state(above) == ("awaiting_approval", 1, "operator")
    assert history(api, above["number"], "approval_required") == [
        "total 5000.01 is above 5000: needs approval by an operator (level 1 of 1)"
    ]

    at_second = create(api, who["bob"], "50000.00")
    assert state(at_second) == ("awaiting_approval", 1, "operator")
    above_second = create(api, who["bob"], "50000.01")
    assert state(above_second) == ("awaiting_approval", 2, "operator")


# --- split and merge -------------------------------------------------------------------------


def test_the_halves_of_an_order_needing_two_levels_each_need_both(api: Api, who: dict[str, str]):
    whole = create(api, who["bob"], "30000.00", 2)  # 60,000: an operator, then an admin
    assert state(whole) == ("awaiting_approval", 2, "operator")

    # When it is split in two halves of 30,000
    half = split_one(api, whole["number"], who["bob"])
    rest = read(api, whole["number"])

    # Then each half still needs both levels, decided on the whole's 60,000
    for part in (half, rest):
        assert part["total"] == "30000.00"
        assert state(part) == ("awaiting_approval", 2, "operator")
        assert part["approval"]["decided_on"] == "60000.00"
    assert history(api, half["number"], "approval_required") == [
        "total 30000.00 is part of 60000.00, which is above 5000: needs approval by an"
        " operator (level 1 of 2)"
    ]

    # And an operator alone cannot confirm either half
    for part in (half, rest):
        assert approve(api, part["number"], who["ann"])[0] == 200
        status, body = approve(api, part["number"], who["ann"])
        assert status == 403, body
        assert "needs approval by an admin at level 2 of 2" in body["error"]["message"]
        assert read(api, part["number"])["status"] == "awaiting_approval"

    # Only an admin's second level does
    for part in (half, rest):
        status, done = approve(api, part["number"], who["cho"])
        assert (status, done["status"]) == (200, "confirmed")


def test_a_6000_order_split_in_3000_halves_still_needs_approval(api: Api, who: dict[str, str]):
    whole = create(api, who["bob"], "3000.00", 2)
    assert state(whole) == ("awaiting_approval", 1, "operator")

    half = split_one(api, whole["number"], who["bob"])
    rest = read(api, whole["number"])

    for part in (half, rest):
        assert (part["total"], part["approval"]["decided_on"]) == ("3000.00", "6000.00")
        assert state(part) == ("awaiting_approval", 1, "operator")
        status, _ = api.post(f"/orders/{part['number']}/shipments", {}, token=who["bob"])
        assert status == 409  # not shippable before its approval
        status, done = approve(api, part["number"], who["ann"])
        assert (status, done["status"]) == (200, "confirmed")


def test_an_approval_given_for_the_whole_holds_for_its_parts(api: Api, who: dict[str, str]):
    whole = create(api, who["bob"], "3000.00", 2)
    approved = approve(api, whole["number"], who["ann"])[1]
    assert approved["status"] == "confirmed"

    half = split_one(api, whole["number"], who["bob"])
    rest = read(api, whole["number"])

    for part in (half, rest):
        assert part["status"] == "confirmed"
        [given] = part["approval"]["approvals"]
        assert (given["actor"], given["total"]) == ("ann", "6000.00")


def test_split_parts_approved_on_the_whole_need_new_approval_when_they_grow(
    api: Api, who: dict[str, str]
):
    whole = create(api, who["bob"], "3000.00", 2)
    approve(api, whole["number"], who["ann"])
    half = split_one(api, whole["number"], who["bob"])

    # 3,000 → 7,000: more than the 6,000 the approval was given for
    status, grown = api.patch(f"/orders/{half['number']}", {"lines": lines("7000.00")})

    assert (status, grown["status"]) == (200, "awaiting_approval")
    assert grown["approval"]["approvals"] == []


def test_merging_two_3000_orders_needs_approval(api: Api, who: dict[str, str]):
    first = create(api, who["bob"], "3000.00")
    second = create(api, who["bob"], "3000.00")
    assert first["status"] == second["status"] == "confirmed"

    status, merged = api.post(
        "/orders/merge", {"numbers": [first["number"], second["number"]]}, token=who["ann"]
    )

    assert status == 200, merged
    assert merged["total"] == "6000.00"
    assert state(merged) == ("awaiting_approval", 1, "operator")
    # Whoever merged them made the order what it is: with four eyes another person approves.
    assert merged["approval"]["not_by"] == ["bob", "ann"]
    assert approve(api, merged["number"], who["ann"])[0] == 403
    assert approve(api, merged["number"], who["bob"])[0] == 403
    status, done = approve(api, merged["number"], who["cho"])
    assert (status, done["status"]) == (200, "confirmed")


def test_a_merge_keeps_what_was_decided_on_the_whole_a_part_came_from(
    api: Api, who: dict[str, str]
):
    whole = create(api, who["bob"], "30000.00", 2)
    half = split_one(api, whole["number"], who["bob"])
    small = create(api, who["bob"], "100.00")

    # The half (30,000, from a 60,000 whole) merged into a small order: 30,100
    status, merged = api.post(
        "/orders/merge", {"numbers": [small["number"], half["number"]]}, token=who["bob"]
    )

    assert status == 200, merged
    assert merged["total"] == "30100.00"
    assert state(merged) == ("awaiting_approval", 2, "operator")
    assert merged["approval"]["decided_on"] == "60000.00"


def test_merging_approved_orders_asks_again_for_the_larger_total(api: Api, who: dict[str, str]):
    first = create(api, who["bob"], "6000.00")
    second = create(api, who["bob"], "6000.00")
    for o in (first, second):
        assert approve(api, o["number"], who["ann"])[1]["status"] == "confirmed"

    status, merged = api.post(
        "/orders/merge", {"numbers": [first["number"], second["number"]]}, token=who["bob"]
    )

    assert (status, merged["status"]) == (200, "awaiting_approval")
    assert merged["approval"]["approvals"] == []
    assert history(api, merged["number"], "approvals_cleared") == [
        "total 12000.00 is above the 6000.00 the approvals were given for: they no longer count"
    ]


# --- a larger total asks again -----------------------------------------------------------------


def test_an_approved_6000_order_raised_to_49999_waits_for_approval_again(
    api: Api, who: dict[str, str]
):
    order = create(api, who["bob"], "6000.00")
    number = order["number"]
    assert approve(api, number, who["ann"])[1]["status"] == "confirmed"

    status, raised = api.patch(f"/orders/{number}", {"lines": lines("49999.00")}, token=who["dee"])

    assert status == 200, raised
    assert state(raised) == ("awaiting_approval", 1, "operator")
    assert raised["approval"]["approvals"] == []
    assert history(api, number, "approvals_cleared") == [
        "total 49999.00 is above the 6000.00 the approvals were given for: they no longer count"
    ]
    statuses = [(h["from"], h["to"]) for h in api.get(f"/orders/{number}/history")[1]["items"]]
    assert ("confirmed", "awaiting_approval") in statuses
    # Whoever raised it is one of its authors now; ann may approve the new total.
    assert raised["approval"]["not_by"] == ["bob", "dee"]
    assert approve(api, number, who["dee"])[0] == 403
    status, again = approve(api, number, who["ann"])
    assert (status, again["status"]) == (200, "confirmed")
    assert again["approval"]["approvals"][0]["total"] == "49999.00"


def test_an_approved_order_raised_past_50000_needs_both_levels(api: Api, who: dict[str, str]):
    order = create(api, who["bob"], "6000.00")
    number = order["number"]
    approve(api, number, who["ann"])

    status, raised = api.patch(f"/orders/{number}", {"lines": lines("50000.01")}, token=who["bob"])

    assert status == 200, raised
    assert state(raised) == ("awaiting_approval", 2, "operator")
    assert raised["approval"]["approvals"] == []


def test_a_smaller_total_keeps_the_approval(api: Api, who: dict[str, str]):
    order = create(api, who["bob"], "6000.00")
    number = order["number"]
    approve(api, number, who["ann"])

    # Less than approved, though still above the threshold: the approval holds
    status, lowered = api.patch(f"/orders/{number}", {"lines": lines("5500.00")})
    assert (status, lowered["status"]) == (200, "confirmed")
    # Back up to what was approved, no more: still holds
    status, back = api.patch(f"/orders/{number}", {"lines": lines("3000.00", 2)})
    assert (status, back["status"]) == (200, "confirmed")
    assert history(api, number, "approvals_cleared") == []


def test_changing_the_address_of_an_approved_order_keeps_it_approved(api: Api, who: dict[str, str]):
    order = create(api, who["bob"], "6000.00")
    approve(api, order["number"], who["ann"])
    consignee = {**ORDER["consignee"], "name": "Ann Lee-Smith"}

    status, changed = api.patch(f"/orders/{order['number']}", {"consignee": consignee})

    assert (status, changed["status"]) == (200, "confirmed")
    assert changed["approval"]["not_by"] == ["bob"]  # an address is not what it is worth


# --- four eyes ---------------------------------------------------------------------------------


def test_the_creator_may_not_approve_with_four_eyes(api: Api, who: dict[str, str]):
    order = create(api, who["ann"], "6000.00")
    number = order["number"]
    assert order["created_by"] == "ann"
    assert order["approval"]["four_eyes"] is True
    assert order["approval"]["not_by"] == ["ann"]

    status, body = approve(api, number, who["ann"])

    assert status == 403, body
    assert "you created order" in body["error"]["message"]
    assert read(api, number)["status"] == "awaiting_approval"
    assert history(api, number, "approved") == []
    # An admin who created an order may not approve it either
    by_admin = create(api, who["cho"], "6000.00")
    assert approve(api, by_admin["number"], who["cho"])[0] == 403
    # Another operator may
    status, done = approve(api, number, who["bob"])
    assert (status, done["status"]) == (200, "confirmed")


def test_one_person_cannot_give_two_levels_with_four_eyes(api: Api, who: dict[str, str]):
    order = create(api, who["bob"], "60000.00")
    number = order["number"]

    assert approve(api, number, who["cho"])[0] == 200  # an admin may give the operator level
    status, body = approve(api, number, who["cho"])

    assert status == 409, body
    assert "needs a different approver" in body["error"]["message"]
    status, done = approve(api, number, who["dee"])
    assert (status, done["status"]) == (200, "confirmed")
    assert [(g["level"], g["actor"]) for g in done["approval"]["approvals"]] == [
        (1, "cho"),
        (2, "dee"),
    ]


@pytest.mark.parametrize("four_eyes", [False])
def test_without_four_eyes_the_creator_approves_and_gives_both_levels(
    api: Api, who: dict[str, str]
):
    order = create(api, who["cho"], "60000.00")
    number = order["number"]
    assert (order["approval"]["four_eyes"], order["approval"]["not_by"]) == (False, [])

    status, first = approve(api, number, who["cho"])
    assert (status, first["status"]) == (200, "awaiting_approval")
    status, second = approve(api, number, who["cho"])

    assert (status, second["status"]) == (200, "confirmed")
    assert history(api, number, "approved") == [
        "level 1 of 2 approved by cho (admin) for a total of 60000.00",
        "level 2 of 2 approved by cho (admin) for a total of 60000.00",
    ]


@pytest.mark.parametrize("four_eyes", [False])
def test_without_four_eyes_the_levels_still_bind_the_roles(api: Api, who: dict[str, str]):
    order = create(api, who["ann"], "30000.00", 2)
    half = split_one(api, order["number"], who["ann"])
    assert approve(api, half["number"], who["ann"])[0] == 200
    # Four eyes off does not make an operator an admin
    assert approve(api, half["number"], who["ann"])[0] == 403


# --- the rule's setting ------------------------------------------------------------------------


def test_four_eyes_is_on_unless_the_tenant_turns_it_off(tmp_path: Path):
    assert rules.rules_from({}).four_eyes is True
    assert rules.rules_from({"four_eyes": False}).four_eyes is False
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "acme.toml").write_text('[rules]\nfour_eyes = "no"\n')
    with pytest.raises(ConfigError) as error:
        load_tenants(tmp_path, {})
    assert "rules.four_eyes" in str(error.value)


def test_usernames_are_compared_as_one_person_whatever_their_case():
    on = rules.Rules()
    assert rules.four_eyes_refusal("Ann", authors=["ann"], approvers=[], rules=on) == "author"
    assert rules.four_eyes_refusal("ANN", authors=["bob"], approvers=["ann"], rules=on) == (
        "approver"
    )
    assert rules.four_eyes_refusal("cho", authors=["ann"], approvers=["bob"], rules=on) is None
    off = rules.Rules(four_eyes=False)
    assert rules.four_eyes_refusal("ann", authors=["ann"], approvers=["ann"], rules=off) is None
