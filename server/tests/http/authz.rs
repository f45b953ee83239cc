//! The authorization matrix (SPEC §8, issue #3): every served endpoint of the OpenAPI table is
//! called by every kind of caller of [`CALLERS`] and must answer what its row of
//! [`surface::rows`] says — 401 without a usable token, 403 for another group's token or the
//! wrong role on the case, 404 "Case not found" for a patient or doctor not on the case
//! (byte for byte the answer for a case that does not exist), 200 where allowed.
//!
//! Each row starts from a fresh copy of its fixture. Refused calls must leave it unchanged (the
//! audit log aside, which records them); allowed calls then run on it, on a fresh copy again
//! after one that changed the data, so each finds the state its fixture describes.

use crate::surface::{
    self, Answer, CALLERS, Caller, Ctx, Expect, Req, Row, World, diff, prepare, row_of, send,
    served_endpoints, snapshot,
};
use serde_json::{Value, json};
use sop_server::auth::Audience;
use sop_server::openapi::{Group, Method, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

#[test]
fn every_served_endpoint_has_exactly_one_row() {
    let rows = surface::rows();
    let mut problems = Vec::new();
    for endpoint in served_endpoints() {
        let count = rows
            .iter()
            .filter(|r| r.method == endpoint.method && r.path == endpoint.path)
            .count();
        if count != 1 {
            problems.push(format!("{} has {count} rows", endpoint.path));
        }
    }
    for row in &rows {
        // Panics for a row whose endpoint is not documented.
        let endpoint = row.endpoint();
        assert!(!Group::of(endpoint.path).planned(), "{}", row.path);
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn patients_endpoints_answer_each_caller_as_spec_8_says() {
    check_groups(&[Group::App]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn doctors_endpoints_answer_each_caller_as_spec_8_says() {
    check_groups(&[Group::Pro]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_endpoints_answer_each_caller_as_spec_8_says() {
    check_groups(&[Group::Admin]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_endpoints_answer_each_caller_as_spec_8_says() {
    check_groups(&[Group::Sync]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_payments_sandbox_and_ops_answer_each_caller_as_spec_8_says() {
    check_groups(&[
        Group::Scheduler,
        Group::Payments,
        Group::Sandbox,
        Group::Ops,
    ])
    .await;
}

/// Runs the matrix for every served endpoint of `groups`, the rows side by side, reporting every
/// wrong cell at once.
async fn check_groups(groups: &[Group]) {
    let mut failures = Vec::new();
    let mut rows = tokio::task::JoinSet::new();
    for endpoint in served_endpoints().filter(|e| groups.contains(&Group::of(e.path))) {
        match row_of(endpoint) {
            Some(row) => {
                rows.spawn(async move { check_row(&row).await });
            }
            None => failures.push(format!("{}: no row in surface::rows", endpoint.path)),
        }
    }
    assert!(!rows.is_empty(), "no endpoint in {groups:?}");
    while let Some(result) = rows.join_next().await {
        failures.extend(result.expect("a row's check panicked"));
    }
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} wrong cells:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

async fn check_row(row: &Row) -> Vec<String> {
    let mut world = prepare(row.fixture).await;
    let mut failures = Vec::new();
    let mut report = |caller: Caller, expect: Expect, result: Result<(), String>| {
        if let Err(problem) = result {
            failures.push(format!(
                "{:?} {} as {caller:?} (expected {expect:?}): {problem}",
                row.method, row.path
            ));
        }
    };
    let cells = || CALLERS.into_iter().zip(row.expect);
    // Refusals first: each must leave the world as it was, so they can share it.
    for (caller, expect) in cells().filter(|(_, e)| *e != Expect::Ok) {
        report(
            caller,
            expect,
            check_refused(row, &world, caller, expect).await,
        );
    }
    // Then the allowed calls, each on the state the row's fixture describes: a fresh world once
    // an allowed call has changed the data (reads leave it as it was and can share it).
    let mut changed = false;
    for (caller, expect) in cells().filter(|(_, e)| *e == Expect::Ok) {
        if changed {
            world = prepare(row.fixture).await;
        }
        let before = snapshot(&world).await;
        report(caller, expect, check_allowed(row, &world, caller).await);
        changed = !before.same_data(&snapshot(&world).await);
    }
    failures
}

/// The status line the row's WebSocket upgrade gets as `caller`. Over a real socket: a request
/// in process has no connection to upgrade.
async fn upgrade_status(row: &Row, world: &World, caller: Caller) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let app = sop_server::app(world.flow.state.clone());
    let server = tokio::spawn(sop_server::serve_until_signal(
        listener,
        app,
        std::future::pending(),
    ));
    let mut request = format!("GET {} HTTP/1.1\r\nHost: {addr}\r\n", row.uri(&world.ctx));
    for (name, value) in surface::UPGRADE_HEADERS {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(auth) = caller.authorization(world, row.path) {
        request.push_str(&format!("authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") && stream.read(&mut byte).await.expect("read") == 1 {
        head.push(byte[0]);
    }
    server.abort();
    String::from_utf8_lossy(&head).trim().to_owned()
}

/// Sends the row's request for `ctx` as `caller`, with `headers` added.
async fn call(
    row: &Row,
    world: &World,
    ctx: &Ctx,
    caller: Caller,
    headers: &[(&str, String)],
) -> Answer {
    let req = (row.request)(ctx);
    send(world, row.method, &row.uri(ctx), &req, caller, headers).await
}

/// The world's ids with a case id that does not exist.
fn missing_case(world: &World) -> Ctx {
    Ctx {
        case_id: Uuid::new_v4(),
        ..world.ctx.clone()
    }
}

/// The answer about an existing case must be the answer about a missing one, byte for byte.
fn indistinguishable(existing: &Answer, missing: &Answer) -> Result<(), String> {
    if (existing.status, &existing.content_type, &existing.bytes)
        != (missing.status, &missing.content_type, &missing.bytes)
    {
        return Err(format!(
            "reveals the case exists: {} vs. for a missing case {}",
            existing.describe(),
            missing.describe()
        ));
    }
    Ok(())
}

async fn check_allowed(row: &Row, world: &World, caller: Caller) -> Result<(), String> {
    if row.endpoint().reply == Reply::Socket {
        let status = upgrade_status(row, world, caller).await;
        return if status.starts_with("HTTP/1.1 101") {
            Ok(())
        } else {
            Err(format!("no upgrade: {status}"))
        };
    }
    let answer = call(row, world, &world.ctx, caller, &[]).await;
    let fail = |why: &str| Err(format!("{why}: {}", answer.describe()));
    if answer.status != 200 {
        return fail("not 200");
    }
    match row.endpoint().reply {
        Reply::Data | Reply::Page if answer.code() != 1000 => fail("not a success envelope"),
        Reply::Page if answer.envelope().is_some_and(|e| e["pagination"].is_null()) => {
            fail("a list without pagination")
        }
        Reply::Pdf if answer.content_type != "application/pdf" => fail("not a PDF"),
        Reply::File if answer.bytes != crate::case_flow::PDF => fail("not the document"),
        Reply::Html if !answer.content_type.starts_with("text/html") => fail("not a page"),
        Reply::RawJson if answer.json.as_ref().is_none_or(|d| d["openapi"] != "3.1.0") => {
            fail("not the OpenAPI document")
        }
        _ => Ok(()),
    }
}

async fn check_refused(
    row: &Row,
    world: &World,
    caller: Caller,
    expect: Expect,
) -> Result<(), String> {
    let before = snapshot(world).await;
    let answer = call(row, world, &world.ctx, caller, &[]).await;
    let changed = diff(&before, &snapshot(world).await);
    if !changed.is_empty() {
        return Err(format!("a refused call changed the data: {changed}"));
    }
    let (status, code) = match expect {
        Expect::Unauthorized => (401, 2000),
        Expect::WrongAudience | Expect::Forbidden => (403, 2000),
        Expect::CaseNotFound => (404, 1002),
        Expect::Ok => unreachable!("allowed calls are checked apart"),
    };
    if (answer.status, answer.code()) != (status, code) {
        return Err(format!("got {}", answer.describe()));
    }
    let message = answer.message();
    let right_reason = match expect {
        Expect::Unauthorized => !message.is_empty(),
        Expect::WrongAudience => message.contains("audience"),
        Expect::Forbidden => answer.refusal() == "forbidden",
        Expect::CaseNotFound => message == "Case not found" && answer.refusal() == "case_not_found",
        Expect::Ok => true,
    };
    if !right_reason {
        return Err(format!("wrong reason: {}", answer.describe()));
    }
    if expect == Expect::CaseNotFound {
        let missing = call(row, world, &missing_case(world), caller, &[]).await;
        indistinguishable(&answer, &missing)?;
    }
    Ok(())
}

/// A doctor removed from a case, and a doctor of a closed case, learn nothing either: every
/// case-bound doctor endpoint answers them exactly as for a case id that does not exist.
#[tokio::test]
async fn removed_doctors_and_doctors_of_closed_cases_cannot_tell_the_case_exists() {
    let removed = prepare(surface::Fixture::Assigned).await;
    removed
        .flow
        .post(
            "/pro/unassign-doctor",
            &removed.flow.doctor(surface::COORDINATOR),
            json!({"case_id": removed.ctx.case_id, "doctor_id": "S2"}),
        )
        .await
        .data();
    let closed = prepare(surface::Fixture::Assigned).await;
    closed
        .flow
        .post(
            "/app/cancel-case",
            &closed.flow.patient(surface::OWNER),
            json!({"case_id": closed.ctx.case_id, "reason": "Changed my mind"}),
        )
        .await
        .data();
    let mut failures = Vec::new();
    let rows = surface::rows();
    let pro = rows
        .iter()
        .filter(|r| Group::of(r.path) == Group::Pro && r.case_bound());
    for row in pro {
        for (world, doctor, label) in [
            (&removed, "S2", "removed doctor"),
            (
                &closed,
                surface::SPECIALIST,
                "specialist of a cancelled case",
            ),
            (
                &closed,
                surface::COORDINATOR,
                "coordinator of a cancelled case",
            ),
        ] {
            if let Err(problem) = hidden_from(row, world, doctor).await {
                failures.push(format!("{} for the {label}: {problem}", row.path));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `doctor` calling `row` on the world's case gets exactly the "Case not found" of a case that
/// does not exist.
async fn hidden_from(row: &Row, world: &World, doctor: &str) -> Result<(), String> {
    let headers = [(
        "authorization",
        format!("Bearer {}", world.token(doctor, Audience::Doctor)),
    )];
    let existing = call(row, world, &world.ctx, Caller::NoToken, &headers).await;
    if existing.status != 404 || existing.message() != "Case not found" {
        return Err(format!("not hidden: {}", existing.describe()));
    }
    let missing = call(row, world, &missing_case(world), Caller::NoToken, &headers).await;
    indistinguishable(&existing, &missing)
}

/// The callback's 401s in the matrix are about the signature: the same body, properly signed,
/// is accepted with no token at all.
#[tokio::test]
async fn a_signed_callback_is_accepted_without_any_token() {
    let world = prepare(surface::Fixture::AwaitingPayment).await;
    let body = surface::callback_body(&world.ctx, "success");
    let answer =
        crate::robustness::post_callback(&world, &body, crate::robustness::Signing::Valid).await;
    assert_eq!(
        (answer.status, answer.code()),
        (200, 1000),
        "{}",
        answer.describe()
    );
    let data: &Value = &answer.json.as_ref().expect("JSON")["data"];
    assert_eq!(data["result"], "processed");
}

/// The sync API keeps SPEC §8 too: a command pushed on a case the user may not see is refused
/// exactly as one on a case that does not exist, and a first pull shows nothing of it.
#[tokio::test]
async fn sync_users_not_on_a_case_can_neither_act_on_it_nor_see_it() {
    let world = prepare(surface::Fixture::Assigned).await;
    let mut failures = Vec::new();
    for caller in [Caller::OtherPatient, Caller::OtherDoctor] {
        let mut outcomes = Vec::new();
        for case_id in [world.ctx.case_id, Uuid::new_v4()] {
            let op = json!({"type": "command", "op_id": Uuid::now_v7(), "case_id": case_id,
                            "command": {"type": "cancel", "reason": "Not mine"}});
            let push = json!({"device_id": surface::DEVICE, "ops": [op]});
            let answer = send(
                &world,
                Method::Post,
                "/sync/v1/push",
                &Req::Json(push),
                caller,
                &[],
            )
            .await;
            let mut result = answer
                .envelope()
                .map(|e| e["data"]["results"][0].clone())
                .unwrap_or_default();
            // The op's own id differs by construction; everything else must not.
            if let Some(result) = result.as_object_mut() {
                result.remove("op_id");
            }
            outcomes.push(result);
        }
        if outcomes[0]["code"] != "case_not_found" || outcomes[0] != outcomes[1] {
            failures.push(format!(
                "{caller:?} pushing on a hidden case vs. a missing one: {outcomes:?}"
            ));
        }
        let pull = Req::Json(json!({"cursor": 0}));
        let answer = send(&world, Method::Post, "/sync/v1/pull", &pull, caller, &[]).await;
        let text = String::from_utf8_lossy(&answer.bytes);
        if answer.status != 200 || text.contains(&world.ctx.case_id.to_string()) {
            failures.push(format!(
                "{caller:?}'s first pull shows the case: {}",
                answer.describe()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
