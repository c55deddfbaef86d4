"""Claims made while the platform cannot take them wait in a local file and leave once, in order."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rempart_verifier import ClaimQueue, Delivery, Outcome, QueuedClaim, classify

TOKEN = "RA1:EXAMPLE"
CHANNEL_OFF_PROBLEM = {
    "type": "/problems/channel-disconnected",
    "title": "Channel disconnected",
    "status": 503,
}


def claim(n: int) -> dict[str, Any]:
    return {"member_number": "MEMBER-0001", "domain": "PHAR", "amount_cents": 1000 + n}


def fill(queue: ClaimQueue, count: int) -> list[str]:
    keys = [f"key-{n:03d}" for n in range(count)]
    for n, key in enumerate(keys):
        queue.put(idempotency_key=key, claim=claim(n), attestation=TOKEN)
    return keys


class Platform:
    """A fake platform that answers from a script and remembers every key it was sent."""

    def __init__(self, *answers: Delivery) -> None:
        self.answers = list(answers)
        self.sent: list[str] = []

    def __call__(self, queued: QueuedClaim) -> Delivery:
        self.sent.append(queued.idempotency_key)
        if self.answers:
            return self.answers.pop(0)
        return Delivery.from_response(201, {"id": queued.idempotency_key})


def test_pending_claims_come_out_in_arrival_order(tmp_path: Path) -> None:
    with ClaimQueue(tmp_path / "queue.db") as queue:
        keys = fill(queue, 5)
        pending = queue.pending()

    assert [queued.idempotency_key for queued in pending] == keys
    assert pending[2].claim == claim(2)
    assert pending[2].attestation == TOKEN
    assert {queued.state for queued in pending} == {"pending"}


def test_putting_a_claim_twice_keeps_one(tmp_path: Path) -> None:
    with ClaimQueue(tmp_path / "queue.db") as queue:
        first = queue.put(idempotency_key="k", claim={"a": 1, "b": 2}, attestation=TOKEN)
        again = queue.put(idempotency_key="k", claim={"b": 2, "a": 1}, attestation=TOKEN)

        assert again == first
        assert len(queue.pending()) == 1
        with pytest.raises(ValueError, match="another claim"):
            queue.put(idempotency_key="k", claim={"a": 2}, attestation=TOKEN)
        assert len(queue.pending()) == 1


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (None, None, Outcome.UNREACHABLE),
        (200, {}, Outcome.DELIVERED),
        (201, {"id": "x"}, Outcome.DELIVERED),
        (503, CHANNEL_OFF_PROBLEM, Outcome.CHANNEL_OFF),
        (503, {"type": "about:blank"}, Outcome.RETRY_LATER),
        (500, None, Outcome.RETRY_LATER),
        (429, {"type": "about:blank"}, Outcome.RETRY_LATER),
        (408, None, Outcome.RETRY_LATER),
        (302, None, Outcome.RETRY_LATER),
        (422, {"type": "/problems/validation"}, Outcome.REFUSED),
        (403, None, Outcome.REFUSED),
    ],
)
def test_answers_are_classified(status: int | None, body: dict[str, Any] | None, outcome: Outcome) -> None:
    assert classify(status, body) is outcome


def test_forwarding_stops_when_the_channel_is_off_and_resumes_with_the_same_key(tmp_path: Path) -> None:
    with ClaimQueue(tmp_path / "queue.db") as queue:
        keys = fill(queue, 3)
        platform = Platform(Delivery.from_response(201, {"id": "1"}), Delivery.from_response(503, CHANNEL_OFF_PROBLEM))

        report = queue.forward(platform)

        assert (report.delivered, report.refused, report.pending) == (1, 0, 2)
        assert report.stopped_by is Outcome.CHANNEL_OFF
        assert platform.sent == keys[:2]  # the third was not tried against a channel that is off

        resumed = queue.forward(platform)

        assert (resumed.delivered, resumed.pending, resumed.stopped_by) == (2, 0, None)
        assert platform.sent == [keys[0], keys[1], keys[1], keys[2]]
        delivered = queue.get(keys[1])
        assert delivered is not None
        assert (delivered.state, delivered.attempts, delivered.answer) == ("delivered", 2, {"id": keys[1]})


def test_an_unreachable_platform_leaves_everything_queued(tmp_path: Path) -> None:
    with ClaimQueue(tmp_path / "queue.db") as queue:
        fill(queue, 2)
        report = queue.forward(lambda _queued: Delivery(outcome=Outcome.UNREACHABLE))

        assert (report.delivered, report.pending, report.stopped_by) == (0, 2, Outcome.UNREACHABLE)


def test_a_refused_claim_is_kept_and_never_resent(tmp_path: Path) -> None:
    problem = {"type": "/problems/attestation-expired", "status": 422}
    with ClaimQueue(tmp_path / "queue.db") as queue:
        keys = fill(queue, 2)
        platform = Platform(Delivery.from_response(422, problem))

        report = queue.forward(platform)
        again = queue.forward(platform)

        assert (report.refused, report.delivered, report.pending) == (1, 1, 0)
        assert again.sent == ()
        refused = queue.get(keys[0])
        assert refused is not None
        assert (refused.state, refused.status, refused.answer) == ("refused", 422, problem)
        assert platform.sent == keys


def test_a_send_that_raises_gives_the_claim_back(tmp_path: Path) -> None:
    def broken(_queued: QueuedClaim) -> Delivery:
        raise ConnectionError("the practice's HTTP client failed")

    with ClaimQueue(tmp_path / "queue.db") as queue:
        fill(queue, 1)
        with pytest.raises(ConnectionError):
            queue.forward(broken)

        assert [queued.state for queued in queue.pending()] == ["pending"]
        assert queue.forward(Platform()).delivered == 1


def _child(script: str, path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_committed_puts_survive_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    child = _child(
        """
        import sys, time
        from rempart_verifier import ClaimQueue
        queue = ClaimQueue(sys.argv[1])
        for n in range(1000):
            queue.put(idempotency_key=f"key-{n:04d}", claim={"n": n}, attestation="RA1:X")
            print(n, flush=True)
        time.sleep(60)
        """,
        path,
    )
    assert child.stdout is not None
    acknowledged = [int(child.stdout.readline()) for _ in range(20)]
    child.send_signal(signal.SIGKILL)  # mid-stream: it keeps putting while we read
    child.wait()
    child.stdout.close()

    with ClaimQueue(path) as queue:
        keys = [queued.idempotency_key for queued in queue.pending()]

    assert keys[: len(acknowledged)] == [f"key-{n:04d}" for n in acknowledged]
    assert keys == sorted(keys)


def test_a_claim_whose_sender_was_killed_is_resent_with_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    with ClaimQueue(path) as queue:
        keys = fill(queue, 2)
    child = _child(
        """
        import sys, time
        from rempart_verifier import ClaimQueue
        def hang(queued):
            print(queued.idempotency_key, flush=True)
            time.sleep(60)
        ClaimQueue(sys.argv[1]).forward(hang)
        """,
        path,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == keys[0]
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()

    # While its lease runs, another forwarder leaves the claim alone...
    with ClaimQueue(path) as queue:
        platform = Platform()
        queue.forward(platform)
        assert platform.sent == [keys[1]]

    # ...and takes it back once the lease has expired.
    with ClaimQueue(path, clock=lambda: time.time() + 3600) as queue:
        report = queue.forward(platform)
        resent = queue.get(keys[0])

    assert platform.sent == [keys[1], keys[0]]
    assert report.delivered == 1
    assert resent is not None
    assert (resent.state, resent.attempts) == ("delivered", 2)


def test_two_forwarders_on_one_file_send_each_claim_once(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    with ClaimQueue(path) as queue:
        keys = fill(queue, 30)
    sent: Counter[str] = Counter()
    lock = threading.Lock()

    def send(queued: QueuedClaim) -> Delivery:
        with lock:
            sent[queued.idempotency_key] += 1
        time.sleep(0.002)  # long enough for the other forwarder to try the same row
        return Delivery.from_response(201, {})

    def forwarder() -> None:
        with ClaimQueue(path) as queue:
            queue.forward(send)

    threads = [threading.Thread(target=forwarder) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sent == Counter(dict.fromkeys(keys, 1))
    with ClaimQueue(path) as queue:
        assert queue.pending() == []
