"""Settings: defaults, hub.toml, ORDERHUB_* variables, tenant files, secrets from the
environment, and errors that name the file, the key and the problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub import settings
from hub.core.db import make_engine, normalise_url
from hub.settings import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def load(config_dir: Path, **env: str) -> settings.Settings:
    return settings.load(env={"ORDERHUB_CONFIG_DIR": str(config_dir), **env})


# --- defaults and precedence -----------------------------------------------------------------


def test_defaults_are_embedded(
    tmp_path: Path, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = load(config_dir)
    assert s.database_url == "sqlite:///var/orderhub.db"
    assert s.data_dir == Path("var")
    assert s.broker_url == "embedded"
    assert s.embedded_broker
    assert s.broker_namespace == "orderhub"
    assert (s.host, s.port, s.worker_processes, s.worker_threads) == ("127.0.0.1", 8000, 1, 4)
    assert s.disabled_plugins == []
    assert s.tenants == {}
    # a development secret is generated once, kept private, and reused on the next start
    key_file = tmp_path / "var" / "secret_key"
    assert key_file.read_text() == s.secret_key
    assert len(s.secret_key) >= 32
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert load(config_dir).secret_key == s.secret_key


def test_data_dir_moves_the_sqlite_file(tmp_path: Path, config_dir: Path) -> None:
    s = load(config_dir, ORDERHUB_DATA_DIR=str(tmp_path / "state"))
    assert s.database_url == f"sqlite:///{tmp_path / 'state' / 'orderhub.db'}"
    assert (tmp_path / "state" / "secret_key").exists()


def test_unknown_tenant_gets_default_settings(config_dir: Path) -> None:
    t = load(config_dir, ORDERHUB_SECRET_KEY="k", ORDERHUB_DATA_DIR="/nonexistent").tenant("x")
    assert (t.slug, t.name, t.currency, t.order_number_prefix, t.notifiers) == (
        "x",
        "x",
        "USD",
        "SO-",
        [],
    )
    assert t.plugin_enabled("log")


HUB_TOML = """
database_url = "sqlite:////srv/from-file.db"
broker_url = "redis://file-host:6379/0"
broker_namespace = "from-file"
secret_key = "file-secret"
data_dir = "/srv/data"
log_level = "WARNING"

[server]
port = 9000

[worker]
processes = 3
threads = 2
sweep_seconds = 5

[api]
max_per_page = 100

[plugins]
disabled = ["log"]
"""


def test_hub_toml_is_read(config_dir: Path) -> None:
    (config_dir / "hub.toml").write_text(HUB_TOML)
    s = load(config_dir)
    assert s.database_url == "sqlite:////srv/from-file.db"
    assert s.broker_url == "redis://file-host:6379/0"
    assert not s.embedded_broker
    assert (s.broker_namespace, s.secret_key, s.data_dir, s.log_level) == (
        "from-file",
        "file-secret",
        Path("/srv/data"),
        "WARNING",
    )
    assert (s.port, s.worker_processes, s.worker_threads, s.sweep_seconds) == (9000, 3, 2, 5)
    assert s.max_per_page == 100
    assert s.disabled_plugins == ["log"]


def test_environment_overrides_hub_toml(config_dir: Path) -> None:
    (config_dir / "hub.toml").write_text(HUB_TOML)
    s = load(
        config_dir,
        ORDERHUB_DATABASE_URL="postgresql://hub@db:5432/orderhub",
        ORDERHUB_BROKER_URL="redis://env-host:6379/1",
        ORDERHUB_BROKER_NAMESPACE="from-env",
        ORDERHUB_SECRET_KEY="env-secret",
        ORDERHUB_DATA_DIR="/var/lib/orderhub",
        ORDERHUB_LOG_LEVEL="DEBUG",
    )
    assert s.database_url == "postgresql://hub@db:5432/orderhub"
    assert s.broker_url == "redis://env-host:6379/1"
    assert s.broker_namespace == "from-env"
    assert s.secret_key == "env-secret"
    assert s.data_dir == Path("/var/lib/orderhub")
    assert s.log_level == "DEBUG"
    assert s.port == 9000  # what the environment does not set still comes from the file


def test_config_dir_comes_from_the_environment(config_dir: Path) -> None:
    (config_dir / "hub.toml").write_text('secret_key = "x"\nbroker_url = "redis://h/0"\n')
    assert load(config_dir).broker_url == "redis://h/0"


def test_explicit_overrides_win_and_unknown_ones_are_refused(config_dir: Path) -> None:
    (config_dir / "hub.toml").write_text(HUB_TOML)
    s = settings.load(
        {"config_dir": config_dir, "broker_url": "embedded", "max_per_page": 7},
        env={"ORDERHUB_BROKER_URL": "redis://env-host/0"},
    )
    assert (s.broker_url, s.max_per_page) == ("embedded", 7)
    with pytest.raises(ConfigError, match="overrides: databse_url: is not a setting"):
        settings.load({"config_dir": config_dir, "databse_url": "x"}, env={})


@pytest.mark.parametrize("value", ["verbose", "info"], ids=["unknown level", "lower case"])
def test_bad_log_level_variable_is_a_config_error(config_dir: Path, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(config_dir, ORDERHUB_SECRET_KEY="k", ORDERHUB_LOG_LEVEL=value)
    assert "ORDERHUB_LOG_LEVEL" in str(caught.value)
    assert caught.value.problem == "must be one of: DEBUG, INFO, WARNING, ERROR"
    assert value not in str(caught.value)  # the rule, never the value


def test_bad_namespace_variable_is_a_config_error(config_dir: Path) -> None:
    with pytest.raises(ConfigError, match="ORDERHUB_BROKER_NAMESPACE: broker_namespace"):
        load(config_dir, ORDERHUB_SECRET_KEY="k", ORDERHUB_BROKER_NAMESPACE="has spaces")


def test_shipped_example_config_is_valid() -> None:
    s = settings.load(env={"ORDERHUB_CONFIG_DIR": str(ROOT / "config"), "ORDERHUB_SECRET_KEY": "k"})
    assert s.embedded_broker
    demo = s.tenant("demo")
    assert demo.name == "Demo Store"
    assert [n["plugin"] for n in demo.notifiers] == ["log"]


# --- database URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://hub@db.internal:5433/orderhub",
        "postgresql+psycopg2://hub@db.internal:5433/orderhub",
        "postgresql+psycopg://hub@db.internal:5433/orderhub",
    ],
)
def test_plain_postgresql_url_is_driven_by_psycopg(config_dir: Path, url: str) -> None:
    s = load(config_dir, ORDERHUB_DATABASE_URL=url, ORDERHUB_SECRET_KEY="k")
    parsed = normalise_url(s.database_url)
    assert parsed.drivername == "postgresql+psycopg"
    assert (parsed.username, parsed.host, parsed.port, parsed.database) == (
        "hub",
        "db.internal",
        5433,
        "orderhub",
    )
    engine = make_engine(s.database_url)  # no connection is made until first use
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_sqlite_url_is_left_alone(tmp_path: Path) -> None:
    assert normalise_url(f"sqlite:///{tmp_path}/a.db").drivername == "sqlite"


# --- errors name the file, the key and the problem -------------------------------------------


def error_for(config_dir: Path, **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(config_dir, ORDERHUB_SECRET_KEY="k", **env)
    return caught.value


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('databse_url = "sqlite://"\n', "(top level)", "unknown key"),
        ("[server]\nprt = 80\n", "server", "unknown key"),
        ('[server]\nport = "eighty"\n', "server.port", "must be an integer"),
        ("[server]\nport = 70000\n", "server.port", "must be at most 65535"),
        ('log_level = "LOUD"\n', "log_level", "must be one of: "),
        ('[plugins]\ndisabled = "log"\n', "plugins.disabled", "must be a list"),
        ("[worker]\nsweep_seconds = 0\n", "worker.sweep_seconds", "must be greater than 0"),
        ('broker_url = {"$env" = 5}\n', "broker_url", "does not match any"),
    ],
)
def test_bad_hub_toml(config_dir: Path, text: str, key: str, problem: str) -> None:
    path = config_dir / "hub.toml"
    path.write_text(text)
    error = error_for(config_dir)
    assert error.file == str(path)
    assert error.key == key
    assert problem in error.problem
    assert str(error).startswith(f"{path}: {key}: ")
    for value in ("eighty", "70000", "LOUD", "'log'"):  # the rule, never the value
        assert value not in error.problem


def test_delivery_attempts_default_to_five_and_are_read_from_hub_toml(config_dir: Path) -> None:
    assert load(config_dir, ORDERHUB_SECRET_KEY="k").max_delivery_attempts == 5
    (config_dir / "hub.toml").write_text("[worker]\nmax_delivery_attempts = 12\n")
    assert load(config_dir, ORDERHUB_SECRET_KEY="k").max_delivery_attempts == 12


@pytest.mark.parametrize("value", ["0", "101", "2.5", '"5"'])
def test_delivery_attempts_out_of_range_are_refused(config_dir: Path, value: str) -> None:
    (config_dir / "hub.toml").write_text(f"[worker]\nmax_delivery_attempts = {value}\n")
    assert error_for(config_dir).key == "worker.max_delivery_attempts"


@pytest.mark.parametrize(
    ("text", "name"),
    [('databse_url = "sqlite://"\n', "'databse_url'"), ("[server]\nprt = 80\n", "'prt'")],
)
def test_unknown_key_is_named(config_dir: Path, text: str, name: str) -> None:
    (config_dir / "hub.toml").write_text(text)
    assert name in str(error_for(config_dir))


def test_invalid_toml_names_file_and_line(config_dir: Path) -> None:
    path = config_dir / "hub.toml"
    path.write_text('log_level = "INFO"\n[server\nport = 80\n')
    error = error_for(config_dir)
    assert error.file == str(path)
    assert "is not valid TOML" in error.problem
    assert "line 2" in error.problem
    assert str(error).startswith(f"{path}: is not valid TOML")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("nmae = 'Acme'\n", "(top level)", "unknown key"),
        ("currency = 'usd'\n", "currency", "must match the pattern"),
        ("[[notifiers]]\nname = 'Ops Team'\nplugin = 'log'\n", "notifiers.0.name", "match"),
        ("[[notifiers]]\nname = 'ops'\n", "notifiers.0", "'plugin' is a required property"),
        (
            "[[notifiers]]\nname = 'ops'\nplugin = 'log'\nevents = ['order_create']\n",
            "notifiers.0.events.0",
            "must be one of: ",
        ),
        ("[plugins]\nenabled = ['log', 'log']\n", "plugins.enabled", "must not repeat"),
    ],
)
def test_bad_tenant_file(config_dir: Path, text: str, key: str, problem: str) -> None:
    (config_dir / "tenants" / "good.toml").write_text("name = 'Good'\n")
    path = config_dir / "tenants" / "x.toml"
    path.write_text(text)
    error = error_for(config_dir)
    assert error.file == str(path)
    assert error.key == key
    assert problem in error.problem


def test_tenant_file_is_read(config_dir: Path) -> None:
    (config_dir / "tenants" / "acme.toml").write_text(
        'name = "Acme Ltd"\ncurrency = "EUR"\norder_number_prefix = "AC-"\n'
        '[plugins]\ndisabled = ["log"]\n'
        '[[notifiers]]\nname = "ops"\nplugin = "log"\nevents = ["stock_low"]\n'
        'settings = { level = "WARNING" }\n'
    )
    acme = load(config_dir, ORDERHUB_SECRET_KEY="k").tenant("acme")
    assert (acme.name, acme.currency, acme.order_number_prefix) == ("Acme Ltd", "EUR", "AC-")
    assert not acme.plugin_enabled("log")
    assert acme.plugin_enabled("other")
    assert acme.notifiers == [
        {"name": "ops", "plugin": "log", "events": ["stock_low"], "settings": {"level": "WARNING"}}
    ]


# --- secrets from the environment ------------------------------------------------------------


def test_env_reference_resolves(config_dir: Path) -> None:
    (config_dir / "hub.toml").write_text(
        'database_url = {"$env" = "HUB_DB"}\nsecret_key = {"$env" = "HUB_KEY"}\n'
    )
    (config_dir / "tenants" / "acme.toml").write_text(
        '[[notifiers]]\nname = "sms"\nplugin = "sms"\n'
        '[notifiers.settings]\napi_key = {"$env" = "ACME_SMS_KEY"}\nsender = "Acme"\n'
    )
    s = load(config_dir, HUB_DB="postgresql://hub@db/hub", HUB_KEY="s3cret", ACME_SMS_KEY="k-123")
    assert s.database_url == "postgresql://hub@db/hub"
    assert s.secret_key == "s3cret"
    # Notifier settings keep their references, like connections': they are checked here (an
    # unset variable stops the start, below) and resolved when the notifier is built.
    assert s.tenant("acme").notifiers[0]["settings"] == {
        "api_key": {"$env": "ACME_SMS_KEY"},
        "sender": "Acme",
    }


def test_env_reference_to_a_missing_variable(config_dir: Path) -> None:
    path = config_dir / "hub.toml"
    path.write_text('database_url = {"$env" = "HUB_DB"}\n')
    error = error_for(config_dir)
    assert (error.file, error.key) == (str(path), "database_url")
    assert error.problem == "environment variable HUB_DB is not set"


def test_env_reference_missing_in_tenant_file(config_dir: Path) -> None:
    path = config_dir / "tenants" / "acme.toml"
    path.write_text(
        '[[notifiers]]\nname = "sms"\nplugin = "sms"\n'
        '[notifiers.settings]\napi_key = {"$env" = "ACME_SMS_KEY"}\n'
    )
    error = error_for(config_dir)
    assert error.file == str(path)
    assert error.key == "notifiers[0].settings.api_key"
    assert "ACME_SMS_KEY" in error.problem


def test_env_reference_with_a_bad_name_is_refused(config_dir: Path) -> None:
    (config_dir / "hub.toml").write_text('secret_key = {"$env" = "NOT A NAME"}\n')
    assert error_for(config_dir).key == "secret_key"


# --- the command line ------------------------------------------------------------------------


def run_orderhub(config_dir: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERHUB_")} | {
        "ORDERHUB_CONFIG_DIR": str(config_dir),
        "ORDERHUB_DATA_DIR": str(tmp_path / "var"),
        "ORDERHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
    }
    orderhub = Path(sys.executable).with_name("orderhub")
    return subprocess.run(
        [str(orderhub), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_cli_with_bad_hub_toml_exits_with_the_file_named(config_dir: Path, tmp_path: Path) -> None:
    path = config_dir / "hub.toml"
    path.write_text('[server]\nport = "eighty"\n')
    result = run_orderhub(config_dir, tmp_path, "db", "current")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"configuration error: {path}: server.port: must be an integer"
    )
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_cli_with_bad_tenant_file_exits_with_the_file_named(
    config_dir: Path, tmp_path: Path
) -> None:
    path = config_dir / "tenants" / "acme.toml"
    path.write_text("[[notifiers]]\nname = 'ops'\n")
    result = run_orderhub(config_dir, tmp_path, "db", "current")
    assert result.returncode == 2
    assert f"configuration error: {path}: notifiers.0:" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_with_good_config_runs(config_dir: Path, tmp_path: Path) -> None:
    (config_dir / "hub.toml").write_text('log_level = "WARNING"\n')
    result = run_orderhub(config_dir, tmp_path, "db", "current")
    assert result.returncode == 0, result.stderr
    assert "base" in result.stdout  # a new, empty database
