"""Who keeps what on their phone, and the errors an app acts on.

- Revocation (issue #5 acceptance): a specialist's device holding a case, with edits of its own
  still queued, purges the case after the coordinator unassigns them; the other specialist keeps it.
- The error enum: a rule refusal on the device (nothing queued), an unknown case, a bad argument,
  a rejected token, an unreachable server.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest
import sop_bindings as sop
from conftest import (
    COORDINATOR, DEMO_DC, DEMO_RT, PDF, SPECIALIST_1, SPECIALIST_2, Phones, Server, pay,
    write_file,
)

MEDICAL_HISTORY = "Chest CT in May showed a nodule"


def rows_mentioning(db_path: Path, needle: str) -> list[str]:
    """Every table of the store holding a row whose text or bytes contain `needle`, read in a
    separate process (two SQLite libraries in one process do not share locks)."""
    script = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
needle = sys.argv[2]
tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
for t in tables:
    for row in db.execute(f'SELECT * FROM "{t}"'):
        if any(needle in (v.decode('latin-1') if isinstance(v, bytes) else str(v)) for v in row):
            print(t)
            break
"""
    out = subprocess.run([sys.executable, "-c", script, str(db_path), needle],
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.split()


def test_unassigned_doctor_device_purges_the_case(server: Server, phones: Phones, admin: str,
                                                  tmp_path: Path):
    patient = phones.patient()
    patient.sync()
    case_id = patient.create_case(DEMO_RT, DEMO_DC, sop.IntakeEdit(
        patient_age=61, patient_gender="male", medical_history=MEDICAL_HISTORY,
        questions="Should I have a biopsy?"), False)
    patient.attach_document(case_id, write_file(tmp_path / "files", "ct.pdf", PDF), "ct.pdf",
                            None, None)
    patient.submit_case(case_id)
    assert patient.sync().pending_ops == 0
    pay(server, admin, patient, case_id)

    coordinator = phones.doctor(COORDINATOR)
    coordinator.sync()
    coordinator.assign_doctors(case_id, [
        sop.DoctorAssignment(doctor_id=SPECIALIST_1, requested_items=[]),
        sop.DoctorAssignment(doctor_id=SPECIALIST_2, requested_items=[]),
    ])
    assert coordinator.sync().refused == 0

    # The specialist's phone holds the case, its intake and documents, and their own notes:
    # some synced, some still queued when access ends.
    dr1 = phones.doctor(SPECIALIST_1)
    dr2 = phones.doctor(SPECIALIST_2)
    dr1.sync()
    dr2.sync()
    assert dr1.intake(case_id).medical_history == MEDICAL_HISTORY
    assert len(dr1.get_case(case_id).documents) == 1
    dr1.set_notes(case_id, "first look: compare with the 2023 scan")
    dr1.sync()
    dr1.set_opinion_section(case_id, sop.OpinionSection.SUMMARY, "draft, not sent")
    assert dr1.pending_op_count() > 0

    coordinator.unassign_doctor(case_id, SPECIALIST_1)
    assert coordinator.sync().refused == 0

    report = dr1.sync()
    assert report.revoked_cases == 1, report
    assert dr1.list_cases() == []
    assert dr1.pending_op_count() == 0
    assert dr1.pending_uploads() == []
    with pytest.raises(sop.SopError.NotFound):
        dr1.get_case(case_id)
    with pytest.raises(sop.SopError.NotFound):
        dr1.notes(case_id)
    # The doctor's own inbox keeps its notices (the last one says they were removed).
    assert '"doctor_removed"' in dr1.notifications()[0].json
    db_path = phones.db_path(f"doctor-{SPECIALIST_1}")
    del dr1
    gc.collect()
    # Nothing else of the case is left in any table of the store.
    assert rows_mentioning(db_path, case_id) == ["notifications"]
    assert rows_mentioning(db_path, MEDICAL_HISTORY) == []

    # The other specialist keeps it.
    dr2.sync()
    assert [c.case_id for c in dr2.list_cases()] == [case_id]
    assert dr2.intake(case_id).medical_history == MEDICAL_HISTORY


def test_errors_an_app_acts_on(server: Server, phones: Phones, tmp_path: Path):
    patient = phones.patient()
    patient.sync()

    # A draft with no medical history cannot be submitted: refused on the device at once, with
    # a stable code and both languages, and nothing more is queued.
    case_id = patient.create_case(DEMO_RT, DEMO_DC, sop.IntakeEdit(patient_age=40, patient_gender="female"), False)
    queued = patient.pending_op_count()
    with pytest.raises(sop.SopError.Refused) as refused:
        patient.submit_case(case_id)
    assert refused.value.code == "medical_history_required"
    assert refused.value.message_en and refused.value.message_ar
    assert patient.pending_op_count() == queued
    assert patient.get_case(case_id).status == "draft"

    # A patient's app cannot run a coordinator's command.
    with pytest.raises(sop.SopError.Refused):
        patient.send_overdue_reminder(case_id)
    assert patient.pending_op_count() == queued

    with pytest.raises(sop.SopError.NotFound):
        patient.get_case("0190f5a0-0000-7000-8000-00000000ffff")
    with pytest.raises(sop.SopError.InvalidInput):
        patient.get_case("not-a-case-id")
    with pytest.raises((sop.SopError.InvalidInput, sop.SopError.NotFound)):
        patient.attach_document(case_id, str(tmp_path / "missing.pdf"), "missing.pdf", None, None)
    assert patient.pending_op_count() == queued

    # A rejected token: the app must refresh it; nothing queued is lost, and after
    # `set_token` the same store syncs.
    patient.set_token(phones.server.token("P2", "snr_usr").replace(".", ".x", 1))
    with pytest.raises(sop.SopError.Unauthorized):
        patient.sync()
    assert patient.pending_op_count() == queued
    patient.set_token(phones.token("P1", "snr_usr"))
    assert patient.sync().pending_ops == 0

    # A server that is not there: Offline, and the queue waits.
    patient.edit_intake(case_id, sop.IntakeEdit(medical_history="Headaches since June"))
    patient.set_server_url("http://127.0.0.1:9")
    with pytest.raises(sop.SopError.Offline):
        patient.sync()
    assert patient.pending_op_count() == 1
    patient.set_server_url(server.url)
    assert patient.sync().pending_ops == 0
    patient.submit_case(case_id)
    assert patient.sync().refused == 0
    assert patient.get_case(case_id).server_status == "submitted"
