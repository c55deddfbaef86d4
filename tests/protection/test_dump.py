"""Invariant 5: a full dump of the database yields no NIR, name or date of birth in clear."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess

import pytest
from sqlalchemy.engine import make_url

from rempart.members.importer import import_members
from rempart.runtime import Runtime
from tests.factories import make_insurer, members_file, population


def _dump(runtime: Runtime) -> str:
    url = make_url(runtime.settings.database_url)
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(str(url.database)) as conn:
            return "\n".join(conn.iterdump())
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.fail("pg_dump is not installed: the PostgreSQL dump cannot be checked")
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run([pg_dump, "--data-only", dsn], check=True, capture_output=True, text=True).stdout


def _table_section(dump: str, table: str) -> str:
    """The dump's rows of one table (SQLite INSERT lines, or a pg_dump COPY block)."""
    lines = dump.splitlines()
    inserts = [line for line in lines if line.startswith(f'INSERT INTO "{table}"')]
    if inserts:
        return "\n".join(inserts)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"COPY public.{table} "))
    end = lines.index("\\.", start)
    return "\n".join(lines[start:end])


_BLOB = re.compile(r"X'([0-9A-Fa-f]*)'|\\\\x([0-9a-f]*)")


def _readable(section: str) -> str:
    """The dump as a person (or grep) would read it: text as is, binary columns decoded.

    Hex digits of a ciphertext are not text: searched as text they would match dates by chance;
    decoded, a value stored as plain bytes would still be found.
    """
    blobs = [bytes.fromhex(a or b).decode("latin-1") for a, b in _BLOB.findall(section)]
    return "\n".join([_BLOB.sub("<blob>", section), *blobs])


def test_a_dump_holds_zero_identities_in_clear(runtime: Runtime, tmp_path) -> None:  # type: ignore[no-untyped-def]
    make_insurer(runtime)
    records = population(150)
    report = import_members(runtime=runtime, path=members_file(tmp_path, records), amc_number="88450101")
    assert report.beneficiaries_created == len(records)

    dump = _dump(runtime)
    # The dump really holds the rows (hex or bytea of the ciphertexts), so the search is meaningful.
    assert dump.count("beneficiaries") >= 1
    assert len(dump) > len(records) * 200

    # Contract and card dates are in clear on purpose (they are terms, not identities): birth dates
    # are looked for in the beneficiaries' rows, where a clear one could only be a birth date.
    beneficiaries = _table_section(dump, "beneficiaries")
    assert len(beneficiaries) > len(records) * 200
    assert "<blob>" in _readable(beneficiaries)
    dump, beneficiaries = _readable(dump), _readable(beneficiaries)
    found = []
    for record in records:
        birth = record.birth_date
        nir = record.nir
        needles = [nir, nir[:13], " ".join((nir[:1], nir[1:3], nir[3:5], nir[5:7], nir[7:10]))]
        found += [n for n in needles if n in dump]
        births = [birth.isoformat(), birth.strftime("%d/%m/%Y"), birth.strftime("%Y%m%d")]
        found += [b for b in births if b in beneficiaries]
        # Names are searched as whole words, so that "Rose" is not found inside "Roselyne".
        names = [n for n in (record.last_name, record.first_name) if len(n) >= 3]
        found += [n for n in names if re.search(rf"\b{re.escape(n)}\b", dump)]
    # Product and insurer names are not personal data; nothing else readable may remain.
    assert found == []
