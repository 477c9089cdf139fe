"""Operator commands: ``flask seed`` and ``flask users create``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from api.extensions import settings
from models.db import session as db
from models.errors import DomainError
from models.rbac import ROLES
from models.seed import seed_world
from models.users import create_user

users_cli = AppGroup("users", help="Manage accounts.")


@click.command("seed")
def seed_command() -> None:
    """Build the development world (idempotent: a second run changes nothing)."""
    with_accounts = not settings().is_production
    report = seed_world(with_accounts=with_accounts)
    db.commit()
    click.echo(f"seed: {report.rows_changed} row(s) changed")
    if not with_accounts:
        click.echo("production: roles synced; create accounts with `flask users create`.")
        return
    click.echo("development accounts (login with username or email):")
    for acct in (*report.created, *report.existing):
        state = "created" if acct in report.created else "exists "
        click.echo(
            f"  {state} {acct.username:<10} {acct.email:<24} "
            f"password={acct.password:<24} roles={','.join(acct.roles)}"
        )


@users_cli.command("create")
@click.argument("email")
@click.argument("username")
@click.option("--password", required=True, help="At least 10 characters.")
@click.option(
    "--role", "roles", multiple=True, type=click.Choice(sorted(ROLES)), help="Repeatable."
)
def create_user_command(email: str, username: str, password: str, roles: tuple[str, ...]) -> None:
    """Create an account (role `user` unless --role is given)."""
    if not 10 <= len(password) <= 128:
        raise click.BadParameter("use 10-128 characters", param_hint="--password")
    try:
        user = create_user(email, username, password, roles or ("user",))
        db.commit()
    except DomainError as exc:
        db.rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(
        f"created {user.username} <{user.email}> id={user.id} roles={','.join(user.role_names)}"
    )


def register(app: Flask) -> None:
    """Attach the commands to ``app.cli``."""
    app.cli.add_command(seed_command)
    app.cli.add_command(users_cli)
