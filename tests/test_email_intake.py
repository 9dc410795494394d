"""Tickets by e-mail, as a customer and the shop's mail provider meet them: a customer's
e-mail to the support address (posted by Mailgun, signed, shaped as its inbound route posts
it) opens a ticket; the agent's answer reaches the customer by e-mail on a real SMTP server
with the ticket's number in its subject; the customer's reply to it goes back to the same
ticket. Forged, stale and replayed posts are refused; the same e-mail posted twice is one
message; attachments are kept when the hub keeps their kind."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ORDER, Api, allow_outbound, watch_secret
from notify_support import SmtpServer, smtp_server

from hub.runtime import Runtime

KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"  # shaped like a Mailgun signing key
KEY_VARIABLE = "ACME_MAILGUN_SIGNING_KEY"
ACME = """
name = "Acme Store"

[tickets.email]
signing_key = {{ "$env" = "{variable}" }}

[[notifications.routes]]
events = ["ticket_replied"]
notifier = "mail"
to = ["requester"]

[[notifiers]]
name = "mail"
plugin = "email"
[notifiers.settings]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "Acme Support <support@acme.test>"
"""


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def config_dir(tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    watch_secret(KEY)
    path = tmp_path / "config"
    (path / "tenants").mkdir(parents=True)
    allow_outbound(path, "127.0.0.1")
    (path / "tenants" / "acme.toml").write_text(
        ACME.format(variable=KEY_VARIABLE, smtp_port=smtp.port)
    )
    return path


def signed(key: str = KEY, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    token = hashlib.sha256(f"{timestamp}{time.perf_counter_ns()}".encode()).hexdigest()[:50]
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    return {"timestamp": timestamp, "token": token, "signature": signature.hexdigest()}


def mailgun_post(
    subject: str,
    text: str,
    *,
    sender: str = "ann@example.com",
    name: str = "Ann Lee",
    message_id: str = "<CAFx1oQ8@mail.example.com>",
    quoted: str = "",
) -> dict[str, str]:
    """The fields Mailgun's route forward() posts for a parsed message (its documented
    parameters; the common headers also as fields of their own)."""
    headers = [
        ["Received", "by mx.example.com with SMTP id x1"],
        ["From", f"{name} <{sender}>"],
        ["To", "support@acme.test"],
        ["Subject", subject],
        ["Message-Id", message_id],
        ["Mime-Version", "1.0"],
        ["Content-Type", 'multipart/alternative; boundary="000000000000"'],
    ]
    return {
        "recipient": "support@acme.test",
        "sender": sender,
        "from": f"{name} <{sender}>",
        "From": f"{name} <{sender}>",
        "subject": subject,
        "Subject": subject,
        "Message-Id": message_id,
        "body-plain": text + (f"\n\n{quoted}" if quoted else ""),
        "stripped-text": text,
        "stripped-signature": "",
        "body-html": f"<div>{text}</div>",
        "stripped-html": f"<div>{text}</div>",
        "attachment-count": "0",
        "message-headers": json.dumps(headers),
        **signed(),
    }


def post(api: Api, form: dict[str, Any], tenant: str = "acme") -> tuple[int, Any]:
    response = api.client.post(f"/inbound/email/{tenant}", data=form)
    return response.status_code, response.get_json(silent=True)


def test_an_email_conversation_from_first_mail_to_the_customers_reply(
    api: Api, runtime: Runtime, smtp: SmtpServer
) -> None:
    runtime.jobs.start_worker(sweep=False)
    number = api.post("/orders", ORDER)[1]["number"]
    # the customer writes in, naming the order in the subject
    status, answer = post(api, mailgun_post(f"Where is my order {number}?", "It has not come."))
    assert status == 200, answer
    assert answer["added"] is True
    ticket = api.get(f"/tickets/{answer['ticket']}")[1]
    assert (ticket["kind"], ticket["source"], ticket["subject"], ticket["order"]) == (
        "question", "email", f"Where is my order {number}?", number)
    assert ticket["customer"]["email"] == "ann@example.com"
    assert [m["body"] for m in ticket["messages"]] == ["It has not come."]
    # the agent answers; the customer gets it by e-mail, the ticket's number in the subject
    status, _ = api.post(f"/tickets/{answer['ticket']}/messages",
                         {"body": "It left today:\ntracking 1Z999."}, token=api.tokens["service"])
    assert status in (200, 201)
    runtime.jobs.join()
    [mail] = smtp.mailbox.received
    assert mail.recipients == ["ann@example.com"]
    subject = mail.message["Subject"]
    assert subject == f"Re: [{answer['ticket']}] Where is my order {number}?"
    text = mail.part("plain").replace("\r\n", "\n")
    assert "It left today:\ntracking 1Z999." in text
    assert f"keep {answer['ticket']} in the subject (your order {number})" in text
    # the customer replies to that mail (quoting it): the reply joins the same ticket
    status, again = post(api, mailgun_post(
        f"Re: {subject}", "Thanks, got it!", message_id="<CAFx2@mail.example.com>",
        quoted="> It left today:"))
    assert (status, again) == (200, {"ticket": answer["ticket"], "added": True})
    messages = api.get(f"/tickets/{answer['ticket']}")[1]["messages"]
    assert [m["body"] for m in messages] == [
        "It has not come.", "It left today:\ntracking 1Z999.", "Thanks, got it!"]


def test_the_same_email_posted_again_adds_nothing(api: Api) -> None:
    form = mailgun_post("Hello", "A question")
    first = post(api, form)
    again = post(api, {**form, **signed()})  # the provider's retry, newly signed
    assert first[0] == again[0] == 200
    assert again[1] == {"ticket": first[1]["ticket"], "added": False}
    assert api.get("/tickets")[1]["total"] == 1


def test_a_stranger_naming_someone_elses_ticket_opens_their_own(api: Api) -> None:
    ann = post(api, mailgun_post("Broken mug", "It broke."))[1]["ticket"]
    status, bob = post(api, mailgun_post(f"Re: [{ann}] Broken mug", "Me too!",
                                         sender="bob@example.com", name="Bob",
                                         message_id="<bob1@example.com>"))
    assert status == 200 and bob["ticket"] != ann
    assert len(api.get(f"/tickets/{ann}")[1]["messages"]) == 1


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"signature": "0" * 64}, 401, "not signed with this shop's signing key"),
        ({"token": "another-token"}, 401, "not signed with this shop's signing key"),
        (signed(key="key-of-somebody-else-entirely"), 401, "not signed"),
        (signed(at=time.time() - 3600), 401, "too old"),
        ({"timestamp": "", "token": "", "signature": ""}, 401, "not signed"),
        ({"from": "nobody", "sender": ""}, 406, "no sender address"),
    ],
)
def test_forged_stale_and_senderless_posts_are_refused(
    api: Api, change: dict[str, str], status: int, words: str
) -> None:
    got, body = post(api, {**mailgun_post("Hi", "Hello"), **change})
    assert got == status, body
    assert words in body["error"]["message"]
    assert KEY not in json.dumps(body)
    assert api.get("/tickets")[1]["total"] == 0


def test_a_shop_without_email_intake_takes_none(api: Api) -> None:
    status, body = post(api, mailgun_post("Hi", "Hello"), tenant="other")
    assert (status, body["error"]["message"]) == (406, "no e-mail intake at this address")
    assert post(api, mailgun_post("Hi", "Hello"), tenant="nobody")[0] == 406


def test_attachments_are_kept_when_the_hub_keeps_their_kind(api: Api) -> None:
    form = {**mailgun_post("Damaged", "See the photo."), "attachment-count": "2"}
    response = api.client.post(
        "/inbound/email/acme",
        data={**form,
              "attachment-1": (io.BytesIO(b"GIF89a" + b"\x00" * 20), "box.gif"),
              "attachment-2": (io.BytesIO(b"MZ\x90\x00 windows program"), "invoice.exe")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_json()
    ticket = api.get(f"/tickets/{response.get_json()['ticket']}")[1]
    assert [a["filename"] for a in ticket["attachments"]] == ["box.gif"]
    refused = [e for e in ticket["timeline"] if e["kind"] == "attachment_refused"]
    assert refused and refused[0]["data"]["filename"] == "invoice.exe"
