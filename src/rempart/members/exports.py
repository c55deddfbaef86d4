"""Bulk member exports under four eyes: one staff member asks (why, which members), a second one
approves or refuses, and only then may the requester download the file, once, within a day of the
approval (``EXPORT_VALID_FOR``); after that the export lapses and must be asked again.

Whoever asked never decides: checked here (``OwnExport``) and by the database's own constraint
(``second_person_decides``). Each decision is a conditional update, so of two approvers clicking
at once one wins and the other reads "already decided".

The download is one unit of work: the file is written, every beneficiary in it is recorded in the
access log (``MEMBER_EXPORT``, channel ``backoffice``, the export's id as reference), and the export
is marked downloaded; all of it commits before the first byte leaves, or nothing is sent (fail
closed). The state changes are recorded on the export row itself (who asked, who decided, when,
when downloaded, how many members), as for the payment runs' second approval, which writes no
security event either: security events are about an account's own sign-ins and keys.

Memory: contracts are read by pages of ``PAGE_CONTRACTS`` (keyset on the member number), each row
written straight to a ``SpooledTemporaryFile``; no list of decrypted rows is ever kept. The file
stays in memory up to ``SPOOL_IN_MEMORY`` bytes (about 100,000 members) and spills to an unlinked
temporary file beyond: the temporary directory of an app process must then be on encrypted or
memory-backed storage, as it holds the decrypted file until the response is sent.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from tempfile import SpooledTemporaryFile
from typing import IO

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rempart.audit.disclosures import DataField, Operation
from rempart.audit.models import ActorKind, Channel, Outcome
from rempart.audit.service import Actor, record_access
from rempart.errors import Conflict, NotFound, ValidationFailed
from rempart.identity.errors import PermissionDenied
from rempart.identity.models import Account
from rempart.identity.permissions import Permission
from rempart.identity.principal import StaffPrincipal
from rempart.insurers.models import Product
from rempart.members.export_models import ExportStatus, MemberExport
from rempart.members.models import Beneficiary, BeneficiaryRole, Contract
from rempart.pagination import Cursor, Page, keyset_page
from rempart.protection.service import KeyService
from rempart.tenancy import bind_tenant

EXPORT_VALID_FOR = timedelta(hours=24)
PURPOSE_MIN, PURPOSE_MAX = 10, 500
PAGE_CONTRACTS = 500
SPOOL_IN_MEMORY = 16 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
CSV_HEADER = (
    "member_number",
    "role",
    "birth_rank",
    "nir",
    "last_name",
    "first_name",
    "birth_date",
    "product_code",
    "contract_start",
    "contract_end",
)
# What the file discloses of each person: their identity without the marital status, and the contract.
EXPORTED_FIELDS = frozenset(
    {
        DataField.MEMBER_NUMBER,
        DataField.BIRTH_RANK,
        DataField.NIR,
        DataField.LAST_NAME,
        DataField.FIRST_NAME,
        DataField.BIRTH_DATE,
        DataField.CONTRACT,
    }
)
_ROLE_ORDER = {BeneficiaryRole.HOLDER: 0, BeneficiaryRole.SPOUSE: 1, BeneficiaryRole.CHILD: 2}


class ExportNotFound(NotFound):
    slug = "member-export-not-found"
    title = "Member export not found"


class ExportDecided(Conflict):
    slug = "member-export-decided"
    title = "This member export was already decided"


class ExportNotDownloadable(Conflict):
    slug = "member-export-not-downloadable"
    title = "This member export cannot be downloaded"


class ExportLapsed(Conflict):
    slug = "member-export-lapsed"
    title = "This member export lapsed"


class OwnExport(PermissionDenied):
    """The person who asked for an export cannot decide it: a second person must."""


class NotYourExport(PermissionDenied):
    """Only the person who asked for an export may withdraw or download it."""


@dataclass(frozen=True)
class ExportFile:
    """The file of a downloaded export, committed and recorded: read it once, then close it."""

    name: str
    row_count: int
    body: IO[bytes]

    def chunks(self) -> Iterator[bytes]:
        try:
            while chunk := self.body.read(CHUNK_BYTES):
                yield chunk
        finally:
            self.body.close()


def lapses_at(export: MemberExport) -> datetime | None:
    """When an approved export can no longer be downloaded."""
    if export.status is not ExportStatus.APPROVED or export.decided_at is None:
        return None
    return export.decided_at + EXPORT_VALID_FOR


def status_at(export: MemberExport, now: datetime) -> ExportStatus:
    """The status as people should read it now: an approved export past its day reads lapsed even
    before anyone tried to download it (the row says so at the next attempt)."""
    deadline = lapses_at(export)
    if deadline is not None and now >= deadline:
        return ExportStatus.LAPSED
    return export.status


def _checked_purpose(purpose: str) -> str:
    text = purpose.strip()
    if any(c in text for c in "\r\n") or any(ord(c) < 32 or ord(c) == 127 for c in text):
        reason = "must be one line, without control characters"
    elif not PURPOSE_MIN <= len(text) <= PURPOSE_MAX:
        reason = f"must be {PURPOSE_MIN} to {PURPOSE_MAX} characters"
    else:
        return text
    raise ValidationFailed(f"purpose {reason}", extra={"errors": [{"field": "purpose", "reason": reason}]})


def _product(session: Session, staff: StaffPrincipal, product_code: str | None) -> Product | None:
    if product_code is None or not product_code.strip():
        return None
    code = product_code.strip()
    product = session.scalar(select(Product).where(Product.insurer_id == staff.insurer_id, Product.code == code))
    if product is None:  # another insurer's product reads the same
        reason = "names no product of this insurer"
        raise ValidationFailed(
            f"product_code {reason}", extra={"errors": [{"field": "product_code", "reason": reason}]}
        )
    return product


def do_request_export(
    session: Session, *, staff: StaffPrincipal, purpose: str, product_code: str | None, now: datetime
) -> MemberExport:
    """Ask for an export of every member, or of one product's (committed); it waits for a second
    staff member's decision. Bad input raises ``ValidationFailed`` and writes nothing."""
    if not staff.can(Permission.INSURER_EXPORT_REQUEST):
        raise PermissionDenied("your role does not allow asking for a member export")
    text = _checked_purpose(purpose)
    bind_tenant(session, staff.insurer_id)
    product = _product(session, staff, product_code)
    export = MemberExport(
        insurer_id=staff.insurer_id,
        id=uuid.uuid4(),
        purpose=text,
        product_code=product.code if product is not None else None,
        status=ExportStatus.WAITING,
        requested_by=staff.account_id,
        requested_at=now,
    )
    session.add(export)
    session.commit()
    return export


def member_exports(session: Session, *, staff: StaffPrincipal, limit: int = 100) -> Sequence[MemberExport]:
    """The insurer's exports, those waiting first, then the newest."""
    bind_tenant(session, staff.insurer_id)
    waiting_first = (MemberExport.status != ExportStatus.WAITING).asc()
    return session.scalars(
        select(MemberExport)
        .where(MemberExport.insurer_id == staff.insurer_id)
        .order_by(waiting_first, MemberExport.requested_at.desc(), MemberExport.id)
        .limit(limit)
    ).all()


def member_exports_page(
    session: Session, *, staff: StaffPrincipal, limit: int = 100, cursor: Cursor | None = None
) -> Page[MemberExport]:
    """The insurer's exports, newest first, a page at a time (after ``cursor``). Not those waiting
    first, as the back office's list shows them: a page would then repeat or skip an export decided
    between two pages."""
    bind_tenant(session, staff.insurer_id)
    statement = select(MemberExport).where(MemberExport.insurer_id == staff.insurer_id)
    return keyset_page(
        session,
        statement,
        at=MemberExport.requested_at,
        row_id=MemberExport.id,
        cursor=cursor,
        limit=limit,
        descending=True,
    )


def member_export(session: Session, *, staff: StaffPrincipal, export_id: uuid.UUID) -> MemberExport:
    """One of the insurer's exports; another insurer's id reads like a missing one."""
    bind_tenant(session, staff.insurer_id)
    found = session.scalar(
        select(MemberExport).where(MemberExport.insurer_id == staff.insurer_id, MemberExport.id == export_id)
    )
    if found is None:
        raise ExportNotFound("no member export with this id")
    return found


def _decide(
    session: Session, *, staff: StaffPrincipal, export_id: uuid.UUID, approve: bool, now: datetime
) -> MemberExport:
    if not staff.can(Permission.INSURER_EXPORT_APPROVE):
        raise PermissionDenied("your role does not allow deciding a member export")
    export = member_export(session, staff=staff, export_id=export_id)
    if export.requested_by == staff.account_id:
        raise OwnExport("a second staff member must decide an export you asked for")
    if export.status is not ExportStatus.WAITING:
        raise ExportDecided(f"this export is {export.status.value}")
    # A conditional update claims the decision: of two people deciding at once, one wins. The
    # database's check (decided_by <> requested_by) is the backstop of the test above.
    done = session.execute(
        update(MemberExport)
        .where(
            MemberExport.insurer_id == staff.insurer_id,
            MemberExport.id == export.id,
            MemberExport.status == ExportStatus.WAITING,
            MemberExport.requested_by != staff.account_id,
        )
        .values(
            status=ExportStatus.APPROVED if approve else ExportStatus.REFUSED,
            decided_by=staff.account_id,
            decided_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise ExportDecided("another staff member decided or withdrew this export meanwhile")
    session.commit()
    session.refresh(export)
    return export


def do_decide_export(
    session: Session, *, staff: StaffPrincipal, export_id: uuid.UUID, approve: bool, now: datetime
) -> MemberExport:
    """A second staff member, holding the approve permission, approves or refuses a waiting export
    (committed). Its requester is refused (``OwnExport``), whatever their permissions."""
    return _decide(session, staff=staff, export_id=export_id, approve=approve, now=now)


def do_withdraw_export(session: Session, *, staff: StaffPrincipal, export_id: uuid.UUID, now: datetime) -> MemberExport:
    """The requester withdraws an export not yet downloaded (committed): it lapses."""
    export = member_export(session, staff=staff, export_id=export_id)
    if export.requested_by != staff.account_id:
        raise NotYourExport("only the staff member who asked for this export may withdraw it")
    done = session.execute(
        update(MemberExport)
        .where(
            MemberExport.insurer_id == staff.insurer_id,
            MemberExport.id == export.id,
            MemberExport.status.in_([ExportStatus.WAITING, ExportStatus.APPROVED]),
        )
        .values(status=ExportStatus.LAPSED)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise ExportDecided(f"this export is {export.status.value}: there is nothing to withdraw")
    session.commit()
    session.refresh(export)
    return export


def _lapse(session: Session, staff: StaffPrincipal, export: MemberExport) -> None:
    session.execute(
        update(MemberExport)
        .where(
            MemberExport.insurer_id == staff.insurer_id,
            MemberExport.id == export.id,
            MemberExport.status == ExportStatus.APPROVED,
        )
        .values(status=ExportStatus.LAPSED)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _contract_pages(
    session: Session, staff: StaffPrincipal, product_id: uuid.UUID | None
) -> Iterator[list[tuple[Contract, str]]]:
    """The insurer's contracts (with their product's code) by pages, in member-number order."""
    after = ""
    while True:
        query = (
            select(Contract, Product.code)
            .join(Product, (Product.insurer_id == Contract.insurer_id) & (Product.id == Contract.product_id))
            .where(Contract.insurer_id == staff.insurer_id, Contract.member_number > after)
            .order_by(Contract.member_number)
            .limit(PAGE_CONTRACTS)
        )
        if product_id is not None:
            query = query.where(Contract.product_id == product_id)
        page = [(contract, str(code)) for contract, code in session.execute(query).all()]
        if not page:
            return
        yield page
        after = page[-1][0].member_number


def _cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _day(value: date | None) -> str:
    return value.isoformat() if value is not None else ""


def _write_rows(
    session: Session, *, keys: KeyService, staff: StaffPrincipal, export: MemberExport, out: IO[bytes], now: datetime
) -> int:
    """Write the file's rows and record each person in it, in the caller's transaction."""
    product_id: uuid.UUID | None = None
    if export.product_code is not None:
        product = session.scalar(
            select(Product).where(Product.insurer_id == staff.insurer_id, Product.code == export.product_code)
        )
        if product is None:  # the product went away since: nobody is in the file
            return _write_header(out)
        product_id = product.id
    cipher = keys.cipher(session, staff.insurer_id)
    actor = Actor(ActorKind.INSURER_STAFF, id=staff.account_id)
    reference = str(export.id)
    _write_header(out)
    line = io.StringIO()
    writer = csv.writer(line, lineterminator="\r\n")
    count = 0
    for page in _contract_pages(session, staff, product_id):
        by_contract = {contract.id: (contract, code) for contract, code in page}
        people = session.scalars(
            select(Beneficiary).where(
                Beneficiary.insurer_id == staff.insurer_id, Beneficiary.contract_id.in_(list(by_contract))
            )
        ).all()
        people = sorted(
            people,
            key=lambda b: (by_contract[b.contract_id][0].member_number, _ROLE_ORDER.get(b.role, 9), b.birth_rank, b.id),
        )
        for person in people:
            contract, code = by_contract[person.contract_id]

            def clear(column: str, row: Beneficiary = person) -> str:
                blob: bytes = getattr(row, f"{column}_enc")
                return cipher.decrypt(blob, table="beneficiaries", row_id=row.id, column=column)

            writer.writerow(
                [
                    contract.member_number,
                    person.role.value,
                    person.birth_rank,
                    clear("nir"),
                    _cell(clear("last_name")),
                    _cell(clear("first_name")),
                    clear("birth_date"),
                    _cell(code),
                    _day(contract.start_date),
                    _day(contract.end_date),
                ]
            )
            out.write(line.getvalue().encode("utf-8"))
            line.seek(0)
            line.truncate()
            record_access(
                session,
                operation=Operation.MEMBER_EXPORT,
                actor=actor,
                channel=Channel.BACKOFFICE,
                outcome=Outcome.DISCLOSED,
                insurer_id=staff.insurer_id,
                beneficiary_id=person.id,
                device=staff.credential_ref,
                address=staff.address,
                reference=reference,
                fields=EXPORTED_FIELDS,
                occurred_at=now,
            )
            count += 1
        for done in (*people, *(contract for contract, _ in page)):
            session.expunge(done)  # the page's rows are done with: memory stays one page deep
    return count


def _write_header(out: IO[bytes]) -> int:
    """The header line, after a byte-order mark so that a spreadsheet reads the accents."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(CSV_HEADER)
    out.write(("\ufeff" + buffer.getvalue()).encode("utf-8"))
    return 0


def do_download_export(
    session: Session, *, keys: KeyService, staff: StaffPrincipal, export_id: uuid.UUID, now: datetime
) -> ExportFile:
    """The export's file, for its requester, once, within a day of its approval.

    The file is written, every person in it recorded (``MEMBER_EXPORT``) and the export marked
    downloaded in one transaction, committed before this returns: the caller sends the file only
    after that, so no member leaves unrecorded, and a failed commit sends nothing. Past its day the
    export is marked lapsed (committed) and ``ExportLapsed`` is raised.
    """
    if not (staff.can(Permission.INSURER_EXPORT_REQUEST) and staff.can(Permission.INSURER_MEMBER_READ)):
        raise PermissionDenied("only staff who may ask for exports and read members download them")
    export = member_export(session, staff=staff, export_id=export_id)
    if export.requested_by != staff.account_id:
        raise NotYourExport("only the staff member who asked for this export may download it")
    if status_at(export, now) is ExportStatus.LAPSED:
        if export.status is ExportStatus.APPROVED:
            _lapse(session, staff, export)
        raise ExportLapsed("this export was not downloaded within a day of its approval: ask again")
    if export.status is not ExportStatus.APPROVED:
        reason = {
            ExportStatus.WAITING: "this export waits for a second staff member's approval",
            ExportStatus.REFUSED: "this export was refused",
            ExportStatus.DOWNLOADED: "this export was already downloaded: an export leaves once",
        }.get(export.status, f"this export is {export.status.value}")
        raise ExportNotDownloadable(reason)
    # Claim the download first: of two clicks at once, one writes the file, the other waits on the
    # row and then reads "already downloaded".
    claimed = session.execute(
        update(MemberExport)
        .where(
            MemberExport.insurer_id == staff.insurer_id,
            MemberExport.id == export.id,
            MemberExport.status == ExportStatus.APPROVED,
            MemberExport.requested_by == staff.account_id,
        )
        .values(status=ExportStatus.DOWNLOADED, downloaded_at=now, row_count=0)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise ExportNotDownloadable("this export was already downloaded: an export leaves once")
    out: IO[bytes] = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, mode="w+b")  # noqa: SIM115  (closed by ExportFile.chunks)
    try:
        count = _write_rows(session, keys=keys, staff=staff, export=export, out=out, now=now)
        session.execute(
            update(MemberExport)
            .where(MemberExport.insurer_id == staff.insurer_id, MemberExport.id == export.id)
            .values(row_count=count)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    except BaseException:
        session.rollback()
        out.close()
        raise
    out.seek(0)
    name = f"members-{now:%Y%m%d}-{str(export.id)[:8]}.csv"
    return ExportFile(name=name, row_count=count, body=out)


def staff_logins(session: Session, *, staff: StaffPrincipal, account_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The logins of the insurer's staff who asked for or decided exports, as the pages name them."""
    if not account_ids:
        return {}
    rows = session.execute(
        select(Account.id, Account.login).where(Account.id.in_(account_ids), Account.insurer_id == staff.insurer_id)
    ).all()
    return {account_id: str(login) for account_id, login in rows}


def export_products(session: Session, *, staff: StaffPrincipal) -> list[tuple[str, str]]:
    """The insurer's products an export may be narrowed to: (code, name), by code."""
    bind_tenant(session, staff.insurer_id)
    rows = session.execute(
        select(Product.code, Product.name).where(Product.insurer_id == staff.insurer_id).order_by(Product.code)
    ).all()
    return [(str(code), str(name)) for code, name in rows]
