"""Crash safety (issue #5 acceptance): a process using the store is SIGKILLed in the middle of a
burst of edits and commands (some of its syncs in flight); on reopen every action that had
returned to the caller is present, and queued or synced; the file passes `integrity_check`; the
next sync delivers all of it to the server.

The burst runs in a child process (crash_child.py) that prints each action after it returned; the
lines it printed before it died are exactly the actions the app was told had happened.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import sop_bindings as sop
from conftest import BINDINGS_DIR, DEMO_DC, DEMO_RT, PATIENT, Phones, Server

CHILD = Path(__file__).resolve().parent / "crash_child.py"


def run_and_kill(phones: Phones, files: Path, after_lines: int) -> list[dict[str, Any]]:
    """Starts the child on the patient's store, SIGKILLs it once it has printed `after_lines`
    actions, and returns every action it printed (including lines still in the pipe)."""
    env = dict(os.environ, PYTHONPATH=str(BINDINGS_DIR))
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(phones.db_path("patient")), phones.server.url, PATIENT,
         phones.token(PATIENT, "snr_usr"), DEMO_RT, DEMO_DC, str(files)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    lines: list[str] = []
    for line in child.stdout:
        lines.append(line)
        if len(lines) >= after_lines:
            child.send_signal(signal.SIGKILL)
            break
    lines.extend(child.stdout.read().splitlines(keepends=True))
    child.wait()
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stderr.read())
    actions = [json.loads(line) for line in lines if line.strip()]
    assert len(actions) >= after_lines, lines
    return actions


def integrity_ok(db_path: Path) -> None:
    """`PRAGMA integrity_check` in a separate process: this process has the bindings' own SQLite
    loaded, and two SQLite libraries in one process do not see each other's POSIX locks (the
    SQLite docs' "multiple copies of SQLite linked into the same application")."""
    check = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
             "print(db.execute('PRAGMA integrity_check').fetchall())")
    out = subprocess.run([sys.executable, "-c", check, str(db_path)], capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "[('ok',)]", (out.stdout, out.stderr)


def check_on_device(phone: sop.SopDevice, actions: list[dict[str, Any]]) -> dict[str, dict]:
    """Every printed action is present on the reopened device, and queued or synced. Returns
    what each case should hold."""
    expected: dict[str, dict] = defaultdict(lambda: {"documents": set(), "submitted": False})
    for a in actions:
        if a["action"] == "created":
            expected[a["case_id"]]["history"] = f"history {a['i']}"
        elif a["action"] == "edited":
            expected[a["case_id"]]["questions"] = a["questions"]
        elif a["action"] == "attached":
            expected[a["case_id"]]["documents"].add(a["document_id"])
        elif a["action"] == "submitted":
            expected[a["case_id"]]["submitted"] = True

    on_device = {c.case_id for c in phone.list_cases()}
    assert set(expected) <= on_device, set(expected) - on_device
    for case_id, want in expected.items():
        case = phone.get_case(case_id)
        intake = phone.intake(case_id)
        assert intake.medical_history == want["history"]
        if "questions" in want:
            # The child may have typed one more character-set after its last printed line.
            i, k = want["questions"].removeprefix("question ").split(".")
            assert intake.questions in (want["questions"], f"question {i}.{int(k) + 1}")
        assert want["documents"] <= {d.document_id for d in case.documents}
        if want["submitted"]:
            assert case.status == "submitted", case.status
        # Queued (something still waits for the server) or synced (the server has the case).
        assert case.pending_ops > 0 or case.server_status is not None, case_id
    return expected


def check_on_server(server: Server, token: str, expected: dict[str, dict]) -> None:
    cases = server.ok("/app/list-cases", token, {"size": 100})
    by_id = {c["case_id"]: c for c in cases}
    assert set(expected) <= set(by_id), set(expected) - set(by_id)
    for case_id, want in expected.items():
        if want["submitted"]:
            assert by_id[case_id]["status"] == "submitted"
    # The patient's own view of a few cases: intake text and documents arrived intact.
    for case_id in list(expected)[:: max(1, len(expected) // 4)]:
        details = server.ok("/app/review-case-details", token, {"case_id": case_id})
        assert details["medical_history"] == expected[case_id]["history"]
        assert expected[case_id]["documents"] <= {d["document_id"] for d in details["documents"]}


def test_kill_mid_burst_loses_nothing_that_returned(server: Server, phones: Phones,
                                                    tmp_path: Path):
    files = tmp_path / "child-files"
    db_path = phones.db_path("patient")
    actions: list[dict[str, Any]] = []
    # Two kills on the same store: the second burst starts on a file that survived the first.
    for after in (45, 70):
        actions += run_and_kill(phones, files, after)
        assert any(a["action"] == "synced" for a in actions)
        integrity_ok(db_path)
        phone = phones.patient()
        expected = check_on_device(phone, actions)
        assert phone.refusals() == []
        del phone
        gc.collect()

    phone = phones.patient()
    report = phone.sync()
    assert (report.refused, report.pending_ops) == (0, 0), report
    assert phone.pending_uploads() == []
    check_on_server(server, phones.token(PATIENT, "snr_usr"), expected)
    del phone
    gc.collect()
    integrity_ok(db_path)
