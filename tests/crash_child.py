"""A phone app making a burst of edits and commands until it is killed (test_crash_safety.py).

    python3 crash_child.py <db_path> <server_url> <user_id> <token> <rt_id> <dc_id> <files_dir>

Prints one JSON line per action *after* the call returned (flushed at once), so every printed
line is an action the app was told had happened. Runs until killed (or 10 000 rounds). The
bindings module must be importable (PYTHONPATH).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import sop_bindings as sop


def say(**action: object) -> None:
    print(json.dumps(action), flush=True)


def main() -> None:
    db_path, server_url, user_id, token, rt_id, dc_id, files_dir = sys.argv[1:8]
    files = Path(files_dir)
    files.mkdir(parents=True, exist_ok=True)
    phone = sop.SopDevice.open(sop.DeviceConfig(
        db_path=db_path, server_url=server_url, user_id=user_id, role=sop.Role.PATIENT,
        token=token, lang="en"))
    say(action="opened")
    for i in range(10_000):
        case_id = phone.create_case(rt_id, dc_id, sop.IntakeEdit(
            patient_age=30 + i % 50, patient_gender="other",
            medical_history=f"history {i}"), False)
        say(action="created", i=i, case_id=case_id)
        # Typing: several whole-text updates of one field, as a text box sends them.
        for k in range(3):
            phone.edit_intake(case_id, sop.IntakeEdit(questions=f"question {i}.{k}"))
            say(action="edited", i=i, case_id=case_id, questions=f"question {i}.{k}")
        if i % 2 == 0:
            path = files / f"scan-{i}.pdf"
            path.write_bytes(b"%PDF-1.4\n% scan " + str(i).encode() + b"\n%%EOF\n")
            document_id = phone.attach_document(case_id, str(path), f"scan-{i}.pdf", None, None)
            say(action="attached", i=i, case_id=case_id, document_id=document_id)
        if i % 3 != 2:
            phone.submit_case(case_id)
            say(action="submitted", i=i, case_id=case_id)
        if i % 4 == 3:
            report = phone.sync()
            say(action="synced", i=i, pending=report.pending_ops)


if __name__ == "__main__":
    main()
