"""UPS service codes, which mean different services depending on where a shipment starts.

UPS reuses its two-digit ``Service.Code`` across origins: ``01`` is UPS Next Day Air from the
US but UPS Express from Canada, ``13`` is Next Day Air Saver from the US but UPS Express Saver
from Canada, and ``07`` is UPS Worldwide Express from the US but UPS Express from Europe. The
"Service Codes" appendix of UPS's Rating and Shipping guides lists them per origin: shipments
from the US (domestic and outbound), from Puerto Rico, from Canada, from Mexico, from Poland,
from the European Union, and from everywhere else. ``ORIGINS`` below is that appendix, one
table per origin, so a code is always read with the table of the shipment's origin country.

Each code has a *key*, the name OrderHub shows and accepts (in a carrier account's allowed
services, as ``service`` when shipping), and UPS's own title. A service that keeps its name
across origins keeps its key (``standard`` is 11 everywhere, ``saver`` is 65 everywhere), so an
account's allowed list reads the same wherever it ships from; a code UPS names differently gets
the key of its name there (01 is ``next_day_air`` from the US, ``express`` from Canada). The US
keys are the ones OrderHub has always used.
"""

from __future__ import annotations

# ISO 3166 codes of the European Union's member states (Poland has a table of its own).
EU_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    ]
)

_FREIGHT = {
    "96": ("worldwide_express_freight", "UPS Worldwide Express Freight"),
    "71": ("worldwide_express_freight_midday", "UPS Worldwide Express Freight Midday"),
}

# origin -> {code: (key, UPS's title)}
ORIGINS: dict[str, dict[str, tuple[str, str]]] = {
    "US": {
        "01": ("next_day_air", "UPS Next Day Air"),
        "02": ("2nd_day_air", "UPS 2nd Day Air"),
        "03": ("ground", "UPS Ground"),
        "12": ("3_day_select", "UPS 3 Day Select"),
        "13": ("next_day_air_saver", "UPS Next Day Air Saver"),
        "14": ("next_day_air_early", "UPS Next Day Air Early"),
        "59": ("2nd_day_air_am", "UPS 2nd Day Air A.M."),
        "75": ("heavy_goods", "UPS Heavy Goods"),
        "07": ("worldwide_express", "UPS Worldwide Express"),
        "08": ("worldwide_expedited", "UPS Worldwide Expedited"),
        "11": ("standard", "UPS Standard"),
        "54": ("worldwide_express_plus", "UPS Worldwide Express Plus"),
        "65": ("saver", "UPS Worldwide Saver"),
        "17": ("worldwide_economy_ddu", "UPS Worldwide Economy DDU"),
        "72": ("worldwide_economy_ddp", "UPS Worldwide Economy DDP"),
        **_FREIGHT,
    },
    "PR": {
        "01": ("next_day_air", "UPS Next Day Air"),
        "02": ("2nd_day_air", "UPS 2nd Day Air"),
        "03": ("ground", "UPS Ground"),
        "14": ("next_day_air_early", "UPS Next Day Air Early"),
        "07": ("worldwide_express", "UPS Worldwide Express"),
        "08": ("worldwide_expedited", "UPS Worldwide Expedited"),
        "54": ("worldwide_express_plus", "UPS Worldwide Express Plus"),
        "65": ("saver", "UPS Worldwide Saver"),
        **_FREIGHT,
    },
    "CA": {
        "01": ("express", "UPS Express"),
        "02": ("expedited", "UPS Expedited"),
        "13": ("express_saver", "UPS Express Saver"),
        "14": ("express_early", "UPS Express Early"),
        "11": ("standard", "UPS Standard"),
        "12": ("3_day_select", "UPS 3 Day Select"),
        "70": ("access_point_economy", "UPS Access Point Economy"),
        "07": ("worldwide_express", "UPS Worldwide Express"),
        "08": ("worldwide_expedited", "UPS Worldwide Expedited"),
        "54": ("worldwide_express_plus", "UPS Worldwide Express Plus"),
        # UPS calls this one "UPS Express Saver" too; it is the international service.
        "65": ("saver", "UPS Express Saver (international)"),
        **_FREIGHT,
    },
    "MX": {
        "07": ("express", "UPS Express"),
        "08": ("expedited", "UPS Expedited"),
        "11": ("standard", "UPS Standard"),
        "54": ("express_plus", "UPS Express Plus"),
        "65": ("saver", "UPS Saver"),
        "70": ("access_point_economy", "UPS Access Point Economy"),
        **_FREIGHT,
    },
    "PL": {
        "07": ("express", "UPS Express"),
        "08": ("expedited", "UPS Expedited"),
        "11": ("standard", "UPS Standard"),
        "54": ("express_plus", "UPS Express Plus"),
        "65": ("saver", "UPS Express Saver"),
        "70": ("access_point_economy", "UPS Access Point Economy"),
        "82": ("today_standard", "UPS Today Standard"),
        "83": ("today_dedicated_courier", "UPS Today Dedicated Courier"),
        "84": ("today_intercity", "UPS Today Intercity"),
        "85": ("today_express", "UPS Today Express"),
        "86": ("today_express_saver", "UPS Today Express Saver"),
        **_FREIGHT,
    },
    "EU": {
        "07": ("express", "UPS Express"),
        "08": ("expedited", "UPS Expedited"),
        "11": ("standard", "UPS Standard"),
        "54": ("express_plus", "UPS Express Plus"),
        "65": ("saver", "UPS Express Saver"),
        "70": ("access_point_economy", "UPS Access Point Economy"),
        "74": ("express_12_00", "UPS Express 12:00"),
        **_FREIGHT,
    },
    "OTHER": {
        "07": ("express", "UPS Express"),
        "08": ("worldwide_expedited", "UPS Worldwide Expedited"),
        "11": ("standard", "UPS Standard"),
        "54": ("worldwide_express_plus", "UPS Worldwide Express Plus"),
        "65": ("saver", "UPS Worldwide Saver"),
        **_FREIGHT,
    },
}

UNLISTED_PREFIX = "ups_"


def origin_of(country: str) -> str:
    """The appendix table a shipment from ``country`` is read with."""
    country = country.strip().upper()
    if country in ("US", "PR", "CA", "MX", "PL"):
        return country
    return "EU" if country in EU_COUNTRIES else "OTHER"


def name_of(code: str, country: str) -> str:
    """The key OrderHub shows for a code from ``country``; ``ups_<code>`` for one the origin's
    table does not list (it still quotes and can be bought under that name)."""
    known = ORIGINS[origin_of(country)].get(code)
    return known[0] if known else f"{UNLISTED_PREFIX}{code}"


def title_of(code: str, country: str) -> str:
    known = ORIGINS[origin_of(country)].get(code)
    return known[1] if known else f"UPS service {code}"


def code_of(service: str, country: str) -> str | None:
    """The code of a service as OrderHub names it (or as UPS codes it, or ``ups_<code>``) for
    a shipment from ``country``; None when that origin has no such service."""
    table = ORIGINS[origin_of(country)]
    for code, (key, _) in table.items():
        if key == service:
            return code
    if service in table:
        return service
    rest = service[len(UNLISTED_PREFIX) :]
    if service.startswith(UNLISTED_PREFIX) and rest.isalnum():
        return rest
    return None


def keys_of(country: str) -> list[str]:
    return [key for key, _ in ORIGINS[origin_of(country)].values()]


def every_service() -> dict[str, str]:
    """Every key of every origin with its title (the first origin's title where they differ),
    for an account whose own country is not set."""
    found: dict[str, str] = {}
    for table in ORIGINS.values():
        for key, title in table.values():
            found.setdefault(key, title)
    return found
