"""The built-in ``table_rate`` carrier: a merchant's contract rate card turned into rates,
waybills and tracking. Prices are worked out by hand from the card below, the way a merchant
would check them against the printed price list; the clock is frozen so dates are exact.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from unittest.mock import ANY

import pytest

from hub.core.adapters import Parcel, Place, Service, ShipmentRequest, TrackingEvent
from hub.core.errors import Invalid
from hub.core.http import BusinessError
from hub.plugins import DEFAULT_PLUGINS, Plugins
from plugins.carriers.table_rate import EXAMPLE_SETTINGS, TableRate

THURSDAY = date(2026, 3, 5)
NUMBER = re.compile(r"^TR[0-9A-HJKMNP-TV-Z]{18}$")  # Crockford base 32: no I, L, O, U

# Zones are listed narrowest first: first match wins.
CARD: dict[str, Any] = {
    "currency": "USD",
    "zones": [
        {"code": "remote", "countries": ["US"], "postcodes": ["995-999", "967"]},
        {"code": "us", "countries": ["US"]},
        {"code": "ca", "countries": ["CA"]},
        {"code": "world", "countries": ["*"]},
    ],
    "services": [
        {
            "code": "ground",
            "name": "Ground",
            "transit_days": 3,
            "bands": [
                {"zone": "us", "max_kg": 1, "price": "5.00"},
                {"zone": "us", "max_kg": 5, "price": "8.00"},
                {"zone": "us", "max_kg": 10, "price": "12.00", "extra_per_kg": "1.50"},
                {"zone": "remote", "max_kg": 5, "price": "20.00"},
                {"zone": "ca", "max_kg": 5, "price": "15.00"},
                {"zone": "world", "max_kg": 2, "price": "30.00"},
            ],
        },
        {
            "code": "express",
            "name": "Express",
            "transit_days": 1,
            "bands": [
                {"zone": "us", "max_kg": 1, "price": "10.00"},
                {"zone": "us", "max_kg": 5, "price": "16.00"},
            ],
        },
    ],
}


def card(**changes: Any) -> dict[str, Any]:
    settings = copy.deepcopy(CARD)
    settings.update(changes)
    return settings


def carrier(settings: dict[str, Any] | None = None) -> TableRate:
    """Built as the hub builds it: validated first."""
    settings = CARD if settings is None else settings
    TableRate.validate_settings(settings)
    return TableRate(settings)


def parcel(kg: str | int, *sides: int) -> Parcel:
    length, width, height = (Decimal(s) for s in sides) if sides else (None, None, None)
    return Parcel(Decimal(kg), length, width, height)


def shipment(country: str, postcode: str | None, *parcels: Parcel) -> ShipmentRequest:
    return ShipmentRequest(
        origin=Place("US", "10001"),
        destination=Place(country, postcode),
        parcels=parcels or (parcel(1),),
    )


def prices(adapter: TableRate, request: ShipmentRequest) -> dict[str, Decimal]:
    return {rate.service: rate.amount for rate in adapter.quote(request)}


@pytest.fixture(autouse=True)
def thursday(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TableRate, "today", lambda self: THURSDAY)


# --- the card as a whole -------------------------------------------------------------------


def test_is_a_built_in_carrier() -> None:
    assert "plugins.carriers.table_rate" in DEFAULT_PLUGINS
    plugins = Plugins(env={})
    assert plugins.adapters("carriers")["table_rate"] is TableRate
    assert not [f for f in plugins.failures if f.name == "table_rate"]


def test_example_card_is_valid_and_prices_a_few_destinations() -> None:
    adapter = carrier(EXAMPLE_SETTINGS)
    new_york = adapter.quote(shipment("US", "10001", parcel(2)))
    assert {(r.carrier, r.service, r.amount, r.currency) for r in new_york} == {
        ("Contract courier", "ground", Decimal("9.90"), "USD"),
        ("Contract courier", "express", Decimal("21.50"), "USD"),
    }
    # Anchorage: remote zone, with its surcharge; Los Angeles: the rest of the US.
    assert prices(adapter, shipment("US", "99501")) == {
        "ground": Decimal("18.50"),
        "express": Decimal("33.50"),
    }
    assert prices(adapter, shipment("US", "90001")) == {
        "ground": Decimal("8.20"),
        "express": Decimal("18.90"),
    }
    assert prices(adapter, shipment("CA", "M5V 2T6")) == {
        "ground": Decimal("16.00"),
        "express": Decimal("32.00"),
    }
    # 12 kg to Japan: ground only, express stops at 5 kg outside the US.
    assert prices(adapter, shipment("JP", "100-0001", parcel(12))) == {"ground": Decimal("98.00")}


def test_services_come_from_the_card() -> None:
    assert carrier().services() == [
        Service("ground", "Ground", 3),
        Service("express", "Express", 1),
    ]


def test_rates_carry_the_carrier_name_default_or_chosen() -> None:
    [ground, _] = carrier().quote(shipment("US", "10001"))
    assert ground.carrier == "table_rate"
    [ground, _] = carrier(card(carrier_name="Metro Vans")).quote(shipment("US", "10001"))
    assert ground.carrier == "Metro Vans"


# --- zones ---------------------------------------------------------------------------------


def test_a_country_zone_serves_the_whole_country() -> None:
    assert prices(carrier(), shipment("US", "10001")) == {
        "ground": Decimal("5.00"),
        "express": Decimal("10.00"),
    }
    assert prices(carrier(), shipment("CA", "H2X 1Y4")) == {"ground": Decimal("15.00")}


@pytest.mark.parametrize(
    ("postcode", "zone_price"),
    [
        ("99501", "20.00"),  # Anchorage: in the 995-999 range
        ("99999", "20.00"),  # top of the range
        ("99501-1234", "20.00"),  # ZIP+4
        ("96701", "20.00"),  # plain prefix 967 (Hawaii)
        ("99499", "5.00"),  # just below the range: the rest of the US
        ("96801", "5.00"),  # 968 is not listed in this card
        ("99", "5.00"),  # too short to tell: not narrowed in
        (None, "5.00"),  # no postcode: a postcode zone cannot claim it
    ],
)
def test_postcode_prefixes_narrow_a_country(postcode: str | None, zone_price: str) -> None:
    assert prices(carrier(), shipment("US", postcode))["ground"] == Decimal(zone_price)


def test_the_catch_all_serves_every_other_country() -> None:
    # Express has no band for the world zone, so the quote says nothing about it.
    assert prices(carrier(), shipment("DE", "10115")) == {"ground": Decimal("30.00")}
    assert prices(carrier(), shipment("jp", None)) == {"ground": Decimal("30.00")}


def test_the_first_matching_zone_wins() -> None:
    settings = card(
        zones=[
            {"code": "manhattan", "countries": ["US"], "postcodes": ["100"]},
            {"code": "us", "countries": ["US"]},
        ],
    )
    settings["services"] = [
        {
            "code": "ground",
            "name": "Ground",
            "transit_days": 3,
            "bands": [
                {"zone": "manhattan", "max_kg": 5, "price": "3.00"},
                {"zone": "us", "max_kg": 5, "price": "7.00"},
            ],
        }
    ]
    assert prices(carrier(settings), shipment("US", "10001")) == {"ground": Decimal("3.00")}
    assert prices(carrier(settings), shipment("US", "11201")) == {"ground": Decimal("7.00")}
    # The same zones the other way round: "us" now takes Manhattan too, and the card is
    # refused when saved rather than quietly never using the cheaper zone.
    settings["zones"].reverse()
    with pytest.raises(Invalid, match=r"zones\[1\]\.countries: this zone is never used"):
        TableRate.validate_settings(settings)


def test_a_destination_in_no_zone_is_a_business_error_not_retried() -> None:
    settings = card(zones=[z for z in CARD["zones"] if z["code"] != "world"])
    settings["services"][0]["bands"] = [
        b for b in settings["services"][0]["bands"] if b["zone"] != "world"
    ]
    adapter = carrier(settings)
    with pytest.raises(BusinessError) as quoted:
        adapter.quote(shipment("DE", "10115"))
    assert str(quoted.value) == "table_rate: no zone serves DE 10115"
    assert quoted.value.retryable is False
    with pytest.raises(BusinessError, match="no zone serves DE 10115"):
        adapter.create_shipment(shipment("DE", "10115"), "ground")


# --- weight bands --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kg", "ground"),
    [
        ("0.2", "5.00"),
        ("1", "5.00"),  # exactly max_kg is in that band
        ("1.001", "8.00"),  # just over: the next band
        ("10", "12.00"),  # exactly the heaviest band
        ("10.2", "13.50"),  # beyond it: 1.50 per kg or part of one
        ("12", "15.00"),
        ("12.01", "16.50"),
    ],
)
def test_the_band_that_carries_the_parcel_sets_its_price(kg: str, ground: str) -> None:
    assert prices(carrier(), shipment("US", "10001", parcel(kg)))["ground"] == Decimal(ground)


def test_beyond_the_last_band_without_extra_per_kg_a_service_is_not_quoted() -> None:
    # Express stops at 5 kg; ground goes on per kg.
    assert prices(carrier(), shipment("US", "10001", parcel("5.01"))) == {
        "ground": Decimal("12.00")
    }
    # The remote zone's only band stops at 5 kg and has no extra: nothing to offer, no error.
    assert carrier().quote(shipment("US", "99501", parcel(6))) == []


def test_volumetric_weight_counts_when_larger() -> None:
    light_and_bulky = parcel(1, 40, 30, 25)  # 30,000 cm3 / 5000 = 6 kg
    assert prices(carrier(), shipment("US", "10001", light_and_bulky)) == {
        "ground": Decimal("12.00")
    }
    # A larger divisor (a kinder contract) makes the same box 5 kg.
    kinder = carrier(card(volumetric_divisor=6000))
    assert prices(kinder, shipment("US", "10001", light_and_bulky))["ground"] == Decimal("8.00")
    # Small and heavy: the actual weight counts.
    assert prices(carrier(), shipment("US", "10001", parcel(4, 10, 10, 10)))["ground"] == (
        Decimal("8.00")
    )


def test_parcels_are_priced_one_by_one_and_summed() -> None:
    request = shipment("US", "10001", parcel(1), parcel(3), parcel(12))
    # 5.00 + 8.00 + (12.00 + 2 started kg x 1.50); express cannot carry the 12 kg parcel.
    assert prices(carrier(), request) == {"ground": Decimal("28.00")}
    two = shipment("US", "10001", parcel(1), parcel(3))
    assert prices(carrier(), two) == {"ground": Decimal("13.00"), "express": Decimal("26.00")}


def test_totals_round_half_up_to_the_cent() -> None:
    settings = card()
    settings["services"][1]["bands"][0]["price"] = "4.125"
    assert prices(carrier(settings), shipment("US", "10001"))["express"] == Decimal("4.13")


# --- surcharges ----------------------------------------------------------------------------


def test_remote_area_surcharge_is_added_per_parcel_in_its_zones() -> None:
    adapter = carrier(card(surcharges={"remote_area": {"zones": ["remote"], "amount": "3.25"}}))
    to_alaska = shipment("US", "99501", parcel(1), parcel(2))
    assert prices(adapter, to_alaska) == {"ground": Decimal("46.50")}
    assert prices(adapter, shipment("US", "10001"))["ground"] == Decimal("5.00")


def test_oversize_surcharge_applies_to_parcels_over_the_longest_side() -> None:
    adapter = carrier(card(surcharges={"oversize": {"max_side_cm": 100, "amount": "12.00"}}))
    at_limit = parcel(1, 100, 10, 10)  # 2 kg volumetric
    over = parcel(1, 10, 101, 10)  # 2.02 kg volumetric
    assert prices(adapter, shipment("US", "10001", at_limit))["ground"] == Decimal("8.00")
    assert prices(adapter, shipment("US", "10001", over))["ground"] == Decimal("20.00")
    both = shipment("US", "10001", at_limit, over, parcel(1))
    assert prices(adapter, both)["ground"] == Decimal("33.00")


# --- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "transit_days", "delivery"),
    [
        (THURSDAY, 1, date(2026, 3, 6)),  # Friday
        (THURSDAY, 2, date(2026, 3, 9)),  # over the weekend to Monday
        (date(2026, 3, 6), 5, date(2026, 3, 13)),  # Friday + a working week
        (date(2026, 3, 7), 1, date(2026, 3, 9)),  # from Saturday: Monday
        (date(2026, 3, 8), 0, date(2026, 3, 8)),  # same day is same day
    ],
)
def test_estimated_delivery_counts_working_days(
    monkeypatch: pytest.MonkeyPatch, today: date, transit_days: int, delivery: date
) -> None:
    monkeypatch.setattr(TableRate, "today", lambda self: today)
    settings = card()
    settings["services"][0]["transit_days"] = transit_days
    [ground, _] = carrier(settings).quote(shipment("US", "10001"))
    assert ground.estimated_days == transit_days
    assert ground.estimated_delivery == delivery


# --- shipping, tracking, cancelling --------------------------------------------------------


def test_create_shipment_issues_a_waybill_priced_like_the_quote() -> None:
    adapter = carrier()
    request = shipment("US", "10001", parcel(1), parcel(3))
    [_, express] = adapter.quote(request)
    waybill = adapter.create_shipment(request, "express", express)
    assert NUMBER.match(waybill.tracking_number)
    assert waybill.amount == express.amount == Decimal("26.00")
    assert waybill.currency == "USD"
    assert waybill.estimated_delivery == date(2026, 3, 6)
    assert waybill.label is not None and waybill.tracking_number in waybill.label
    assert adapter.cancel(waybill) is None  # nothing to void


def test_create_shipment_refuses_what_the_card_does_not_offer() -> None:
    adapter = carrier()
    with pytest.raises(BusinessError, match="no service 'overnight' on the card"):
        adapter.create_shipment(shipment("US", "10001"), "overnight")
    with pytest.raises(BusinessError, match="'express' has no band for zone 'us'") as refused:
        adapter.create_shipment(shipment("US", "10001", parcel(6)), "express")
    assert refused.value.retryable is False


def test_tracking_numbers_are_unique_and_well_formed_even_within_one_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(TableRate, "now", lambda self: datetime(2026, 3, 5, 9, 0, tzinfo=UTC))
    adapter = carrier()
    numbers = {adapter.issue_tracking_number() for _ in range(10_000)}
    assert len(numbers) == 10_000
    assert all(NUMBER.match(n) for n in numbers)
    assert carrier(card(tracking_prefix="ACME")).issue_tracking_number().startswith("ACME")


def test_tracking_says_when_the_waybill_was_issued_and_nothing_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issued = datetime(2026, 3, 5, 14, 30, 7, tzinfo=UTC)
    monkeypatch.setattr(TableRate, "now", lambda self: issued)
    adapter = carrier()
    number = adapter.create_shipment(shipment("US", "10001"), "ground").tracking_number
    monkeypatch.undo()  # polled later: the answer does not depend on when
    [update] = adapter.track([number])
    assert update.tracking_number == number
    [event] = update.events
    assert isinstance(event, TrackingEvent)
    assert (event.status, event.at, event.raw_code) == ("info_received", issued, "issued")
    assert adapter.track([number]) == [update]  # the same event on every poll


@pytest.mark.parametrize(
    "mangle",
    [
        lambda n: n[:5] + ("1" if n[5] != "1" else "2") + n[6:],  # one character mistyped
        lambda n: n[:-1],  # cut short
        lambda n: n.replace(n[4], "I"),  # not in the alphabet
    ],
)
def test_a_number_not_issued_here_gets_no_events(mangle: Callable[[str], str]) -> None:
    adapter = carrier()
    good = adapter.issue_tracking_number()
    bad = mangle(good)
    updates = adapter.track([bad, good])
    assert [u.tracking_number for u in updates] == [bad, good]
    assert updates[0].events == ()
    assert len(updates[1].events) == 1


# --- refusing bad cards --------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to a card: the value at a dotted path (list indexes as numbers)."""

    def change(settings: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = settings
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return change


def _swap_zones(settings: dict[str, Any]) -> None:
    zones = settings["zones"]
    zones[0], zones[1] = zones[1], zones[0]


def _zone_after_catch_all(settings: dict[str, Any]) -> None:
    settings["zones"].append({"code": "de", "countries": ["DE"]})


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        (_set("currency", "usd"), "currency", "must match the pattern"),
        (_set("services.0.bands.0.price", 5.0), "services[0].bands[0].price", "must be a string"),
        (_set("services.0.bands.0.price", "5,00"), "services[0].bands[0].price", "pattern"),
        (_set("services.0.bands.0.max_kg", 0), "services[0].bands[0].max_kg", "greater than"),
        (_set("services.0.transit_days", -1), "services[0].transit_days", "at least"),
        (_set("zones.1.countries", ["USA"]), "zones[1].countries[0]", "must match the pattern"),
        (_set("zones.3.countries", ["*", "DE"]), "zones[3].countries", "only entry"),
        (_set("zones.0.postcodes", ["999-995"]), "zones[0].postcodes[0]", "low to high"),
        (_set("zones.0.postcodes", ["995-99"]), "zones[0].postcodes[0]", "one length"),
        (_set("zones.1.code", "remote"), "zones[1].code", "is also the code of zones[0]"),
        (_set("services.1.code", "ground"), "services[1].code", "is also the code of services"),
        (
            _set("services.0.bands.3.zone", "mars"),
            "services[0].bands[3].zone",
            "is not the code of one of the card's zones",
        ),
        (_set("services.0.bands.1.max_kg", 1), "services[0].bands[1].max_kg", "lightest first"),
        (
            _set("services.0.bands.0.extra_per_kg", "1.00"),
            "services[0].bands[0].extra_per_kg",
            "only the heaviest band of a zone",
        ),
        (_swap_zones, "zones[1].countries", "never used: zones[0] comes first"),
        (_zone_after_catch_all, "zones[4].countries", "takes every country whole"),
        (
            _set("surcharges", {"remote_area": {"zones": ["alaska"], "amount": "2.00"}}),
            "surcharges.remote_area.zones[0]",
            "is not the code of one of the card's zones",
        ),
        (
            _set("surcharges", {"oversize": {"max_side_cm": 100}}),
            "surcharges.oversize.amount",
            "is required",
        ),
        (_set("volumetric_divisor", 0), "volumetric_divisor", "at least"),
        (_set("tracking_prefix", "tr-1"), "tracking_prefix", "must match the pattern"),
        (_set("rates", []), "rates", "is not a known field"),
    ],
)
def test_a_bad_card_is_refused_naming_the_field(
    change: Callable[[dict[str, Any]], None], field: str, says: str
) -> None:
    settings = card()
    change(settings)
    with pytest.raises(Invalid) as refused:
        TableRate.validate_settings(settings)
    assert refused.value.message.startswith(f"table_rate settings.{field}: ")
    assert says in refused.value.message
    assert {"field": f"settings.{field}", "problem": ANY} in refused.value.details
    # The field and the rule, never the value (settings may be secrets elsewhere).
    for value in ("usd", "5,00", "USA", "999-995", "995-99", "'remote'", "mars", "alaska", "tr-1"):
        assert value not in refused.value.message


def test_a_card_needs_currency_zones_and_services() -> None:
    for missing in ("currency", "zones", "services"):
        settings = card()
        del settings[missing]
        with pytest.raises(Invalid, match=rf"^table_rate settings\.{missing}: is required$"):
            TableRate.validate_settings(settings)


def test_a_number_cut_short_that_passes_the_check_character_is_still_refused() -> None:
    """One damaged number in 32 passes the check character by chance (cut short, its
    prefix's last character is read as body); its impossible issue time gives it away."""
    from plugins.carriers.table_rate import ALPHABET, BODY_CHARS, check_character

    adapter = carrier()
    for _ in range(5000):
        cut = adapter.issue_tracking_number()[:-1]
        body, check = cut[-BODY_CHARS - 1 : -1], cut[-1]
        if all(ch in ALPHABET for ch in body) and check_character(body) == check:
            break
    else:  # pragma: no cover - 5,000 tries at one in 32 each
        raise AssertionError("no lucky number found")
    [update] = adapter.track([cut])
    assert update.events == ()
