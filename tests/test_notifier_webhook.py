"""The ``webhook`` notifier: requests the Standard Webhooks reference library verifies, a stable
message id, and what each answer means — 2xx done, 410 gone, a redirect never followed,
anything else tried again (as the endpoint asks) — while an internal URL is never called."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import responses
from conftest import watch_secret
from notify_support import webhook_receiver
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hub.core import outbound, plugin_settings
from hub.core.adapters import Gone, Message, Undeliverable
from hub.core.errors import Invalid
from plugins.notifiers.webhook import EndpointTrouble, WebhookNotifier

SECRET = "whsec_" + base64.b64encode(b"a secret of 32 bytes for signing").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"the secret before the rotation!!").decode()
URL = "https://hooks.example.com/orderhub/token-in-the-path"
MESSAGE = Message(
    tenant="acme",
    event="stock_low",
    subject="Low stock",
    data={"sku": "SKU-A", "available": 4, "threshold": 5},
    id="msg_5f0e1d2c3b4a59687766554433221100",
    occurred_at=datetime(2026, 12, 20, 9, 30, 5, tzinfo=UTC),
)


@pytest.fixture(autouse=True)
def _watched() -> None:
    watch_secret(SECRET, OLD_SECRET, SECRET.removeprefix("whsec_"))


@pytest.fixture
def fake() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def notifier(**settings: Any) -> WebhookNotifier:
    """Built as the hub builds one: its settings checked first, the URL's host included."""
    settings = {"url": URL, "secret": SECRET, **settings}
    WebhookNotifier.validate_settings(settings)
    plugin_settings.check_outbound(WebhookNotifier, settings)
    return WebhookNotifier(settings)


def headers_of(call: Any) -> dict[str, str]:
    return dict(call.request.headers.items())


def test_the_request_verifies_with_the_reference_library(fake: responses.RequestsMock) -> None:
    fake.post(URL, status=204)
    assert notifier().send(MESSAGE) is None
    [call] = fake.calls
    headers, body = headers_of(call), call.request.body
    assert Webhook(SECRET).verify(body, headers) == {
        "type": "stock_low",
        "timestamp": "2026-12-20T09:30:05Z",
        "data": {"sku": "SKU-A", "available": 4, "threshold": 5, "tenant": "acme"},
    }
    assert headers["webhook-id"] == MESSAGE.id
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-signature"].startswith("v1,")
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD_SECRET).verify(body, headers)  # a stranger's secret does not verify


def test_while_rotating_both_secrets_sign(fake: responses.RequestsMock) -> None:
    fake.post(URL, status=200)
    notifier(previous_secret=OLD_SECRET).send(MESSAGE)
    [call] = fake.calls
    headers = headers_of(call)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, OLD_SECRET):
        Webhook(secret).verify(call.request.body, headers)


def test_a_tampered_body_does_not_verify(fake: responses.RequestsMock) -> None:
    fake.post(URL, status=200)
    notifier().send(MESSAGE)
    [call] = fake.calls
    tampered = call.request.body.replace(b'"available":4', b'"available":400')
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, headers_of(call))


def test_each_attempt_has_the_same_id_and_its_own_signed_timestamp(
    fake: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.post(URL, status=500)
    fake.post(URL, status=200)
    clock = iter([1_800_000_000.0, 1_800_000_007.0])
    monkeypatch.setattr(WebhookNotifier, "clock", staticmethod(lambda: next(clock)))
    with pytest.raises(EndpointTrouble):
        notifier().send(MESSAGE)
    notifier().send(MESSAGE)
    first, second = (headers_of(c) for c in fake.calls)
    assert first["webhook-id"] == second["webhook-id"] == MESSAGE.id
    assert (first["webhook-timestamp"], second["webhook-timestamp"]) == (
        "1800000000",
        "1800000007",
    )
    assert first["webhook-signature"] != second["webhook-signature"]


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_success(fake: responses.RequestsMock, status: int) -> None:
    fake.post(URL, status=status)
    notifier().send(MESSAGE)


@pytest.mark.parametrize("status", [400, 401, 404, 409, 429, 500, 502, 503, 504])
def test_other_answers_are_tried_again_naming_the_host_only(
    fake: responses.RequestsMock, status: int
) -> None:
    fake.post(URL, status=status)
    with pytest.raises(EndpointTrouble) as trouble:
        notifier().send(MESSAGE)
    text = str(trouble.value)
    assert text.startswith(f"POST https://hooks.example.com → {status} ")
    assert "token-in-the-path" not in text
    assert len(fake.calls) == 1  # the hub's retries, not the client's


def test_retry_after_is_passed_on(fake: responses.RequestsMock) -> None:
    fake.post(URL, status=429, headers={"Retry-After": "120"})
    with pytest.raises(EndpointTrouble) as trouble:
        notifier().send(MESSAGE)
    assert trouble.value.retry_after == 120.0


def test_410_gone_disables(fake: responses.RequestsMock) -> None:
    fake.post(URL, status=410)
    with pytest.raises(Gone, match="410 Gone: the endpoint is gone"):
        notifier().send(MESSAGE)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_never_followed(fake: responses.RequestsMock, status: int) -> None:
    fake.post(URL, status=status, headers={"Location": "https://elsewhere.example.com/x"})
    with pytest.raises(EndpointTrouble, match="a redirect, which is never followed"):
        notifier().send(MESSAGE)
    assert [c.request.url for c in fake.calls] == [URL]


def test_no_answer_is_tried_again(fake: responses.RequestsMock) -> None:
    import requests

    fake.post(URL, body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(EndpointTrouble, match="no answer within 15 s"):
        notifier().send(MESSAGE)


# --- where it may send -------------------------------------------------------------------------


def test_a_loopback_url_is_refused_without_the_operators_allow_list() -> None:
    with webhook_receiver() as receiver:
        with pytest.raises(Invalid) as refused:
            notifier(url=receiver.url)
        assert refused.value.details == [
            {"field": "settings.url", "problem": outbound.NOT_HTTPS}
        ]
        settings = {"url": receiver.url, "secret": SECRET}
        with pytest.raises(Undeliverable) as not_sent:  # and never called, even if built anyway
            WebhookNotifier(settings).send(MESSAGE)
    assert str(not_sent.value) == f"not sent to http://127.0.0.1: {outbound.NOT_HTTPS}"
    assert receiver.hits == []


def test_an_internal_https_url_is_refused() -> None:
    with pytest.raises(Invalid) as refused:
        notifier(url="https://169.254.169.254/latest")
    assert refused.value.details == [{"field": "settings.url", "problem": outbound.NOT_PUBLIC}]


def test_a_local_receiver_the_operator_allows_gets_a_verifiable_request() -> None:
    outbound.allow(["127.0.0.1"])
    with webhook_receiver() as receiver:
        notifier(url=receiver.url).send(MESSAGE)
    [hit] = receiver.hits
    assert hit.path == "/hooks/orderhub"
    assert hit.headers["webhook-id"] == MESSAGE.id
    assert Webhook(SECRET).verify(hit.body, hit.headers)["data"]["sku"] == "SKU-A"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"secret": "not-a-whsec"}, "settings.secret"),
        ({"secret": "whsec_" + base64.b64encode(b"too short").decode()}, "settings.secret"),
        ({"secret": "whsec_" + base64.b64encode(bytes(65)).decode()}, "settings.secret"),
        ({"previous_secret": "whsec_!!!"}, "settings.previous_secret"),
        ({"url": "ftp://hooks.example.com"}, "settings.url"),
        ({"extra": 1}, "settings.extra"),
    ],
)
def test_bad_settings_name_the_field_never_the_value(change: dict[str, Any], field: str) -> None:
    settings = {"url": URL, "secret": SECRET, **change}
    with pytest.raises(Invalid) as refused:
        WebhookNotifier.validate_settings(settings)
    assert field in [p["field"] for p in refused.value.details]
    assert SECRET not in str(refused.value.details) and SECRET not in refused.value.message


def test_secret_sizes_on_the_bounds() -> None:
    for size in (24, 64):
        secret = "whsec_" + base64.b64encode(bytes(range(size))).decode()
        WebhookNotifier.validate_settings({"url": URL, "secret": secret})
    for size in (23, 65):
        secret = "whsec_" + base64.b64encode(bytes(size)).decode()
        with pytest.raises(Invalid):
            WebhookNotifier.validate_settings({"url": URL, "secret": secret})
