"""``rempart incident open|scope|report|export``: the breach response from the platform's machines
(an operator's shell), the same services as the security console's API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from rempart.cli_refusals import fail, open_runtime, refusals

incident_app = typer.Typer(no_args_is_help=True, help="Breach response: open, scope, report, export.")


def _console() -> Console:
    return Console(highlight=False)  # made per command, so that it measures the terminal it prints to


def _now() -> datetime:
    return datetime.now(UTC)


def _when(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise fail(
            f"{what}: write a date and time as 2027-03-01T09:30 (ISO 8601; UTC unless an offset is given)", 2
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _uuids(values: list[str], what: str) -> frozenset[uuid.UUID]:
    try:
        return frozenset(uuid.UUID(v) for v in values)
    except ValueError:
        raise fail(f"{what}: not an id (a UUID)", 2) from None


def _incident_id(session: object, reference: str) -> uuid.UUID:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from rempart.incidents.models import Incident

    assert isinstance(session, Session)
    found = session.scalar(select(Incident.id).where(Incident.reference == reference))
    if found is None:
        try:
            found = session.scalar(select(Incident.id).where(Incident.id == uuid.UUID(reference)))
        except ValueError:
            found = None
    if found is None:
        raise fail(f"no incident {reference}")
    return found


@incident_app.command("open")
def open_incident(  # noqa: PLR0917  (each Typer option is a parameter)
    title: str = typer.Option(..., "--title", help="What happened, in a line"),
    nature: list[str] = typer.Option(..., "--nature", help="confidentiality, integrity or availability (repeatable)"),
    contact: str = typer.Option(..., "--contact", help="The processor's contact point: name, e-mail, phone"),
    description: str = typer.Option("", "--description"),
    detected_at: str | None = typer.Option(None, "--detected-at", help="Default: now (or the alert's time)"),
    aware_at: str | None = typer.Option(None, "--aware-at", help="The 72-hour clock runs from here (default: now)"),
    alert: str | None = typer.Option(None, "--alert", help="Open it from this alert (its id)"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
) -> None:
    """Open an incident; prints its reference."""
    from rempart.incidents.service import do_open_incident

    alert_id = next(iter(_uuids([alert], "--alert"))) if alert else None
    runtime = open_runtime(db)
    try:
        with refusals(), runtime.sessions() as session:
            incident = do_open_incident(
                session,
                title=title,
                nature=nature,
                contact=contact,
                description=description,
                detected_at=_when(detected_at, "--detected-at"),
                aware_at=_when(aware_at, "--aware-at"),
                alert_id=alert_id,
                operator_id=None,
                now=_now(),
            )
            typer.echo(
                f"{incident.reference} opened ({incident.id}); notify by {(incident.aware_at.isoformat())} + 72 h"
            )
    finally:
        runtime.close()


@incident_app.command("scope")
def scope(  # noqa: PLR0917  (each Typer option is a parameter)
    reference: str = typer.Argument(..., help="The incident (INC-2027-0001 or its id)"),
    since: str = typer.Option(..., "--since", help="Start of the window (ISO 8601)"),
    until: str | None = typer.Option(None, "--until", help="End of the window (default: now)"),
    actor: list[str] = typer.Option([], "--actor", help="A compromised account or API client id (repeatable)"),
    practice: list[str] = typer.Option([], "--practice", help="A compromised practice id (repeatable)"),
    professional: list[str] = typer.Option([], "--professional", help="A professional id (repeatable)"),
    label: str = typer.Option("", "--label"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
) -> None:
    """Widen the scope with compromised actors over a window, then compute the facts from the access log."""
    console = _console()
    from rempart.incidents.facts import ScopeSet
    from rempart.incidents.logcheck import log_status
    from rempart.incidents.service import access_incident, do_add_scope, do_compute_facts, scope_sets

    now = _now()
    start = _when(since, "--since")
    assert start is not None
    try:
        scope_set = ScopeSet(
            since=start,
            until=_when(until, "--until") or now,
            actor_ids=_uuids(actor, "--actor"),
            practice_ids=_uuids(practice, "--practice"),
            professional_ids=_uuids(professional, "--professional"),
            label=label,
        )
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    runtime = open_runtime(db)
    try:
        with refusals(), runtime.sessions() as session:
            incident_id = _incident_id(session, reference)
            do_add_scope(session, incident_id=incident_id, scope=scope_set, operator_id=None, now=now)
            sets = scope_sets(session, access_incident(session, incident_id))
            with console.status("checking the access log over the windows…"):
                log = log_status(runtime.engine, keys=runtime.signing_keys.public_keys(), sets=sets, now=now)
            with console.status("computing who was affected…"):
                facts = do_compute_facts(session, incident_id=incident_id, operator_id=None, now=now, log=log)
    finally:
        runtime.close()
    table = Table("insurer", "people disclosed", "records", "only tried", title=f"{reference}: facts")
    for found in facts.insurers:
        table.add_row(
            f"{found.amc_number} {found.insurer_name}", str(found.people), str(found.records), str(len(found.attempted))
        )
    console.print(table)
    console.print(
        f"{facts.events_examined} events examined; access log "
        + ("verified" if log.verified else f"FAILS: {log.problem}")
    )


@incident_app.command("report")
def report(
    reference: str = typer.Argument(..., help="The incident (INC-2027-0001 or its id)"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
) -> None:
    """The incident's clock per insurer, what is still missing, and its timeline."""
    console = _console()
    from rempart.incidents.clock import checklist, do_raise_deadline_alerts
    from rempart.incidents.service import access_incident
    from rempart.incidents.timeline import timeline

    now = _now()
    runtime = open_runtime(db)
    try:
        with refusals(), runtime.sessions() as session:
            do_raise_deadline_alerts(session, now=now)
            incident = access_incident(session, _incident_id(session, reference))
            parts = checklist(session, incident, now=now)
            entries = timeline(session, incident)
            console.print(
                f"[bold]{incident.reference}[/] {incident.title} — {incident.status.value}, {incident.nature}"
            )
            table = Table("insurer", "people", "records", "clock")
            for part in parts:
                hours = part.clock.left.total_seconds() / 3600
                clock = f"{part.clock.stage}, {hours:.0f} h left" if hours >= 0 else f"late by {-hours:.0f} h"
                table.add_row(f"{part.amc_number} {part.insurer_name}", str(part.people), str(part.records), clock)
            console.print(table)
            for part in parts:  # whole sentences, never cut by a narrow terminal
                console.print(f"{part.amc_number}: still missing: {'; '.join(part.missing) or 'nothing'}")
            for entry in entries:
                console.print(f"{entry.at.isoformat(timespec='minutes')}  {entry.kind:<16} {entry.text}")
    finally:
        runtime.close()


@incident_app.command("export")
def export(
    reference: str = typer.Argument(..., help="The incident (INC-2027-0001 or its id)"),
    out: Path = typer.Option(..., "--out", help="Folder for one zip per insurer"),
    db: str = typer.Option("", help="Database URL (default: REMPART_DATABASE_URL)"),
) -> None:
    """Each insurer's bundle: notice, Art. 33 notification, Art. 34 assessment and letters (French and
    English, HTML and PDF), recipients, manifest with SHA-256; each export recorded."""
    console = _console()
    from rich.progress import Progress

    from rempart.audit.models import ActorKind, Channel
    from rempart.audit.service import Actor
    from rempart.incidents.clock import checklist
    from rempart.incidents.export import do_export_bundle
    from rempart.incidents.service import access_incident

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"cannot create the folder {out}: {exc.strerror}") from None
    now = _now()
    runtime = open_runtime(db)
    try:
        with refusals(), runtime.sessions() as session:
            incident = access_incident(session, _incident_id(session, reference))
            parts = checklist(session, incident, now=now)
            if not parts:
                raise fail(f"{reference} concerns no insurer yet: scope it first (rempart incident scope)")
            with Progress(console=Console(stderr=True)) as progress:
                task = progress.add_task("bundles", total=len(parts))
                for part in parts:
                    name, archive = do_export_bundle(
                        session, incident_id=incident.id, insurer_id=part.insurer_id, now=now,
                        actor=Actor(ActorKind.SYSTEM), channel=Channel.CLI,
                    )  # fmt: skip
                    (out / name).write_bytes(archive)
                    progress.advance(task)
                    console.print(f"{out / name}: {part.people} letters")
    finally:
        runtime.close()
