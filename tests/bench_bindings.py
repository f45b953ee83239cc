"""The local calls an app makes on every screen, timed through the generated Python bindings.

    tests/run.sh --co -q >/dev/null   # or bindings/generate.sh python: builds what this loads
    PYTHONPATH=target/bindings/python python3 tests/bench_bindings.py [cases] [rounds]

A patient's store with `cases` cases (default 500), each created offline with its intake (so
every one also has queued operations, which the device replays when reading — the heavier
path), one with an attached file. Then `rounds` calls (default 200) of each:
- `core_version()`: the baseline, one FFI round trip returning a short string;
- `list_cases()`: the case list screen (500 records across the FFI);
- `get_case(id)`: opening a case (status card, timeline, documents);
- `edit_intake(id, questions=text + one character)`: typing one character into a text field
  (an Automerge change and a queued operation, committed to SQLite).
Prints median and p95 in milliseconds and the ratio of each median to the baseline's. Not a test:
timings on a shared machine say nothing pass/fail.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import sop_bindings as sop

RT = "0190f5a0-0000-7000-8000-000000000001"
DC = "0190f5a0-0000-7000-8000-0000000000d1"


def timed(rounds: int, call: Callable[[int], object]) -> list[float]:
    out = []
    for i in range(rounds):
        start = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    with tempfile.TemporaryDirectory() as tmp:
        phone = sop.SopDevice.open(sop.DeviceConfig(
            db_path=str(Path(tmp) / "patient.sqlite3"), server_url="http://127.0.0.1:9",
            user_id="P1", role=sop.Role.PATIENT, token="offline", lang="en"))
        start = time.perf_counter()
        ids = [phone.create_case(RT, DC, sop.IntakeEdit(
            patient_age=30 + i % 50, patient_gender="female",
            medical_history=f"History of case {i}: " + "lorem ipsum " * 40,
            questions="Is surgery needed?"), False) for i in range(cases)]
        setup_s = time.perf_counter() - start
        scan = Path(tmp) / "scan.pdf"
        scan.write_bytes(b"%PDF-1.4\n% scan\n%%EOF\n")
        target = ids[cases // 2]
        phone.attach_document(target, str(scan), "scan.pdf", None, None)
        assert len(phone.list_cases()) == cases

        text = "Is surgery needed?"

        def type_char(i: int) -> None:
            nonlocal text
            text += "abcdefghij"[i % 10]
            phone.edit_intake(target, sop.IntakeEdit(questions=text))

        results = {
            "core_version() (baseline)": timed(rounds, lambda i: sop.core_version()),
            f"list_cases() ({cases} cases)": timed(rounds, lambda i: phone.list_cases()),
            "get_case(id)": timed(rounds, lambda i: phone.get_case(target)),
            "edit_intake: type one character": timed(rounds, type_char),
        }
        assert phone.intake(target).questions == text
    base = statistics.median(results["core_version() (baseline)"])
    print(f"store: {cases} cases created offline in {setup_s:.1f} s; {rounds} calls each")
    print(f"{'call':36} {'median ms':>10} {'p95 ms':>8} {'x baseline':>11}")
    for name, ms in results.items():
        p95 = statistics.quantiles(ms, n=20)[-1]
        med = statistics.median(ms)
        print(f"{name:36} {med:10.3f} {p95:8.3f} {med / base:11.0f}")


if __name__ == "__main__":
    main()
