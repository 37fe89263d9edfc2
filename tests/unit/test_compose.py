"""docker-compose.yml, the Dockerfile and the helper scripts agree with the code.

Docker cannot run here, so these tests read the files: every container that
runs Sieve must ask for a command the CLI has, the deployment must keep
confidential data off the internet and queued work across restarts, and the
scripts that CI and the README name must exist and parse.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DATA_VOLUME = "sieve-data"
DATA_DIR = "/data"
SCRIPTS = ["scripts/setup", "scripts/services", "scripts/test", "scripts/demo", ".ci/run"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def app_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services built from this repository's Dockerfile, i.e. running `sieve`."""
    return {name: service for name, service in services.items() if "build" in service}


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def resolve_cli_command(words: list[str]) -> click.Command:
    """Walk `jobs.cli.cli` the way click would for `sieve WORDS...`.

    Fails the test when a word names no command, when the words stop at a group
    (which would only print its help), or when the leaf rejects the remaining
    arguments. Nothing is invoked: the leaf's arguments are only parsed.
    """
    from jobs.cli import cli  # here, not at import: the other tests need no CLI

    command: click.Command = cli
    context = click.Context(cli, info_name="sieve")
    remaining = list(words)
    while isinstance(command, click.Group):
        assert remaining, f"`sieve {' '.join(words)}` stops at group {command.name!r}"
        word = remaining.pop(0)
        assert not word.startswith("-"), f"put options after the subcommand: {words}"
        subcommand = command.get_command(context, word)
        assert subcommand is not None, (
            f"`sieve {' '.join(words)}`: {command.name!r} has no command {word!r} "
            f"(has: {sorted(command.list_commands(context))})"
        )
        command = subcommand
        context = click.Context(command, info_name=word, parent=context)
    command.make_context(context.info_name, remaining, parent=context.parent)
    return command


def mounts_data_volume(service: dict[str, Any]) -> bool:
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            target = rest.partition(":")[0]
        else:
            source, target = volume.get("source"), volume.get("target")
        if source == DATA_VOLUME and target == DATA_DIR:
            return True
    return False


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(entry.partition("=")[::2] for entry in env)
    return {key: str(value) for key, value in env.items()}


def test_compose_has_the_expected_services(services, app_services):
    assert {"postgres", "redis", "migrate"} <= services.keys()
    assert "migrate" in app_services
    assert "postgres" not in app_services and "redis" not in app_services


def test_every_sieve_service_runs_a_command_the_cli_has(app_services):
    for name, service in app_services.items():
        # The image's ENTRYPOINT is `sieve`; an override would bypass the CLI.
        assert "entrypoint" not in service, f"{name} overrides the sieve entrypoint"
        words = command_words(service)
        assert words, f"{name} has no command"
        resolve_cli_command(words)


def test_dockerfile_runs_the_sieve_cli_with_a_real_default_command():
    instructions: dict[str, list[str]] = {}
    for line in DOCKERFILE.read_text().splitlines():
        keyword, _, rest = line.strip().partition(" ")
        if keyword in ("ENTRYPOINT", "CMD"):
            instructions[keyword] = json.loads(rest)  # exec form: signals reach sieve
    assert instructions["ENTRYPOINT"] == ["sieve"]
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["sieve"] == "jobs.cli:main"
    resolve_cli_command(instructions["CMD"])


def test_all_services_sit_on_internal_networks_only(compose, services):
    # Confidential documents: no container may reach the internet.
    networks = compose.get("networks", {})
    assert networks, "declare an internal network; the default one has a gateway"
    for name, network in networks.items():
        assert (network or {}).get("internal") is True, f"network {name} is not internal"
    for name, service in services.items():
        assert "network_mode" not in service, f"{name} sets network_mode"
        joined = service.get("networks")
        assert joined, f"{name} would join the default (non-internal) network"
        assert set(joined) <= networks.keys(), f"{name} joins an undeclared network"
        assert not service.get("ports"), f"{name} publishes ports"


def test_redis_keeps_queued_work_across_restarts(services):
    redis = services["redis"]
    words = command_words(redis)
    options = dict(zip(words[1::2], words[2::2], strict=False))
    assert words[0] == "redis-server"
    assert options.get("--appendonly") == "yes"
    assert options.get("--appendfsync") == "everysec"
    assert options.get("--maxmemory-policy") == "noeviction"
    # The append-only file must live on a volume, or a new container starts empty.
    assert any(str(volume).endswith(":/data") for volume in redis.get("volumes", []))


def test_workers_start_after_migrations_complete(app_services):
    workers = {
        name: service
        for name, service in app_services.items()
        if command_words(service)[:1] == ["worker"]
    }
    assert workers, "no service runs `sieve worker`"
    replicas = sum(
        int(service.get("deploy", {}).get("replicas", 1)) for service in workers.values()
    )
    assert replicas >= 2
    for name, service in workers.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"
        assert depends_on["redis"]["condition"] == "service_healthy"


def test_dependency_conditions_can_be_met(services):
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        if not isinstance(depends_on, dict):
            continue
        for target, spec in depends_on.items():
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}'s health"
            if condition == "service_completed_successfully":
                # A one-shot job that restarts never counts as completed.
                assert services[target].get("restart", "no") == "no"


def test_migrate_waits_for_a_healthy_database(services):
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_sieve_service_shares_the_data_volume_and_settings(compose, app_services):
    assert DATA_VOLUME in compose.get("volumes", {})
    for name, service in app_services.items():
        assert mounts_data_volume(service), f"{name} does not mount {DATA_VOLUME} at {DATA_DIR}"
        env = environment(service)
        assert env["SIEVE_DATA_DIR"] == DATA_DIR
        assert env["SIEVE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["SIEVE_BROKER_URL"].startswith("redis://redis:")


@pytest.mark.parametrize("script", SCRIPTS)
def test_helper_script_is_executable_bash(script):
    path = REPO_ROOT / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_ci_runs_the_documented_test_command():
    lines = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    code = [line.split("#", 1)[0] for line in lines]
    assert any("scripts/test" in line for line in code)


def test_readme_names_the_demo_and_test_scripts():
    readme = REPO_ROOT / "README.md"
    if not readme.exists():
        pytest.skip("no README.md yet")
    text = readme.read_text()
    assert "scripts/demo" in text
    assert "scripts/test" in text
