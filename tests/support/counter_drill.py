"""A pharmacy's counter while the platform is off, as its own process (for the continuity drill):
each patient's attestation is verified with the cached keys and nothing else — no network — and
the claim is queued in the practice's local file. Prints ``queued N`` after each durable put, so the
drill can kill it mid-way; run again, it starts over and the queue keeps one claim per key.

    python -m tests.support.counter_drill PATIENTS.json KEYS.json QUEUE.sqlite YYYY-MM-DD
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

from rempart_verifier import ClaimQueue, KeySet, verify


def main(patients_file: str, keys_file: str, queue_file: str, day: str) -> int:
    keys = KeySet.load(keys_file)
    care_date = date.fromisoformat(day)
    patients = json.loads(Path(patients_file).read_text())
    with ClaimQueue(queue_file) as queue:
        for number, patient in enumerate(patients, start=1):
            verdict = verify(
                patient["token"],
                keys=keys,
                on=care_date,
                nir=patient["nir"],
                birth_date=date.fromisoformat(patient["birth_date"]),
            )
            if not verdict.valid:
                print(f"refused {number} {verdict.refusal}", flush=True)
                return 1
            medicine = {
                "care_domain": "PHAR",
                "act_code": "3400930000001",
                "care_date": day,
                "quantity": 1,
                "unit_price_cents": 1_250,
                "brss_cents": 1_250,
                "amo_rate_pct": 65,
            }
            queue.put(
                idempotency_key=patient["key"],
                claim={"attestation": patient["token"], "lines": [medicine]},
                attestation=patient["token"],
            )
            print(f"queued {number}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
