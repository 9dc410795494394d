"""The ``orderhub`` command: set up, serve, run workers, and look after the data."""

from __future__ import annotations

import errno
import functools
import json
import os
import secrets
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select

from hub import logs
from hub import settings as settings_module
from hub.core import (
    auth,
    carriers,
    intake,
    inventory,
    migrate,
    report_rollups,
    stock_import,
    tenancy,
    tracking,
)
from hub.core.db import utcnow
from hub.core.errors import HubError
from hub.core.http import HttpError
from hub.core.models import (
    CarrierAccount,
    Connection,
    InboxEntry,
    Shipment,
    StockLevel,
    Tenant,
)
from hub.core.scoping import TENANT_KEY
from hub.runtime import Runtime
from hub.settings import ConfigError
from hub.worker import actors


def main() -> None:
    try:
        cli(standalone_mode=True)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)


def _runtime(ctx: click.Context) -> Runtime:
    if ctx.obj is None:
        ctx.obj = Runtime(settings_module.load())
        ctx.call_on_close(ctx.obj.close)
    return ctx.obj


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """OrderHub: take orders in from every channel, reserve stock, ship and track them."""


def runtime_command(group: click.Group, *args: Any, **kwargs: Any) -> Any:
    """A command that gets the runtime first and turns domain errors into clean messages."""

    def decorate(fn: Any) -> Any:
        def command(**params: Any) -> Any:
            runtime = _runtime(click.get_current_context())
            try:
                return fn(runtime, **params)
            except HubError as exc:
                raise click.ClickException(exc.message) from None

        functools.update_wrapper(command, fn)  # keeps the options click attached to fn
        return group.command(*args, **kwargs)(command)

    return decorate


# --- set-up ----------------------------------------------------------------------------------


@runtime_command(cli, "init")
@click.option("--demo", is_flag=True, help="Add a 'demo' tenant with products, stock and users.")
def init(runtime: Runtime, demo: bool) -> None:
    """Create or upgrade the database; with --demo, add demo data and print an admin token
    (and write the demo tenant's settings file into the config folder if it has none)."""
    migrate.upgrade(runtime.engine)
    click.echo(f"database ready at {runtime.engine.url.render_as_string(hide_password=True)}")
    if demo:
        from hub.demo import install_tenant_file, load_demo

        written = install_tenant_file(runtime.settings.config_dir)
        if written is not None:
            click.echo(f"demo tenant settings written to {written}")
            runtime.settings.tenants = settings_module.load_tenants(
                runtime.settings.config_dir, dict(os.environ)
            )
        token, password = load_demo(runtime)
        click.echo("demo tenant 'demo' ready: user 'admin' (role admin)")
        click.echo(f"API token: {token}")
        click.echo(f"Admin password: {password}")
        click.echo("web admin: /admin/ (user 'admin', shop 'demo'); customer portal: /portal/demo/")
    _echo_sync(_sync_config(runtime), quiet=True)


@cli.group()
def db() -> None:
    """Schema migrations."""


@runtime_command(db, "upgrade")
@click.argument("revision", default="heads")
def db_upgrade(runtime: Runtime, revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    migrate.upgrade(runtime.engine, revision)
    click.echo(f"at {', '.join(sorted(migrate.current(runtime.engine))) or 'base'}")


@runtime_command(db, "downgrade")
@click.argument("revision")
def db_downgrade(runtime: Runtime, revision: str) -> None:
    """Revert migrations down to REVISION ('base' removes every table)."""
    migrate.downgrade(runtime.engine, revision)
    click.echo(f"at {', '.join(sorted(migrate.current(runtime.engine))) or 'base'}")


@runtime_command(db, "current")
def db_current(runtime: Runtime) -> None:
    """Show the schema revision and whether it is the newest."""
    current, heads = migrate.current(runtime.engine), migrate.head_revisions(runtime.engine)
    state = "up to date" if current == heads else f"behind (newest: {', '.join(sorted(heads))})"
    click.echo(f"{', '.join(sorted(current)) or 'base'} ({state})")


@cli.group()
def tenants() -> None:
    """Merchants served by this hub."""


@runtime_command(tenants, "add")
@click.argument("slug")
@click.option("--name", help="Display name (default: the slug).")
def tenants_add(runtime: Runtime, slug: str, name: str | None) -> None:
    """Add a tenant."""
    with runtime.transaction() as session:
        tenancy.create_tenant(session, slug, name)
    click.echo(f"tenant {slug} added")


@cli.group()
def users() -> None:
    """Users of a tenant."""


@runtime_command(users, "add")
@click.option("--tenant", "tenant_slug", required=True)
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice(sorted(auth.ROLES)))
@click.option("--password", help="Default: asked for on a terminal, otherwise generated.")
@click.option("--email")
@click.option("--full-name")
def users_add(
    runtime: Runtime,
    tenant_slug: str,
    username: str,
    role: str,
    password: str | None,
    email: str | None,
    full_name: str | None,
) -> None:
    """Add a user (the password is asked for, or generated and printed once)."""
    generated = False
    if password is None:
        if sys.stdin.isatty():
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        else:
            password, generated = secrets.token_urlsafe(12), True
    with runtime.transaction() as session:
        tenant = auth.get_tenant(session, tenant_slug)
        auth.create_user(
            session, tenant.id, username, password, role, "cli", email=email, full_name=full_name
        )
    click.echo(f"user {username} added to {tenant_slug} as {role}")
    if generated:
        click.echo(f"password: {password}")


@cli.group()
def tokens() -> None:
    """API tokens."""


@runtime_command(tokens, "create")
@click.option("--tenant", "tenant_slug", required=True)
@click.option("--user", "username", required=True)
@click.option("--name", help="A label for the token, such as the integration using it.")
@click.option("--expires-in-days", type=int, help="End the token this many days from now.")
@click.option(
    "--expires-at", help="End the token at this ISO date (start of day, UTC) or date-time."
)
def tokens_create(
    runtime: Runtime,
    tenant_slug: str,
    username: str,
    name: str | None,
    expires_in_days: int | None,
    expires_at: str | None,
) -> None:
    """Issue an API token; prints only the token."""
    expiry = auth.token_expiry(expires_at, expires_in_days)
    with runtime.transaction() as session:
        tenant = auth.get_tenant(session, tenant_slug)
        user = auth.find_user(session, tenant.id, username)
        if user is None:
            raise HubError(f"no user {username!r} in tenant {tenant_slug!r}")
        token = auth.create_token(session, user, "cli", name, expiry)
    click.echo(token)


@runtime_command(tokens, "list")
@click.option("--tenant", "tenant_slug", required=True)
@click.option("--user", "username", help="Only this user's tokens.")
@click.option("--all", "include_ended", is_flag=True, help="Also revoked and expired tokens.")
def tokens_list(
    runtime: Runtime, tenant_slug: str, username: str | None, include_ended: bool
) -> None:
    """List a tenant's API tokens (never the tokens themselves): id, user, name, prefix,
    created, expires, state."""
    with runtime.transaction() as session:
        shown = auth.list_tokens(
            session, auth.get_tenant(session, tenant_slug).id, username, include_ended=include_ended
        )
    if not shown:
        click.echo("no tokens" + ("" if include_ended else " (add --all for ended ones)"))
        return
    click.echo("id\tuser\tname\tprefix\tcreated\texpires\tstate")
    for t in shown:
        fields = (t["id"], t["user"], t["name"] or "-", t["prefix"], t["created_at"])
        click.echo("\t".join(map(str, (*fields, t["expires_at"] or "never", t["state"]))))


@runtime_command(tokens, "revoke")
@click.argument("token_id", type=int)
@click.option("--tenant", "tenant_slug", required=True)
def tokens_revoke(runtime: Runtime, token_id: int, tenant_slug: str) -> None:
    """Revoke one API token (its id is in 'orderhub tokens list')."""
    with runtime.transaction() as session:
        tenant_id = auth.get_tenant(session, tenant_slug).id
        token = auth.revoke_token(session, tenant_id, token_id, "cli")
    click.echo(f"token {token_id} of {token['user']} revoked")


# --- stock -----------------------------------------------------------------------------------


@cli.group()
def stock() -> None:
    """Stock movements and checks."""


@runtime_command(stock, "import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", "tenant_slug", help="Default: the only tenant, if there is one.")
@click.option("--kind", type=click.Choice(stock_import.KINDS), default="inbound", show_default=True)
@click.option("--reference", help="Reference written on every ledger row (e.g. an ASN).")
@click.option("--reason", help="Reason for adjustments.")
def stock_import_cmd(
    runtime: Runtime,
    file: Path,
    tenant_slug: str | None,
    kind: str,
    reference: str | None,
    reason: str | None,
) -> None:
    """Move stock from a CSV file (warehouse,sku,quantity[,reason]): all rows or none."""
    text = file.read_text(encoding="utf-8-sig")
    total = max(text.count("\n") - 1, 1)
    with runtime.transaction() as session:
        tenant = _tenant(session, tenant_slug)
        session.info["orderhub.tenant_id"] = tenant.id
        with click.progressbar(length=total, label=f"{kind} {file.name}") as bar:
            moved = stock_import.apply(
                session,
                tenant.id,
                text,
                kind=kind,
                actor="cli",
                reference=reference or file.name,
                reason=reason,
                progress=bar.update,
            )
    click.echo(f"{moved} rows applied to {tenant.slug}")


@runtime_command(stock, "verify")
def stock_verify(runtime: Runtime) -> None:
    """Recompute every balance from the ledger and report any drift (exit 1 if there is)."""
    with runtime.transaction() as session:
        drifts = inventory.verify(session)
        checked = session.scalar(select(func.count()).select_from(StockLevel))
    if not drifts:
        click.echo(f"no drift: {checked} balances match the ledger")
        return
    for d in drifts:
        click.echo(
            f"DRIFT tenant={d.tenant_id} warehouse={d.warehouse_id} "
            f"product={d.product_id}: on_hand {d.on_hand} vs ledger {d.ledger_on_hand}, "
            f"reserved {d.reserved} vs ledger {d.ledger_reserved}"
        )
    raise click.ClickException(f"{len(drifts)} balances drift from the ledger")


def _tenant(session: Any, slug: str | None) -> Tenant:
    if slug:
        return auth.get_tenant(session, slug)
    found = session.scalars(select(Tenant).limit(2)).all()
    if len(found) != 1:
        raise HubError("name the tenant with --tenant")
    return found[0]


# --- running ---------------------------------------------------------------------------------


@runtime_command(cli, "serve")
@click.option("--host", help="Default: server.host in hub.toml, else 127.0.0.1.")
@click.option("--port", type=int, help="Default: server.port in hub.toml, else 8000.")
@click.option("--threads", type=int, help="HTTP worker threads.")
def serve(runtime: Runtime, host: str | None, port: int | None, threads: int | None) -> None:
    """Serve the API (waitress); with the embedded broker, also run the worker in-process."""
    from hub.app import create_app

    runtime.close()  # the app builds its own runtime from the same settings
    app = create_app(runtime.settings)
    app_runtime: Runtime = app.extensions["orderhub"]
    host = host or runtime.settings.host
    port = port or runtime.settings.port
    try:
        _require_current_schema(app_runtime)
        _echo_sync(_sync_config(app_runtime), quiet=True)
        server = _bind(app, host, port, threads or runtime.settings.server_threads)
    except BaseException:
        app_runtime.close()
        raise
    if app_runtime.settings.embedded_broker:
        app_runtime.jobs.start_worker()
        click.echo("embedded worker running in this process")
    else:
        click.echo(
            "jobs go to the Redis broker: start 'orderhub worker' processes to run them"
            " (this server only queues them)"
        )
    click.echo(
        f"OrderHub listening on http://{host}:{port}"
        " (API at /api/v1, web admin at /admin/, readiness at /readyz)"
    )
    try:
        server.run()
    finally:
        app_runtime.close()


def _bind(app: Any, host: str, port: int, threads: int) -> Any:
    """The waitress server on a socket bound here, before anything says the hub is
    listening: a port taken by another server is one line and exit code 2, not a traceback
    after a "listening" line that was never true (and no socket left open behind it)."""
    from waitress import create_server

    sock: socket.socket | None = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress does
        sock.bind(address)
    except OSError as exc:
        if sock is not None:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            problem = "is in use: stop the other server or pass --port"
        else:
            problem = f"cannot be listened on ({exc.strerror or exc}): check --host and --port"
        click.echo(f"port {port} on {host} {problem}", err=True)
        raise click.exceptions.Exit(2) from None
    return create_server(
        app,
        sockets=[sock],
        threads=threads,
        ident="orderhub",
        clear_untrusted_proxy_headers=True,
    )


@runtime_command(cli, "worker")
@click.option("--threads", type=int, help="Threads per process.")
@click.option("--processes", type=int, help="Processes (default: worker.processes, else 1).")
def worker(runtime: Runtime, threads: int | None, processes: int | None) -> None:
    """Run background workers against the Redis broker until SIGINT/SIGTERM."""
    if runtime.settings.embedded_broker:
        raise HubError(
            "the broker is embedded: 'orderhub serve' runs the worker itself; set "
            "ORDERHUB_BROKER_URL=redis://… to run separate workers"
        )
    runtime.plugins.check_config(runtime.settings)
    _require_current_schema(runtime)
    _echo_sync(_sync_config(runtime), quiet=True)
    count = processes or runtime.settings.worker_processes
    if count == 1:
        _run_worker(runtime, threads)
        return
    import multiprocessing

    runtime.close()
    ctx = multiprocessing.get_context("spawn")
    children = [
        ctx.Process(target=_child_worker, args=(threads,), daemon=False) for _ in range(count)
    ]
    for child in children:
        child.start()

    def _forward(signum: int, _frame: Any) -> None:
        for child in children:
            if child.is_alive() and child.pid:
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    for child in children:
        child.join()


def _require_current_schema(runtime: Runtime) -> None:
    if migrate.current(runtime.engine) != migrate.head_revisions(runtime.engine):
        raise HubError(
            "the database is not up to date: run 'orderhub init' (or 'orderhub db upgrade') first"
        )


def _child_worker(threads: int | None) -> None:
    runtime = Runtime(settings_module.load())
    _run_worker(runtime, threads)


def _run_worker(runtime: Runtime, threads: int | None) -> None:
    logs.configure(runtime.settings.log_level)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runtime.jobs.start_worker(threads)
    click.echo(f"worker running against {runtime.settings.broker_url.split('@')[-1]}")
    stop.wait()
    click.echo("worker stopping")
    runtime.close()


# --- plugins ---------------------------------------------------------------------------------


@runtime_command(cli, "plugins")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the document GET /api/v1/plugins answers an admin: each channel, carrier and"
    " notifier with its settings schema (secrets marked x-secret), the modules, the failures.",
)
def plugins_cmd(runtime: Runtime, as_json: bool) -> None:
    """List the plugins found, what each provides and can do, and what failed to load and
    why."""
    if as_json:
        click.echo(json.dumps(runtime.plugins.catalogue(), indent=2))
        return
    capabilities = {
        name: ", ".join(sorted(cls.capabilities))  # type: ignore[attr-defined]
        for name, cls in runtime.plugins.adapters("channels").items()
    }
    for info in runtime.plugins.describe():
        provides = "; ".join(f"{k}: {', '.join(v)}" for k, v in info.provides.items())
        click.echo(f"{info.name}  [{info.source}]")
        if provides:
            click.echo(f"    provides  {provides}")
        can = "; ".join(
            f"{name}: {capabilities[name]}" for name in info.provides.get("channels", [])
        )
        if can:
            click.echo(f"    can       {can}")
        if info.hooks:
            click.echo(f"    hooks     {', '.join(info.hooks)}")
    for failure in runtime.plugins.failures:
        click.echo(f"FAILED {failure.name}  [{failure.source}]: {failure.error}")


# --- channels --------------------------------------------------------------------------------


@cli.group()
def channels() -> None:
    """Channel connections: poll pull channels, load connections from tenant config files."""


# What a tenant file declares, per section: the noun the output uses, the tenant's entries,
# the plugin family, and the service that syncs them (rules shared in hub.core.config_sync).
CONFIG_SECTIONS = {
    "connections": ("connection", "connections", "channels", intake.sync_config_connections),
    "carrier_accounts": (
        "carrier account",
        "carrier_accounts",
        "carriers",
        carriers.sync_config_accounts,
    ),
}


def _sync_config(
    runtime: Runtime, sections: tuple[str, ...] = tuple(CONFIG_SECTIONS)
) -> list[tuple[str, str, str, str]]:
    """Create or update every tenant's config-declared connections and carrier accounts from
    config/tenants/<slug>.toml, in one transaction (a ConfigError anywhere changes nothing).
    Returns (noun, tenant, name, outcome); a tenant with entries in its file but not in the
    database is reported with the name "(all)" and what to do."""
    found: list[tuple[str, str, str, str]] = []
    with runtime.transaction() as session:
        for slug, tenant in sorted(runtime.settings.tenants.items()):
            tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == slug))
            for section in sections:
                noun, attr, family, sync = CONFIG_SECTIONS[section]
                if tenant_id is None:
                    if getattr(tenant, attr):
                        found.append(
                            (noun, slug, "(all)", f"skipped: run 'orderhub tenants add {slug}'")
                        )
                    continue
                outcomes = sync(
                    session,
                    tenant_id,
                    tenant,
                    runtime.plugins.adapters(family, tenant),  # type: ignore[arg-type]
                    box=runtime.secrets,
                    file=str(runtime.settings.config_dir / "tenants" / f"{slug}.toml"),
                )
                found.extend((noun, slug, name, outcome) for name, outcome in outcomes)
    return found


def _echo_sync(outcomes: list[tuple[str, str, str, str]], *, quiet: bool = False) -> None:
    for noun, slug, name, outcome in outcomes:
        if not (quiet and outcome == "unchanged"):
            click.echo(f"config {noun} {slug}/{name}: {outcome}")


@runtime_command(channels, "sync")
def channels_sync(runtime: Runtime) -> None:
    """Create or update connections from the [[connections]] of config/tenants/*.toml."""
    outcomes = _sync_config(runtime, ("connections",))
    _echo_sync(outcomes)
    if not outcomes:
        click.echo("no connections in config/tenants/*.toml")


@runtime_command(channels, "poll")
@click.argument("connection")
@click.option(
    "--tenant",
    "tenant_slug",
    help="The connection's tenant; needed when several tenants have a connection of that name.",
)
def channels_poll(runtime: Runtime, connection: str, tenant_slug: str | None) -> None:
    """Poll a pull channel now and wait for it: CONNECTION is its id or its name.

    With the embedded broker the fetched deliveries are also turned into orders before the
    command ends; with Redis the workers do that."""
    with runtime.transaction() as session:
        found = _connection(session, connection, tenant_slug)
        connection_id, label = found.id, f"{found.name} (id {found.id}, {found.plugin})"
    embedded = runtime.settings.embedded_broker
    if embedded:
        runtime.jobs.start_worker(sweep=False)
    try:
        result = actors.poll_channel(runtime, connection_id)
    except HttpError as exc:
        raise HubError(
            f"poll of {label} failed: {exc} (what was fetched before is kept; the cursor did not"
            " move, so the next poll starts where this one did)"
        ) from None
    finally:
        if embedded:
            runtime.jobs.join()
    if result["skipped"]:
        raise HubError(f"{label} was not polled: {result['skipped']}")
    if result["error"]:
        raise HubError(f"poll of {label} failed: {result['error']}")
    click.echo(
        f"{label}: {result['stored']} stored, {result['duplicates']} duplicates,"
        f" cursor {result['cursor']}"
    )
    if not result["entries"]:
        return
    if not embedded:
        click.echo(f"{len(result['entries'])} ingest jobs queued for the workers")
        return
    with runtime.transaction() as session:
        entries = session.execute(
            select(InboxEntry.id, InboxEntry.status, InboxEntry.reason)
            .where(InboxEntry.id.in_(result["entries"]))
            .order_by(InboxEntry.id)
        ).all()
    counts = {s: sum(1 for e in entries if e.status == s) for s in ("processed", "rejected")}
    click.echo(f"ingested: {counts['processed']} processed, {counts['rejected']} rejected")
    for entry in entries:
        if entry.status == "rejected":
            click.echo(f"  inbox {entry.id} rejected: {entry.reason}")


def _connection(session: Any, ref: str, tenant_slug: str | None) -> Connection:
    """A connection by id, or by name (unique within a tenant, hence --tenant when several
    tenants use the name)."""
    stmt = select(Connection)
    if tenant_slug:
        stmt = stmt.where(Connection.tenant_id == auth.get_tenant(session, tenant_slug).id)
    stmt = stmt.where(Connection.id == int(ref) if ref.isdigit() else Connection.name == ref)
    found = session.scalars(stmt.limit(2)).all()
    if not found:
        where = f" in tenant {tenant_slug!r}" if tenant_slug else ""
        raise HubError(f"no connection {ref!r}{where}")
    if len(found) > 1:
        raise HubError(f"several tenants have a connection named {ref!r}: add --tenant <slug>")
    return found[0]


# --- carriers --------------------------------------------------------------------------------


@cli.group("carriers")
def carriers_group() -> None:
    """Carrier accounts: load them from tenant config files."""


@runtime_command(carriers_group, "sync")
def carriers_sync(runtime: Runtime) -> None:
    """Create or update carrier accounts from the [[carrier_accounts]] of
    config/tenants/*.toml (init, serve and worker do this too)."""
    outcomes = _sync_config(runtime, ("carrier_accounts",))
    _echo_sync(outcomes)
    if not outcomes:
        click.echo("no carrier accounts in config/tenants/*.toml")


# --- tracking --------------------------------------------------------------------------------


@cli.group("tracking")
def tracking_group() -> None:
    """Carrier tracking: check shipments now rather than at their next scheduled check."""


@runtime_command(tracking_group, "poll")
@click.option("--shipment", "shipment_id", type=int, help="Check this shipment now.")
@click.option("--account", "account_id", type=int, help="Only this carrier account's shipments.")
@click.option("--tenant", "tenant_slug", help="Only this tenant's shipments.")
@click.option(
    "--all", "every", is_flag=True, help="Every live shipment, not only those due a check."
)
def tracking_poll(
    runtime: Runtime,
    shipment_id: int | None,
    account_id: int | None,
    tenant_slug: str | None,
    every: bool,
) -> None:
    """Ask carriers for tracking now and apply what they say, as the worker's scheduled checks
    do: one shipment (--shipment), or the shipments due a check (all live ones with --all),
    narrowed by --account and --tenant. Exits 1 when a carrier could not be asked."""
    if shipment_id is not None:
        _track_one(runtime, shipment_id, tenant_slug)
        return
    sizes = {
        name: cls.track_batch
        for name, cls in runtime.plugins.adapters("carriers").items()
        if "tracking" in cls.capabilities
    }
    with runtime.transaction() as session:
        tenant_id = auth.get_tenant(session, tenant_slug).id if tenant_slug else None
        if account_id is not None and not session.scalar(
            select(CarrierAccount.id).where(
                CarrierAccount.id == account_id,
                *([CarrierAccount.tenant_id == tenant_id] if tenant_id else []),
            )
        ):
            raise HubError(f"no carrier account {account_id}")
        batches = tracking.claim(
            session,
            utcnow(),
            sizes,
            due_only=not every,
            account_id=account_id,
            tenant_id=tenant_id,
        )
    total = sum(len(b.shipment_ids) for b in batches)
    if not total:
        click.echo(
            "no shipments to check" + ("" if every else " are due (add --all for every live one)")
        )
        return
    counts = {"checked": 0, "changed": 0}
    failures = []
    with click.progressbar(length=total, label=f"tracking {total} shipments") as bar:
        for batch in batches:
            try:
                result = actors.track_shipments(
                    runtime, batch.account_id, batch.shipment_ids, batch.lease.isoformat()
                )
            except Exception as exc:  # recorded on the account; reported below
                result = {"error": f"{type(exc).__name__}: {exc}"}
            if result.get("error"):
                failures.append(f"carrier account {batch.account_id}: {result['error']}")
            counts["checked"] += result.get("checked", 0)
            counts["changed"] += result.get("changed", 0)
            bar.update(len(batch.shipment_ids))
    click.echo(f"{counts['checked']} checked, {counts['changed']} changed")
    for failure in failures:
        click.echo(f"  {failure}", err=True)
    if failures:
        raise HubError(f"{len(failures)} batches could not be tracked (see above)")


def _track_one(runtime: Runtime, shipment_id: int, tenant_slug: str | None) -> None:
    with runtime.transaction() as session:
        stmt = select(Shipment.tenant_id, Shipment.tracking_number).where(
            Shipment.id == shipment_id
        )
        if tenant_slug:
            stmt = stmt.where(Shipment.tenant_id == auth.get_tenant(session, tenant_slug).id)
        found = session.execute(stmt).first()
    if found is None:
        raise HubError(f"no shipment {shipment_id}")
    result = tracking.check_now(runtime, found.tenant_id, shipment_id)
    with runtime.transaction() as session:
        status = session.scalar(select(Shipment.status).where(Shipment.id == shipment_id))
    change = "changed" if result["changed"] else "no change"
    click.echo(f"shipment {shipment_id} ({found.tracking_number}): {status} ({change})")


# --- reports ---------------------------------------------------------------------------------


@cli.group("reports")
def reports_group() -> None:
    """The reports' day rollups (the worker's sweep keeps them fresh every minute)."""


@runtime_command(reports_group, "refresh")
@click.option("--tenant", "tenant_slug", help="Only this tenant (default: every tenant).")
@click.option("--rebuild", is_flag=True, help="Build every day again, not only changed ones.")
def reports_refresh(runtime: Runtime, tenant_slug: str | None, rebuild: bool) -> None:
    """Fold the latest changes into the report rollups now — or build them, which the first
    time on a shop with years of orders takes a while: do it after an upgrade rather than
    leave it to the worker, whose reports meanwhile sum raw rows. Safe beside a running
    worker: refreshes of one tenant take turns."""
    with runtime.transaction() as session:
        tenants = (
            [(t.id, t.slug) for t in [auth.get_tenant(session, tenant_slug)]]
            if tenant_slug
            else session.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.id)).all()
        )
    for tenant_id, slug in tenants:
        zone = runtime.tenant_settings(slug).tickets.calendar.timezone
        with (
            runtime.transaction() as session,
            click.progressbar(length=1, label=f"{slug} ({zone})") as bar,
        ):
            session.info[TENANT_KEY] = tenant_id

            def advance(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - bar.pos)

            days = report_rollups.refresh(
                session, tenant_id, zone, rebuild=rebuild, progress=advance
            )
        click.echo(f"{slug}: {days} days rebuilt")
