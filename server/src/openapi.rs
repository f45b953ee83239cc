//! The OpenAPI 3.1 document of the whole HTTP surface (SPEC §10), served at `GET /openapi.json`
//! and printed by `sop-server openapi`.
//!
//! The surface is written once, as data: [`ENDPOINTS`] lists every path with its method, a
//! summary, the request fields and the kind of reply; [`document`] turns the table into JSON. The
//! audience (security scheme and tag) follows from the path prefix ([`Group::of`]). An endpoint
//! of a group listed in [`PLANNED`] is specified but not served yet and marked `x-sop-planned`
//! (none is, since the sync API is served).
//!
//! Adding an endpoint: add its row here with the route. A test compares this table with the
//! routes in `router.rs` and `handlers/`, so a route missing from the document fails the build's
//! tests.

use Body::{Form, Json, Multipart, Octets, Query};
use Reply::{Data, Page};
use Ty::{Bool, DateTime, Enum, File, Int, Object, Objects, Str, Strs, Uuid, Uuids};
use serde_json::{Map, Value, json};

/// HTTP methods used by the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    /// Only the resumable upload appends with it.
    Patch,
}

impl Method {
    /// The lowercase name, as OpenAPI keys operations.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Patch => "patch",
        }
    }
}

/// The type of a request field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Str,
    Uuid,
    Int,
    Bool,
    DateTime,
    /// A list of strings (user ids, requested document items).
    Strs,
    Uuids,
    Enum(&'static [&'static str]),
    /// One JSON object (its shape in the description).
    Object,
    Objects,
    /// A file part of a multipart body.
    File,
}

/// One request field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub doc: &'static str,
}

/// A required field.
const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
        doc: "",
    }
}

/// An optional field.
const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
        doc: "",
    }
}

impl Field {
    /// The same field with a description.
    const fn doc(self, doc: &'static str) -> Field {
        Field { doc, ..self }
    }
}

/// The request body of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// No body (GET), or an optional empty JSON object (POST).
    Empty,
    Json(&'static [Field]),
    Multipart(&'static [Field]),
    Form(&'static [Field]),
    /// Raw bytes (`application/octet-stream`): a chunk of a resumable upload.
    Octets,
    /// No body; the fields are query parameters (a GET a browser or a printed link can make).
    Query(&'static [Field]),
}

/// What an endpoint answers on success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The envelope with `data`.
    Data,
    /// The envelope with a list in `data` and `pagination`; `page` and `size` are added to the
    /// request fields.
    Page,
    /// A PDF, or a 409 envelope while it is not ready.
    Pdf,
    /// The bytes of a stored document with their content type.
    File,
    /// An HTML page (the sandbox).
    Html,
    /// A JSON document that is not an envelope (this document).
    RawJson,
    /// A WebSocket carrying "pull now" hints.
    Socket,
    /// Prometheus metrics in the text exposition format.
    Metrics,
}

/// One endpoint of the surface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    pub body: Body,
    pub reply: Reply,
}

impl Endpoint {
    /// Whether the endpoint is specified but not served yet (its group is [`PLANNED`]).
    pub fn planned(&self) -> bool {
        Group::of(self.path).planned()
    }
}

const fn post(path: &'static str, summary: &'static str, body: Body, reply: Reply) -> Endpoint {
    Endpoint {
        method: Method::Post,
        path,
        summary,
        body,
        reply,
    }
}

const fn patch(path: &'static str, summary: &'static str, body: Body, reply: Reply) -> Endpoint {
    Endpoint {
        method: Method::Patch,
        path,
        summary,
        body,
        reply,
    }
}

const fn get_with(path: &'static str, summary: &'static str, body: Body, reply: Reply) -> Endpoint {
    Endpoint {
        method: Method::Get,
        path,
        summary,
        body,
        reply,
    }
}

const fn get(path: &'static str, summary: &'static str, reply: Reply) -> Endpoint {
    Endpoint {
        method: Method::Get,
        path,
        summary,
        body: Body::Empty,
        reply,
    }
}

/// Who may call a group of endpoints, from the path prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// `/app`: patients (`snr_usr`).
    App,
    /// `/pro`: doctors (`snr_pro`).
    Pro,
    /// `/admin`: the dashboard (`snr_dash`).
    Admin,
    /// `/scheduler`: job triggers (an admin token, ADR 0002).
    Scheduler,
    /// `/payments/callback`: the payment platform, by signature.
    Payments,
    /// `/sandbox`: the standalone payment page, public.
    Sandbox,
    /// `/sync/v1`: the devices' sync API (`snr_usr` or `snr_pro`).
    Sync,
    /// `/health`, `/ready`, `/metrics`, `/openapi.json`: public (`/metrics` may require its own
    /// token).
    Ops,
}

impl Group {
    /// The group of `path`.
    pub fn of(path: &str) -> Group {
        let prefixes = [
            ("/app/", Group::App),
            ("/pro/", Group::Pro),
            ("/admin/", Group::Admin),
            ("/scheduler/", Group::Scheduler),
            ("/payments/", Group::Payments),
            ("/sandbox/", Group::Sandbox),
            ("/sync/", Group::Sync),
        ];
        prefixes
            .into_iter()
            .find(|(prefix, _)| path.starts_with(prefix))
            .map_or(Group::Ops, |(_, group)| group)
    }

    /// The tag of the group's operations.
    fn tag(self) -> &'static str {
        match self {
            Group::App => "app",
            Group::Pro => "pro",
            Group::Admin => "admin",
            Group::Scheduler => "scheduler",
            Group::Payments => "payments",
            Group::Sandbox => "sandbox",
            Group::Sync => "sync",
            Group::Ops => "ops",
        }
    }

    /// The security schemes that open the group (any one of them); empty: public.
    fn schemes(self) -> &'static [&'static str] {
        match self {
            Group::App => &["patient"],
            Group::Pro => &["doctor"],
            Group::Admin | Group::Scheduler => &["admin"],
            Group::Payments => &["paymentSignature"],
            Group::Sync => &["patient", "doctor"],
            Group::Sandbox | Group::Ops => &[],
        }
    }

    /// Whether the group is specified but not served yet.
    pub fn planned(self) -> bool {
        PLANNED.contains(&self)
    }
}

/// The groups specified but not served yet: their endpoints are documented with
/// `x-sop-planned`. Empty since the sync API is served.
pub const PLANNED: &[Group] = &[];

const GENDERS: &[&str] = &["male", "female", "other"];
const LANGS: &[&str] = &["en", "ar"];
const CONCORDANCE: &[&str] = &["agrees", "minor_difference", "major_difference"];
const RESULTS: &[&str] = &["success", "failure"];
const STATUSES: &[&str] = &[
    "draft",
    "submitted",
    "awaiting_payment",
    "payment_failed",
    "payment_successful",
    "doctors_assigned",
    "completed",
    "cancelled",
    "rejected",
];

const NONE: &[Field] = &[];
const CASE_ID: Field = req("case_id", Uuid);
const CASE: &[Field] = &[CASE_ID];
const REASON: Field = req("reason", Str).doc("1–1000 characters");
const Q: &[Field] = &[opt("q", Str).doc("search term")];
const DOCTOR: &[Field] = &[CASE_ID, req("doctor_id", Str)];
const CLOSE: &[Field] = &[CASE_ID, REASON];
const REPORT: &[Field] = &[
    CASE_ID,
    opt("lang", Enum(LANGS)).doc("the report's language; the patient's by default"),
];
const VERIFY: &[Field] = &[
    req("id", Uuid).doc("the report id printed in the PDF"),
    req("sha256", Str).doc("the SHA-256 printed in the PDF, or of either PDF file"),
];
const DOCUMENT: &[Field] = &[CASE_ID, req("document_id", Uuid)];
const OPINION: &[Field] = &[
    CASE_ID,
    opt("summary", Str),
    opt("diagnosis", Str),
    opt("recommendations", Str),
    opt("concordance", Enum(CONCORDANCE)),
    opt("free_text", Str),
];
const INTAKE_PATCH: &[Field] = &[
    CASE_ID,
    opt("patient_age", Int).doc("0–130"),
    opt("patient_gender", Enum(GENDERS)),
    opt("medical_history", Str),
    opt("questions", Str).doc("questions for the specialists"),
];
const CREATE_CASE: &[Field] = &[
    opt("case_id", Uuid).doc("client-generated (UUIDv7); the server makes one when absent"),
    req("rt_id", Uuid),
    req("dc_id", Uuid),
    opt("patient_age", Int).doc("0–130"),
    opt("patient_gender", Enum(GENDERS)),
    opt("medical_history", Str),
    opt("questions", Str).doc("questions for the specialists"),
    opt("submit", Bool).doc("true: create and submit at once (T2)"),
];
const SAVE_REVIEW_TYPE: &[Field] = &[
    req("title_en", Str),
    req("title_ar", Str),
    opt("description_en", Str),
    opt("description_ar", Str),
    opt("duration_en", Str).doc("display text such as \"5–7 days\""),
    opt("duration_ar", Str),
    req("price", Int).doc("integer minor units of the currency"),
    opt("currency", Str).doc("ISO 4217, default SAR"),
    req("expected_review_days", Int).doc("the SLA in days, ≥ 1"),
    opt("icon", Str).doc("short icon name"),
    opt("active", Bool).doc("default true"),
];
const UPDATE_REVIEW_TYPE: &[Field] = &[
    req("rt_id", Uuid),
    opt("title_en", Str),
    opt("title_ar", Str),
    opt("description_en", Str),
    opt("description_ar", Str),
    opt("duration_en", Str),
    opt("duration_ar", Str),
    opt("price", Int).doc("integer minor units of the currency"),
    opt("currency", Str).doc("ISO 4217"),
    opt("expected_review_days", Int).doc("the SLA in days, ≥ 1"),
    opt("icon", Str),
    opt("active", Bool).doc("false deactivates (review types in use are never deleted)"),
];
const SAVE_CATEGORY: &[Field] = &[
    req("label_en", Str),
    req("label_ar", Str),
    opt("doctor_ids", Strs).doc("the specialists eligible for cases of this category"),
    opt("active", Bool).doc("default true"),
];
const UPDATE_CATEGORY: &[Field] = &[
    req("dc_id", Uuid),
    opt("label_en", Str),
    opt("label_ar", Str),
    opt("doctor_ids", Strs),
    opt("active", Bool),
];
const SAVE_MAPPING: &[Field] = &[
    req("speciality_id", Uuid).doc("the disease category (active) the mapping is for"),
    req("doctor_ids", Strs).doc("the doctors who may coordinate its cases; non-empty"),
];
const EDIT_MAPPING: &[Field] = &[
    req("cc_id", Uuid),
    req("doctor_ids", Strs).doc("non-empty; replaces the list"),
    opt("speciality_id", Uuid).doc("if sent, must be the mapping's category"),
];
const SAVE_DOCTOR: &[Field] = &[
    req("doctor_id", Str).doc("the identity service's user id, e.g. EMP12"),
    req("name_en", Str),
    req("name_ar", Str),
    opt("phone", Str),
    opt("email", Str),
    opt("specialties", Uuids).doc("disease category ids (display only)"),
];
const LIST_CASES: &[Field] = &[
    opt("status", Enum(STATUSES)),
    opt("rt_id", Uuid),
    opt("dc_id", Uuid),
    opt("coordinator_id", Str),
    opt("from", DateTime).doc("created at or after (RFC 3339)"),
    opt("to", DateTime).doc("created at or before (RFC 3339)"),
    opt("q", Str).doc("a case id, or part of a patient id"),
];
const ASSIGN_COORDINATOR: &[Field] = &[
    CASE_ID,
    req("doctor_id", Str).doc("a doctor of the category's active coordinator mapping"),
    opt("requested_documents", Strs).doc("documents to ask the patient for"),
];
const AUDIT_LOG: &[Field] = &[
    opt("case_id", Uuid),
    opt("user_id", Str),
    opt("from", DateTime).doc("RFC 3339"),
    opt("to", DateTime).doc("RFC 3339"),
];
const ASSIGN_DOCTOR: &[Field] = &[
    CASE_ID,
    opt("doctor_id", Str).doc("one specialist, or use doctor_ids"),
    opt("doctor_ids", Strs),
    opt("requested_documents", Strs).doc("asked of the patient on each doctor's behalf"),
];
const UPLOAD: &[Field] = &[
    req("file", File).doc("PDF, JPEG, PNG, HEIC, DICOM or a ZIP of DICOM; checked by content"),
    req("case_id", Uuid),
    opt("request_id", Uuid).doc("the document request this file answers"),
];
const CALLBACK: &[Field] = &[
    req("payment_id", Uuid),
    req("status", Enum(RESULTS)),
    req("amount", Int).doc("integer minor units"),
    req("currency", Str),
    req("timestamp", DateTime),
];
const SYNC_PUSH: &[Field] = &[
    req("device_id", Uuid).doc("the app installation, generated once by the device"),
    req("ops", Objects).doc(
        "at most 500, applied in this order: {\"type\": \"command\", op_id, case_id, command} \
         (a case command, tagged by its own \"type\") or {\"type\": \"change\", op_id, doc_id, \
         case_id, kind, change, heads_before} (Automerge changes as base64, the heads the device \
         had as hex). op_id: a client UUID (v7), the key of exactly-once delivery. The answer \
         (data.results) has one {op_id, outcome} per op: applied, duplicate, or refused with \
         code, message_en and message_ar",
    ),
];
const SYNC_PULL: &[Field] = &[
    req("cursor", Int).doc("0 on first sync, else the previous answer's cursor (opaque)"),
    opt("limit", Int).doc("feed rows to read at most (the server caps it)"),
];
const OUTBOX: &[Field] = &[
    opt("status", Enum(&["pending", "delivering", "done", "failed"])),
    opt("case_id", Uuid),
];
const RETRY_OUTBOX: &[Field] = &[req("outbox_id", Uuid)];
const SYNC_EXCHANGE: &[Field] = &[
    req("push", Object).doc("a push body (device_id, ops)"),
    req("pull", Object).doc("a pull body (cursor, limit), answered after the push"),
];

/// Every endpoint of SPEC §10, the payment callback, the sandbox, the operational endpoints and
/// the planned sync API. One line per endpoint, so the table reads as one.
#[rustfmt::skip]
pub const ENDPOINTS: &[Endpoint] = &[
    get("/health", "Liveness: 200 once the server accepts requests", Data),
    get("/ready", "Readiness: 200 when the database answers, else 503", Data),
    get("/metrics", "Prometheus metrics (no PHI); a bearer token when SOP_METRICS_TOKEN is set", Reply::Metrics),
    get_with("/reports/verify", "Public check of a report → {valid}; says nothing about the case", Query(VERIFY), Data),
    get("/openapi.json", "This document", Reply::RawJson),
    // Patients.
    post("/app/how", "The \"how it works\" steps, in the request language", Body::Empty, Data),
    post("/app/list-reviewtypes", "Active review types, newest first (at most 100)", Json(NONE), Page),
    post("/app/list-disease-categories", "Active disease categories; q searches the labels", Json(Q), Page),
    post("/app/create-case", "Create a case as a draft (T1) or submitted (T2) → {case_id}", Json(CREATE_CASE), Data),
    post("/app/update-case", "Change any of the patient's fields while the case is a draft", Json(INTAKE_PATCH), Data),
    post("/app/submit-case", "Submit a draft (T3)", Json(CASE), Data),
    post("/app/list-cases", "The patient's own cases, newest first", Json(&[opt("status", Enum(STATUSES))]), Page),
    post("/app/review-case-details", "A case with status card, sub-state, timeline and documents (audited)", Json(CASE), Data),
    post("/app/cancel-case", "Cancel one's own case (T16)", Json(CLOSE), Data),
    post("/app/payment-summary", "Amount, currency, status and payment link of the case", Json(CASE), Data),
    post("/app/retry-payment", "A new payment attempt and link after a failure (T8)", Json(CASE), Data),
    post("/app/upload-document", "Upload a medical document (T12) → {document_id, sha256, content_type, size}", Multipart(UPLOAD), Data),
    post("/app/remove-document", "Remove a document from a draft (T13)", Json(DOCUMENT), Data),
    post("/app/answer-document-request", "Mark a document request answered (T12)", Json(&[CASE_ID, req("request_id", Uuid)]), Data),
    post("/app/get-document", "The bytes of one of the patient's own case documents (audited)", Json(DOCUMENT), Reply::File),
    post("/app/get-report", "The final report PDF (audited; 409 while not ready)", Json(REPORT), Reply::Pdf),
    post("/app/list-notifications", "The patient's inbox, in the request language", Json(NONE), Page),
    post("/app/access-history", "Who viewed or changed my case: audit rows by other people", Json(&[opt("case_id", Uuid)]), Page),
    // Doctors.
    post("/pro/sops", "The doctor's active assignments", Json(&[opt("coordinator", Bool).doc("true: cases I coordinate; false: cases I review")]), Page),
    post("/pro/review-case-details", "A case as the doctor may see it, with own drafts and visible opinions (audited)", Json(CASE), Data),
    post("/pro/assign-doctor", "Assign specialists (T9; the case's coordinator only)", Json(ASSIGN_DOCTOR), Data),
    post("/pro/unassign-doctor", "Remove a specialist who has not submitted (T10)", Json(DOCTOR), Data),
    post("/pro/request-documents", "Ask the patient for documents (T11) → {request_id}", Json(&[CASE_ID, req("items", Strs).doc("each ≤ 500 characters")]), Data),
    post("/pro/save-notes", "Save the doctor's private notes", Json(&[CASE_ID, req("notes", Str)]), Data),
    post("/pro/save-opinion", "Save the opinion draft (the sections sent)", Json(OPINION), Data),
    post("/pro/submit-opinion", "Submit the opinion (T14); sections sent are saved first", Json(OPINION), Data),
    post("/pro/save-summary", "Save the coordinator's final summary draft", Json(&[CASE_ID, req("summary", Str)]), Data),
    post("/pro/submit-summary", "Submit the final summary (T15); a summary sent is saved first", Json(&[CASE_ID, opt("summary", Str)]), Data),
    post("/pro/send-overdue-reminder", "Remind the specialists still due (T18, once per 12 h)", Json(CASE), Data),
    post("/pro/get-document", "The bytes of a case document (audited)", Json(DOCUMENT), Reply::File),
    post("/pro/get-report", "The final report PDF (audited; 409 while not ready)", Json(REPORT), Reply::Pdf),
    post("/pro/list-notifications", "The doctor's inbox, in the request language", Json(NONE), Page),
    // The dashboard.
    post("/admin/save-reviewtype", "Create a review type → {rt_id}", Json(SAVE_REVIEW_TYPE), Data),
    post("/admin/update-reviewtype", "Change the fields sent of a review type → {rt_id}", Json(UPDATE_REVIEW_TYPE), Data),
    post("/admin/list-reviewtypes", "Every review type, active or not, newest first", Json(NONE), Page),
    post("/admin/save-disease-category", "Create a disease category → {dc_id}", Json(SAVE_CATEGORY), Data),
    post("/admin/update-disease-category", "Change the fields sent of a disease category → {dc_id}", Json(UPDATE_CATEGORY), Data),
    post("/admin/list-disease-categories", "Every disease category; q searches the labels", Json(Q), Page),
    post("/admin/save-case-coordinators", "Create the coordinator mapping of a category → {cc_id} (400 inactive category or no doctors, 409 one already active)", Json(SAVE_MAPPING), Data),
    post("/admin/edit-case-coordinators", "Replace the doctors of a coordinator mapping → {cc_id}", Json(EDIT_MAPPING), Data),
    post("/admin/list-case-coordinators", "Coordinator mappings; q is a category id or part of a doctor id", Json(Q), Page),
    post("/admin/save-doctor", "Create or replace a doctor in the directory → {doctor_id}", Json(SAVE_DOCTOR), Data),
    post("/admin/list-doctors", "The doctor directory; q searches ids and names", Json(Q), Page),
    post("/admin/list-cases", "Every case matching the filters, newest first", Json(LIST_CASES), Page),
    post("/admin/case-details", "A case with its timeline and seven-step progress (audited)", Json(CASE), Data),
    post("/admin/assign-coordinator", "Assign the coordinator and open the payment (T4)", Json(ASSIGN_COORDINATOR), Data),
    post("/admin/edit-coordinator", "Reassign the coordinator before payment (T5)", Json(DOCTOR), Data),
    post("/admin/cancel-case", "Cancel a case (T16)", Json(CLOSE), Data),
    post("/admin/reject-case", "Reject a case (T17)", Json(CLOSE), Data),
    post("/admin/audit-log", "The audit log, newest first", Json(AUDIT_LOG), Page),
    post("/admin/outbox", "Outbound calls and their delivery attempts, newest first; status and case_id filter", Json(OUTBOX), Page),
    post("/admin/retry-outbox", "Put a failed outbound call back in the queue (same idempotency key) → {outbox_id, status}; 409 unless failed", Json(RETRY_OUTBOX), Data),
    post("/admin/list-notifications", "The admins' inbox, in the request language", Json(NONE), Page),
    post("/admin/get-report", "The final report PDF (audited; 409 while not ready)", Json(REPORT), Reply::Pdf),
    // Job triggers.
    post("/scheduler/run-draft-reminders", "Remind patients of drafts left unedited → {sent, skipped}", Body::Empty, Data),
    post("/scheduler/run-overdue-alerts", "Alert about cases past their due date → {sent, skipped}", Body::Empty, Data),
    post("/scheduler/run-reconciliation", "Ask the payment platform about payments pending over 1 hour → {checked, changed}", Body::Empty, Data),
    // The payment platform.
    post("/payments/callback", "A payment result, signed over the raw body (header x-sop-signature)", Json(CALLBACK), Data),
    get("/sandbox/pay/{payment_id}", "The sandbox payment page (Pay / Fail)", Reply::Html),
    post("/sandbox/pay/{payment_id}", "Pay or fail a sandbox payment; sends the signed callback", Form(&[req("result", Enum(RESULTS))]), Reply::Html),
    // The devices' sync API (DESIGN §3).
    post("/sync/v1/push", "Push a batch of operations; one answer per operation", Json(SYNC_PUSH), Data),
    post("/sync/v1/pull", "What the user may see that changed after a cursor (data: items, cursor, more); cursor 0 or far behind: whole cases", Json(SYNC_PULL), Data),
    post("/sync/v1/exchange", "Push, then pull, in one round trip", Json(SYNC_EXCHANGE), Data),
    get("/sync/v1/upload/{sha256}", "How much of a resumable upload this user has sent → {sha256, received, complete} (docs/upload-protocol.md)", Data),
    patch("/sync/v1/upload/{sha256}", "Append a chunk: headers Upload-Offset (must equal `received`, else 409 upload_offset_mismatch) and Upload-Length (the whole file; 413 file_too_large over the limit); the chunk that completes the file is checked against {sha256} (422 sha256_mismatch) → {sha256, received, complete}", Octets, Data),
    get("/sync/v1/live", "A WebSocket of \"pull now\" hints (no data); the JWT (snr_usr, snr_pro or snr_dash) may also be sent as ?access_token=", Reply::Socket),
];

/// The OpenAPI 3.1 document of [`ENDPOINTS`].
pub fn document() -> Value {
    let mut paths = Map::new();
    for endpoint in ENDPOINTS {
        let item = paths
            .entry(endpoint.path)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(endpoint.method.as_str().to_owned(), operation(endpoint));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "SOP — second-opinion service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every endpoint answers the envelope {status, message, data?, pagination?} \
                (1000 success, 1002 bad input / not found / conflict, 2000 unauthorized / forbidden, \
                1001 server error). Requests are POST with a JSON body; unknown fields are ignored; \
                ids are UUIDs of any version. Paged lists take page (from 1) and size (default 15, \
                max 100). The header `lang: ar` (or 1) answers in Arabic.",
        },
        "tags": tags(),
        "paths": paths,
        "components": components(),
    })
}

fn tags() -> Value {
    json!([
        {"name": "app", "description": "The patient app (JWT audience snr_usr)"},
        {"name": "pro", "description": "The doctors' app (JWT audience snr_pro)"},
        {"name": "admin", "description": "The dashboard (JWT audience snr_dash)"},
        {"name": "scheduler", "description": "Triggers of the scheduled jobs (an admin token)"},
        {"name": "payments", "description": "The payment platform's callback"},
        {"name": "sandbox", "description": "The built-in sandbox payment page"},
        {"name": "sync", "description": "The devices' sync API: push, pull, exchange (the sop_core::sync::v1 wire types in the envelope's data) and the live channel"},
        {"name": "ops", "description": "Health, readiness and this document"},
    ])
}

/// The operation object of one endpoint.
fn operation(endpoint: &Endpoint) -> Value {
    let group = Group::of(endpoint.path);
    let mut op = Map::new();
    op.insert("operationId".into(), operation_id(endpoint).into());
    op.insert("tags".into(), json!([group.tag()]));
    let summary = if endpoint.planned() {
        format!("(planned) {}", endpoint.summary)
    } else {
        endpoint.summary.to_owned()
    };
    op.insert("summary".into(), summary.into());
    let security: Vec<Value> = group
        .schemes()
        .iter()
        .map(|scheme| json!({ *scheme: [] }))
        .collect();
    op.insert("security".into(), security.into());
    let mut parameters = path_parameters(endpoint.path);
    if let Body::Query(fields) = endpoint.body {
        parameters.extend(fields.iter().map(|f| {
            json!({"name": f.name, "in": "query", "required": f.required,
                   "schema": field_schema(f)})
        }));
    }
    if matches!(group, Group::App | Group::Pro | Group::Admin) {
        parameters.push(json!({"$ref": "#/components/parameters/Lang"}));
    }
    if !parameters.is_empty() {
        op.insert("parameters".into(), parameters.into());
    }
    if let Some(body) = request_body(endpoint) {
        op.insert("requestBody".into(), body);
    }
    op.insert("responses".into(), responses(endpoint.reply, group));
    if endpoint.planned() {
        op.insert("x-sop-planned".into(), true.into());
    }
    Value::Object(op)
}

/// `/admin/save-reviewtype` → `admin_save_reviewtype`; the method is appended where one path
/// has several.
fn operation_id(endpoint: &Endpoint) -> String {
    let slug: String = endpoint
        .path
        .trim_start_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let slug = slug.replace("__", "_").trim_end_matches('_').to_owned();
    let shared = ENDPOINTS.iter().filter(|e| e.path == endpoint.path).count() > 1;
    if shared {
        format!("{slug}_{}", endpoint.method.as_str())
    } else {
        slug
    }
}

/// A parameter for every `{name}` segment of the path: a SHA-256 in hex for `{sha256}`, an id
/// (a UUID) for the others.
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let schema = if name == "sha256" {
                json!({"type": "string", "pattern": "^[0-9a-f]{64}$"})
            } else {
                json!({"type": "string", "format": "uuid"})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect()
}

fn request_body(endpoint: &Endpoint) -> Option<Value> {
    let page_fields: &[Field] = &[
        opt("page", Int).doc("from 1"),
        opt("size", Int).doc("default 15, max 100"),
    ];
    let (media, fields) = match endpoint.body {
        Body::Empty if endpoint.method == Method::Get => return None,
        Body::Query(_) => return None,
        Body::Octets => {
            return Some(
                json!({"required": true, "content": {"application/octet-stream": {
                "schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}}),
            );
        }
        Body::Empty => ("application/json", NONE),
        Body::Json(fields) => ("application/json", fields),
        Body::Multipart(fields) => ("multipart/form-data", fields),
        Body::Form(fields) => ("application/x-www-form-urlencoded", fields),
    };
    let paging = if endpoint.reply == Reply::Page {
        page_fields
    } else {
        NONE
    };
    let all: Vec<&Field> = fields.iter().chain(paging).collect();
    let properties: Map<String, Value> = all
        .iter()
        .map(|f| (f.name.to_owned(), field_schema(f)))
        .collect();
    let required: Vec<&str> = all.iter().filter(|f| f.required).map(|f| f.name).collect();
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    Some(json!({
        "required": !required.is_empty(),
        "content": { media: { "schema": schema } },
    }))
}

fn field_schema(field: &Field) -> Value {
    let mut schema = match field.ty {
        Ty::Str => json!({"type": "string"}),
        Ty::Uuid => json!({"type": "string", "format": "uuid"}),
        Ty::Int => json!({"type": "integer"}),
        Ty::Bool => json!({"type": "boolean"}),
        Ty::DateTime => json!({"type": "string", "format": "date-time"}),
        Ty::Strs => json!({"type": "array", "items": {"type": "string"}}),
        Ty::Uuids => json!({"type": "array", "items": {"type": "string", "format": "uuid"}}),
        Ty::Enum(values) => json!({"type": "string", "enum": values}),
        Ty::Object => json!({"type": "object"}),
        Ty::Objects => json!({"type": "array", "items": {"type": "object"}}),
        Ty::File => json!({"type": "string", "contentMediaType": "application/octet-stream"}),
    };
    if !field.doc.is_empty() {
        schema["description"] = field.doc.into();
    }
    schema
}

fn responses(reply: Reply, group: Group) -> Value {
    let envelope = |schema: &str| {
        json!({"description": "success", "content": {"application/json": {
            "schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
    };
    let binary = json!({"type": "string", "contentMediaType": "application/octet-stream"});
    let mut out = Map::new();
    let ok = match reply {
        Reply::Data => envelope("Envelope"),
        Reply::Page => envelope("PagedEnvelope"),
        Reply::Pdf => json!({"description": "the PDF",
            "content": {"application/pdf": {"schema": binary}}}),
        Reply::File => json!({"description": "the document, with its content type",
            "content": {"application/octet-stream": {"schema": binary}}}),
        Reply::Html => json!({"description": "an HTML page",
            "content": {"text/html": {"schema": {"type": "string"}}}}),
        Reply::RawJson => json!({"description": "the OpenAPI document",
            "content": {"application/json": {"schema": {"type": "object"}}}}),
        Reply::Socket => json!({"description": "upgrades to a WebSocket"}),
        Reply::Metrics => json!({"description": "Prometheus metrics, text exposition format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}}}),
    };
    let status = if reply == Reply::Socket { "101" } else { "200" };
    out.insert(status.into(), ok);
    if reply == Reply::Pdf {
        out.insert(
            "409".into(),
            json!({"$ref": "#/components/responses/Error"}),
        );
    }
    if !group.schemes().is_empty() {
        out.insert(
            "401".into(),
            json!({"$ref": "#/components/responses/Error"}),
        );
    }
    out.insert(
        "default".into(),
        json!({"$ref": "#/components/responses/Error"}),
    );
    Value::Object(out)
}

fn components() -> Value {
    let bearer = |audience: &str| {
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": format!("A JWT whose audience is {audience}")})
    };
    json!({
        "securitySchemes": {
            "patient": bearer("snr_usr"),
            "doctor": bearer("snr_pro"),
            "admin": bearer("snr_dash"),
            "paymentSignature": {
                "type": "apiKey", "in": "header", "name": "x-sop-signature",
                "description": "t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">; \
                    the timestamp must be within 5 minutes",
            },
        },
        "parameters": {
            "Lang": {"name": "lang", "in": "header", "required": false,
                     "description": "1 or ar: Arabic; anything else: English",
                     "schema": {"type": "string"}},
        },
        "responses": {
            "Error": {"description": "an error envelope; a refusal carries data {code, message_en, message_ar}",
                      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}},
        },
        "schemas": {
            "Envelope": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {
                    "status": {"type": "integer", "enum": [1000, 1001, 1002, 2000]},
                    "message": {"type": "string"},
                    "data": {},
                },
            },
            "PagedEnvelope": {
                "type": "object",
                "required": ["status", "message", "data", "pagination"],
                "properties": {
                    "status": {"type": "integer", "enum": [1000]},
                    "message": {"type": "string"},
                    "data": {"type": "array", "items": {}},
                    "pagination": {"$ref": "#/components/schemas/Pagination"},
                },
            },
            "Pagination": {
                "type": "object",
                "required": ["total", "page", "page_size"],
                "properties": {
                    "total": {"type": "integer"},
                    "page": {"type": "integer"},
                    "page_size": {"type": "integer"},
                },
            },
        },
    })
}

/// `GET /openapi.json`: the document (not wrapped in an envelope: tools read it as is).
pub async fn serve() -> axum::Json<Value> {
    axum::Json(document())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// `(method, path)` of a route.
    type Route = (String, String);

    /// Every `.route("path", get(..).post(..))` written in `router.rs` and `handlers/`, with the
    /// prefix its module is nested under in `router.rs` (`.nest("/app", app::routes())`; a
    /// `.merge(module::routes())` adds no prefix). Read from the sources because axum cannot
    /// list a router's routes.
    fn registered_routes() -> BTreeSet<Route> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let router = std::fs::read_to_string(src.join("router.rs")).expect("router.rs");
        let mut prefixes = BTreeMap::new();
        for (call, text) in calls(&router, ".nest(") {
            let prefix = string_literal(&text).expect("nest prefix");
            prefixes.insert(module_of(&text[call..]), prefix);
        }
        for (_, text) in calls(&router, ".merge(") {
            prefixes.insert(module_of(&text), String::new());
        }
        let mut routes = routes_in(&router, "");
        for file in rust_files(&src.join("handlers")) {
            let rel = file
                .strip_prefix(src.join("handlers"))
                .expect("under handlers");
            let module = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .map(|name| name.trim_end_matches(".rs").to_owned())
                .expect("module name");
            let text = std::fs::read_to_string(&file).expect("handler source");
            if let Some(prefix) = prefixes.get(&module) {
                routes.extend(routes_in(&text, prefix));
            } else {
                assert!(
                    calls(&text, ".route(").is_empty(),
                    "{} has routes but is not nested or merged in router.rs",
                    file.display()
                );
            }
        }
        routes
    }

    /// The argument text of every call `name(...)` in `text`, with the offset of the argument
    /// after the first comma (0 if none).
    fn calls(text: &str, name: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find(name) {
            let args = &rest[i + name.len()..];
            let mut depth = 1;
            let end = args
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(args.len(), |(j, _)| j);
            let inner = args[..end].to_owned();
            let after_comma = inner.find(',').map_or(0, |j| j + 1);
            out.push((after_comma, inner));
            rest = &args[end..];
        }
        out
    }

    fn string_literal(text: &str) -> Option<String> {
        let start = text.find('"')? + 1;
        let len = text[start..].find('"')?;
        Some(text[start..start + len].to_owned())
    }

    /// `app::routes()` → `app`.
    fn module_of(text: &str) -> String {
        let before = text.split("::routes").next().unwrap_or_default();
        before
            .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    fn routes_in(text: &str, prefix: &str) -> BTreeSet<Route> {
        let mut routes = BTreeSet::new();
        for (method_at, args) in calls(text, ".route(") {
            let path = string_literal(&args).expect("route path");
            let methods = &args[method_at..];
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = methods.match_indices(&format!("{method}(")).any(|(i, _)| {
                    !methods[..i]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if called {
                    routes.insert((method.to_owned(), format!("{prefix}{path}")));
                }
            }
        }
        routes
    }

    fn rust_files(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                files.extend(rust_files(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
        files
    }

    fn documented(planned: bool) -> BTreeSet<Route> {
        ENDPOINTS
            .iter()
            .filter(|e| e.planned() == planned)
            .map(|e| (e.method.as_str().to_owned(), e.path.to_owned()))
            .collect()
    }

    #[test]
    fn route_scanner_sees_the_routes_of_the_router() {
        let routes = registered_routes();
        for route in [
            ("get", "/health"),
            ("get", "/openapi.json"),
            ("post", "/app/how"),
            ("post", "/admin/save-reviewtype"),
            ("post", "/scheduler/run-draft-reminders"),
        ] {
            let route = (route.0.to_owned(), route.1.to_owned());
            assert!(routes.contains(&route), "{route:?} not found in {routes:?}");
        }
    }

    #[test]
    fn every_registered_route_is_in_the_document() {
        let documented = documented(false);
        let missing: Vec<_> = registered_routes()
            .into_iter()
            .filter(|route| !documented.contains(route))
            .collect();
        assert!(
            missing.is_empty(),
            "routes missing from ENDPOINTS: {missing:?}"
        );
    }

    #[test]
    fn every_documented_endpoint_is_routed_except_the_planned_ones() {
        let registered = registered_routes();
        let missing: Vec<_> = documented(false)
            .into_iter()
            .filter(|route| !registered.contains(route))
            .collect();
        assert!(missing.is_empty(), "documented but not routed: {missing:?}");
    }

    #[test]
    fn document_is_openapi_3_1_with_unique_operations_and_security_per_group() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().expect("paths");
        let operations: usize = paths
            .values()
            .map(|item| item.as_object().expect("path item").len())
            .sum();
        assert_eq!(
            operations,
            ENDPOINTS.len(),
            "a (method, path) is listed twice"
        );
        let ids: BTreeSet<_> = paths
            .values()
            .flat_map(|item| item.as_object().expect("item").values())
            .map(|op| op["operationId"].as_str().expect("operationId").to_owned())
            .collect();
        assert_eq!(ids.len(), ENDPOINTS.len(), "operation ids are unique");

        let op = &doc["paths"]["/admin/save-case-coordinators"]["post"];
        assert_eq!(op["security"], json!([{"admin": []}]));
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(schema["required"], json!(["speciality_id", "doctor_ids"]));
        assert_eq!(
            doc["paths"]["/app/create-case"]["post"]["security"],
            json!([{"patient": []}])
        );
        assert_eq!(
            doc["paths"]["/pro/sops"]["post"]["requestBody"]["content"]["application/json"]["schema"]
                ["properties"]["page"]["type"],
            "integer"
        );
        assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([]));
        assert_eq!(
            doc["paths"]["/payments/callback"]["post"]["security"],
            json!([{"paymentSignature": []}])
        );
        let upload = &doc["paths"]["/app/upload-document"]["post"]["requestBody"]["content"];
        assert!(upload["multipart/form-data"]["schema"]["properties"]["file"].is_object());
        for path in ["/sync/v1/push", "/sync/v1/pull", "/sync/v1/exchange"] {
            let op = &doc["paths"][path]["post"];
            assert_eq!(op.get("x-sop-planned"), None, "{path}");
            assert_eq!(
                op["security"],
                json!([{"patient": []}, {"doctor": []}]),
                "{path}"
            );
        }
        assert_eq!(
            doc["paths"]["/sync/v1/live"]["get"].get("x-sop-planned"),
            None
        );
        assert_eq!(
            doc["paths"]["/sandbox/pay/{payment_id}"]["get"]["parameters"][0]["name"],
            "payment_id"
        );
    }
}
