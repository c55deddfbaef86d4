"""`rempart demo` on a machine with nothing but the package: loads, writes demo.json, serves."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from stdnum.fr import nir as nir_number


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_loads_a_population_writes_demo_json_and_serves_health(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
    rempart = Path(sys.executable).with_name("rempart")
    process = subprocess.Popen(
        [str(rempart), "demo", "--members", "60", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code
                break
            except httpx.TransportError:
                time.sleep(0.3)
        assert status == 200, "the demo did not serve /healthz in time"
        doc = json.loads((tmp_path / "var" / "demo.json").read_text())
        assert (tmp_path / "var" / "demo.json").stat().st_mode & 0o077 == 0  # secrets inside: owner only
        assert [i["amc_number"] for i in doc["insurers"]] == ["88450101", "77120345", "66310988"]
        assert sum(i["members"] for i in doc["insurers"]) == 60
        kinds = {p["kind"] for p in doc["patients"]}
        assert {"holder", "spouse"} <= kinds
        assert all(nir_number.is_valid(p["nir"]) for p in doc["patients"])
        assert (tmp_path / "var" / "rempart.db").exists()
        assert (tmp_path / "var" / "keys" / "kek.json").exists()

        # The start page a newcomer lands on: what Rempart is, who to sign in as, whom to check.
        start = httpx.get(f"http://localhost:{port}/", timeout=5)
        assert start.status_code == 200
        assert '<html lang="fr">' in start.text
        assert "Essayer la démo" in start.text
        enrol_links = [link["url"] for link in doc["enrolment_links"] if link["url"]]
        assert enrol_links
        assert all(url.replace("&", "&amp;") in start.text for url in enrol_links)
        # Every face has an account to try: a practice, the insurer's staff, an insured person, an operator.
        roles = {link["roles"] for link in doc["enrolment_links"]}
        assert {"insurer_admin", "beneficiary", "security_operator"} <= roles
        assert doc["patients"][0]["card"]["member_number"] in start.text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert "Rempart demo ready" in output
    assert f"open http://localhost:{port}/ in a browser" in " ".join(output.split())  # however the terminal wraps
    assert "Traceback" not in output
    for patient in doc["patients"]:
        assert patient["nir"] not in output  # the terminal shows cards, never NIRs
