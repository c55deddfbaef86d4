"""``rempart identity``: bootstrap accounts that nobody else can invite, and contain an account."""

from __future__ import annotations

import uuid

import typer

from rempart.config import get_settings
from rempart.db import utcnow
from rempart.errors import RempartError
from rempart.identity.accounts import invite_account, suspend_account
from rempart.identity.permissions import Role
from rempart.runtime import Runtime

identity_app = typer.Typer(no_args_is_help=True, help="Accounts: bootstrap invitations, containment.")


def _invite(login: str, role: Role) -> None:
    settings = get_settings()
    runtime = Runtime.build(settings)
    try:
        with runtime.sessions.begin() as session:
            invitation = invite_account(session=session, login=login, roles={role}, now=utcnow(), invited_by=None)
            url = invitation.url(settings.public_origin)
    except RempartError as exc:
        typer.secho(f"error: {exc.detail}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    finally:
        runtime.close()
    # The link is a one-time credential: it goes to the terminal of whoever runs this, once.
    typer.echo(f"one-time enrolment link for {login} (valid 7 days): {url}")


@identity_app.command("invite-platform-admin")
def invite_platform_admin(login: str) -> None:
    """Invite a platform admin (the first one can only come from here)."""
    _invite(login, Role.PLATFORM_ADMIN)


@identity_app.command("invite-security-operator")
def invite_security_operator(login: str) -> None:
    """Invite a security operator."""
    _invite(login, Role.SECURITY_OPERATOR)


@identity_app.command("suspend")
def suspend(account_id: str, reason: str = typer.Option("manual", help="short reason, letters and _")) -> None:
    """Suspend an account and end all its sessions now."""
    runtime = Runtime.build(get_settings())
    try:
        with runtime.sessions.begin() as session:
            suspend_account(session=session, account_id=uuid.UUID(account_id), now=utcnow(), reason=reason)
    except (RempartError, ValueError) as exc:
        typer.secho(f"error: {getattr(exc, 'detail', 'not an account id')}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    finally:
        runtime.close()
    typer.echo(f"account {account_id} suspended; its sessions are revoked")
