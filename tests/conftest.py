"""Fixtures of the Python end-to-end tests: the real server, a fresh PostgreSQL database, phones.

The tests act as the mobile apps do: they load the Python module generated from
libsop_bindings.so (bindings/generate.sh puts both in target/bindings/python) and drive
`SopDevice` objects, each on its own SQLite file, against the real `sop-server` binary running as
a separate process on a PostgreSQL database created for the test and dropped after it. What no
phone does (the admin dashboard, the sandbox payment page) goes over HTTP with urllib, as a
browser or the dashboard would.

Run them with tests/run.sh, which builds and generates everything first.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest

REPO = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
SERVER_BIN = TARGET / "debug" / "sop-server"
BINDINGS_DIR = TARGET / "bindings" / "python"
DEFAULT_PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/test"

# How long background work (the server's outbox, a start-up) may take before a test fails.
DEADLINE = 20.0

if not (BINDINGS_DIR / "sop_bindings.py").exists() or not SERVER_BIN.exists():
    raise pytest.UsageError(
        f"{BINDINGS_DIR}/sop_bindings.py or {SERVER_BIN} is missing: run tests/run.sh "
        "(it builds the server, generates the bindings and then runs pytest)"
    )
sys.path.insert(0, str(BINDINGS_DIR))

import sop_bindings  # noqa: E402  (the path above must come first)

# The demo catalog `sop-server seed-demo` creates (server/src/seed.rs, README walk-through).
DEMO_RT = "0190f5a0-0000-7000-8000-000000000001"  # Standard review, 1500.00 SAR
DEMO_DC = "0190f5a0-0000-7000-8000-0000000000d1"  # Oncology
COORDINATOR = "EMP10"
SPECIALIST_1 = "EMP11"
SPECIALIST_2 = "EMP12"
ADMIN = "A1"
PATIENT = "P1"

T = TypeVar("T")


def eventually(what: str, probe: Callable[[], T | None], deadline: float = DEADLINE) -> T:
    """Calls `probe` until it returns something other than None/False; fails after `deadline`."""
    end = time.monotonic() + deadline
    last: Any = None
    while True:
        last = probe()
        if last is not None and last is not False:
            return last
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what} (last: {last!r})")
        time.sleep(0.05)


def clean_env() -> dict[str, str]:
    """The environment of server processes: no SOP_* setting leaks in from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOP_")}
    env["RUST_LOG"] = "info"
    return env


class ApiError(AssertionError):
    """An HTTP call that did not answer the success envelope."""


class Server:
    """The real `sop-server` binary as a child process, stoppable and restartable on one port.

    A phone keeps the same server URL across a stop/start, so "offline" is the server being
    down, exactly as on a real network.
    """

    def __init__(self, data_dir: Path, database_url: str):
        self.data_dir = data_dir
        self.database_url = database_url
        self.port: int | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = data_dir / "server.log"
        self._log_lock = threading.Lock()

    @property
    def url(self) -> str:
        assert self.port is not None, "server never started"
        return f"http://127.0.0.1:{self.port}"

    def _args(self, *args: str) -> list[str]:
        return [str(SERVER_BIN), *args, "--data-dir", str(self.data_dir),
                "--database-url", self.database_url]

    def start(self) -> None:
        """Starts `serve` (on a free port the first time, the same port after) and waits for
        `/health`."""
        assert self.proc is None, "already running"
        bind = f"127.0.0.1:{self.port or 0}"
        self.proc = subprocess.Popen(
            self._args("serve") + ["--bind", bind],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=clean_env(),
        )
        listening = threading.Event()
        proc = self.proc

        def pump() -> None:
            # Keeps the pipe drained (a full pipe would block the server) and reads the address.
            assert proc.stderr is not None
            with open(self.log_path, "a", encoding="utf-8") as log:
                for line in proc.stderr:
                    log.write(line)
                    log.flush()
                    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
                    if m and not listening.is_set():
                        self.port = int(m.group(1))
                        listening.set()

        threading.Thread(target=pump, daemon=True).start()
        if not listening.wait(DEADLINE):
            self.stop()
            pytest.fail(f"sop-server did not start; log:\n{self.logs()[-4000:]}")
        eventually("/health", lambda: self._health_ok())

    def _health_ok(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def logs(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def cli(self, *args: str) -> str:
        """Runs a `sop-server` subcommand against this server's data directory and database."""
        out = subprocess.run(self._args(*args), capture_output=True, text=True, env=clean_env(),
                             timeout=60)
        if out.returncode != 0:
            raise AssertionError(f"sop-server {args[0]} failed: {out.stderr}")
        return out.stdout

    def token(self, sub: str, aud: str) -> str:
        """A JWT minted by `sop-server token` with the server's own signing key."""
        token = self.cli("token", "--sub", sub, "--aud", aud).strip()
        assert token.count(".") == 2, f"not a JWT: {token!r}"
        return token

    def call(self, path: str, token: str | None, body: dict[str, Any] | None = None
             ) -> tuple[int, dict[str, Any]]:
        """`POST path` with a JSON body; (HTTP status, decoded envelope)."""
        data = json.dumps(body if body is not None else {}).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method="POST")
        req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw)
            except ValueError:
                return err.code, {"raw": raw.decode(errors="replace")}

    def ok(self, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
        """`POST path`, asserting the success envelope; its `data`."""
        status, env = self.call(path, token, body)
        if status != 200 or env.get("status") != 1000:
            raise ApiError(f"{path}: HTTP {status} {env}")
        return env.get("data")

    def press_sandbox(self, link: str, result: str = "success") -> int:
        """Presses Pay (`success`) or Fail (`failure`) on the sandbox payment page, as the
        browser form does; the page's HTTP status."""
        data = urllib.parse.urlencode({"result": result}).encode()
        req = urllib.request.Request(link, data=data, method="POST")
        req.add_header("content-type", "application/x-www-form-urlencoded")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status


def psql(admin_url: str, sql: str) -> None:
    """Runs one statement as the PostgreSQL admin; fails (never skips) when it cannot."""
    out = subprocess.run(["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(
            f"PostgreSQL is required (SOP_TEST_DATABASE_URL={admin_url}): {out.stderr.strip()}")


def with_database(url: str, name: str) -> str:
    """`url` with its database name replaced by `name`."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def database_url() -> Any:
    """A fresh PostgreSQL database, dropped after the test."""
    admin = os.environ.get("SOP_TEST_DATABASE_URL", DEFAULT_PG_ADMIN_URL)
    name = f"sop_py_{uuid.uuid4().hex}"
    psql(admin, f"CREATE DATABASE {name}")
    try:
        yield with_database(admin, name)
    finally:
        psql(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Keeps each phase's report on the item so fixtures can tell whether the test failed.
    outcome = yield
    setattr(item, f"rep_{call.when}", outcome.get_result())


@pytest.fixture
def server(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Any:
    """The real server on a fresh PostgreSQL database with the demo catalog, started."""
    srv = Server(tmp_path / "server", database_url)
    srv.data_dir.mkdir()
    srv.start()
    srv.cli("seed-demo")
    try:
        yield srv
    finally:
        srv.stop()
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(f"\n--- server log (last 6000 chars) ---\n{srv.logs()[-6000:]}")


class Phones:
    """Opens `SopDevice`s as phone apps do, each on its own SQLite file under the test's
    temporary directory. Opening the same name again is the app restarting."""

    def __init__(self, server: Server, root: Path):
        self.server = server
        self.root = root
        self._tokens: dict[tuple[str, str], str] = {}

    def db_path(self, name: str) -> Path:
        return self.root / f"{name}.sqlite3"

    def token(self, user_id: str, aud: str) -> str:
        key = (user_id, aud)
        if key not in self._tokens:
            self._tokens[key] = self.server.token(user_id, aud)
        return self._tokens[key]

    def open(self, name: str, user_id: str, role: sop_bindings.Role,
             server_url: str | None = None) -> sop_bindings.SopDevice:
        aud = "snr_usr" if role == sop_bindings.Role.PATIENT else "snr_pro"
        return sop_bindings.SopDevice.open(sop_bindings.DeviceConfig(
            db_path=str(self.db_path(name)),
            server_url=server_url or self.server.url,
            user_id=user_id,
            role=role,
            token=self.token(user_id, aud),
            lang="en",
        ))

    def patient(self, name: str = "patient", user_id: str = PATIENT) -> sop_bindings.SopDevice:
        return self.open(name, user_id, sop_bindings.Role.PATIENT)

    def doctor(self, user_id: str, name: str | None = None) -> sop_bindings.SopDevice:
        return self.open(name or f"doctor-{user_id}", user_id, sop_bindings.Role.DOCTOR)


@pytest.fixture
def phones(server: Server, tmp_path: Path) -> Phones:
    root = tmp_path / "phones"
    root.mkdir()
    return Phones(server, root)


@pytest.fixture
def admin(server: Server) -> str:
    """The admin's token."""
    return server.token(ADMIN, "snr_dash")


# A minimal PDF: the server and the device detect the type from these bytes.
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def write_file(dir_: Path, name: str, data: bytes) -> str:
    """Writes `data` to `dir_/name` (a file the user picks to attach); its path."""
    dir_.mkdir(parents=True, exist_ok=True)
    path = dir_ / name
    path.write_bytes(data)
    return str(path)


def sync_until(phone: sop_bindings.SopDevice, case_id: str, what: str,
               ready: Callable[[sop_bindings.CaseDetail], bool]) -> sop_bindings.CaseDetail:
    """Syncs `phone` until `ready(case)` holds for its copy of the case (server background work,
    such as the payment link or the report, lands a moment after the command)."""

    def probe() -> sop_bindings.CaseDetail | None:
        phone.sync()
        case = phone.get_case(case_id)
        return case if ready(case) else None

    return eventually(what, probe)


def pay(server: Server, admin: str, patient: sop_bindings.SopDevice, case_id: str) -> None:
    """The steps between a submitted case and a paid one: the admin assigns the coordinator
    over HTTP, the payment link reaches the patient's phone, the patient pays on the sandbox
    page, and the phone sees the case paid."""
    server.ok("/admin/assign-coordinator", admin, {"case_id": case_id, "doctor_id": COORDINATOR})
    case = sync_until(patient, case_id, "the payment link",
                      lambda c: c.card.payment_link is not None)
    assert case.status == "awaiting_payment"
    assert (case.card.amount, case.card.currency) == (150_000, "SAR")  # the demo review type
    assert case.card.payment_link is not None
    assert server.press_sandbox(case.card.payment_link) == 200
    sync_until(patient, case_id, "payment_successful", lambda c: c.status == "payment_successful")
