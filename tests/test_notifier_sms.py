"""The ``sms`` notifier against a fake of Twilio's Messages API (the documented request and
answers): the text in the recipient's language, the gateway's id kept, and which refusals
are final."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from conftest import watch_secret

from hub.core.adapters import Message, Recipient, Undeliverable
from hub.core.errors import Invalid
from plugins.notifiers.sms import GatewayTrouble, SmsNotifier

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "sms-auth-token-3c1d9e"
URL = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
SETTINGS = {"account_sid": SID, "auth_token": TOKEN, "from": "+15005550006"}
SHIPPED = {"number": "SO-7", "from": "confirmed", "to": "shipped", "reason": None}


def message(recipient: Recipient | None = None) -> Message:
    recipient = recipient or Recipient("+8613800138000", "李雷", "zh-CN")
    return Message(
        tenant="acme",
        event="order_status_changed",
        subject="Order SO-7 shipped",
        data=SHIPPED,
        id="msg_00112233445566778899aabbccddeeff",
        recipient=recipient,
        context={
            **SHIPPED,
            "tenant": {"slug": "acme", "name": "Acme"},
            "tracking_url": "https://track.example.com/1Z9",
        },
    )


def created(sid: str = "SM" + "ab" * 16, status: str = "queued") -> dict[str, Any]:
    """The gateway's answer to a new message (trimmed to what the hub reads and a few more)."""
    return {
        "sid": sid,
        "status": status,
        "account_sid": SID,
        "to": "+8613800138000",
        "from": "+15005550006",
        "error_code": None,
        "error_message": None,
    }


@pytest.fixture(autouse=True)
def _watched() -> None:
    watch_secret(TOKEN)


@pytest.fixture
def fake() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def form_of(call: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


def test_a_text_in_the_recipients_language_and_the_gateways_id_kept(
    fake: responses.RequestsMock,
) -> None:
    fake.post(URL, status=201, json=created())
    assert SmsNotifier(SETTINGS).send(message()) == "SM" + "ab" * 16
    [call] = fake.calls
    assert form_of(call) == {
        "To": "+8613800138000",
        "From": "+15005550006",
        "Body": "Acme：订单 SO-7 已发货。物流：https://track.example.com/1Z9",
    }
    assert call.request.headers["Authorization"].startswith("Basic ")


def test_a_messaging_service_instead_of_a_number(fake: responses.RequestsMock) -> None:
    fake.post(URL, status=201, json=created())
    settings = {"account_sid": SID, "auth_token": TOKEN, "messaging_service_sid": "MG" + "1" * 32}
    SmsNotifier(settings).send(message(Recipient("+14155550100", None, "en")))
    form = form_of(fake.calls[0])
    assert form["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in form
    assert form["Body"] == "Acme: order SO-7 is shipped. Track: https://track.example.com/1Z9"


def test_a_compatible_gateway_at_its_own_base(fake: responses.RequestsMock) -> None:
    base = "https://sms.example.net/api"
    fake.post(f"{base}/2010-04-01/Accounts/{SID}/Messages.json", status=201, json=created())
    SmsNotifier({**SETTINGS, "api_base": base + "/"}).send(message())


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (21211, "the 'To' number is not a valid phone number (21211)"),
        (21610, "the recipient has opted out (replied STOP) (21610)"),
        (21614, "the 'To' number cannot receive text messages (21614)"),
        (30999, "error 30999"),
    ],
)
def test_documented_refusals_are_final(fake: responses.RequestsMock, code: int, text: str) -> None:
    fake.post(
        URL,
        status=400,
        json={"code": code, "message": "gateway words", "more_info": "", "status": 400},
    )
    with pytest.raises(Undeliverable) as refused:
        SmsNotifier(SETTINGS).send(message())
    assert text in str(refused.value)
    assert "gateway words" not in str(refused.value)


def test_refused_credentials_are_final_and_never_repeated(fake: responses.RequestsMock) -> None:
    fake.post(URL, status=401, json={"code": 20003, "message": "Authenticate", "status": 401})
    with pytest.raises(Undeliverable, match="refused the account SID or auth token") as refused:
        SmsNotifier(SETTINGS).send(message())
    assert TOKEN not in str(refused.value)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_busy_gateway_is_tried_again_later(fake: responses.RequestsMock, status: int) -> None:
    fake.post(URL, status=status, headers={"Retry-After": "30"})
    with pytest.raises(GatewayTrouble) as trouble:
        SmsNotifier(SETTINGS).send(message())
    assert len(fake.calls) == 1
    if status == 429:
        assert trouble.value.retry_after == 30.0


def test_an_answer_without_a_sid_is_tried_again(fake: responses.RequestsMock) -> None:
    fake.post(URL, status=201, json={"status": "queued"})
    with pytest.raises(GatewayTrouble, match="without a message sid"):
        SmsNotifier(SETTINGS).send(message())


def test_a_message_the_gateway_failed_at_once(fake: responses.RequestsMock) -> None:
    fake.post(URL, status=201, json={**created(status="failed"), "error_code": 30003})
    with pytest.raises(Undeliverable, match="30003"):
        SmsNotifier(SETTINGS).send(message())


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"account_sid": SID, "auth_token": TOKEN}, "settings"),  # neither from nor service
        ({**SETTINGS, "from": "0138 not e164"}, "settings.from"),
        ({**SETTINGS, "account_sid": "AC/../x"}, "settings.account_sid"),
        ({"account_sid": SID, "from": "+15005550006"}, "settings.auth_token"),
    ],
)
def test_bad_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as refused:
        SmsNotifier.validate_settings(settings)
    assert field in [p["field"] for p in refused.value.details]
    assert TOKEN not in refused.value.message
