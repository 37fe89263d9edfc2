"""``sieve users``, ``sieve tokens`` and ``sieve serve``: the console's accounts and server."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from db.models import ApiToken, JobGrant, User
from jobs import accounts, commands
from jobs.submit import submitter_identity

console = Console(stderr=True)


def _read_password() -> str:
    """Asked twice on a terminal; otherwise the first line of standard input."""
    if sys.stdin.isatty():
        password: str = click.prompt("password", hide_input=True, confirmation_prompt=True)
        return password
    return sys.stdin.readline().rstrip("\r\n")


@click.group("users")
def users_group() -> None:
    """Local accounts of the web console and the API."""


@users_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "reviewer", "auditor"]), required=True)
def add(name: str, role: str) -> None:
    """Create an account (the password is asked twice, or read from standard input)."""
    password = _read_password()
    with commands.transaction(commands.load_settings()) as session:
        accounts.add_user(session, name, role, password, submitter_identity())
    console.print(f"user {name} ({role}) created")


@users_group.command("list")
def list_users() -> None:
    """Every account with its role, state, tokens and grants."""
    engine, session_factory = commands.open_database(commands.load_settings())
    table = Table("user", "role", "state", "created (UTC)", "tokens", "jobs granted")
    with session_factory() as session:
        for user in session.scalars(select(User).order_by(User.name)):
            tokens = session.scalars(
                select(ApiToken.id).where(
                    ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)
                )
            ).all()
            jobs = session.scalars(
                select(JobGrant.job_id).where(JobGrant.user_id == user.id).order_by(JobGrant.job_id)
            ).all()
            table.add_row(
                user.name,
                user.role.value,
                "disabled" if user.disabled_at else "enabled",
                user.created_at.strftime("%Y-%m-%d %H:%M"),
                str(len(tokens)),
                ", ".join(str(job) for job in jobs),
            )
    engine.dispose()
    Console().print(table)


def _set_disabled(name: str, disabled: bool) -> None:
    with commands.transaction(commands.load_settings()) as session:
        changed = accounts.set_disabled(session, name, disabled, submitter_identity())
    state = "disabled" if disabled else "enabled"
    console.print(f"user {name} {state}" if changed else f"user {name} was already {state}")


@users_group.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Stop an account signing in or using its tokens; its sessions end now."""
    _set_disabled(name, True)


@users_group.command("enable")
@click.argument("name")
def enable(name: str) -> None:
    """Let a disabled account sign in again."""
    _set_disabled(name, False)


@users_group.command("reset-password")
@click.argument("name")
def reset_password(name: str) -> None:
    """Set a new password (asked twice, or read from standard input); sessions end."""
    password = _read_password()
    with commands.transaction(commands.load_settings()) as session:
        accounts.reset_password(session, name, password, submitter_identity())
    console.print(f"password of {name} reset")


@users_group.command("grant")
@click.argument("name")
@click.argument("job_id", type=int)
def grant(name: str, job_id: int) -> None:
    """Let reviewer NAME read job JOB_ID's documents and record decisions on them."""
    settings = commands.load_settings()
    with commands.job_session(settings, job_id) as session:
        added = accounts.grant_job(session, name, job_id, submitter_identity())
        session.commit()
    console.print(f"{name} may read job {job_id}" if added else f"{name} could already")


@users_group.command("revoke")
@click.argument("name")
@click.argument("job_id", type=int)
def revoke(name: str, job_id: int) -> None:
    """Take reviewer NAME's access to job JOB_ID away."""
    with commands.transaction(commands.load_settings()) as session:
        removed = accounts.revoke_grant(session, name, job_id, submitter_identity())
    console.print(f"{name} may no longer read job {job_id}" if removed else f"{name} had no grant")


@click.group("tokens")
def tokens_group() -> None:
    """Bearer tokens for the API."""


@tokens_group.command("create")
@click.argument("name")
@click.option("--label", default="cli", show_default=True, help="What the token is for.")
def create_token(name: str, label: str) -> None:
    """Make a token for user NAME; it is printed once, on the last line."""
    with commands.transaction(commands.load_settings()) as session:
        token = accounts.create_token(session, name, label, submitter_identity())
    console.print(f"token for {name} ({label}); it is shown only now:")
    click.echo(token)


@tokens_group.command("list")
@click.argument("name")
def list_tokens(name: str) -> None:
    """User NAME's tokens (never the tokens themselves: only their ids and labels)."""
    table = Table("id", "label", "created (UTC)", "state")
    with commands.transaction(commands.load_settings()) as session:
        for token in accounts.tokens_of(session, name):
            table.add_row(
                str(token.id),
                token.label,
                token.created_at.strftime("%Y-%m-%d %H:%M"),
                "revoked" if token.revoked_at else "live",
            )
    Console().print(table)


@tokens_group.command("revoke")
@click.argument("token_id", type=int)
def revoke_token(token_id: int) -> None:
    """Stop token TOKEN_ID working (see ``sieve tokens list``)."""
    with commands.transaction(commands.load_settings()) as session:
        revoked = accounts.revoke_token(session, token_id, submitter_identity())
    console.print(
        f"token {token_id} revoked" if revoked else f"token {token_id} was revoked already"
    )


def exposure_warning(host: str, tls: bool) -> str | None:
    """What ``sieve serve`` warns of before serving on ``host`` (None: nothing).

    Off loopback without TLS, passwords, session cookies and documents cross
    the network in clear.
    """
    from jobs.web.app import is_loopback

    if is_loopback(host) or tls:
        return None
    return (
        "serving on a non-loopback address without TLS: passwords and documents cross the "
        "network in clear (set SIEVE_WEB__TLS_CERTIFICATE and SIEVE_WEB__TLS_KEY)"
    )


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow binding to an address other than loopback (others can then reach it).",
)
def serve(host: str, port: int, allow_remote: bool) -> None:
    """Serve the web console and the REST API (under /api)."""
    import uvicorn

    from jobs.web.app import create_app, is_loopback

    settings = commands.load_settings()
    if not is_loopback(host) and not allow_remote:
        raise click.UsageError(f"{host} is not a loopback address: add --allow-remote to bind it")
    tls = settings.web.tls_certificate is not None
    warning = exposure_warning(host, tls)
    if warning is not None:
        console.print(f"[yellow]warning:[/] {warning}")
    app = create_app(settings)
    console.print(f"Sieve console on {'https' if tls else 'http'}://{host}:{port}/")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        ssl_certfile=str(settings.web.tls_certificate) if tls else None,
        ssl_keyfile=str(settings.web.tls_key) if settings.web.tls_key else None,
        server_header=False,
        # Only a configured reverse proxy may say who the client is (X-Forwarded-For).
        proxy_headers=bool(settings.web.trusted_proxies),
        forwarded_allow_ips=",".join(settings.web.trusted_proxies) or None,
    )


CONSOLE_COMMANDS = (users_group, tokens_group, serve)
