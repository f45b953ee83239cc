//! `/sync/v1` push, pull and exchange (issue #4), on SQLite and PostgreSQL.
//!
//! A [`Device`] plays a phone: it keeps the documents and case records it pulled, edits
//! documents offline with the core's typed setters, pushes its changes as the app would, and
//! checks on every pull that the feed gives it nothing twice and nothing it cannot apply
//! (a skipped change would leave a dependency missing). Most tests run in process through
//! [`Flow`] (the router, over SQLite or a fresh PostgreSQL database); the stress test and one
//! convergence test drive the real binary over HTTP.

use crate::case_flow::{DC, Flow, RT};
use crate::support::{ServerOptions, TestPg, TestServer, command, mint_token};
use serde_json::{Value, json};
use sop_core::access::ContentKind;
use sop_core::case::IntakePatch;
use sop_core::command::{Command, RequestSpec};
use sop_core::content::{
    self, ActorId, ChangeHash, Content, ContentDoc, DocId, DocKind, DocRef, decode_changes, intake,
    notes, opinion, recovered_draft,
};
use sop_core::ids::{CaseId, RequestId, UserId};
use sop_core::refusal::RefusalCode;
use sop_core::rules::Limits;
use sop_core::sync::v1::{
    Bytes, ChangeOp, CommandOp, Cursor, DeviceId, ExchangeResponse, FeedItem, Op, OpId, Outcome,
    PullResponse, PushRequest, PushResponse,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Transport: the in-process router or the real binary.

/// Where requests go.
#[derive(Clone, Copy)]
enum Net<'a> {
    Flow(&'a Flow),
    Http(&'a TestServer),
}

impl Net<'_> {
    /// `POST path` with a JSON body: the HTTP status and the envelope.
    async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        match self {
            Net::Flow(flow) => {
                let r = flow.post(path, token, body.clone()).await;
                (r.status, r.body)
            }
            Net::Http(server) => {
                let r = server
                    .post(path, Some(token), Some(&body.to_string()))
                    .await;
                (r.status, r.body)
            }
        }
    }

    /// `POST path`, asserting success; the envelope's `data`.
    async fn ok(&self, path: &str, token: &str, body: Value) -> Value {
        let (status, envelope) = self.post(path, token, &body).await;
        assert_eq!(
            (status, &envelope["status"]),
            (200, &json!(1000)),
            "{path}: {envelope}"
        );
        envelope["data"].clone()
    }
}

// ---------------------------------------------------------------------------------------------
// A simulated device.

/// One app installation of one user.
struct Device {
    token: String,
    device_id: DeviceId,
    actor: ActorId,
    cursor: Cursor,
    /// Documents as the device holds them (its own edits included).
    docs: HashMap<DocId, ContentDoc>,
    /// Each document's heads as the server last sent them.
    server_heads: HashMap<DocId, Vec<ChangeHash>>,
    /// What each document belongs to.
    refs: HashMap<DocId, DocRef>,
    /// Case records, as last pulled.
    cases: BTreeMap<CaseId, Value>,
    notifications: Vec<Value>,
    catalog: Vec<Value>,
    granted: Vec<CaseId>,
    revoked: Vec<CaseId>,
    /// Changes the feed delivered although the device had them already (must stay 0).
    repeated_changes: usize,
    /// Ops made offline, not pushed yet.
    pending: Vec<Op>,
}

impl Device {
    fn new(token: String) -> Self {
        Self {
            token,
            device_id: DeviceId(Uuid::now_v7()),
            actor: ActorId::random(),
            cursor: Cursor(0),
            docs: HashMap::new(),
            server_heads: HashMap::new(),
            refs: HashMap::new(),
            cases: BTreeMap::new(),
            notifications: Vec::new(),
            catalog: Vec::new(),
            granted: Vec::new(),
            revoked: Vec::new(),
            repeated_changes: 0,
            pending: Vec::new(),
        }
    }

    /// One pull from the device's cursor, applied.
    async fn pull_once(&mut self, net: Net<'_>, limit: Option<u32>) -> PullResponse {
        let mut body = json!({"cursor": self.cursor.0});
        if let Some(limit) = limit {
            body["limit"] = json!(limit);
        }
        let data = net.ok("/sync/v1/pull", &self.token, body).await;
        let page: PullResponse = serde_json::from_value(data).expect("a pull response");
        self.apply(&page);
        page
    }

    /// Pulls until the server says there is no more.
    async fn pull(&mut self, net: Net<'_>) {
        for _ in 0..1000 {
            if !self.pull_once(net, None).await.more {
                return;
            }
        }
        panic!("the feed never ended");
    }

    fn apply(&mut self, page: &PullResponse) {
        for item in &page.items {
            self.apply_item(item);
        }
        self.cursor = page.cursor;
    }

    fn apply_item(&mut self, item: &FeedItem) {
        match item {
            FeedItem::CaseRecord { case_id, record } => {
                self.cases.insert(*case_id, record.clone());
            }
            FeedItem::Content {
                doc_id,
                case_id,
                kind,
                data,
                heads,
            } => {
                let doc_ref = DocRef::new(*case_id, kind.clone());
                assert_eq!(doc_ref.doc_id(), *doc_id, "a content item names its own id");
                let actor = self.actor.clone();
                let doc = self.docs.entry(*doc_id).or_insert_with(|| {
                    ContentDoc::new(DocKind::from(kind), actor).expect("genesis")
                });
                // Changes (not snapshots) must all be new to the device, except its own coming
                // back: nothing twice.
                if let Ok(changes) = decode_changes(&data.0) {
                    self.repeated_changes += changes
                        .iter()
                        .filter(|c| c.actor_id() != &self.actor && doc.has_change(&c.hash()))
                        .count();
                }
                doc.load_incremental(&data.0)
                    .expect("every pulled content item applies (nothing skipped)");
                for h in heads {
                    assert!(doc.has_change(h), "the item's heads are in the document");
                }
                self.server_heads.insert(*doc_id, heads.clone());
                self.refs.insert(*doc_id, doc_ref);
            }
            FeedItem::Notification { notification, .. } => {
                self.notifications.push(notification.clone());
            }
            FeedItem::Catalog { catalog } => self.catalog.push(catalog.clone()),
            FeedItem::AccessGranted { case_id } => self.granted.push(*case_id),
            FeedItem::AccessRevoked { case_id } => {
                self.revoked.push(*case_id);
                self.purge(*case_id);
            }
            other => panic!("unexpected feed item {other:?}"),
        }
    }

    /// Deletes everything of a case, as the app must on a revoke.
    fn purge(&mut self, case_id: CaseId) {
        self.cases.remove(&case_id);
        let gone: Vec<DocId> = self
            .refs
            .iter()
            .filter(|(_, r)| r.case_id == case_id)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.refs.remove(&id);
            self.docs.remove(&id);
            self.server_heads.remove(&id);
        }
    }

    /// The device's document `kind` of `case_id` (a new one from the genesis if it has none).
    fn doc(&mut self, case_id: CaseId, kind: ContentKind) -> &mut ContentDoc {
        let doc_ref = DocRef::new(case_id, kind.clone());
        let id = doc_ref.doc_id();
        self.refs.insert(id, doc_ref);
        let actor = self.actor.clone();
        self.docs
            .entry(id)
            .or_insert_with(|| ContentDoc::new(DocKind::from(&kind), actor).expect("genesis"))
    }

    /// Edits a document offline and queues the change as an op (one op per edit).
    fn edit(
        &mut self,
        case_id: CaseId,
        kind: ContentKind,
        edit: impl FnOnce(&mut ContentDoc) -> Result<(), sop_core::Refusal>,
    ) -> OpId {
        let doc = self.doc(case_id, kind.clone());
        let before = doc.heads();
        edit(doc).expect("edit");
        let change = doc.save_after(&before);
        assert!(!change.is_empty(), "the edit changed something");
        let op = ChangeOp {
            op_id: OpId(Uuid::now_v7()),
            doc_id: DocRef::new(case_id, kind.clone()).doc_id(),
            case_id,
            kind,
            change: Bytes(change),
            heads_before: before,
        };
        let id = op.op_id;
        self.pending.push(Op::Change(op));
        id
    }

    /// Queues a command.
    fn command(&mut self, case_id: CaseId, command: Command) -> OpId {
        let op_id = OpId(Uuid::now_v7());
        self.pending.push(Op::Command(CommandOp {
            op_id,
            case_id,
            command,
        }));
        op_id
    }

    /// The push request of the queued ops.
    fn push_request(&self) -> PushRequest {
        PushRequest {
            device_id: self.device_id,
            ops: self.pending.clone(),
        }
    }

    /// Pushes the queued ops; they leave the queue.
    async fn push(&mut self, net: Net<'_>) -> Vec<Outcome> {
        let req = self.push_request();
        self.pending.clear();
        push_raw(net, &self.token, &req).await
    }

    /// The document as the server last sent it (`fork_at` the server heads).
    fn server_version(&self, id: DocId) -> ContentDoc {
        let doc = &self.docs[&id];
        doc.fork_at(&self.server_heads[&id]).expect("server heads")
    }

    fn content(&self, case_id: CaseId, kind: ContentKind) -> Content {
        let id = DocRef::new(case_id, kind).doc_id();
        content::read(&self.docs[&id]).expect("readable")
    }
}

async fn push_raw(net: Net<'_>, token: &str, req: &PushRequest) -> Vec<Outcome> {
    let body = serde_json::to_value(req).expect("push JSON");
    let data = net.ok("/sync/v1/push", token, body).await;
    let resp: PushResponse = serde_json::from_value(data).expect("a push response");
    assert_eq!(resp.results.len(), req.ops.len());
    for (r, op) in resp.results.iter().zip(&req.ops) {
        assert_eq!(r.op_id, op.op_id(), "answers in request order");
    }
    resp.results.into_iter().map(|r| r.outcome).collect()
}

#[track_caller]
fn refused_with(outcome: &Outcome, code: RefusalCode) {
    match outcome {
        Outcome::Refused {
            code: got,
            message_en,
            message_ar,
        } => {
            assert_eq!(*got, code, "{message_en}");
            assert!(!message_en.is_empty() && !message_ar.is_empty());
        }
        other => panic!("expected a refusal {code}, got {other:?}"),
    }
}

/// Runs a scenario on SQLite and on PostgreSQL.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$name(crate::case_flow::Flow::new().await).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$name(crate::case_flow::Flow::on_postgres().await).await;
            }
        }
    };
}

/// `flow` with other limits (the router is rebuilt over the new settings).
fn with_limits(mut flow: Flow, limits: Limits) -> Flow {
    let mut settings = (*flow.state.settings).clone();
    settings.limits = limits;
    flow.state.settings = Arc::new(settings);
    flow.app = sop_server::app(flow.state.clone());
    flow
}

/// A draft of `patient` created through `/app/create-case`.
async fn draft(flow: &Flow, patient: &str, history: &str) -> CaseId {
    let data = Net::Flow(flow)
        .ok(
            "/app/create-case",
            &flow.patient(patient),
            json!({"rt_id": RT, "dc_id": DC, "medical_history": history}),
        )
        .await;
    serde_json::from_value(data["case_id"].clone()).expect("case id")
}

// ---------------------------------------------------------------------------------------------
// Convergence

/// Two phones of one patient type into the same draft offline and sync in `order`.
async fn patient_devices_converge(flow: &Flow, a_first: bool) {
    let net = Net::Flow(flow);
    let case_id = draft(flow, "P1", "Chest pain").await;
    let mut a = Device::new(flow.patient("P1"));
    let mut b = Device::new(flow.patient("P1"));
    a.pull(net).await;
    b.pull(net).await;
    assert!(a.cases.contains_key(&case_id) && b.cases.contains_key(&case_id));
    a.edit(case_id, ContentKind::Intake, |d| {
        intake::set_medical_history(d, "Chest pain since May")?;
        intake::set_age(d, Some(50))
    });
    b.edit(case_id, ContentKind::Intake, |d| {
        intake::set_medical_history(d, "Severe chest pain")
    });
    let (first, second) = if a_first {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert_eq!(first.push(net).await, vec![Outcome::Applied]);
    assert_eq!(second.push(net).await, vec![Outcome::Applied]);
    a.pull(net).await;
    b.pull(net).await;
    let id = DocRef::new(case_id, ContentKind::Intake).doc_id();
    assert_eq!(
        a.docs[&id].heads(),
        b.docs[&id].heads(),
        "identical documents"
    );
    let Content::Intake(merged) = a.content(case_id, ContentKind::Intake) else {
        panic!("an intake")
    };
    assert_eq!(
        b.content(case_id, ContentKind::Intake),
        Content::Intake(merged.clone())
    );
    assert!(
        merged.medical_history.contains("Severe"),
        "{}",
        merged.medical_history
    );
    assert!(
        merged.medical_history.contains("since May"),
        "{}",
        merged.medical_history
    );
    assert_eq!(merged.patient_age, Some(50));
    // The case itself says the same, through the API and in the pulled record.
    let details = net
        .ok(
            "/app/review-case-details",
            &flow.patient("P1"),
            json!({"case_id": case_id}),
        )
        .await;
    assert_eq!(details["medical_history"], json!(merged.medical_history));
    assert_eq!(details["patient_age"], 50);
    // Typing into a draft does not rewrite the case (docs/adr/0009): the pulls carried the
    // document's changes, not a new record per keystroke batch.
    assert_eq!(a.cases[&case_id]["medical_history"], json!("Chest pain"));
    assert_eq!((a.repeated_changes, b.repeated_changes), (0, 0));
}

async fn two_phones_of_a_patient_converge_in_either_order(flow: Flow) {
    patient_devices_converge(&flow, true).await;
    patient_devices_converge(&flow, false).await;
}
on_both!(two_phones_of_a_patient_converge_in_either_order);

async fn two_devices_of_a_doctor_converge_on_an_opinion(flow: Flow) {
    let net = Net::Flow(&flow);
    for a_first in [true, false] {
        let case_id = flow.assigned_case("P1").await;
        let mut a = Device::new(flow.doctor("S1"));
        let mut b = Device::new(flow.doctor("S1"));
        a.pull(net).await;
        b.pull(net).await;
        assert!(a.cases.contains_key(&case_id) && b.cases.contains_key(&case_id));
        let kind = ContentKind::Opinion(UserId::from("S1"));
        a.edit(case_id, kind.clone(), |d| {
            opinion::set_summary(d, "Stable angina")?;
            opinion::set_concordance(d, Some(sop_core::command::Concordance::Agrees))
        });
        b.edit(case_id, kind.clone(), |d| {
            opinion::set_diagnosis(d, "Coronary artery disease")?;
            opinion::set_summary(d, "Angina")
        });
        let (first, second) = if a_first {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        assert_eq!(first.push(net).await, vec![Outcome::Applied]);
        assert_eq!(second.push(net).await, vec![Outcome::Applied]);
        a.pull(net).await;
        b.pull(net).await;
        let id = DocRef::new(case_id, kind.clone()).doc_id();
        assert_eq!(a.docs[&id].heads(), b.docs[&id].heads());
        let Content::Opinion(merged) = a.content(case_id, kind.clone()) else {
            panic!("an opinion")
        };
        assert_eq!(
            b.content(case_id, kind.clone()),
            Content::Opinion(merged.clone())
        );
        assert_eq!(merged.diagnosis, "Coronary artery disease");
        assert!(merged.summary.contains("Stable") && merged.summary.contains("ngina"));
        // What the devices wrote is what `/pro` shows, and what gets submitted.
        let view = net
            .ok(
                "/pro/review-case-details",
                &flow.doctor("S1"),
                json!({"case_id": case_id}),
            )
            .await;
        assert_eq!(view["my_opinion"]["summary"], json!(merged.summary));
        assert_eq!(view["my_opinion"]["concordance"], "agrees");
    }
}
on_both!(two_devices_of_a_doctor_converge_on_an_opinion);

// ---------------------------------------------------------------------------------------------
// Rejection without loss, removal and revoke

async fn a_late_intake_edit_is_refused_and_kept_as_a_recovered_draft(flow: Flow) {
    let net = Net::Flow(&flow);
    let case_id = draft(&flow, "P1", "Headaches").await;
    let mut a = Device::new(flow.patient("P1"));
    let mut b = Device::new(flow.patient("P1"));
    a.pull(net).await;
    b.pull(net).await;
    // Phone A types offline...
    a.edit(case_id, ContentKind::Intake, |d| {
        intake::set_questions(d, "Could it be migraine?")
    });
    // ...while phone B completes the intake and submits.
    b.edit(case_id, ContentKind::Intake, |d| {
        intake::set_age(d, Some(34))?;
        intake::set_gender(d, Some(sop_core::case::Gender::Female))
    });
    b.command(case_id, Command::SubmitCase);
    assert_eq!(b.push(net).await, vec![Outcome::Applied, Outcome::Applied]);
    // A syncs: refused with the reason, nothing of it stored.
    let answers = a.push(net).await;
    refused_with(&answers[0], RefusalCode::ContentFrozen);
    let id = DocRef::new(case_id, ContentKind::Intake).doc_id();
    a.pull(net).await;
    let server = a.server_version(id);
    let recovered = recovered_draft(&a.docs[&id], &server)
        .expect("drafts")
        .expect("something to recover");
    // B's edits reached A with the pull; only A's own typing differs from the server.
    assert_eq!(recovered.fields, vec!["questions"]);
    let Content::Intake(typed) = &recovered.content else {
        panic!("intake")
    };
    assert_eq!(typed.questions, "Could it be migraine?");
    let doc = a.docs.get_mut(&id).expect("doc");
    doc.reset_to(&server).expect("reset");
    assert_eq!(
        doc.heads(),
        b.docs[&id].heads(),
        "A holds the server's document again"
    );
    let details = net
        .ok(
            "/app/review-case-details",
            &flow.patient("P1"),
            json!({"case_id": case_id}),
        )
        .await;
    assert_eq!(
        (details["status"].clone(), details["questions"].clone()),
        (json!("submitted"), json!(""))
    );
    assert_eq!(details["patient_age"], 34);
}
on_both!(a_late_intake_edit_is_refused_and_kept_as_a_recovered_draft);

async fn a_removed_doctor_is_refused_then_revoked(flow: Flow) {
    let net = Net::Flow(&flow);
    let case_id = flow.assigned_case("P1").await;
    let mut s2 = Device::new(flow.doctor("S2"));
    s2.pull(net).await;
    assert!(s2.cases.contains_key(&case_id));
    s2.edit(case_id, ContentKind::Notes(UserId::from("S2")), |d| {
        notes::set(d, "Looks like angina")
    });
    net.ok(
        "/pro/unassign-doctor",
        &flow.doctor("C1"),
        json!({"case_id": case_id, "doctor_id": "S2"}),
    )
    .await;
    let answers = s2.push(net).await;
    refused_with(&answers[0], RefusalCode::CaseNotFound);
    let page = s2.pull_once(net, None).await;
    let about_case: Vec<&FeedItem> = page
        .items
        .iter()
        .filter(|i| match i {
            FeedItem::CaseRecord { case_id: c, .. }
            | FeedItem::Content { case_id: c, .. }
            | FeedItem::AccessRevoked { case_id: c }
            | FeedItem::AccessGranted { case_id: c } => *c == case_id,
            _ => false,
        })
        .collect();
    assert!(
        matches!(about_case.last(), Some(FeedItem::AccessRevoked { .. })),
        "the revoke comes last: {about_case:?}"
    );
    assert!(
        !s2.cases.contains_key(&case_id) && s2.docs.is_empty(),
        "purged"
    );
    assert!(
        s2.notifications
            .iter()
            .any(|n| n["kind"] == "doctor_removed"),
        "the removal notice still arrives"
    );
    // Whatever happens to the case later never reaches S2.
    net.ok(
        "/pro/save-notes",
        &flow.doctor("S1"),
        json!({"case_id": case_id, "notes": "more"}),
    )
    .await;
    flow.submit_opinion(case_id, "S1").await;
    s2.pull(net).await;
    assert!(!s2.cases.contains_key(&case_id) && s2.docs.is_empty());
}
on_both!(a_removed_doctor_is_refused_then_revoked);

async fn an_assigned_doctor_gets_the_whole_past(flow: Flow) {
    let net = Net::Flow(&flow);
    let p1 = flow.patient("P1");
    let case_id = draft(&flow, "P1", "Palpitations").await;
    let mut phone = Device::new(p1.clone());
    phone.pull(net).await;
    for i in 0..40 {
        phone.edit(case_id, ContentKind::Intake, |d| {
            intake::set_questions(d, &format!("Question draft {i}"))
        });
    }
    phone.edit(case_id, ContentKind::Intake, |d| {
        intake::set_age(d, Some(61))?;
        intake::set_gender(d, Some(sop_core::case::Gender::Male))
    });
    phone.command(case_id, Command::SubmitCase);
    let answers = phone.push(net).await;
    assert!(
        answers.iter().all(|a| *a == Outcome::Applied),
        "{answers:?}"
    );
    // S3 has synced before and knows nothing of the case.
    let mut s3 = Device::new(flow.doctor("S3"));
    s3.pull(net).await;
    assert!(s3.cases.is_empty());
    let payment = flow.assign_coordinator(case_id, None).await;
    flow.pay(case_id, payment).await;
    net.ok(
        "/pro/assign-doctor",
        &flow.doctor("C1"),
        json!({"case_id": case_id, "doctor_ids": ["S3"]}),
    )
    .await;
    s3.pull(net).await;
    assert_eq!(s3.granted, vec![case_id]);
    assert_eq!(s3.cases[&case_id]["status"], "doctors_assigned");
    assert_eq!(s3.cases[&case_id]["medical_history"], "Palpitations");
    let Content::Intake(seen) = s3.content(case_id, ContentKind::Intake) else {
        panic!("intake")
    };
    assert_eq!(seen.questions, "Question draft 39");
    assert_eq!(seen.patient_age, Some(61));
    let id = DocRef::new(case_id, ContentKind::Intake).doc_id();
    assert_eq!(
        s3.docs[&id].heads(),
        phone.docs[&id].heads(),
        "the whole document"
    );
    assert!(
        s3.notifications
            .iter()
            .any(|n| n["kind"] == "doctors_assigned"),
        "{:?}",
        s3.notifications
    );
}
on_both!(an_assigned_doctor_gets_the_whole_past);

// ---------------------------------------------------------------------------------------------
// Exactly once

async fn a_retried_push_applies_nothing_twice(flow: Flow) {
    let net = Net::Flow(&flow);
    let case_id = flow.assigned_case("P1").await;
    let mut s1 = Device::new(flow.doctor("S1"));
    s1.pull(net).await;
    let notes_kind = ContentKind::Notes(UserId::from("S1"));
    s1.edit(case_id, notes_kind.clone(), |d| notes::set(d, "First"));
    s1.command(
        case_id,
        Command::RequestDocuments {
            request: RequestSpec {
                request_id: RequestId::new_v7(),
                items: vec!["Stress test".into()],
            },
        },
    );
    // A specialist may not remind the others: refused, recorded with the rest.
    s1.command(case_id, Command::SendOverdueReminder);
    s1.edit(case_id, notes_kind.clone(), |d| {
        notes::set(d, "First, then second")
    });
    let req = s1.push_request();
    let first = push_raw(net, &s1.token, &req).await;
    assert_eq!(first[0], Outcome::Applied);
    assert_eq!(first[1], Outcome::Applied);
    refused_with(&first[2], RefusalCode::Forbidden);
    assert_eq!(first[3], Outcome::Applied);
    let head = flow.state.store.feed_head().await.unwrap();
    // The response was lost: the device sends the very same push again.
    let again = push_raw(net, &s1.token, &req).await;
    let replayed: Vec<Outcome> = first
        .iter()
        .map(|o| match o {
            Outcome::Applied => Outcome::Duplicate,
            other => other.clone(),
        })
        .collect();
    assert_eq!(again, replayed);
    assert_eq!(
        flow.state.store.feed_head().await.unwrap(),
        head,
        "nothing written again"
    );
    let view = net
        .ok(
            "/pro/review-case-details",
            &flow.doctor("S1"),
            json!({"case_id": case_id}),
        )
        .await;
    assert_eq!(view["document_requests"].as_array().map(Vec::len), Some(1));
    assert_eq!(view["notes"]["notes"], "First, then second");
    // The same op twice in one push: the second is answered like a retry.
    let mut p = Device::new(flow.patient("P1"));
    let op = p.command(case_id, Command::SubmitCase);
    let mut req = p.push_request();
    req.ops.push(req.ops[0].clone());
    let answers = push_raw(net, &p.token, &req).await;
    refused_with(&answers[0], RefusalCode::InvalidStatus);
    assert_eq!(answers[0], answers[1], "{op:?}");
}
on_both!(a_retried_push_applies_nothing_twice);

async fn a_refused_op_does_not_block_the_next_ones(flow: Flow) {
    let net = Net::Flow(&flow);
    let case_id = flow.assigned_case("P1").await;
    let mut s1 = Device::new(flow.doctor("S1"));
    s1.pull(net).await;
    let kind = ContentKind::Notes(UserId::from("S1"));
    s1.edit(case_id, kind.clone(), |d| notes::set(d, "one"));
    // Garbage bytes in the middle of the batch.
    s1.pending.push(Op::Change(ChangeOp {
        op_id: OpId(Uuid::now_v7()),
        doc_id: DocRef::new(case_id, kind.clone()).doc_id(),
        case_id,
        kind: kind.clone(),
        change: Bytes(b"not automerge".to_vec()),
        heads_before: Vec::new(),
    }));
    s1.edit(case_id, kind.clone(), |d| notes::set(d, "one two"));
    s1.command(case_id, Command::SendOverdueReminder);
    s1.edit(case_id, kind.clone(), |d| notes::set(d, "one two three"));
    let answers = s1.push(net).await;
    assert_eq!(answers[0], Outcome::Applied);
    refused_with(&answers[1], RefusalCode::ChangeMalformed);
    assert_eq!(answers[2], Outcome::Applied);
    refused_with(&answers[3], RefusalCode::Forbidden);
    assert_eq!(answers[4], Outcome::Applied);
    let view = net
        .ok(
            "/pro/review-case-details",
            &flow.doctor("S1"),
            json!({"case_id": case_id}),
        )
        .await;
    assert_eq!(view["notes"]["notes"], "one two three");
    let mut other = Device::new(flow.doctor("S1"));
    other.pull(net).await;
    assert_eq!(
        other.content(case_id, kind.clone()),
        Content::Notes {
            text: "one two three".into()
        }
    );
}
on_both!(a_refused_op_does_not_block_the_next_ones);

/// A command refused after its first write (the core accepts the patch and the case is written,
/// then its document edit is refused) is undone alone: the push's other units stay applied, no
/// event of it remains, and none of its text reaches the document or the feed.
async fn a_command_refused_after_a_write_is_undone_alone(flow: Flow) {
    let flow = with_limits(
        flow,
        Limits {
            max_document_bytes: 6_000,
            ..Limits::default()
        },
    );
    let net = Net::Flow(&flow);
    let case_id = draft(&flow, "P1", "Rash").await;
    let mut phone = Device::new(flow.patient("P1"));
    phone.pull(net).await;
    phone.edit(case_id, ContentKind::Intake, |d| {
        intake::set_questions(d, "Is it allergic?")
    });
    // Within the text limit (the core accepts the patch), but its document would pass the
    // byte limit: varied characters, so compression does not hide them.
    let mut x: u32 = 7;
    let long: String = (0..20_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from(b'a' + u8::try_from((x >> 16) % 26).unwrap_or(0))
        })
        .collect();
    phone.command(
        case_id,
        Command::UpdateIntake {
            patch: IntakePatch {
                medical_history: Some(long.clone()),
                ..IntakePatch::default()
            },
        },
    );
    phone.edit(case_id, ContentKind::Intake, |d| {
        intake::set_questions(d, "Is it allergic? Since May.")
    });
    // A later command on the same case is decided on the case as it was before the refused
    // one (the transaction's held copy is undone with the savepoint).
    phone.command(
        case_id,
        Command::UpdateIntake {
            patch: IntakePatch {
                patient_age: Some(41),
                ..IntakePatch::default()
            },
        },
    );
    let answers = phone.push(net).await;
    assert_eq!(answers[0], Outcome::Applied);
    refused_with(&answers[1], RefusalCode::DocumentTooLarge);
    assert_eq!(answers[2], Outcome::Applied);
    assert_eq!(answers[3], Outcome::Applied);
    let events = flow.state.store.case_events(case_id).await.unwrap();
    let patches: Vec<&IntakePatch> = events
        .iter()
        .filter_map(|e| match &e.kind {
            sop_core::event::EventKind::IntakeUpdated { patch } => Some(patch),
            _ => None,
        })
        .collect();
    assert_eq!(patches.len(), 1, "the refused command's event was undone");
    assert_eq!(patches[0].patient_age, Some(41));
    // Its audit row says refused, and no "ok" row of it is left behind.
    let filter = sop_server::store::AuditFilter {
        case_id: Some(case_id.0),
        ..Default::default()
    };
    let audit = flow
        .state
        .store
        .list_audit(&filter, sop_server::store::Page::new(Some(1), Some(100)))
        .await
        .unwrap();
    let mut of_command: Vec<&str> = audit
        .items
        .iter()
        .filter(|r| r.action == "update_intake")
        .map(|r| r.outcome.as_str())
        .collect();
    of_command.sort_unstable();
    assert_eq!(of_command, vec!["ok", "refused:document_too_large"]);
    let details = net
        .ok(
            "/app/review-case-details",
            &flow.patient("P1"),
            json!({"case_id": case_id}),
        )
        .await;
    assert_eq!(details["medical_history"], "Rash");
    assert_eq!(details["questions"], "Is it allergic? Since May.");
    assert_eq!(details["patient_age"], 41);
    let mut other = Device::new(flow.patient("P1"));
    other.pull(net).await;
    let Content::Intake(seen) = other.content(case_id, ContentKind::Intake) else {
        panic!("an intake")
    };
    assert_eq!(seen.medical_history, "Rash");
    assert_eq!(seen.questions, "Is it allergic? Since May.");
}
on_both!(a_command_refused_after_a_write_is_undone_alone);

// ---------------------------------------------------------------------------------------------
// Bad input

async fn bad_input_is_refused_clearly_and_harms_nothing(flow: Flow) {
    let limits = Limits {
        max_push_ops: 5,
        max_change_bytes: 2048,
        ..Limits::default()
    };
    let flow = with_limits(flow, limits);
    let net = Net::Flow(&flow);
    let case_id = flow.assigned_case("P1").await;
    let s1_token = flow.doctor("S1");
    let mut s1 = Device::new(s1_token.clone());
    s1.pull(net).await;
    let head = flow.state.store.feed_head().await.unwrap();

    // Malformed JSON, a wrong shape, bad base64: 400 envelopes naming the problem.
    for body in [
        "{not json".to_owned(),
        json!({"device_id": "x", "ops": []}).to_string(),
        json!({"device_id": Uuid::now_v7(), "ops": [{"type": "change", "op_id": Uuid::now_v7(),
            "doc_id": Uuid::now_v7(), "case_id": case_id, "kind": {"kind": "intake"},
            "change": "%%%", "heads_before": []}]})
        .to_string(),
    ] {
        let raw = flow
            .send(
                axum::http::Request::post("/sync/v1/push")
                    .header("authorization", format!("Bearer {s1_token}"))
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body))
                    .unwrap(),
            )
            .await;
        let envelope: Value = serde_json::from_slice(&raw.bytes).unwrap();
        assert_eq!(
            (raw.status, &envelope["status"]),
            (400, &json!(1002)),
            "{envelope}"
        );
        let message = envelope["message"].as_str().unwrap();
        assert!(message.contains("sync request body"), "{message}");
    }
    // A pull with a wrong shape, too.
    let (status, envelope) = net
        .post("/sync/v1/pull", &s1_token, &json!({"cursor": "soon"}))
        .await;
    assert_eq!((status, envelope["status"].clone()), (400, json!(1002)));

    // Too many ops: a 400 envelope naming the limit, nothing applied.
    for _ in 0..6 {
        s1.command(case_id, Command::SendOverdueReminder);
    }
    let (status, envelope) = net
        .post(
            "/sync/v1/push",
            &s1_token,
            &serde_json::to_value(s1.push_request()).unwrap(),
        )
        .await;
    s1.pending.clear();
    assert_eq!(status, 400, "{envelope}");
    assert_eq!(envelope["data"]["code"], "batch_too_large");
    assert!(envelope["message"].as_str().unwrap().contains("limit: 5"));

    let notes_kind = ContentKind::Notes(UserId::from("S1"));
    let notes_id = DocRef::new(case_id, notes_kind.clone()).doc_id();
    // A valid change, then a truncated copy of another one.
    s1.edit(case_id, notes_kind.clone(), |d| notes::set(d, "valid"));
    let mut scratch = s1.docs[&notes_id].clone();
    let before = scratch.heads();
    notes::set(&mut scratch, "valid, and more").unwrap();
    let full = scratch.save_after(&before);
    let truncated = full[..full.len() - 3].to_vec();
    let change = |bytes: Vec<u8>, heads: Vec<ChangeHash>, kind: ContentKind| {
        Op::Change(ChangeOp {
            op_id: OpId(Uuid::now_v7()),
            doc_id: DocRef::new(case_id, kind.clone()).doc_id(),
            case_id,
            kind,
            change: Bytes(bytes),
            heads_before: heads,
        })
    };
    s1.pending
        .push(change(truncated, before.clone(), notes_kind.clone()));
    // A change whose dependency never reached the server.
    let mut orphan_doc = s1.docs[&notes_id].clone();
    notes::set(&mut orphan_doc, "never pushed").unwrap();
    let orphan_base = orphan_doc.heads();
    notes::set(&mut orphan_doc, "never pushed, then this").unwrap();
    s1.pending.push(change(
        orphan_doc.save_after(&orphan_base),
        orphan_base,
        notes_kind.clone(),
    ));
    // A document this doctor may not write: another specialist's opinion, the patient's intake.
    let mut foreign = ContentDoc::new(DocKind::Opinion, ActorId::random()).unwrap();
    let genesis = foreign.heads();
    opinion::set_summary(&mut foreign, "not mine").unwrap();
    s1.pending.push(change(
        foreign.save_after(&genesis),
        genesis,
        ContentKind::Opinion(UserId::from("S2")),
    ));
    assert_eq!(s1.pending.len(), 4);
    let answers = s1.push(net).await;
    assert_eq!(answers[0], Outcome::Applied);
    refused_with(&answers[1], RefusalCode::ChangeMalformed);
    refused_with(&answers[2], RefusalCode::ChangeMissingDeps);
    refused_with(&answers[3], RefusalCode::Forbidden);

    // A doc id that is not the one of its case and kind; an oversized change.
    let mut wrong = s1.docs[&notes_id].clone();
    let base = wrong.heads();
    notes::set(&mut wrong, "valid!").unwrap();
    let mut op = ChangeOp {
        op_id: OpId(Uuid::now_v7()),
        doc_id: DocRef::new(case_id, ContentKind::Intake).doc_id(),
        case_id,
        kind: notes_kind.clone(),
        change: Bytes(wrong.save_after(&base)),
        heads_before: base.clone(),
    };
    s1.pending.push(Op::Change(op.clone()));
    let mut big = s1.docs[&notes_id].clone();
    notes::set(&mut big, &"x".repeat(5000)).unwrap();
    s1.pending.push(change(
        big.save_after(&base),
        base.clone(),
        notes_kind.clone(),
    ));
    op.op_id = OpId(Uuid::now_v7());
    op.doc_id = notes_id;
    s1.pending.push(Op::Change(op));
    let answers = s1.push(net).await;
    refused_with(&answers[0], RefusalCode::FieldInvalid);
    refused_with(&answers[1], RefusalCode::ChangeTooLarge);
    assert_eq!(
        answers[2],
        Outcome::Applied,
        "the good op after the bad ones"
    );

    // Nothing else was harmed: the notes hold exactly the accepted edits, and the case is as it
    // was.
    let view = net
        .ok(
            "/pro/review-case-details",
            &s1_token,
            json!({"case_id": case_id}),
        )
        .await;
    assert_eq!(view["notes"]["notes"], "valid!");
    assert_eq!(view["status"], "doctors_assigned");
    assert_eq!(view["document_requests"].as_array().map(Vec::len), Some(0));
    let mut fresh = Device::new(s1_token.clone());
    fresh.pull(net).await;
    assert_eq!(
        fresh.content(case_id, notes_kind),
        Content::Notes {
            text: "valid!".into()
        }
    );
    assert!(flow.state.store.feed_head().await.unwrap() > head);
}
on_both!(bad_input_is_refused_clearly_and_harms_nothing);

async fn a_too_large_body_is_a_413_envelope_naming_the_limit(flow: Flow) {
    let mut flow = flow;
    let mut settings = (*flow.state.settings).clone();
    settings.sync.max_body_bytes = 1000;
    flow.state.settings = Arc::new(settings);
    flow.app = sop_server::app(flow.state.clone());
    let body = json!({"device_id": Uuid::now_v7(), "ops": [], "padding": "x".repeat(2000)});
    let (status, envelope) = Net::Flow(&flow)
        .post("/sync/v1/push", &flow.patient("P1"), &body)
        .await;
    assert_eq!(
        (status, envelope["status"].clone()),
        (413, json!(1002)),
        "{envelope}"
    );
    assert!(envelope["message"].as_str().unwrap().contains("1000 bytes"));
}
on_both!(a_too_large_body_is_a_413_envelope_naming_the_limit);

// ---------------------------------------------------------------------------------------------
// One store: the API shows in the feed, pushes show through the API

async fn what_the_api_does_shows_in_the_feed_and_back(flow: Flow) {
    let net = Net::Flow(&flow);
    let mut phone = Device::new(flow.patient("P1"));
    let mut s1 = Device::new(flow.doctor("S1"));
    phone.pull(net).await;
    s1.pull(net).await;
    assert!(
        phone
            .catalog
            .iter()
            .any(|c| c["review_type"]["rt_id"] == json!(RT)),
        "a first sync brings the catalog: {:?}",
        phone.catalog
    );
    let case_id = flow.assigned_case("P1").await;
    // `/pro` writes reach the doctor's device.
    net.ok(
        "/pro/save-notes",
        &flow.doctor("S1"),
        json!({"case_id": case_id, "notes": "Typed on the web"}),
    )
    .await;
    s1.pull(net).await;
    assert_eq!(
        s1.content(case_id, ContentKind::Notes(UserId::from("S1"))),
        Content::Notes {
            text: "Typed on the web".into()
        }
    );
    assert_eq!(s1.cases[&case_id]["status"], "doctors_assigned");
    // `/app` writes and the notifications reach the patient's phone.
    phone.pull(net).await;
    assert_eq!(phone.cases[&case_id]["status"], "doctors_assigned");
    let Content::Intake(seen) = phone.content(case_id, ContentKind::Intake) else {
        panic!("intake")
    };
    assert_eq!(seen.medical_history, "Chest pain for two months");
    assert!(
        phone
            .notifications
            .iter()
            .any(|n| n["kind"] == "doctors_assigned")
    );
    // Pushed content and commands show through `/pro`, `/app` and `/admin`.
    let opinion_kind = ContentKind::Opinion(UserId::from("S1"));
    s1.edit(case_id, opinion_kind.clone(), |d| {
        opinion::set_summary(d, "Pushed opinion")
    });
    let request_id = RequestId::new_v7();
    s1.command(
        case_id,
        Command::RequestDocuments {
            request: RequestSpec {
                request_id,
                items: vec!["Echocardiogram".into()],
            },
        },
    );
    assert_eq!(s1.push(net).await, vec![Outcome::Applied, Outcome::Applied]);
    let view = net
        .ok(
            "/pro/review-case-details",
            &flow.doctor("S1"),
            json!({"case_id": case_id}),
        )
        .await;
    assert_eq!(view["my_opinion"]["summary"], "Pushed opinion");
    let details = net
        .ok(
            "/app/review-case-details",
            &flow.patient("P1"),
            json!({"case_id": case_id}),
        )
        .await;
    assert_eq!(
        details["document_requests"][0]["request_id"],
        json!(request_id)
    );
    let admin = flow.token("A1", sop_server::auth::Audience::Admin);
    let admin_view = net
        .ok("/admin/case-details", &admin, json!({"case_id": case_id}))
        .await;
    assert_eq!(admin_view["sub_state"], "awaiting_documents");
    phone.pull(net).await;
    assert_eq!(phone.cases[&case_id]["sub_state"], "awaiting_documents");
    assert!(
        phone
            .notifications
            .iter()
            .any(|n| n["kind"] == "documents_requested")
    );
    // The patient never receives the doctor's documents.
    assert!(!phone.refs.values().any(|r| r.kind != ContentKind::Intake));
    // A catalog change reaches every device.
    flow.save_review_type(
        sop_core::ids::ReviewTypeId(Uuid::from_u128(0x7002)),
        "Express",
        true,
        0,
    )
    .await;
    phone.pull(net).await;
    assert!(
        phone
            .catalog
            .iter()
            .any(|c| c["review_type"]["title_en"] == "Express")
    );
    // Submitting through the API freezes the text devices wrote.
    net.ok(
        "/pro/submit-opinion",
        &flow.doctor("S1"),
        json!({"case_id": case_id}),
    )
    .await;
    s1.edit(case_id, opinion_kind, |d| {
        opinion::set_summary(d, "Too late")
    });
    refused_with(&s1.push(net).await[0], RefusalCode::ContentFrozen);
    assert_eq!((phone.repeated_changes, s1.repeated_changes), (0, 0));
}
on_both!(what_the_api_does_shows_in_the_feed_and_back);

async fn a_specialist_reads_the_other_opinions_once_theirs_is_in(flow: Flow) {
    let net = Net::Flow(&flow);
    let case_id = flow.assigned_case("P1").await;
    let mut s2 = Device::new(flow.doctor("S2"));
    s2.pull(net).await;
    flow.submit_opinion(case_id, "S1").await;
    s2.pull(net).await;
    let s1_opinion = DocRef::new(case_id, ContentKind::Opinion(UserId::from("S1"))).doc_id();
    assert!(
        !s2.docs.contains_key(&s1_opinion),
        "blinded until S2 submits"
    );
    flow.submit_opinion(case_id, "S2").await;
    s2.pull(net).await;
    let Content::Opinion(read) = &content::read(&s2.docs[&s1_opinion]).unwrap() else {
        panic!("opinion")
    };
    assert_eq!(read.summary, "Opinion of S1");
    // The patient reads the summary once the case is completed, not before.
    let mut phone = Device::new(flow.patient("P1"));
    phone.pull(net).await;
    let summary = DocRef::new(case_id, ContentKind::Summary).doc_id();
    net.ok(
        "/pro/save-summary",
        &flow.doctor("C1"),
        json!({"case_id": case_id, "summary": "Agreed by all"}),
    )
    .await;
    phone.pull(net).await;
    assert!(!phone.docs.contains_key(&summary));
    net.ok(
        "/pro/submit-summary",
        &flow.doctor("C1"),
        json!({"case_id": case_id}),
    )
    .await;
    phone.pull(net).await;
    assert_eq!(
        content::read(&phone.docs[&summary]).unwrap(),
        Content::Summary {
            summary: "Agreed by all".into()
        }
    );
    assert_eq!(phone.cases[&case_id]["status"], "completed");
}
on_both!(a_specialist_reads_the_other_opinions_once_theirs_is_in);

// ---------------------------------------------------------------------------------------------
// Paging, snapshots, compaction, exchange

async fn a_first_sync_is_paged_whole_cases_then_the_feed(flow: Flow) {
    let mut flow = flow;
    let mut settings = (*flow.state.settings).clone();
    settings.sync.snapshot_cases = 2;
    flow.state.settings = Arc::new(settings);
    flow.app = sop_server::app(flow.state.clone());
    let net = Net::Flow(&flow);
    let mut created = BTreeSet::new();
    for i in 0..7 {
        created.insert(draft(&flow, "P1", &format!("History {i}")).await);
    }
    let mut phone = Device::new(flow.patient("P1"));
    let mut pages = 0;
    loop {
        let page = phone.pull_once(net, Some(10)).await;
        pages += 1;
        if !page.more {
            break;
        }
    }
    assert!(pages >= 4, "7 cases by about 2: {pages} pages");
    assert_eq!(
        phone.cases.keys().copied().collect::<BTreeSet<_>>(),
        created
    );
    assert_eq!(phone.docs.len(), 7, "every intake");
    // Afterwards, only what changed.
    let one = *created.iter().next().unwrap();
    net.ok(
        "/app/update-case",
        &flow.patient("P1"),
        json!({"case_id": one, "questions": "New question"}),
    )
    .await;
    let page = phone.pull_once(net, None).await;
    assert!(!page.more);
    let cases: BTreeSet<CaseId> = page
        .items
        .iter()
        .filter_map(|i| match i {
            FeedItem::CaseRecord { case_id, .. } => Some(*case_id),
            _ => None,
        })
        .collect();
    assert_eq!(cases, BTreeSet::from([one]));
    let Content::Intake(seen) = phone.content(one, ContentKind::Intake) else {
        panic!("intake")
    };
    assert_eq!(seen.questions, "New question");
    assert_eq!(phone.repeated_changes, 0);
}
on_both!(a_first_sync_is_paged_whole_cases_then_the_feed);

async fn a_device_far_behind_gets_whole_cases_and_its_revokes(flow: Flow) {
    let mut flow = flow;
    let mut settings = (*flow.state.settings).clone();
    settings.sync.far_behind = 5;
    flow.state.settings = Arc::new(settings);
    flow.app = sop_server::app(flow.state.clone());
    let net = Net::Flow(&flow);
    let case_id = flow.assigned_case("P1").await;
    let mut s2 = Device::new(flow.doctor("S2"));
    let mut phone = Device::new(flow.patient("P1"));
    s2.pull(net).await;
    phone.pull(net).await;
    assert!(s2.cases.contains_key(&case_id));
    net.ok(
        "/pro/unassign-doctor",
        &flow.doctor("C1"),
        json!({"case_id": case_id, "doctor_id": "S2"}),
    )
    .await;
    for i in 0..6 {
        net.ok(
            "/pro/save-notes",
            &flow.doctor("S1"),
            json!({"case_id": case_id, "notes": format!("note {i}")}),
        )
        .await;
    }
    net.ok(
        "/pro/request-documents",
        &flow.doctor("S1"),
        json!({"case_id": case_id, "items": ["X-ray"]}),
    )
    .await;
    // Both are more than 5 positions behind: whole cases, not history.
    let page = s2.pull_once(net, None).await;
    assert!(
        page.items
            .iter()
            .any(|i| matches!(i, FeedItem::AccessRevoked { case_id: c } if *c == case_id)),
        "{:?}",
        page.items
    );
    assert!(!s2.cases.contains_key(&case_id) && s2.docs.is_empty());
    let page = phone.pull_once(net, None).await;
    assert!(
        page.items
            .iter()
            .any(|i| matches!(i, FeedItem::Catalog { .. }))
    );
    assert_eq!(phone.cases[&case_id]["sub_state"], "awaiting_documents");
    assert_eq!(phone.repeated_changes, 0);
}
on_both!(a_device_far_behind_gets_whole_cases_and_its_revokes);

async fn compaction_keeps_documents_and_devices_whole(flow: Flow) {
    let net = Net::Flow(&flow);
    let case_id = draft(&flow, "P1", "Start").await;
    let mut writer = Device::new(flow.patient("P1"));
    let mut behind = Device::new(flow.patient("P1"));
    writer.pull(net).await;
    behind.pull(net).await;
    for round in 0..3 {
        // One push per edit: one content row each.
        for i in 0..10 {
            writer.edit(case_id, ContentKind::Intake, |d| {
                intake::set_medical_history(d, &format!("Start {round}.{i}"))
            });
            writer.push(net).await;
        }
        let compacted = flow.state.store.compact_documents(5, 100).await.unwrap();
        assert_eq!(compacted, 1, "round {round}");
    }
    // A device far behind the compactions still gets a document it can apply.
    behind.pull(net).await;
    let id = DocRef::new(case_id, ContentKind::Intake).doc_id();
    assert_eq!(behind.docs[&id].heads(), writer.docs[&id].heads());
    assert_eq!(behind.repeated_changes, 0);
    // And the server's own document is intact: edits keep working.
    net.ok(
        "/app/update-case",
        &flow.patient("P1"),
        json!({"case_id": case_id, "questions": "After compaction"}),
    )
    .await;
    writer.pull(net).await;
    let Content::Intake(seen) = writer.content(case_id, ContentKind::Intake) else {
        panic!("intake")
    };
    assert_eq!(
        (seen.medical_history.as_str(), seen.questions.as_str()),
        ("Start 2.9", "After compaction")
    );
}
on_both!(compaction_keeps_documents_and_devices_whole);

async fn exchange_pushes_then_pulls_in_one_round_trip(flow: Flow) {
    let net = Net::Flow(&flow);
    let case_id = draft(&flow, "P1", "Rash").await;
    let mut phone = Device::new(flow.patient("P1"));
    phone.pull(net).await;
    phone.edit(case_id, ContentKind::Intake, |d| {
        intake::set_questions(d, "Allergy?")
    });
    let body = json!({"push": phone.push_request(), "pull": {"cursor": phone.cursor}});
    let data = net.ok("/sync/v1/exchange", &phone.token, body).await;
    let resp: ExchangeResponse = serde_json::from_value(data).unwrap();
    assert_eq!(resp.push.results[0].outcome, Outcome::Applied);
    let intake_id = DocRef::new(case_id, ContentKind::Intake).doc_id();
    assert!(
        resp.pull
            .items
            .iter()
            .any(|i| matches!(i, FeedItem::Content { doc_id, heads, .. }
            if *doc_id == intake_id && *heads == phone.docs[&intake_id].heads())),
        "the pull sees the push: {:?}",
        resp.pull.items
    );
}
on_both!(exchange_pushes_then_pulls_in_one_round_trip);

// ---------------------------------------------------------------------------------------------
// Over real HTTP, and the stress test

/// The demo catalog in a data directory (and database): the `seed-demo` command, as a user
/// would run it.
/// Runs `sop-server seed-demo` on `data_dir` (and `database_url`, else SQLite there).
pub(crate) fn seed_demo(data_dir: &std::path::Path, database_url: Option<&str>) {
    let mut cmd = command();
    cmd.arg("seed-demo").arg("--data-dir").arg(data_dir);
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    let out = cmd.output().expect("run seed-demo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The demo catalog's first review type and category.
pub(crate) fn demo_catalog() -> (Uuid, Uuid) {
    let demo = sop_server::seed::demo();
    (demo.review_types[0].rt_id.0, demo.categories[0].dc_id.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn devices_converge_over_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    seed_demo(dir.path(), None);
    let server = TestServer::start(dir.path(), ServerOptions::default()).await;
    let net = Net::Http(&server);
    let token = mint_token(dir.path(), "P7", "snr_usr");
    let (rt, dc) = demo_catalog();
    let data = net
        .ok(
            "/app/create-case",
            &token,
            json!({"rt_id": rt, "dc_id": dc, "medical_history": "Fatigue"}),
        )
        .await;
    let case_id: CaseId = serde_json::from_value(data["case_id"].clone()).unwrap();
    let mut a = Device::new(token.clone());
    let mut b = Device::new(token.clone());
    a.pull(net).await;
    b.pull(net).await;
    a.edit(case_id, ContentKind::Intake, |d| {
        intake::set_medical_history(d, "Fatigue and fever")
    });
    b.edit(case_id, ContentKind::Intake, |d| {
        intake::set_questions(d, "Lab tests?")
    });
    assert_eq!(b.push(net).await, vec![Outcome::Applied]);
    assert_eq!(a.push(net).await, vec![Outcome::Applied]);
    a.pull(net).await;
    b.pull(net).await;
    assert_eq!(
        a.content(case_id, ContentKind::Intake),
        b.content(case_id, ContentKind::Intake)
    );
    let Content::Intake(merged) = a.content(case_id, ContentKind::Intake) else {
        panic!("intake")
    };
    assert_eq!(
        (merged.medical_history.as_str(), merged.questions.as_str()),
        ("Fatigue and fever", "Lab tests?")
    );
}

/// What the writers of the stress test committed.
#[derive(Default)]
struct Committed {
    /// Changes pushed by devices and applied.
    changes: HashSet<ChangeHash>,
    /// Cases created during the run, per patient.
    cases: HashMap<String, HashSet<CaseId>>,
}

/// One writer: a phone of `patient` that keeps typing into the patient's drafts, runs intake
/// commands and creates cases, until `deadline`.
async fn writer(
    server: Arc<TestServer>,
    token: String,
    patient: String,
    cases: Vec<CaseId>,
    deadline: Instant,
    committed: Arc<std::sync::Mutex<Committed>>,
) {
    let net = Net::Http(&server);
    let (rt, dc) = demo_catalog();
    let mut phone = Device::new(token.clone());
    phone.pull(net).await;
    let mut round = 0u32;
    while Instant::now() < deadline {
        round += 1;
        let case_id = cases[round as usize % cases.len()];
        let mut hashes = Vec::new();
        for i in 0..3 {
            phone.edit(case_id, ContentKind::Intake, |d| {
                let Content::Intake(now) = content::read(d)? else {
                    unreachable!("an intake document")
                };
                intake::set_medical_history(d, &format!("{}{round}.{i} ", now.medical_history))
            });
            if let Some(Op::Change(op)) = phone.pending.last() {
                hashes.extend(
                    decode_changes(&op.change.0)
                        .unwrap()
                        .iter()
                        .map(|c| c.hash()),
                );
            }
        }
        phone.command(
            case_id,
            Command::UpdateIntake {
                patch: sop_core::case::IntakePatch {
                    questions: Some(format!("question {round}")),
                    ..Default::default()
                },
            },
        );
        let answers = phone.push(net).await;
        assert!(
            answers.iter().all(|a| *a == Outcome::Applied),
            "{answers:?}"
        );
        committed.lock().unwrap().changes.extend(hashes);
        if round.is_multiple_of(4) {
            let data = net
                .ok(
                    "/app/create-case",
                    &token,
                    json!({"rt_id": rt, "dc_id": dc, "medical_history": format!("new {round}")}),
                )
                .await;
            let id: CaseId = serde_json::from_value(data["case_id"].clone()).unwrap();
            committed
                .lock()
                .unwrap()
                .cases
                .entry(patient.clone())
                .or_default()
                .insert(id);
        }
    }
}

/// One puller: a device that keeps pulling from its cursor until `deadline` (small pages, so
/// that pulls and commits interleave); answers the device and how many items it pulled.
async fn puller(server: Arc<TestServer>, mut device: Device, deadline: Instant) -> (Device, usize) {
    let net = Net::Http(&server);
    let mut items = 0;
    while Instant::now() < deadline {
        items += device.pull_once(net, Some(7)).await.items.len();
    }
    (device, items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_pulled_sequence_skips_or_repeats_anything_under_concurrent_writers() {
    let pg = TestPg::create().await;
    let dir = tempfile::tempdir().unwrap();
    seed_demo(dir.path(), Some(&pg.url));
    let server = Arc::new(
        TestServer::start(
            dir.path(),
            ServerOptions {
                database_url: Some(pg.url.clone()),
                ..ServerOptions::default()
            },
        )
        .await,
    );
    let net = Net::Http(&server);
    let (rt, dc) = demo_catalog();
    let patients = ["SP1", "SP2", "SP3"];
    let mut tokens = HashMap::new();
    let mut drafts: HashMap<&str, Vec<CaseId>> = HashMap::new();
    for p in patients {
        let token = mint_token(dir.path(), p, "snr_usr");
        for i in 0..3 {
            let data = net
                .ok(
                    "/app/create-case",
                    &token,
                    json!({"rt_id": rt, "dc_id": dc, "medical_history": format!("{p} case {i}: ")}),
                )
                .await;
            drafts
                .entry(p)
                .or_default()
                .push(serde_json::from_value(data["case_id"].clone()).unwrap());
        }
        tokens.insert(p, token);
    }
    // Pullers start from a first sync (whole cases), then follow the feed.
    let mut pullers = Vec::new();
    for p in patients {
        for _ in 0..2 {
            let mut device = Device::new(tokens[p].clone());
            device.pull(net).await;
            pullers.push((p, device));
        }
    }
    let committed = Arc::new(std::sync::Mutex::new(Committed::default()));
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut writers = Vec::new();
    for p in patients {
        for _ in 0..2 {
            writers.push(tokio::spawn(writer(
                Arc::clone(&server),
                tokens[p].clone(),
                p.to_owned(),
                drafts[p].clone(),
                deadline,
                Arc::clone(&committed),
            )));
        }
    }
    let running: Vec<_> = pullers
        .into_iter()
        .map(|(p, device)| {
            (
                p,
                tokio::spawn(puller(Arc::clone(&server), device, deadline)),
            )
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let committed = Arc::try_unwrap(committed)
        .ok()
        .expect("writers done")
        .into_inner()
        .unwrap();
    assert!(
        committed.changes.len() > 30,
        "the writers did write: {}",
        committed.changes.len()
    );
    for (p, task) in running {
        let (mut device, pulled_while_writing) = task.await.expect("puller");
        assert!(
            pulled_while_writing > 0,
            "{p}: pulls ran while writers wrote"
        );
        device.pull(Net::Http(&server)).await;
        // Nothing twice, nothing missing: every change applied (no missing dependency) and new.
        assert_eq!(device.repeated_changes, 0, "{p}");
        // Every case of the patient, created before or during the run.
        let mut expected: HashSet<CaseId> = drafts[p].iter().copied().collect();
        expected.extend(committed.cases.get(p).into_iter().flatten().copied());
        assert_eq!(
            device.cases.keys().copied().collect::<HashSet<_>>(),
            expected,
            "{p}"
        );
        // Every committed change of this patient's documents, and the server's final state.
        let mut fresh = Device::new(tokens[p].clone());
        fresh.pull(Net::Http(&server)).await;
        assert_eq!(fresh.docs.len(), expected.len(), "{p}: one intake per case");
        for (id, doc) in &fresh.docs {
            assert_eq!(device.docs[id].heads(), doc.heads(), "{p}: document {id}");
            assert_eq!(
                content::read(&device.docs[id]).unwrap(),
                content::read(doc).unwrap()
            );
        }
        let mine: HashSet<&DocId> = fresh.docs.keys().collect();
        for hash in &committed.changes {
            let in_patients_docs = fresh.docs.values().any(|d| d.has_change(hash));
            let in_device = device
                .docs
                .iter()
                .filter(|(id, _)| mine.contains(id))
                .any(|(_, d)| d.has_change(hash));
            assert_eq!(in_patients_docs, in_device, "{p}: change {hash}");
        }
    }
}
