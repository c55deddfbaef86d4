"""A claims agent's rejection carries a reason from a short list and a comment for the practice: the
comment is stored encrypted under the insurer's key, and both show to the staff and to the practice
that billed the claim, over the API and on the pages. A rejection without a reason, an "other"
without a comment, a comment that is not one paragraph of plain text: 422, and the claim still waits.
On SQLite and PostgreSQL (the ``runtime`` fixture)."""

from __future__ import annotations

import html
import uuid

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rempart.claims.key_rotation import ClaimCommentRows
from rempart.claims.models import Claim, ClaimStatus, ReviewReason
from rempart.claims.service import ReviewNote, ReviewNoteInvalid, review_claim, review_comment, review_note
from rempart.identity.permissions import Role
from rempart.members.key_rotation import rotate_insurer_keys
from rempart.professionals.models import Profession
from rempart.protection.service import InsurerCipher
from rempart.runtime import Runtime
from tests.backoffice2.conftest import (  # noqa: F401  (fixtures, registered by being imported here)
    Staff,
    World,
    app,
    app_runtime,
    billed,
    clock,
    no_identity_in_professional_responses,
    population,
    recorder,
    scanned,
    staff,
    world,
)
from tests.eligibility.world import claims_agent
from tests.portal.conftest import Counter, open_counter

COMMENT = "Ordonnance du 3 mars absente du dossier"


def text(response: object) -> str:
    return html.unescape(response.text)  # type: ignore[attr-defined]


@pytest.fixture
def agent(app: FastAPI, runtime: Runtime, world: World) -> Staff:  # noqa: F811
    return staff(app, runtime, world.insurer.id, "agent@remparts.test", Role.CLAIMS_AGENT)


@pytest.fixture
def pharmacist(app: FastAPI, runtime: Runtime) -> Counter:  # noqa: F811
    """A pharmacist signed in to the portal; ``.practice`` is the same pharmacy's billing software."""
    return open_counter(app, runtime, profession=Profession.PHARMACIST, login="pharmacie@port.test")


def stored(runtime: Runtime, claim_id: uuid.UUID) -> Claim:
    with runtime.sessions() as session:
        claim = session.scalars(select(Claim).where(Claim.id == claim_id)).one()
        session.expunge(claim)
        return claim


def api_of(world: World, claim_id: uuid.UUID) -> str:  # noqa: F811
    return f"/api/v1/insurers/{world.insurer.id}/claims/{claim_id}"


# -- the rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "comment", "problems"),
    [
        (None, None, {"reason": "reason-missing"}),
        (None, COMMENT, {"reason": "reason-missing"}),
        (ReviewReason.OTHER, None, {"comment": "comment-needed"}),
        (ReviewReason.OTHER, "  trop cher ", {"comment": "comment-needed"}),  # 10 characters once stripped
        (ReviewReason.DUPLICATE, "déjà payée\nle 3 mars", {"comment": "comment-not-one-paragraph"}),
        (ReviewReason.DUPLICATE, "déjà payée\x00", {"comment": "comment-control-characters"}),
        (ReviewReason.DUPLICATE, "déjà\tpayée", {"comment": "comment-control-characters"}),
        (ReviewReason.DUPLICATE, "payée \u202eeton", {"comment": "comment-control-characters"}),  # bidi override
        (ReviewReason.DUPLICATE, "x" * 501, {"comment": "comment-too-long"}),
        (None, "\x07", {"reason": "reason-missing", "comment": "comment-control-characters"}),
    ],
)
def test_a_rejection_needs_a_reason_and_a_plain_comment(
    reason: ReviewReason | None, comment: str | None, problems: dict[str, str]
) -> None:
    with pytest.raises(ReviewNoteInvalid) as refused:
        review_note(accept=False, reason=reason, comment=comment)
    assert refused.value.problems == problems
    assert refused.value.status == 422


def test_a_comment_is_stripped_and_optional_and_an_acceptance_takes_neither() -> None:
    assert review_note(accept=False, reason=ReviewReason.NOT_COVERED, comment="   ") == ReviewNote(
        ReviewReason.NOT_COVERED, None
    )
    assert review_note(accept=False, reason=ReviewReason.OTHER, comment=f"  {COMMENT}\n") == ReviewNote(
        ReviewReason.OTHER, COMMENT
    )
    assert review_note(accept=False, reason=ReviewReason.AMOUNT_DISPUTED, comment="é" * 500) is not None
    assert review_note(accept=True, reason=None, comment=" ") is None
    with pytest.raises(ReviewNoteInvalid) as refused:
        review_note(accept=True, reason=ReviewReason.DUPLICATE, comment="non")
    assert refused.value.problems == {"reason": "reason-on-accept", "comment": "comment-on-accept"}


def test_the_comment_is_stored_encrypted_with_its_reason_and_a_refused_one_writes_nothing(
    runtime: Runtime,
    world: World,  # noqa: F811
    pharmacist: Counter,
) -> None:
    claim_id = billed(world, runtime, pharmacist.practice)
    agent = claims_agent(world.insurer)
    with runtime.sessions() as session, pytest.raises(ReviewNoteInvalid):
        review_claim(
            session=session,
            keys=runtime.keys,
            staff=agent,
            claim_id=claim_id,
            accept=False,
            reason=ReviewReason.OTHER,
            comment="?",
            now=world.clock(),
        )
    refused = stored(runtime, claim_id)
    assert (refused.status, refused.review_reason, refused.review_comment_enc) == (
        ClaimStatus.PENDING_REVIEW,
        None,
        None,
    )

    with runtime.sessions() as session:
        review_claim(
            session=session,
            keys=runtime.keys,
            staff=agent,
            claim_id=claim_id,
            accept=False,
            reason=ReviewReason.DOCUMENTS_MISSING,
            comment=COMMENT,
            now=world.clock(),
        )
    rejected = stored(runtime, claim_id)
    assert (rejected.status, rejected.review_reason) == (ClaimStatus.REJECTED, ReviewReason.DOCUMENTS_MISSING)
    assert rejected.review_comment_enc is not None
    assert COMMENT.encode() not in rejected.review_comment_enc
    assert b"Ordonnance" not in rejected.review_comment_enc
    with runtime.sessions() as session:
        opened = runtime.keys.cipher(session, world.insurer.id).decrypt(
            rejected.review_comment_enc, table="claims", row_id=claim_id, column="review_comment"
        )
    assert opened == COMMENT


def test_a_key_rotation_re_encrypts_the_comments_and_they_still_open_after_the_old_keys_are_destroyed(
    runtime: Runtime,
    world: World,  # noqa: F811
    pharmacist: Counter,
) -> None:
    claim_id = billed(world, runtime, pharmacist.practice)
    with runtime.sessions() as session:
        review_claim(
            session=session,
            keys=runtime.keys,
            staff=claims_agent(world.insurer),
            claim_id=claim_id,
            accept=False,
            reason=ReviewReason.DOCUMENTS_MISSING,
            comment=COMMENT,
            now=world.clock(),
        )
    before = stored(runtime, claim_id).review_comment_enc
    assert before is not None

    report = rotate_insurer_keys(
        runtime=runtime, amc_number=world.insurer.amc_number, grace_seconds=0, also=[ClaimCommentRows()]
    )

    after = stored(runtime, claim_id)
    assert report.keys_destroyed > 0
    assert after.review_comment_enc is not None
    assert InsurerCipher.ciphertext_version(after.review_comment_enc) == report.data_version
    assert InsurerCipher.ciphertext_version(before) < report.data_version
    runtime.keys.forget(world.insurer.id)  # the old keys are gone: no cached cipher opens it
    with runtime.sessions() as session:
        assert review_comment(session, keys=runtime.keys, claim=after) == COMMENT


# -- the API ---------------------------------------------------------------------------------------


def test_the_api_refuses_a_rejection_without_its_reason_then_both_sides_read_why(
    runtime: Runtime,
    world: World,  # noqa: F811
    agent: Staff,
    pharmacist: Counter,
) -> None:
    claim_id = billed(world, runtime, pharmacist.practice)
    review = f"{api_of(world, claim_id)}/review"

    for body, field in (
        ({"decision": "reject"}, "reason"),
        ({"decision": "reject", "reason": "other"}, "comment"),
        ({"decision": "reject", "reason": "other", "comment": "Facturé \x1b deux fois"}, "comment"),
        ({"decision": "reject", "reason": "duplicate", "comment": "deux\nlignes"}, "comment"),
        ({"decision": "accept", "reason": "duplicate"}, "reason"),
    ):
        refused = agent.user.post(review, json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["type"].endswith("/validation-failed")
        assert field in problem["fields"], problem
        assert stored(runtime, claim_id).status is ClaimStatus.PENDING_REVIEW
    unknown = agent.user.post(review, json={"decision": "reject", "reason": "too-expensive"})
    assert unknown.status_code == 422
    assert stored(runtime, claim_id).status is ClaimStatus.PENDING_REVIEW

    done = agent.user.post(review, json={"decision": "reject", "reason": "other", "comment": f"  {COMMENT} "})
    assert done.status_code == 200, done.text
    answer = done.json()
    assert (answer["status"], answer["reason_code"]) == ("rejected", "rejected-by-insurer")
    assert (answer["review_reason"], answer["review_comment"]) == ("other", COMMENT)

    staff_read = agent.user.get(api_of(world, claim_id)).json()
    assert (staff_read["review_reason"], staff_read["review_comment"]) == ("other", COMMENT)
    practice_read = pharmacist.practice.get(f"/api/v1/claims/{claim_id}")
    assert practice_read.status_code == 200, practice_read.text
    assert (practice_read.json()["review_reason"], practice_read.json()["review_comment"]) == ("other", COMMENT)
    listing = pharmacist.practice.get("/api/v1/claims").json()["claims"]
    (listed,) = [c for c in listing if c["claim_id"] == str(claim_id)]
    assert (listed["review_reason"], listed["review_comment"]) == ("other", None)  # comments on the claim only

    # Decided: a second decision is a conflict, whatever it carries.
    again = agent.user.post(review, json={"decision": "reject"})
    assert again.status_code == 409


def test_an_accepted_claim_has_no_reason_nor_comment(
    runtime: Runtime,
    world: World,  # noqa: F811
    agent: Staff,
    pharmacist: Counter,
) -> None:
    claim_id = billed(world, runtime, pharmacist.practice)
    accepted = agent.user.post(f"{api_of(world, claim_id)}/review", json={"decision": "accept"})
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["review_reason"], accepted.json()["review_comment"]) == (None, None)


# -- the pages -------------------------------------------------------------------------------------


def test_the_reject_form_marks_its_fields_then_staff_and_practice_read_the_reason_and_comment(
    runtime: Runtime,
    world: World,  # noqa: F811
    agent: Staff,
    pharmacist: Counter,
) -> None:
    claim_id = billed(world, runtime, pharmacist.practice)
    review = f"/insurer/claims/{claim_id}/review"
    form = agent.page(f"/insurer/claims/{claim_id}")
    assert '<option value="care-not-performed">' in form.text
    assert "Des pièces manquent" in text(form)
    assert '<textarea id="comment"' in form.text

    missing = agent.form(review, {"decision": "reject", "comment": COMMENT})
    assert missing.status_code == 422
    assert 'id="reject_reason" name="reject_reason" required aria-invalid="true"' in missing.text
    assert "Choisissez pourquoi vous rejetez la facture." in text(missing)
    assert COMMENT in text(missing)  # what was typed comes back
    short = agent.form(review, {"decision": "reject", "reject_reason": "other", "comment": "Non."})
    assert short.status_code == 422
    assert "Dites en quelques mots" in text(short)
    assert '<option value="other" selected>' in short.text
    control = agent.form(review, {"decision": "reject", "reject_reason": "duplicate", "comment": "Dou\x0bblon"})
    assert control.status_code == 422
    assert "caractères invisibles ou de contrôle" in text(control)
    lines = agent.form(review, {"decision": "reject", "reject_reason": "duplicate", "comment": "Doublon\r\nvu"})
    assert lines.status_code == 422
    assert "un seul paragraphe" in text(lines)
    assert stored(runtime, claim_id).status is ClaimStatus.PENDING_REVIEW

    done = agent.form(review, {"decision": "reject", "reject_reason": "documents-missing", "comment": COMMENT})
    assert done.status_code == 303
    after = text(agent.page(done.headers["location"]))
    assert "Vous avez rejeté cette facture" in after
    assert "Motif du rejet" in after
    assert "Des pièces manquent" in after
    assert COMMENT in after
    assert stored(runtime, claim_id).review_reason is ReviewReason.DOCUMENTS_MISSING

    seen = pharmacist.page(f"/claims/{claim_id}")
    assert seen.status_code == 200
    assert "Motif de la complémentaire :" in text(seen)
    assert "Des pièces manquent (ordonnance, devis ou facture)" in text(seen)
    assert "Commentaire de la complémentaire :" in text(seen)
    assert COMMENT in text(seen)


def test_a_comment_is_escaped_where_it_shows(
    runtime: Runtime,
    world: World,  # noqa: F811
    agent: Staff,
    pharmacist: Counter,
) -> None:
    claim_id = billed(world, runtime, pharmacist.practice)
    agent.page(f"/insurer/claims/{claim_id}")
    words = "<script>alert(1)</script> voir le devis"
    done = agent.form(
        f"/insurer/claims/{claim_id}/review", {"decision": "reject", "reject_reason": "other", "comment": words}
    )
    assert done.status_code == 303
    for page in (agent.page(f"/insurer/claims/{claim_id}"), pharmacist.page(f"/claims/{claim_id}")):
        assert "<script>alert(1)</script>" not in page.text
        assert "&lt;script&gt;" in page.text
