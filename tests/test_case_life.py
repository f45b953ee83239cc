"""A case's whole life driven from phones (issue #5 acceptance): the patient drafts offline and
reopens the app, then syncs; payment; two specialists; a document request answered from the
phone; two opinions written offline on two doctors' devices; the summary; completion.

Every phone is a `SopDevice` from the generated Python module on its own SQLite file; the server
is the real binary on a fresh PostgreSQL database. "Offline" is the server process stopped while
the phones keep its URL.
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import pytest
import sop_bindings as sop
from conftest import (
    COORDINATOR, DEMO_DC, DEMO_RT, PDF, SPECIALIST_1, SPECIALIST_2, Phones, Server, eventually,
    pay, sync_until, write_file,
)

# Patient health information: must reach the doctors' devices, never the server's logs.
MEDICAL_HISTORY = "Biopsy in March showed a 2 cm lesion"
QUESTIONS = "Is surgery needed?"
OPINION_1 = "The imaging supports the original diagnosis"
OPINION_2 = "Agree, with a minor difference on staging"
FINAL_SUMMARY = "Both specialists confirm the diagnosis"

class Recorder(sop.ChangeListener):
    """A foreign listener: remembers every call, from whichever thread it comes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed_ids: list[list[str]] = []
        self.hints = 0

    def changed(self, case_ids: list[str]) -> None:
        with self.lock:
            self.changed_ids.append(list(case_ids))

    def sync_hint(self) -> None:
        with self.lock:
            self.hints += 1


def test_case_life_from_phones(server: Server, phones: Phones, admin: str, tmp_path: Path):
    files = tmp_path / "files"
    files.mkdir()

    # The patient installs the app online once (the catalog arrives), then loses the network.
    patient = phones.patient()
    patient.sync()
    catalog = patient.catalog_json()
    assert catalog is not None and DEMO_RT in catalog and DEMO_DC in catalog
    server.stop()

    recorder = Recorder()
    subscription = patient.subscribe(recorder)
    case_id = patient.create_case(
        DEMO_RT, DEMO_DC,
        sop.IntakeEdit(patient_age=54, patient_gender="female", medical_history=MEDICAL_HISTORY),
        False,
    )
    assert recorder.changed_ids and case_id in recorder.changed_ids[-1]
    patient.edit_intake(case_id, sop.IntakeEdit(questions=QUESTIONS))
    scan = write_file(files, "scan.pdf", PDF)
    document_id = patient.attach_document(case_id, scan, "scan.pdf", None, None)
    Path(scan).unlink()  # the store keeps its own copy
    patient.submit_case(case_id)
    with pytest.raises(sop.SopError.Offline):
        patient.sync()
    queued = patient.pending_op_count()
    assert queued >= 3, queued  # create, edit, upload, submit (edits may coalesce)

    # The app is killed and started again: a new object on the same file finds everything.
    subscription.cancel()
    del patient, subscription
    gc.collect()
    patient = phones.patient()
    assert patient.pending_op_count() == queued
    assert [c.case_id for c in patient.list_cases()] == [case_id]
    case = patient.get_case(case_id)
    assert (case.status, case.server_status) == ("submitted", None)
    assert [(d.document_id, d.file_name, d.content_type, d.uploaded) for d in case.documents] == [
        (document_id, "scan.pdf", "application/pdf", False)]
    assert patient.intake(case_id) == sop.IntakeContent(
        patient_age=54, patient_gender="female", medical_history=MEDICAL_HISTORY,
        questions=QUESTIONS)
    assert [u.document_id for u in patient.pending_uploads()] == [document_id]

    # Back online: one sync uploads the file and pushes everything.
    server.start()
    report = patient.sync()
    assert report.uploaded_bytes == len(PDF)
    assert (report.refused, report.pending_ops) == (0, 0), report
    assert patient.pending_uploads() == []
    case = patient.get_case(case_id)
    assert (case.status, case.server_status) == ("submitted", "submitted")
    assert case.documents[0].uploaded

    # The admin sees the submitted case and its document; then payment (the link reaches the
    # phone's status card, the patient pays on the sandbox page).
    submitted = server.ok("/admin/list-cases", admin, {"status": "submitted"})
    assert [c["case_id"] for c in submitted] == [case_id]
    details = server.ok("/admin/case-details", admin, {"case_id": case_id})
    assert [d["document_id"] for d in details["documents"]] == [document_id]
    pay(server, admin, patient, case_id)

    # The coordinator's phone assigns both specialists.
    coordinator = phones.doctor(COORDINATOR)
    coordinator.sync()
    assert coordinator.get_case(case_id).status == "payment_successful"
    coordinator.assign_doctors(case_id, [
        sop.DoctorAssignment(doctor_id=SPECIALIST_1, requested_items=[]),
        sop.DoctorAssignment(doctor_id=SPECIALIST_2, requested_items=[]),
    ])
    # Optimistic: the phone cannot know who may review this category, so it assumes they may
    # and shows the expected result at once; the server's answer comes with the sync.
    case = coordinator.get_case(case_id)
    assert (case.status, case.server_status, case.pending_ops) == \
        ("doctors_assigned", "payment_successful", 1)
    assert {a.doctor_id for a in case.assignments if a.role == "specialist" and a.active} == \
        {SPECIALIST_1, SPECIALIST_2}
    assert coordinator.sync().applied >= 1
    assert coordinator.get_case(case_id).server_status == "doctors_assigned"

    # A specialist asks for a document; the patient answers from the phone.
    dr1 = phones.doctor(SPECIALIST_1)
    dr2 = phones.doctor(SPECIALIST_2)
    dr1.sync()
    assert dr1.intake(case_id).medical_history == MEDICAL_HISTORY
    request_id = dr1.request_documents(case_id, ["Pathology report"])
    dr1.sync()
    case = sync_until(patient, case_id, "the document request",
                      lambda c: any(r.request_id == request_id for r in c.document_requests))
    assert case.card.requested_items == ["Pathology report"]
    pathology = write_file(files, "pathology.pdf", PDF + b"% pathology\n")
    patient.attach_document(case_id, pathology, "pathology.pdf", None, request_id)
    patient.answer_document_request(case_id, request_id)
    report = patient.sync()
    assert (report.refused, report.pending_ops) == (0, 0), report
    case = patient.get_case(case_id)
    assert [r.open for r in case.document_requests] == [False]
    assert all(d.uploaded for d in case.documents) and len(case.documents) == 2

    # Both specialists pick the case up, then write and submit their opinions offline.
    dr1.sync()
    dr2.sync()
    assert len(dr2.get_case(case_id).documents) == 2
    server.stop()
    for dr, text, concordance in ((dr1, OPINION_1, "agrees"),
                                  (dr2, OPINION_2, "minor_difference")):
        dr.set_notes(case_id, "private: compare with the 2023 scan")
        dr.set_opinion_section(case_id, sop.OpinionSection.SUMMARY, text)
        dr.set_concordance(case_id, concordance)
        dr.submit_opinion(case_id)
        assert dr.opinion(case_id).summary == text
        with pytest.raises(sop.SopError.Offline):
            dr.sync()
        assert dr.pending_op_count() >= 2
    server.start()
    for dr in (dr1, dr2):
        report = dr.sync()
        assert (report.refused, report.pending_ops) == (0, 0), report
        assert dr.refusals() == [] and dr.recovered_drafts() == []

    # The coordinator writes and submits the summary, which completes the case.
    coordinator.sync()
    case = coordinator.get_case(case_id)
    assert sorted(a.doctor_id for a in case.assignments if a.opinion_submitted) == [
        SPECIALIST_1, SPECIALIST_2]
    coordinator.set_summary(case_id, FINAL_SUMMARY)
    coordinator.submit_summary(case_id)
    report = coordinator.sync()
    assert (report.refused, report.pending_ops) == (0, 0), report
    assert coordinator.get_case(case_id).server_status == "completed"

    # The patient's phone ends with the case completed, its reference and the report.
    case = sync_until(patient, case_id, "the report", lambda c: c.report_id is not None)
    assert (case.status, case.server_status) == ("completed", "completed")
    assert case.reference
    admin_view = server.ok("/admin/case-details", admin, {"case_id": case_id})
    assert admin_view["status"] == "completed"
    assert admin_view["reference"] == case.reference

    # Clinical text travelled between phones but never into the server's log.
    logs = server.logs()
    for text in (MEDICAL_HISTORY, QUESTIONS, OPINION_1, OPINION_2, FINAL_SUMMARY):
        assert text not in logs


def test_live_hint_reaches_the_app_listener(server: Server, phones: Phones, admin: str):
    """The server's "pull now" for a patient's case reaches the app's listener from the live
    thread, and the sync it prompts brings the change."""
    patient = phones.patient()
    patient.sync()
    case_id = patient.create_case(DEMO_RT, DEMO_DC, sop.IntakeEdit(
        patient_age=47, patient_gender="male", medical_history=MEDICAL_HISTORY), True)
    assert patient.sync().pending_ops == 0

    recorder = Recorder()
    subscription = patient.subscribe(recorder)
    patient.start_live()
    try:
        eventually("the hint sent on connecting", lambda: recorder.hints >= 1)
        before = recorder.hints
        server.ok("/admin/assign-coordinator", admin,
                  {"case_id": case_id, "doctor_id": COORDINATOR})
        eventually("a hint after the admin's command", lambda: recorder.hints > before)
    finally:
        patient.stop_live()
    patient.sync()
    assert patient.get_case(case_id).coordinator_id == COORDINATOR
    assert any(case_id in ids for ids in recorder.changed_ids)

    # Once the handle is cancelled, the app hears nothing more.
    subscription.cancel()
    seen = len(recorder.changed_ids)
    patient.cancel_case(case_id, "changed my mind")
    assert patient.get_case(case_id).status == "cancelled"
    assert len(recorder.changed_ids) == seen
