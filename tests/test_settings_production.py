"""Production refuses a SECRET_KEY anyone could know, and the Compose file ships no secret.

Settings come from the environment (monkeypatch.setenv), read by the real loader."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.cli.main import main
from app.settings import (
    DEVELOPMENT_SECRET_KEY,
    GENERATE_SECRET,
    SettingRejected,
    load_settings,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_tables() -> Iterator[None]:
    """Nothing here touches the database: skip the suite's database setup and cleanup."""
    yield


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "APP_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECKON_ENV", "production")
    return monkeypatch


def _rejected(monkeypatch: pytest.MonkeyPatch, key: str) -> SettingRejected:
    monkeypatch.setenv("SECRET_KEY", key)
    with pytest.raises(SettingRejected) as rejected:
        load_settings()
    assert rejected.value.variable == "SECRET_KEY"
    message = str(rejected.value)
    assert message.startswith("SECRET_KEY ")
    assert GENERATE_SECRET in message
    assert key not in message, "the error must not print the key"
    return rejected.value


def test_production_refuses_to_start_without_a_secret_key(production: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingRejected, match="SECRET_KEY must be set when RECKON_ENV=production"):
        load_settings()


# Ids name each case: random keys would make node ids differ between pytest-xdist workers.
@pytest.mark.parametrize(
    ("key", "problem"),
    [
        pytest.param(
            secrets.token_urlsafe(16),
            "is 22 bytes; RECKON_ENV=production needs at least 32",
            id="short",
        ),
        pytest.param("change-me-in-production", "is 23 bytes", id="old-compose-default"),
        pytest.param(
            DEVELOPMENT_SECRET_KEY, "published in the Reckon repository", id="development-key"
        ),
        pytest.param(
            "a-very-long-application-secret-key",
            "published in the Reckon repository",
            id="test-key",
        ),
        pytest.param(
            DEVELOPMENT_SECRET_KEY.upper() + "-2",
            "published in the Reckon repository",
            id="development-key-disguised",
        ),
        pytest.param(
            "please-change-me-" + secrets.token_urlsafe(24), "placeholder", id="placeholder"
        ),
        pytest.param("ab" * 24, "only 2 distinct characters", id="low-variety"),
        pytest.param("0123456789abcdefghij" * 2, "repeats a short pattern", id="repeated"),
        pytest.param("Xy7#kP2@qL9!" * 3, "repeats a short pattern", id="repeated-symbols"),
    ],
)
def test_production_rejects_a_guessable_secret_key_naming_the_variable(
    production: pytest.MonkeyPatch, key: str, problem: str
) -> None:
    assert problem in str(_rejected(production, key))


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(secrets.token_urlsafe(48), id="token_urlsafe"),
        pytest.param(secrets.token_hex(32), id="token_hex"),
    ],
)
def test_production_accepts_a_generated_secret_key(
    production: pytest.MonkeyPatch, key: str
) -> None:
    production.setenv("SECRET_KEY", key)
    settings = load_settings()
    assert settings.environment == "production"
    assert settings.secret_key == key


def test_the_check_follows_the_environment_given_to_the_loader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RECKON_ENV", raising=False)
    monkeypatch.setenv("SECRET_KEY", "short")
    assert load_settings().secret_key == "short"  # development: any key will do
    with pytest.raises(SettingRejected, match="SECRET_KEY is 5 bytes"):
        load_settings(environment="production")
    monkeypatch.delenv("SECRET_KEY")
    assert load_settings().secret_key == DEVELOPMENT_SECRET_KEY


def test_reckon_exits_with_the_message_instead_of_a_traceback(
    production: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    production.setenv("SECRET_KEY", "change-me-in-production")
    assert main(["migrate"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("reckon: SECRET_KEY is 23 bytes")
    assert "Traceback" not in error


# Assignments of a quoted literal to anything named like a secret, and arguments of the
# functions that take the application secret.
SECRET_LITERALS = [
    re.compile(r"(?i)[a-z_]*secret[a-z_]*[\"']?[ \t]*[:=][ \t]*[\"']([^\"'\n]+)[\"']"),
    re.compile(r"(?i)(?:SecretBox|build_jwt_auth)\(\s*[\"']([^\"'\n]+)[\"']"),
]
# Unquoted values in configuration files: `SECRET_KEY: value`, `SECRET_KEY=value`.
CONFIG_SECRET = re.compile(r"(?i)\bSECRET_KEY[ \t]*[:=][ \t]*([^\s\"'#]+)")
CONFIG_FILES = (".yaml", ".yml", ".env", ".example", ".sh", ".md", ".toml", ".ini", "Dockerfile")
# Providers' published payloads (Stripe's fixtures carry client_secret fields): data, not keys.
NOT_SCANNED = ("tests/fixtures/",)


def _tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        if os.environ.get("CI") == "true":  # CI runs on a clone: the scan must happen there
            pytest.fail("CI must run on a git checkout: no list of tracked files to scan")
        pytest.skip("not a git checkout: no list of tracked files to scan")  # allowed: see CI
    names = [name for name in listed.decode().split("\0") if name]
    return [ROOT / name for name in names if not name.startswith(NOT_SCANNED)]


def _published_secrets() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in _tracked_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        patterns = list(SECRET_LITERALS)
        if path.name.endswith(CONFIG_FILES):
            patterns.append(CONFIG_SECRET)
        for pattern in patterns:
            for match in pattern.finditer(text):
                value = match.group(1)
                if value and not value.startswith("$"):
                    found.setdefault(value, str(path.relative_to(ROOT)))
    return found


def test_no_secret_published_in_the_repository_passes_as_a_production_key(
    production: pytest.MonkeyPatch,
) -> None:
    published = _published_secrets()
    assert DEVELOPMENT_SECRET_KEY in published, "the scan no longer finds what it looks for"
    accepted = {}
    for value, where in published.items():
        production.setenv("SECRET_KEY", value)
        try:
            load_settings()
        except SettingRejected:
            continue
        accepted[value] = where
    assert accepted == {}, "add these to PUBLISHED_SECRETS in app/settings.py"


# Compose ------------------------------------------------------------------------------------

INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[?-])?(?P<arg>[^}]*)\}"
)


class MissingVariable(Exception):
    pass


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's rules: ${X:?message} fails if X is unset or empty, ${X?message} if unset;
    ${X:-default} and ${X-default} fall back; $$ is a dollar."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and not current)
        if op in (":?", "?") and missing:
            raise MissingVariable(f"required variable {name} is missing a value: {arg}")
        if op in (":-", "-") and missing:
            return arg
        return current or ""

    return INTERPOLATION.sub(substitute, value)


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def _environment(service: str, env: dict[str, str]) -> dict[str, str]:
    raw = _compose()["services"][service].get("environment", {})
    return {name: _interpolate(str(value), env) for name, value in raw.items()}


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _generated_env() -> dict[str, str]:
    env = {name: secrets.token_urlsafe(48) for name in _env_example()}
    env["PUBLIC_BASE_URL"] = "https://book.example.org"
    return env


REQUIRED = {"SECRET_KEY", "POSTGRES_PASSWORD", "RECKON_APP_PASSWORD", "PUBLIC_BASE_URL"}


def test_compose_runs_the_app_in_production_mode() -> None:
    services = _compose()["services"]
    built = [name for name, service in services.items() if "build" in service]
    assert set(built) == {"migrate", "api", "worker"}
    for name in built:
        assert services[name]["environment"]["RECKON_ENV"] == "production", name


def test_compose_refuses_to_start_with_the_example_env_naming_each_missing_secret() -> None:
    example = _env_example()
    assert set(example) >= REQUIRED
    assert all(example[name] == "" for name in REQUIRED), "the example must not work as is"
    for service in ("postgres", "migrate", "api", "worker"):
        with pytest.raises(MissingVariable) as missing:
            _environment(service, example)
        assert re.search(r"variable (\w+) is missing a value: set \1 in \.env", str(missing.value))
    for name in REQUIRED:
        with pytest.raises(MissingVariable, match=f"variable {name} is missing"):
            for service in _compose()["services"]:
                _environment(service, {**_generated_env(), name: ""})


def test_compose_holds_no_literal_secret_and_keeps_the_owner_password_from_the_app() -> None:
    for name, service in _compose()["services"].items():
        for variable, value in service.get("environment", {}).items():
            if re.search(r"SECRET|PASSWORD|TOKEN|_KEY$", variable):
                assert str(value).startswith("${"), f"{name}.{variable} is written in the file"
    for service in ("api", "worker"):
        raw = _compose()["services"][service]["environment"]
        assert "DATABASE_URL" not in raw
        assert "POSTGRES_PASSWORD" not in str(raw)
    assert _compose()["services"]["api"]["ports"] == ["127.0.0.1:8000:8000"]


def test_compose_gives_the_app_role_the_password_its_url_uses(
    production: pytest.MonkeyPatch,
) -> None:
    env = _generated_env()
    migrate = _environment("migrate", env)
    assert migrate["RECKON_APP_PASSWORD"] == env["RECKON_APP_PASSWORD"]
    assert f"//postgres:{env['POSTGRES_PASSWORD']}@postgres:5432/" in migrate["DATABASE_URL"]
    for service in ("api", "worker"):
        for name, value in _environment(service, env).items():
            production.setenv(name, value)
        settings = load_settings()  # what the container's settings loader makes of it
        assert settings.environment == "production"
        assert settings.runtime_database_url == (
            f"postgresql+psycopg://reckon_app:{env['RECKON_APP_PASSWORD']}@postgres:5432/reckon"
        )
