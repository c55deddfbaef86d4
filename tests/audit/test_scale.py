"""Scale: monthly partitions on PostgreSQL, indexes for the two questions asked of the log, and a
database wall that keeps the application role from rewriting what it wrote."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from rempart.audit.keys import LocalSigningKeys
from rempart.audit.partitions import ensure_partitions, month_start, partition_name, partitions
from rempart.audit.queries import cursor_of, events_about_beneficiary, events_of_actors, events_of_insurer
from rempart.audit.sealing import seal_all
from rempart.audit.verify import verify_log
from rempart.db import make_engine, make_sessionmaker
from rempart.runtime import Runtime
from rempart.tenancy import DEFAULT_APP_ROLE, use_app_role
from tests.audit.conftest import INSURER, T0, pharmacy, record_events, seal


def _postgresql_only(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("partitions and roles are PostgreSQL features; SQLite keeps one plain table")


def test_sqlite_keeps_one_plain_table(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the SQLite half of the partitioning test")
    record_events(runtime, 2)
    with runtime.sessions.begin() as session:
        assert partitions(session) == []
        assert ensure_partitions(session, start=T0, months=3) == []
        kinds = session.execute(text("SELECT type FROM sqlite_master WHERE name LIKE 'access_events%'")).scalars()
        assert set(kinds) == {"table"}


def test_events_go_to_their_month_and_new_months_are_created_ahead(runtime: Runtime) -> None:
    _postgresql_only(runtime)
    this_month = month_start(datetime.now(UTC).date())
    with runtime.sessions.begin() as session:
        names = partitions(session)
    assert "access_events_default" in names
    assert {partition_name(month_start(this_month, d)) for d in range(12)} <= set(names)

    far = datetime.combine(month_start(this_month, 20), datetime.min.time(), tzinfo=UTC) + timedelta(days=3)
    record_events(runtime, 1, start=far)
    with runtime.sessions.begin() as session:
        # No partition that far ahead yet: the default partition catches the row...
        assert session.scalar(text("SELECT tableoid::regclass::text FROM access_events")) == "access_events_default"
        # ... and a month whose rows sit in the default partition is left for an operator.
        assert ensure_partitions(session, start=far, months=0) == []
        assert ensure_partitions(session, start=far + timedelta(days=31), months=1) == [
            partition_name(month_start(far.date(), 1)),
            partition_name(month_start(far.date(), 2)),
        ]
    now = datetime.now(UTC)
    record_events(runtime, 1, start=now)
    with runtime.sessions() as session:
        placed = session.scalar(
            text("SELECT tableoid::regclass::text FROM access_events WHERE occurred_at >= :t"), {"t": now}
        )
    assert placed == partition_name(month_start(now.date()))


def _plan(runtime: Runtime, query: str, params: dict[str, object]) -> str:
    with runtime.engine.begin() as conn:
        if runtime.engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            rows = conn.execute(text("EXPLAIN " + query), params).all()
        else:
            rows = conn.execute(text("EXPLAIN QUERY PLAN " + query), params).all()
    return "\n".join(str(r[-1]) for r in rows)


# The questions as ``rempart.audit.queries`` asks them of sealed events (on SQLite the query indexes
# hold sealed events only); the events waiting for the sealer are found through its queue.
SEALED = " AND seal_seq IS NOT NULL"


@pytest.mark.parametrize(
    ("index", "query"),
    [
        (
            "ix_access_events_actor_time",
            "SELECT * FROM access_events WHERE actor_id = :id AND occurred_at >= :t AND occurred_at < :u" + SEALED,
        ),
        (
            "ix_access_events_practice_time",
            "SELECT * FROM access_events WHERE practice_id = :id AND occurred_at >= :t AND occurred_at < :u" + SEALED,
        ),
        ("ix_access_events_beneficiary_time", "SELECT * FROM access_events WHERE beneficiary_id = :id" + SEALED),
        (
            "ix_access_events_insurer_time",
            "SELECT * FROM access_events WHERE insurer_id = :id AND occurred_at >= :t" + SEALED,
        ),
        ("ix_access_events_unsealed", "SELECT id FROM access_events WHERE seal_seq IS NULL ORDER BY id"),
        ("ix_access_events_unsealed", "SELECT * FROM access_events WHERE beneficiary_id = :id AND seal_seq IS NULL"),
    ],
)
def test_the_questions_asked_of_the_log_have_an_index(
    runtime: Runtime, signer: LocalSigningKeys, index: str, query: str
) -> None:
    record_events(runtime, 20)
    if SEALED in query:
        # The query indexes hold sealed events only: with none sealed every one of them is empty, and
        # PostgreSQL's choice between empty indexes is a tie it breaks its own way. Sealed and
        # analysed, the log gives the planner the figures it decides on.
        seal(runtime, signer)
        if runtime.engine.dialect.name == "postgresql":
            with runtime.engine.begin() as conn:
                conn.execute(text("ANALYZE access_events"))
    some_id: object = uuid.uuid4() if runtime.engine.dialect.name == "postgresql" else uuid.uuid4().hex
    plan = _plan(runtime, query, {"id": some_id, "t": T0, "u": T0 + timedelta(hours=1)})
    names = {index}
    if runtime.engine.dialect.name == "postgresql":
        # Each partition has its own copy of the index, named after the partition.
        with runtime.engine.connect() as conn:
            names |= set(
                conn.execute(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = CAST(:index AS regclass)"
                    ),
                    {"index": index},
                ).scalars()
            )
    assert any(name in plan for name in names), plan


def test_actor_and_beneficiary_queries_page_through_the_log(runtime: Runtime) -> None:
    actor = pharmacy()
    someone = uuid.uuid4()
    record_events(runtime, 9, actor=actor, beneficiaries=[someone])
    record_events(runtime, 4)  # another practice, other people
    with runtime.sessions() as session:
        mine = events_of_actors(session, actor_ids=[actor.id], since=T0, until=T0 + timedelta(seconds=5))  # type: ignore[list-item]
        by_practice = events_of_actors(
            session,
            practice_ids=[actor.practice_id],  # type: ignore[list-item]
            since=T0,
            until=T0 + timedelta(hours=1),
        )
        first_page = events_about_beneficiary(session, insurer_id=INSURER, beneficiary_id=someone, limit=4)
        second_page = events_about_beneficiary(
            session, insurer_id=INSURER, beneficiary_id=someone, limit=4, before=cursor_of(first_page[-1])
        )
    assert [e.occurred_at for e in mine] == [T0 + timedelta(seconds=i) for i in range(5)]
    assert len(by_practice) == 9
    # Every third check was a miss (no beneficiary): six name this person.
    assert len(first_page) == 4
    assert len(second_page) == 2
    assert first_page[0].occurred_at > second_page[-1].occurred_at


def test_sealed_and_waiting_events_answer_together_in_order(runtime: Runtime, signer: LocalSigningKeys) -> None:
    """Sealed events are found through the query indexes, those still waiting for the sealer through
    its queue; each question gets both, in time order, and pages run across the two."""
    actor = pharmacy()
    someone = uuid.uuid4()
    record_events(runtime, 6, actor=actor, beneficiaries=[someone])
    seal(runtime, signer)
    record_events(runtime, 6, start=T0 + timedelta(seconds=6), actor=actor, beneficiaries=[someone])
    with runtime.sessions() as session:
        by_actor = events_of_actors(session, actor_ids=[actor.id], since=T0, until=T0 + timedelta(hours=1))  # type: ignore[list-item]
        pages = [events_about_beneficiary(session, insurer_id=INSURER, beneficiary_id=someone, limit=3)]
        while pages[-1]:
            before = cursor_of(pages[-1][-1])
            pages.append(
                events_about_beneficiary(session, insurer_id=INSURER, beneficiary_id=someone, limit=3, before=before)
            )
        insurer = events_of_insurer(session, insurer_id=INSURER, limit=5)

    assert [e.occurred_at for e in by_actor] == [T0 + timedelta(seconds=i) for i in range(12)]
    assert [e.seal_seq is None for e in by_actor] == [False] * 6 + [True] * 6
    # Every third check of each run was a miss (no beneficiary): seconds 2, 5, 8 and 11.
    named = [T0 + timedelta(seconds=i) for i in (10, 9, 7, 6, 4, 3, 1, 0)]
    assert [[e.occurred_at for e in page] for page in pages] == [named[:3], named[3:6], named[6:], []]
    assert [e.occurred_at for e in insurer] == [T0 + timedelta(seconds=i) for i in range(11, 6, -1)]


def test_the_application_role_can_add_and_seal_but_never_rewrite(runtime: Runtime, signer: LocalSigningKeys) -> None:
    _postgresql_only(runtime)
    record_events(runtime, 3, start=datetime.now(UTC) - timedelta(seconds=10))
    app_engine = make_engine(runtime.settings.database_url)
    use_app_role(app_engine, DEFAULT_APP_ROLE)
    try:
        as_app = make_sessionmaker(app_engine)
        # The sealer works under the app role (partition upkeep is left to the owner's sealer).
        assert seal_all(as_app, signer=signer) == [1]
        for statement in (
            "UPDATE access_events SET reference = 'nothing to see'",
            "DELETE FROM access_events",
            f"DELETE FROM {partition_name(month_start(datetime.now(UTC).date()))}",
            "UPDATE audit_checkpoints SET count = 1",
            "DELETE FROM audit_checkpoints",
        ):
            with pytest.raises(ProgrammingError, match="permission denied"), as_app.begin() as session:
                session.execute(text(statement))
    finally:
        app_engine.dispose()
    assert verify_log(runtime.engine, keys=signer.public_keys()).ok
