//! Robustness (issue #3): malformed JSON, bodies that are not objects, wrong types, invalid and
//! unknown ids, missing fields and oversized bodies sent to every JSON endpoint of the OpenAPI
//! table; bad multipart forms to the upload; forged, stale and garbage payment callbacks; bad
//! links and forms to the sandbox page; wrong methods everywhere.
//!
//! Each must get a 4xx answer that is our envelope (code 1002 or 2000) with a message naming
//! the problem — never a 500 — and leave the data as it was ([`surface::snapshot`]: every table
//! but the audit log, which records refused attempts by design, and the data directory's files).
//! After the bad requests, the endpoint's valid request must still succeed, so the refusals are
//! about the input, not a broken fixture.

use crate::case_flow::{PDF, PRICE};
use crate::surface::{
    self, Answer, Caller, Ctx, Fixture, Part, Req, Row, World, diff, prepare, prepare_with, row_of,
    send, served_endpoints, snapshot,
};
use chrono::{TimeDelta, Utc};
use serde_json::{Map, Value, json};
use sop_core::rules::Limits;
use sop_server::extract::JSON_BODY_LIMIT;
use sop_server::openapi::{Body, Endpoint, Field, Group, Method, Reply, Ty};
use sop_server::payments::sandbox::WEBHOOK_SECRET_FILE;
use sop_server::payments::signature;
use uuid::Uuid;

/// What a bad request must get.
#[derive(Clone, Debug)]
enum Want {
    /// This HTTP status, an envelope whose message contains every one of these texts.
    Status(u16, Vec<String>),
    /// Some 4xx envelope whose message names `field`, or a refusal of the core (whose
    /// message names the problem in its own words).
    Refused { field: String },
    /// 400 naming `field` — or, for a field serde reads through `#[serde(flatten)]` (which
    /// loses the field's name), saying which type was expected instead.
    WrongType { field: String },
    /// Some 4xx envelope (an id that names nothing: "Review type not found", a refusal, …).
    Any4xx,
    /// Exactly the "Case not found" of SPEC §8.
    CaseNotFound,
    /// A filter that matches nothing: 200 with an empty list (or a 4xx envelope).
    NothingOr4xx,
}

fn status(code: u16, mentions: &[&str]) -> Want {
    Want::Status(code, mentions.iter().map(|m| (*m).to_owned()).collect())
}

/// One bad request and what it must get.
struct Probe {
    label: String,
    req: Req,
    want: Want,
}

fn probe(label: impl Into<String>, req: Req, want: Want) -> Probe {
    Probe {
        label: label.into(),
        req,
        want,
    }
}

fn raw(content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Req {
    Req::Raw {
        content_type: content_type.map(str::to_owned),
        body: body.into(),
    }
}

const JSON: Option<&str> = Some("application/json");

/// The envelope code of an HTTP error status.
fn code_of(status: u16) -> u64 {
    if matches!(status, 401 | 403) {
        2000
    } else {
        1002
    }
}

/// Checks `answer` against `want`.
fn judge(answer: &Answer, want: &Want) -> Result<(), String> {
    if answer.status >= 500 {
        return Err(format!("a server error: {}", answer.describe()));
    }
    if let Want::NothingOr4xx = want
        && answer.status == 200
    {
        let data = answer.envelope().map(|e| &e["data"]);
        return match data {
            Some(Value::Array(items)) if items.is_empty() => Ok(()),
            _ => Err(format!(
                "an unknown id matched something: {}",
                answer.describe()
            )),
        };
    }
    if answer.envelope().is_none() {
        return Err(format!("not our envelope: {}", answer.describe()));
    }
    if !(400..500).contains(&answer.status) || answer.code() != code_of(answer.status) {
        return Err(format!("not a 4xx envelope: {}", answer.describe()));
    }
    let message = answer.message();
    if message.trim().is_empty() {
        return Err("an empty message".to_owned());
    }
    match want {
        Want::Status(code, mentions) => {
            if answer.status != *code {
                return Err(format!("expected HTTP {code}: {}", answer.describe()));
            }
            if let Some(missing) = mentions.iter().find(|m| !message.contains(m.as_str())) {
                return Err(format!(
                    "the message does not name {missing:?}: {message:?}"
                ));
            }
        }
        Want::Refused { field } => {
            if !message.contains(field.as_str()) && answer.refusal().is_empty() {
                return Err(format!("the message does not name `{field}`: {message:?}"));
            }
        }
        Want::WrongType { field } => {
            let typed = message.contains("invalid type") && message.contains("expected");
            if answer.status != 400 || !(message.contains(field.as_str()) || typed) {
                return Err(format!(
                    "not a 400 naming `{field}` or its type: {}",
                    answer.describe()
                ));
            }
        }
        Want::CaseNotFound => {
            if (answer.status, message, answer.refusal())
                != (404, "Case not found", "case_not_found")
            {
                return Err(format!("not \"Case not found\": {}", answer.describe()));
            }
        }
        Want::Any4xx | Want::NothingOr4xx => {}
    }
    Ok(())
}

/// Sends every probe to `uri` as `caller` on `world`; each must be judged right and leave the
/// data unchanged. The failures, labelled.
async fn run_probes(
    world: &World,
    method: Method,
    uri: &str,
    caller: Caller,
    headers: &[(&str, String)],
    probes: Vec<Probe>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for p in probes {
        let before = snapshot(world).await;
        let answer = send(world, method, uri, &p.req, caller, headers).await;
        let changed = diff(&before, &snapshot(world).await);
        let verdict = judge(&answer, &p.want).and_then(|()| {
            if changed.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "the data changed: {changed} ({})",
                    answer.describe()
                ))
            }
        });
        if let Err(problem) = verdict {
            failures.push(format!("{uri} [{}]: {problem}", p.label));
        }
    }
    failures
}

/// Every field of `endpoint`'s JSON body, the paging fields of a list included.
fn fields(endpoint: &Endpoint) -> Vec<Field> {
    let mut all = match endpoint.body {
        Body::Json(fields) => fields.to_vec(),
        _ => Vec::new(),
    };
    if endpoint.reply == Reply::Page {
        let page = |name| Field {
            name,
            ty: Ty::Int,
            required: false,
            doc: "",
        };
        all.extend([page("page"), page("size")]);
    }
    all
}

/// A value of the wrong JSON type for `ty`.
fn wrong_type(ty: Ty) -> Value {
    match ty {
        Ty::Str => json!([]),
        Ty::Uuid | Ty::DateTime | Ty::Enum(_) => json!(5),
        Ty::Int | Ty::Bool | Ty::Strs | Ty::Uuids | Ty::Object | Ty::Objects | Ty::File => {
            json!("x")
        }
    }
}

/// `valid` with `field` set to `value`.
fn with(valid: &Map<String, Value>, field: &str, value: Value) -> Req {
    let mut body = valid.clone();
    body.insert(field.to_owned(), value);
    Req::Json(Value::Object(body))
}

/// The body limit of an endpoint and how its 413 message names it.
struct BodyLimit {
    bytes: usize,
    named_as: String,
}

/// The body limit of `row`: the sync API reads larger bodies than the rest of the API.
fn body_limit(row: &Row, world: &World) -> BodyLimit {
    if Group::of(row.path) == Group::Sync {
        let bytes = world.flow.state.settings.sync.max_body_bytes;
        BodyLimit {
            bytes,
            named_as: format!("{bytes} bytes"),
        }
    } else {
        BodyLimit {
            bytes: JSON_BODY_LIMIT,
            named_as: "1 MiB".to_owned(),
        }
    }
}

/// The bad requests for a JSON endpoint whose valid body is `valid`.
fn json_probes(row: &Row, valid: &Map<String, Value>, limit: &BodyLimit) -> Vec<Probe> {
    let endpoint = row.endpoint();
    let valid_text = Value::Object(valid.clone()).to_string();
    let positional: Vec<Value> = valid.values().cloned().collect();
    let mut probes = vec![
        probe(
            "malformed JSON",
            raw(JSON, r#"{"case_id":"#),
            status(400, &["JSON"]),
        ),
        probe(
            "an empty array",
            Req::Json(json!([])),
            status(400, &["object"]),
        ),
        probe(
            "the fields as an array",
            Req::Json(Value::Array(positional)),
            status(400, &["object"]),
        ),
        probe("null", Req::Json(Value::Null), status(400, &["object"])),
        probe("a number", Req::Json(json!(5)), status(400, &["object"])),
        probe(
            "a string",
            Req::Json(json!("hello")),
            status(400, &["object"]),
        ),
        probe(
            "no content type",
            raw(None, valid_text.clone()),
            status(400, &["Content-Type"]),
        ),
        probe(
            "a text content type",
            raw(Some("text/plain"), valid_text),
            status(400, &["Content-Type"]),
        ),
        probe(
            format!("over {} bytes", limit.bytes),
            with(valid, "padding", json!("x".repeat(limit.bytes))),
            status(413, &[&limit.named_as]),
        ),
    ];
    let all = fields(endpoint);
    for field in &all {
        probes.push(probe(
            format!("{} of the wrong type", field.name),
            with(valid, field.name, wrong_type(field.ty)),
            Want::WrongType {
                field: field.name.to_owned(),
            },
        ));
        if field.ty == Ty::Uuid {
            probes.push(probe(
                format!("{} not a UUID", field.name),
                with(valid, field.name, json!("not-a-uuid")),
                status(400, &[field.name]),
            ));
        }
        if field.required {
            let mut body = valid.clone();
            body.remove(field.name);
            probes.push(probe(
                format!("{} missing", field.name),
                Req::Json(Value::Object(body)),
                Want::Refused {
                    field: field.name.to_owned(),
                },
            ));
        }
    }
    if all.iter().any(|f| f.required) {
        probes.push(probe(
            "an empty object",
            Req::Json(json!({})),
            // serde's "missing field `…`", or the core's refusal.
            Want::Refused {
                field: "missing".to_owned(),
            },
        ));
    }
    probes.extend(unknown_id_probes(row, valid, &all));
    probes
}

/// The ids a client makes up for something new: a new case, a new device.
const CLIENT_IDS: [(&str, &str); 2] = [
    ("/app/create-case", "case_id"),
    ("/sync/v1/push", "device_id"),
];

/// Ids that name nothing: a random UUID in every id field the valid body sends, and an unknown
/// doctor in a command about a case.
fn unknown_id_probes(row: &Row, valid: &Map<String, Value>, all: &[Field]) -> Vec<Probe> {
    let mut probes = Vec::new();
    let endpoint = row.endpoint();
    for field in all.iter().filter(|f| f.ty == Ty::Uuid) {
        // A client-made id names something new, not something unknown.
        if CLIENT_IDS.contains(&(row.path, field.name)) {
            continue;
        }
        if !valid.contains_key(field.name) {
            continue;
        }
        let want = if field.name == "case_id" && (field.required || row.case_bound()) {
            Want::CaseNotFound
        } else if endpoint.reply == Reply::Page {
            Want::NothingOr4xx
        } else {
            Want::Any4xx
        };
        probes.push(probe(
            format!("{} unknown", field.name),
            with(valid, field.name, json!(Uuid::new_v4())),
            want,
        ));
    }
    if valid.contains_key("case_id") && valid.contains_key("doctor_id") {
        probes.push(probe(
            "doctor_id unknown",
            with(valid, "doctor_id", json!("NOBODY")),
            Want::Any4xx,
        ));
    }
    probes
}

/// Runs the JSON probes on every JSON endpoint of `group`, then its valid request.
async fn check_json_endpoints(group: Group) {
    let mut failures = Vec::new();
    let mut checked = 0;
    for endpoint in served_endpoints().filter(|e| Group::of(e.path) == group) {
        if !matches!(endpoint.body, Body::Json(_) | Body::Empty) || endpoint.method != Method::Post
        {
            continue;
        }
        let row = row_of(endpoint).unwrap_or_else(|| panic!("{}: no row", endpoint.path));
        let world = prepare(row.fixture).await;
        let Req::Json(Value::Object(valid)) = (row.request)(&world.ctx) else {
            panic!("{}: the valid request is not a JSON object", row.path);
        };
        let caller = row.allowed_caller();
        let uri = row.uri(&world.ctx);
        let probes = json_probes(&row, &valid, &body_limit(&row, &world));
        failures.extend(run_probes(&world, Method::Post, &uri, caller, &[], probes).await);
        let answer = send(
            &world,
            Method::Post,
            &uri,
            &Req::Json(Value::Object(valid)),
            caller,
            &[],
        )
        .await;
        if answer.status != 200 {
            failures.push(format!(
                "{uri}: the valid request fails after the probes: {}",
                answer.describe()
            ));
        }
        checked += 1;
    }
    assert!(checked > 0, "no JSON endpoint in {group:?}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn patients_json_endpoints_refuse_bad_input_and_change_nothing() {
    check_json_endpoints(Group::App).await;
}

#[tokio::test]
async fn doctors_json_endpoints_refuse_bad_input_and_change_nothing() {
    check_json_endpoints(Group::Pro).await;
}

#[tokio::test]
async fn dashboard_json_endpoints_refuse_bad_input_and_change_nothing() {
    check_json_endpoints(Group::Admin).await;
}

#[tokio::test]
async fn job_triggers_refuse_bad_input_and_change_nothing() {
    check_json_endpoints(Group::Scheduler).await;
}

#[tokio::test]
async fn sync_endpoints_refuse_bad_input_and_change_nothing() {
    check_json_endpoints(Group::Sync).await;
}

// ----- The upload ----------------------------------------------------------------------------

/// The per-file limit of the upload probes: small, so an oversized file is cheap to send.
const SMALL_FILE_LIMIT: i64 = 64 * 1024;

#[tokio::test]
async fn the_upload_refuses_bad_forms_and_changes_nothing() {
    let limits = Limits {
        max_file_bytes: SMALL_FILE_LIMIT,
        ..Limits::default()
    };
    let world = prepare_with(Fixture::Draft, limits).await;
    let case_id = world.ctx.case_id.to_string();
    let case = || Part::text("case_id", &case_id);
    let pdf = || Part::file("file", "scan.pdf", PDF);
    let mut oversized = PDF.to_vec();
    oversized.resize(usize::try_from(SMALL_FILE_LIMIT).unwrap() + 1, b' ');
    let probes = vec![
        probe(
            "no file field",
            Req::Multipart(vec![case()]),
            status(400, &["file"]),
        ),
        probe(
            "a text file named .pdf",
            Req::Multipart(vec![
                case(),
                Part::file("file", "scan.pdf", b"just some text\n"),
            ]),
            status(400, &["file type"]),
        ),
        probe(
            "an empty file",
            Req::Multipart(vec![case(), Part::file("file", "scan.pdf", b"")]),
            status(400, &["empty"]),
        ),
        probe(
            "a file over the limit",
            Req::Multipart(vec![case(), Part::file("file", "big.pdf", &oversized)]),
            status(413, &["65536 bytes"]),
        ),
        probe(
            "two files",
            Req::Multipart(vec![case(), pdf(), pdf()]),
            status(400, &["file"]),
        ),
        probe(
            "no case_id",
            Req::Multipart(vec![pdf()]),
            status(400, &["case_id"]),
        ),
        probe(
            "case_id not a UUID",
            Req::Multipart(vec![Part::text("case_id", "not-a-uuid"), pdf()]),
            status(400, &["case_id"]),
        ),
        probe(
            "case_id of 2 KiB",
            Req::Multipart(vec![Part::text("case_id", &"7".repeat(2048)), pdf()]),
            status(400, &["case_id"]),
        ),
        probe(
            "case_id unknown",
            Req::Multipart(vec![
                Part::text("case_id", &Uuid::new_v4().to_string()),
                pdf(),
            ]),
            Want::CaseNotFound,
        ),
        probe(
            "request_id not a UUID",
            Req::Multipart(vec![case(), Part::text("request_id", "nope"), pdf()]),
            status(400, &["request_id"]),
        ),
        probe(
            "request_id unknown",
            Req::Multipart(vec![
                case(),
                Part::text("request_id", &Uuid::new_v4().to_string()),
                pdf(),
            ]),
            status(404, &["request"]),
        ),
        probe(
            "a JSON body",
            Req::Json(json!({"case_id": case_id, "file": "JVBERi0xLjc="})),
            status(400, &["multipart"]),
        ),
        probe(
            "multipart without a boundary",
            raw(
                Some("multipart/form-data"),
                surface::multipart_body(&[case(), pdf()]),
            ),
            status(400, &["boundary"]),
        ),
        probe(
            "garbage under a multipart content type",
            raw(
                Some(&format!(
                    "multipart/form-data; boundary={}",
                    surface::BOUNDARY
                )),
                b"\x00\x01garbage without any boundary".to_vec(),
            ),
            status(400, &[]),
        ),
        probe("no body", raw(None, Vec::new()), status(400, &[])),
    ];
    let uri = "/app/upload-document";
    let mut failures = run_probes(&world, Method::Post, uri, Caller::Owner, &[], probes).await;
    let answer = send(
        &world,
        Method::Post,
        uri,
        &Req::Multipart(vec![case(), pdf()]),
        Caller::Owner,
        &[],
    )
    .await;
    if answer.status != 200 {
        failures.push(format!("the valid upload fails: {}", answer.describe()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ----- The payment callback ------------------------------------------------------------------

/// How a test callback is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// No signature header.
    None,
    /// With the sandbox's webhook secret, now.
    Valid,
    /// With another secret.
    Forged,
    /// With the right secret over another body.
    OtherBody,
    /// With the right secret, six minutes ago.
    Stale,
    /// With the right secret, six minutes from now.
    Future,
    /// A header that is not `t=…,v1=…`.
    Malformed,
}

fn webhook_secret(world: &World) -> Vec<u8> {
    let path = world.flow.state.settings.data_dir.join(WEBHOOK_SECRET_FILE);
    std::fs::read_to_string(path)
        .expect("sandbox secret")
        .trim()
        .as_bytes()
        .to_vec()
}

/// The `x-sop-signature` header for `body`, signed as `signing` says.
fn signature_header(world: &World, body: &[u8], signing: Signing) -> Option<String> {
    let secret = webhook_secret(world);
    let now = Utc::now();
    let sign = |secret: &[u8], at: chrono::DateTime<Utc>, body: &[u8]| {
        signature::header_value(secret, at.timestamp(), body)
    };
    match signing {
        Signing::None => None,
        Signing::Valid => Some(sign(&secret, now, body)),
        Signing::Forged => Some(sign(b"not-the-secret", now, body)),
        Signing::OtherBody => Some(sign(&secret, now, b"{}")),
        Signing::Stale => Some(sign(&secret, now - TimeDelta::minutes(6), body)),
        Signing::Future => Some(sign(&secret, now + TimeDelta::minutes(6), body)),
        Signing::Malformed => Some("sha256=deadbeef".to_owned()),
    }
}

/// Posts `body` to the payment callback, signed as `signing` says.
pub async fn post_callback(world: &World, body: &Value, signing: Signing) -> Answer {
    post_raw_callback(world, body.to_string().as_bytes(), signing).await
}

async fn post_raw_callback(world: &World, body: &[u8], signing: Signing) -> Answer {
    let headers = callback_headers(world, body, signing);
    let req = raw(JSON, body.to_vec());
    send(
        world,
        Method::Post,
        "/payments/callback",
        &req,
        Caller::NoToken,
        &headers,
    )
    .await
}

fn callback_headers(world: &World, body: &[u8], signing: Signing) -> Vec<(&'static str, String)> {
    signature_header(world, body, signing)
        .map(|h| vec![(signature::HEADER, h)])
        .unwrap_or_default()
}

#[tokio::test]
async fn forged_stale_and_garbage_callbacks_are_refused_and_change_nothing() {
    let world = prepare(Fixture::AwaitingPayment).await;
    let ctx: &Ctx = &world.ctx;
    let good = surface::callback_body(ctx, "success");
    let mut bodies: Vec<(String, Vec<u8>, Signing, Want)> = Vec::new();
    let unsigned = status(401, &["signature"]);
    for signing in [
        Signing::None,
        Signing::Forged,
        Signing::OtherBody,
        Signing::Stale,
        Signing::Future,
        Signing::Malformed,
    ] {
        let label = format!("a valid body, signature {signing:?}");
        bodies.push((
            label,
            good.to_string().into_bytes(),
            signing,
            unsigned.clone(),
        ));
    }
    let garbage = b"\x00\xffnot json at all".to_vec();
    bodies.push((
        "garbage, unsigned".into(),
        garbage.clone(),
        Signing::None,
        unsigned.clone(),
    ));
    bodies.push((
        "garbage, signed".into(),
        garbage,
        Signing::Valid,
        status(400, &["JSON"]),
    ));
    let signed = |label: &str, body: Value, want: Want| {
        (
            label.to_owned(),
            body.to_string().into_bytes(),
            Signing::Valid,
            want,
        )
    };
    let mut patched = |field: &str, value: Value, want: Want| {
        let mut body = good.clone();
        body[field] = value;
        bodies.push(signed(
            &format!("signed, {field} = {}", body[field]),
            body,
            want,
        ));
    };
    patched("status", json!("maybe"), status(400, &["status"]));
    patched("payment_id", json!(5), status(400, &["JSON"]));
    patched("amount", json!("a lot"), status(400, &["JSON"]));
    patched("amount", json!(PRICE - 1), status(400, &["amount"]));
    patched("currency", json!("USD"), status(400, &["currency"]));
    bodies.push(signed(
        "signed, an array",
        json!([good.clone()]),
        status(400, &["JSON"]),
    ));
    let big = json!({"payment_id": ctx.payment_id, "padding": "x".repeat(JSON_BODY_LIMIT)});
    bodies.push(signed("signed, over 1 MiB", big, status(413, &["1 MiB"])));

    let mut failures = Vec::new();
    for (label, body, signing, want) in bodies {
        let headers = callback_headers(&world, &body, signing);
        let p = probe(label, raw(JSON, body), want);
        failures.extend(
            run_probes(
                &world,
                Method::Post,
                "/payments/callback",
                Caller::NoToken,
                &headers,
                vec![p],
            )
            .await,
        );
    }
    let answer = post_callback(&world, &good, Signing::Valid).await;
    if answer.status != 200 {
        failures.push(format!("the valid callback fails: {}", answer.describe()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ----- The sandbox page ----------------------------------------------------------------------

#[tokio::test]
async fn the_sandbox_page_refuses_bad_links_and_forms_without_a_server_error() {
    let world = prepare(Fixture::AwaitingPayment).await;
    let link = format!("/sandbox/pay/{}", world.ctx.payment_id);
    let unknown = format!("/sandbox/pay/{}", Uuid::new_v4());
    let cases: Vec<(&str, Method, String, Req, u16)> = vec![
        (
            "unknown payment",
            Method::Get,
            unknown.clone(),
            Req::Get,
            404,
        ),
        (
            "not a UUID",
            Method::Get,
            "/sandbox/pay/not-a-uuid".into(),
            Req::Get,
            404,
        ),
        (
            "pay an unknown payment",
            Method::Post,
            unknown,
            Req::Form("result=success"),
            404,
        ),
        ("no result", Method::Post, link.clone(), Req::Form(""), 400),
        (
            "a made-up result",
            Method::Post,
            link.clone(),
            Req::Form("result=maybe"),
            400,
        ),
        (
            "a JSON body",
            Method::Post,
            link.clone(),
            Req::Json(json!({"result": "success"})),
            400,
        ),
        (
            "over 1 MiB",
            Method::Post,
            link,
            raw(
                Some("application/x-www-form-urlencoded"),
                format!("result=success&padding={}", "x".repeat(JSON_BODY_LIMIT)),
            ),
            413,
        ),
    ];
    let mut failures = Vec::new();
    for (label, method, uri, req, want) in cases {
        let before = snapshot(&world).await;
        let answer = send(&world, method, &uri, &req, Caller::NoToken, &[]).await;
        let changed = diff(&before, &snapshot(&world).await);
        // The sandbox answers pages, not envelopes: a payer's browser shows them.
        if answer.status != want || !changed.is_empty() {
            failures.push(format!(
                "{label}: expected {want}, got {} (data changes: {changed:?})",
                answer.describe()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ----- Methods and paths ---------------------------------------------------------------------

#[tokio::test]
async fn wrong_methods_and_unknown_paths_answer_an_envelope() {
    let world = prepare(Fixture::Catalog).await;
    let mut failures = Vec::new();
    for endpoint in served_endpoints() {
        let path = surface::fill_path(endpoint.path, &world.ctx);
        let documented =
            |m: Method| served_endpoints().any(|e| e.path == endpoint.path && e.method == m);
        for method in [Method::Get, Method::Post] {
            if documented(method) {
                continue;
            }
            let p = probe(format!("{method:?}"), Req::Get, status(405, &[]));
            failures.extend(run_probes(&world, method, &path, Caller::Admin, &[], vec![p]).await);
        }
    }
    for path in [
        "/app/no-such-endpoint",
        "/nowhere",
        "/pro/",
        "/admin/case-details/x",
    ] {
        let p = probe("unknown path", Req::Json(json!({})), status(404, &[]));
        failures.extend(run_probes(&world, Method::Post, path, Caller::Admin, &[], vec![p]).await);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
