//! Content documents (issue #4, sop-core half): convergence of documents created independently
//! on several devices, every refusal of `apply_remote`, batches, the write-permission rule with
//! `content_frozen`, freezing, recovered drafts, and property tests of convergence and of
//! `validate` accepting whatever the typed setters produce.
//!
//! A "server" here is a `ContentDoc` the test pushes device changes into with `apply_remote*`,
//! exactly as the sync endpoint will; a "pull" is `load_incremental` of the server's changes.

use crate::fixtures::{self, d1, d2, d3, doctor, owner};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ChangeHash, ObjType, ROOT, ReadDoc};
use proptest::prelude::*;
use sop_core::access::ContentKind;
use sop_core::case::{Gender, Intake};
use sop_core::command::{Concordance, OpinionContent};
use sop_core::content::{
    self, BatchOutcome, Content, ContentDoc, DocKind, DocRef, Frozen, RemoteChange, apply_remote,
    apply_remote_batch, check_write, intake, notes, opinion, read_at, recovered_draft, summary,
    validate,
};
use sop_core::refusal::RefusalCode;
use sop_core::rules::Limits;

fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16])
}

fn server(kind: DocKind) -> ContentDoc {
    ContentDoc::new(kind, actor(0xee)).unwrap()
}

/// A device's edits since `base`, as the op it would push.
struct Pushed {
    bytes: Vec<u8>,
    heads_before: Vec<ChangeHash>,
}

impl Pushed {
    fn since(device: &ContentDoc, base: &[ChangeHash]) -> Self {
        Self {
            bytes: device.save_after(base),
            heads_before: base.to_vec(),
        }
    }

    fn remote(&self) -> RemoteChange<'_> {
        RemoteChange {
            bytes: &self.bytes,
            heads_before: &self.heads_before,
        }
    }
}

fn push(server: &ContentDoc, op: &Pushed) -> ContentDoc {
    apply_remote(server, op.remote(), &Limits::default())
        .expect("the push is accepted")
        .0
}

fn refusal(server: &ContentDoc, op: &Pushed, limits: &Limits) -> sop_core::Refusal {
    apply_remote(server, op.remote(), limits).expect_err("the push is refused")
}

/// The device pulls everything the server has that it lacks.
fn pull(device: &mut ContentDoc, server: &ContentDoc) {
    device
        .load_incremental(&server.save_after(&device.heads()))
        .unwrap();
}

fn sorted_heads(doc: &ContentDoc) -> Vec<ChangeHash> {
    let mut h = doc.heads();
    h.sort();
    h
}

fn assert_same(a: &ContentDoc, b: &ContentDoc) {
    assert_eq!(sorted_heads(a), sorted_heads(b));
    assert_eq!(content::read(a).unwrap(), content::read(b).unwrap());
}

// ---------------------------------------------------------------------------------------------
// Convergence (the acceptance criterion)

#[test]
fn two_patient_devices_editing_one_draft_offline_converge_with_both_texts_in_either_order() {
    let mut phone_a = ContentDoc::new(DocKind::Intake, actor(1)).unwrap();
    let mut phone_b = ContentDoc::new(DocKind::Intake, actor(2)).unwrap();
    let genesis = phone_a.heads();
    assert_eq!(
        genesis,
        phone_b.heads(),
        "independent geneses are identical"
    );

    intake::set_medical_history(&mut phone_a, "Asthma since 2001.").unwrap();
    intake::set_age(&mut phone_a, Some(42)).unwrap();
    intake::set_medical_history(&mut phone_b, "Allergic to penicillin.").unwrap();
    let op_a = Pushed::since(&phone_a, &genesis);
    let op_b = Pushed::since(&phone_b, &genesis);

    let a_then_b = push(&push(&server(DocKind::Intake), &op_a), &op_b);
    let b_then_a = push(&push(&server(DocKind::Intake), &op_b), &op_a);
    assert_same(&a_then_b, &b_then_a);
    let merged = intake::get(&a_then_b).unwrap();
    assert!(merged.medical_history.contains("Asthma since 2001."));
    assert!(merged.medical_history.contains("Allergic to penicillin."));
    assert_eq!(merged.patient_age, Some(42));
    validate(&a_then_b, &Limits::default()).unwrap();

    // Both phones pull and end identical to the server; direct merges agree too.
    let mut direct_ab = phone_a.clone();
    direct_ab.merge(&phone_b).unwrap();
    let mut direct_ba = phone_b.clone();
    direct_ba.merge(&phone_a).unwrap();
    pull(&mut phone_a, &a_then_b);
    pull(&mut phone_b, &a_then_b);
    for doc in [&phone_a, &phone_b, &direct_ab, &direct_ba] {
        assert_same(doc, &a_then_b);
    }
}

#[test]
fn two_devices_of_one_doctor_converge_on_the_opinion_in_either_order() {
    let mut tablet = ContentDoc::new(DocKind::Opinion, actor(3)).unwrap();
    let mut laptop = ContentDoc::new(DocKind::Opinion, actor(4)).unwrap();
    let genesis = tablet.heads();
    opinion::set_summary(&mut tablet, "Surgery is not needed now.").unwrap();
    opinion::set_concordance(&mut tablet, Some(Concordance::MinorDifference)).unwrap();
    opinion::set_summary(&mut laptop, "Review in six months.").unwrap();
    opinion::set_recommendations(&mut laptop, "Beta blockers.").unwrap();
    let op_t = Pushed::since(&tablet, &genesis);
    let op_l = Pushed::since(&laptop, &genesis);

    let one = push(&push(&server(DocKind::Opinion), &op_t), &op_l);
    let two = push(&push(&server(DocKind::Opinion), &op_l), &op_t);
    assert_same(&one, &two);
    let merged = opinion::get(&one).unwrap();
    assert!(merged.summary.contains("Surgery is not needed now."));
    assert!(merged.summary.contains("Review in six months."));
    assert_eq!(merged.recommendations, "Beta blockers.");
    assert_eq!(merged.concordance, Some(Concordance::MinorDifference));
}

#[test]
fn documents_without_a_shared_genesis_would_lose_a_text() {
    // Why the genesis is deterministic: two devices each creating their own Text under the same
    // key merge into one visible winner, and the other device's typing disappears from view.
    let make = |n: u8, text: &str| {
        let mut doc = Automerge::new().with_actor(actor(n));
        let mut tx = doc.transaction();
        let t = tx.put_object(ROOT, "text", ObjType::Text).unwrap();
        tx.splice_text(&t, 0, 0, text).unwrap();
        tx.commit();
        doc
    };
    let mut a = make(1, "from A");
    let mut b = make(2, "from B");
    a.merge(&mut b).unwrap();
    let (_, id) = a.get(ROOT, "text").unwrap().unwrap();
    let visible = a.text(&id).unwrap();
    assert!(visible == "from A" || visible == "from B", "{visible}");
}

// ---------------------------------------------------------------------------------------------
// apply_remote refusals

/// A notes document on the server and a device one edit ahead of it.
fn notes_setup() -> (ContentDoc, ContentDoc, Vec<ChangeHash>) {
    let server = server(DocKind::Notes);
    let mut device = ContentDoc::new(DocKind::Notes, actor(5)).unwrap();
    let base = device.heads();
    notes::set(&mut device, "first thought").unwrap();
    notes::set(&mut device, "first thought, second thought").unwrap();
    (server, device, base)
}

#[test]
fn garbage_bytes_are_refused_as_malformed() {
    let (server, _, base) = notes_setup();
    for bytes in [
        b"garbage".to_vec(),
        vec![],
        vec![0x85, 0x6f, 0x4a, 0x83],
        vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1, 0xff],
    ] {
        let op = Pushed {
            bytes,
            heads_before: base.clone(),
        };
        assert_eq!(
            refusal(&server, &op, &Limits::default()).code,
            RefusalCode::ChangeMalformed
        );
    }
}

#[test]
fn truncated_bytes_are_refused_not_half_applied() {
    let (server, device, base) = notes_setup();
    let whole = Pushed::since(&device, &base);
    // (A cut that falls exactly between two changes leaves a shorter, valid op: not a truncation
    // this side can see. The JSON around the bytes protects against transport truncation.)
    for cut in [1, 3, 10] {
        let op = Pushed {
            bytes: whole.bytes[..whole.bytes.len() - cut].to_vec(),
            heads_before: base.clone(),
        };
        // load_incremental would apply the first change and return Ok here.
        let outcome = apply_remote_batch(&server, &[op.remote()], &Limits::default());
        let err = outcome.results[0].clone().unwrap_err();
        assert_eq!(err.code, RefusalCode::ChangeMalformed, "cut {cut}");
        assert_eq!(outcome.doc.heads(), server.heads(), "nothing applied");
        assert!(!outcome.changed());
    }
}

#[test]
fn a_flipped_bit_is_refused_by_the_checksum() {
    let (server, device, base) = notes_setup();
    let mut op = Pushed::since(&device, &base);
    let last = op.bytes.len() - 1;
    op.bytes[last] ^= 0x01;
    assert_eq!(
        refusal(&server, &op, &Limits::default()).code,
        RefusalCode::ChangeMalformed
    );
}

#[test]
fn a_whole_document_instead_of_changes_is_refused() {
    let (server, device, base) = notes_setup();
    let op = Pushed {
        bytes: device.save(),
        heads_before: base,
    };
    assert_eq!(
        refusal(&server, &op, &Limits::default()).code,
        RefusalCode::ChangeMalformed
    );
}

#[test]
fn a_change_with_missing_dependencies_is_refused() {
    let server = server(DocKind::Notes);
    let mut device = ContentDoc::new(DocKind::Notes, actor(5)).unwrap();
    notes::set(&mut device, "first").unwrap();
    let after_first = device.heads();
    notes::set(&mut device, "first and second").unwrap();
    // Only the second change: it depends on the first, which the server never got.
    let op = Pushed::since(&device, &after_first);
    let outcome = apply_remote_batch(&server, &[op.remote()], &Limits::default());
    assert_eq!(
        outcome.results[0].clone().unwrap_err().code,
        RefusalCode::ChangeMissingDeps
    );
    assert_eq!(outcome.doc.heads(), server.heads());

    // Claiming heads the server does not know is refused the same way.
    let claims_unknown = Pushed {
        bytes: device.save_after(&server.heads()),
        heads_before: vec![ChangeHash([9; 32])],
    };
    assert_eq!(
        refusal(&server, &claims_unknown, &Limits::default()).code,
        RefusalCode::ChangeMissingDeps
    );
}

#[test]
fn an_oversized_change_is_refused_naming_the_limit() {
    let (server, device, base) = notes_setup();
    let op = Pushed::since(&device, &base);
    let limits = Limits {
        max_change_bytes: op.bytes.len() - 1,
        ..Limits::default()
    };
    let err = refusal(&server, &op, &limits);
    assert_eq!(err.code, RefusalCode::ChangeTooLarge);
    assert!(
        err.message_en
            .contains(&format!("limit: {} bytes", op.bytes.len() - 1)),
        "{}",
        err.message_en
    );
}

#[test]
fn a_change_making_the_document_too_large_is_refused() {
    let server = server(DocKind::Notes);
    let mut device = ContentDoc::new(DocKind::Notes, actor(5)).unwrap();
    let base = device.heads();
    let limits = Limits {
        max_document_bytes: server.save().len() + 64,
        ..Limits::default()
    };
    // Varied text so compression does not shrink it under the limit.
    let text: String = (0..400)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    notes::set(&mut device, &text).unwrap();
    let err = refusal(&server, &Pushed::since(&device, &base), &limits);
    assert_eq!(err.code, RefusalCode::DocumentTooLarge);
}

/// A device that writes with the raw Automerge API, bypassing the typed modules.
fn raw_edit(
    server: &ContentDoc,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Pushed {
    let mut doc = Automerge::load(&server.save())
        .unwrap()
        .with_actor(actor(6));
    let base = doc.get_heads();
    let mut tx = doc.transaction();
    f(&mut tx);
    tx.commit();
    Pushed {
        bytes: doc.save_after(&base),
        heads_before: base,
    }
}

#[test]
fn schema_invalid_changes_are_refused() {
    let intake_server = server(DocKind::Intake);
    let cases: Vec<(&str, Pushed)> = vec![
        (
            "an integer at medical_history",
            raw_edit(&intake_server, |tx| {
                tx.put(ROOT, "medical_history", 7).unwrap();
            }),
        ),
        (
            "a second Text object at medical_history",
            raw_edit(&intake_server, |tx| {
                tx.put_object(ROOT, "medical_history", ObjType::Text)
                    .unwrap();
            }),
        ),
        (
            "medical_history deleted",
            raw_edit(&intake_server, |tx| {
                tx.delete(ROOT, "medical_history").unwrap();
            }),
        ),
        (
            "an unknown root key",
            raw_edit(&intake_server, |tx| {
                tx.put(ROOT, "nickname", "x").unwrap();
            }),
        ),
        (
            "an age of 200",
            raw_edit(&intake_server, |tx| {
                tx.put(ROOT, "patient_age", 200).unwrap();
            }),
        ),
        (
            "an age as text",
            raw_edit(&intake_server, |tx| {
                tx.put(ROOT, "patient_age", "forty").unwrap();
            }),
        ),
        (
            "an unknown gender",
            raw_edit(&intake_server, |tx| {
                tx.put(ROOT, "patient_gender", "robot").unwrap();
            }),
        ),
        (
            "a map as gender",
            raw_edit(&intake_server, |tx| {
                tx.put_object(ROOT, "patient_gender", ObjType::Map).unwrap();
            }),
        ),
    ];
    for (what, op) in cases {
        let err = refusal(&intake_server, &op, &Limits::default());
        assert_eq!(err.code, RefusalCode::DocumentInvalid, "{what}");
    }

    let opinion_server = server(DocKind::Opinion);
    let op = raw_edit(&opinion_server, |tx| {
        tx.put(ROOT, "concordance", "perhaps").unwrap();
    });
    assert_eq!(
        refusal(&opinion_server, &op, &Limits::default()).code,
        RefusalCode::DocumentInvalid
    );
    // Null is a valid "not set".
    let op = raw_edit(&opinion_server, |tx| {
        tx.put(ROOT, "concordance", ()).unwrap();
    });
    push(&opinion_server, &op);
}

#[test]
fn a_text_over_the_limit_is_refused() {
    let (server, device, base) = notes_setup();
    let limits = Limits {
        max_text_chars: 10,
        ..Limits::default()
    };
    assert_eq!(
        refusal(&server, &Pushed::since(&device, &base), &limits).code,
        RefusalCode::TextTooLong
    );
}

#[test]
fn a_change_forged_as_the_genesis_actor_is_refused() {
    let server = server(DocKind::Notes);
    let mut doc = Automerge::load(&server.save())
        .unwrap()
        .with_actor(content::genesis_actor(DocKind::Notes));
    let base = doc.get_heads();
    let mut tx = doc.transaction();
    let (_, text) = tx.get(ROOT, "text").unwrap().unwrap();
    tx.splice_text(&text, 0, 0, "forged").unwrap();
    tx.commit();
    let op = Pushed {
        bytes: doc.save_after(&base),
        heads_before: base,
    };
    assert_eq!(
        refusal(&server, &op, &Limits::default()).code,
        RefusalCode::ChangeMalformed
    );
}

// ---------------------------------------------------------------------------------------------
// Batches

#[test]
fn a_batch_with_one_refused_op_still_applies_the_others_in_order() {
    let server = server(DocKind::Intake);
    let mut device = ContentDoc::new(DocKind::Intake, actor(7)).unwrap();
    let genesis = device.heads();
    intake::set_medical_history(&mut device, "one").unwrap();
    let after_one = device.heads();
    let op1 = Pushed::since(&device, &genesis);
    intake::set_questions(&mut device, "two").unwrap();
    let op3 = Pushed::since(&device, &after_one);
    let bad = raw_edit(&server, |tx| {
        tx.put(ROOT, "patient_age", 999).unwrap();
    });
    let garbage = Pushed {
        bytes: b"junk".to_vec(),
        heads_before: vec![],
    };

    let outcome = apply_remote_batch(
        &server,
        &[op1.remote(), bad.remote(), garbage.remote(), op3.remote()],
        &Limits::default(),
    );
    let codes: Vec<_> = outcome
        .results
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.code))
        .collect();
    assert_eq!(
        codes,
        vec![
            None,
            Some(RefusalCode::DocumentInvalid),
            Some(RefusalCode::ChangeMalformed),
            None
        ]
    );
    let got = intake::get(&outcome.doc).unwrap();
    assert_eq!(
        (got.medical_history.as_str(), got.questions.as_str()),
        ("one", "two")
    );
    assert_eq!(got.patient_age, None);
    assert_same(&outcome.doc, &device);
}

#[test]
fn an_op_built_on_a_refused_op_is_refused_for_missing_dependencies() {
    let server = server(DocKind::Intake);
    // A device writing with the raw API: op 1 breaks the schema, op 2 builds on it.
    let mut raw = Automerge::load(&server.save())
        .unwrap()
        .with_actor(actor(8));
    let genesis = raw.get_heads();
    let mut tx = raw.transaction();
    tx.put(ROOT, "medical_history", 1).unwrap();
    tx.commit();
    let after_one = raw.get_heads();
    let op1 = Pushed {
        bytes: raw.save_after(&genesis),
        heads_before: genesis,
    };
    let mut tx = raw.transaction();
    tx.put(ROOT, "patient_age", 30).unwrap();
    tx.commit();
    let op2 = Pushed {
        bytes: raw.save_after(&after_one),
        heads_before: after_one,
    };
    let outcome = apply_remote_batch(&server, &[op1.remote(), op2.remote()], &Limits::default());
    let codes: Vec<_> = outcome
        .results
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.code))
        .collect();
    assert_eq!(
        codes,
        vec![
            Some(RefusalCode::DocumentInvalid),
            Some(RefusalCode::ChangeMissingDeps)
        ]
    );
    assert_eq!(outcome.doc.heads(), server.heads());
}

#[test]
fn validity_is_judged_on_the_document_a_batch_commits() {
    // Op 1 alone would exceed the text limit; op 2 (same batch) shortens the text again. The
    // committed document is valid, and no reader ever sees a state inside a batch, so both apply.
    let server = server(DocKind::Notes);
    let limits = Limits {
        max_text_chars: 5,
        ..Limits::default()
    };
    let mut device = ContentDoc::new(DocKind::Notes, actor(8)).unwrap();
    let genesis = device.heads();
    notes::set(&mut device, "too long for the limit").unwrap();
    let after_one = device.heads();
    let op1 = Pushed::since(&device, &genesis);
    notes::set(&mut device, "short").unwrap();
    let op2 = Pushed::since(&device, &after_one);
    let both = apply_remote_batch(&server, &[op1.remote(), op2.remote()], &limits);
    assert!(both.results.iter().all(Result::is_ok));
    assert_eq!(notes::get(&both.doc).unwrap(), "short");
    // Pushed in two requests, the first one is refused, and the second then lacks its base.
    assert_eq!(
        refusal(&server, &op1, &limits).code,
        RefusalCode::TextTooLong
    );
    assert_eq!(
        refusal(&server, &op2, &limits).code,
        RefusalCode::ChangeMissingDeps
    );
}

#[test]
fn a_batch_reports_the_heads_after_each_op_and_repeats_add_nothing() {
    let server = server(DocKind::Summary);
    let mut device = ContentDoc::new(DocKind::Summary, actor(9)).unwrap();
    let mut ops = Vec::new();
    let mut expected_heads = Vec::new();
    for i in 0..20 {
        let base = device.heads();
        summary::set(&mut device, &format!("draft {i}")).unwrap();
        ops.push(Pushed::since(&device, &base));
        expected_heads.push(sorted_heads(&device));
    }
    let remotes: Vec<_> = ops.iter().map(Pushed::remote).collect();
    let BatchOutcome {
        doc,
        results,
        added_bytes,
    } = apply_remote_batch(&server, &remotes, &Limits::default());
    assert_eq!(added_bytes, device.save_after(&server.heads()));
    for (result, heads) in results.iter().zip(&expected_heads) {
        let applied = result.as_ref().unwrap();
        assert_eq!(&applied.new_heads, heads);
        assert_eq!(applied.added.len(), 1);
    }
    assert_same(&doc, &device);

    // The same batch again (a retried push): accepted, nothing added.
    let again = apply_remote_batch(&doc, &remotes, &Limits::default());
    assert!(!again.changed());
    assert!(again.results.iter().all(Result::is_ok));
    assert_same(&again.doc, &device);
}

// ---------------------------------------------------------------------------------------------
// Permissions, freezing, recovered drafts

fn write_code(
    fx: &fixtures::Fx,
    actor: &sop_core::Actor,
    kind: ContentKind,
) -> Option<RefusalCode> {
    let doc_ref = DocRef::new(fx.case().case_id, kind);
    check_write(fx.case(), actor, &doc_ref)
        .err()
        .map(|r| r.code)
}

#[test]
fn check_write_follows_the_table_and_names_frozen_content() {
    let draft = fixtures::draft();
    assert_eq!(write_code(&draft, &owner(), ContentKind::Intake), None);

    let submitted = fixtures::submitted();
    assert_eq!(
        write_code(&submitted, &owner(), ContentKind::Intake),
        Some(RefusalCode::ContentFrozen)
    );

    let assigned = fixtures::doctors_assigned();
    assert_eq!(
        write_code(&assigned, &doctor(d1()), ContentKind::Opinion(d1())),
        None
    );
    assert_eq!(
        write_code(&assigned, &doctor(d1()), ContentKind::Notes(d1())),
        None
    );
    assert_eq!(
        write_code(&assigned, &doctor(d1()), ContentKind::Notes(d2())),
        Some(RefusalCode::Forbidden)
    );
    // D3 was removed: the case does not exist for them.
    assert_eq!(
        write_code(&assigned, &doctor(d3()), ContentKind::Notes(d3())),
        Some(RefusalCode::CaseNotFound)
    );
    assert_eq!(
        write_code(&assigned, &owner(), ContentKind::Intake),
        Some(RefusalCode::ContentFrozen)
    );

    let opinions_in = fixtures::opinions_in();
    assert_eq!(
        write_code(&opinions_in, &doctor(d1()), ContentKind::Opinion(d1())),
        Some(RefusalCode::ContentFrozen)
    );
    let completed = fixtures::completed();
    assert_eq!(
        write_code(&completed, &doctor(fixtures::c1()), ContentKind::Summary),
        Some(RefusalCode::ContentFrozen)
    );

    // A document of another case.
    let other = DocRef::new(
        sop_core::ids::CaseId(uuid::Uuid::from_u128(42)),
        ContentKind::Intake,
    );
    assert_eq!(
        check_write(draft.case(), &owner(), &other)
            .unwrap_err()
            .code,
        RefusalCode::CaseNotFound
    );
}

#[test]
fn an_intake_edit_made_offline_after_another_phone_submitted_is_refused_and_recovered() {
    // Both phones start from the server's draft.
    let mut srv = server(DocKind::Intake);
    intake::set(&mut srv, &fixtures::full_intake()).unwrap();
    let mut phone_a = srv.fork_at(&srv.heads()).unwrap();
    phone_a.set_actor(actor(1));
    let server_heads_seen_by_a = phone_a.heads();

    // Phone A types offline; meanwhile phone B submits the case.
    let typed = "Hypertension since 2015; chest pain on exertion. Also diabetic.";
    intake::set_medical_history(&mut phone_a, typed).unwrap();
    let mut fx = fixtures::draft();
    fx.run(&owner(), sop_core::Command::SubmitCase);
    let frozen = Frozen::of(&srv);

    // A syncs: refused before anything is applied.
    let doc_ref = DocRef::new(fx.case().case_id, ContentKind::Intake);
    let refused = check_write(fx.case(), &owner(), &doc_ref).unwrap_err();
    assert_eq!(refused.code, RefusalCode::ContentFrozen);
    assert!(!refused.message_ar.is_empty());

    // A keeps its text as a recovered draft and returns to the server's state.
    let server_view = phone_a.fork_at(&server_heads_seen_by_a).unwrap();
    let draft = recovered_draft(&phone_a, &server_view).unwrap().unwrap();
    assert_eq!(draft.fields, vec!["medical_history".to_owned()]);
    let Content::Intake(kept) = &draft.content else {
        panic!("an intake draft")
    };
    assert_eq!(kept.medical_history, typed);
    phone_a.reset_to(&server_view).unwrap();
    assert_same(&phone_a, &srv);
    assert_eq!(actor(1), *phone_a.actor(), "the device keeps its actor");
    assert_eq!(
        read_at(&srv, &frozen).unwrap(),
        Content::Intake(fixtures::full_intake())
    );
}

#[test]
fn the_frozen_opinion_is_what_readers_see() {
    let mut srv = server(DocKind::Opinion);
    let submitted = OpinionContent {
        summary: "Agree with the treating team.".into(),
        diagnosis: "Stable angina.".into(),
        recommendations: "Medical therapy.".into(),
        concordance: Some(Concordance::Agrees),
        free_text: String::new(),
    };
    opinion::set(&mut srv, &submitted).unwrap();
    let frozen = Frozen::of(&srv);
    opinion::set_free_text(&mut srv, "typed after submitting").unwrap();
    assert_eq!(read_at(&srv, &frozen).unwrap(), Content::Opinion(submitted));
}

// ---------------------------------------------------------------------------------------------
// Properties

#[derive(Clone, Debug)]
enum Edit {
    History(String),
    Questions(String),
    Age(Option<i32>),
    Gender(Option<Gender>),
    /// Replica `to` receives everything replica `from` has (an offline device-to-device exchange
    /// through the server, as far as content goes).
    Sync {
        from: usize,
        to: usize,
    },
}

fn text() -> impl Strategy<Value = String> {
    "[ab ءاب\n]{0,12}"
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => text().prop_map(Edit::History),
        2 => text().prop_map(Edit::Questions),
        1 => proptest::option::of(0..=130i32).prop_map(Edit::Age),
        1 => proptest::option::of(prop_oneof![
            Just(Gender::Male),
            Just(Gender::Female),
            Just(Gender::Other)
        ])
        .prop_map(Edit::Gender),
        1 => (0..3usize, 0..3usize).prop_map(|(from, to)| Edit::Sync { from, to }),
    ]
}

fn apply_edit(replicas: &mut [ContentDoc], who: usize, edit: &Edit) {
    let n = replicas.len();
    match edit {
        Edit::History(t) => intake::set_medical_history(&mut replicas[who % n], t).unwrap(),
        Edit::Questions(t) => intake::set_questions(&mut replicas[who % n], t).unwrap(),
        Edit::Age(a) => intake::set_age(&mut replicas[who % n], *a).unwrap(),
        Edit::Gender(g) => intake::set_gender(&mut replicas[who % n], *g).unwrap(),
        Edit::Sync { from, to } => {
            let source = replicas[from % n].clone();
            replicas[to % n].merge(&source).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Replicas created independently (same genesis), edited concurrently with occasional
    /// syncs, converge to identical content whatever order the changes are exchanged in —
    /// directly or through the server's `apply_remote_batch` — and every document the typed
    /// setters produce is schema-valid.
    #[test]
    fn concurrent_edits_converge_in_any_exchange_order(
        n in 2..=3usize,
        steps in proptest::collection::vec((0..3usize, edit()), 1..25),
        order in Just(vec![0usize, 1, 2]).prop_shuffle(),
        server_order in Just(vec![0usize, 1, 2]).prop_shuffle(),
    ) {
        let limits = Limits::default();
        let mut replicas: Vec<ContentDoc> = (0..n)
            .map(|i| ContentDoc::new(DocKind::Intake, actor(i as u8 + 1)).unwrap())
            .collect();
        let genesis = replicas[0].heads();
        for (who, e) in &steps {
            apply_edit(&mut replicas, *who, e);
            for r in &replicas {
                prop_assert!(validate(r, &limits).is_ok());
            }
        }

        // Through the server: each replica pushes all it has, in a random order, one batch.
        let srv = server(DocKind::Intake);
        let pushed: Vec<Pushed> = server_order
            .iter()
            .filter(|i| **i < n)
            .map(|i| Pushed::since(&replicas[*i], &genesis))
            .filter(|p| !p.bytes.is_empty())
            .collect();
        let remotes: Vec<_> = pushed.iter().map(Pushed::remote).collect();
        let outcome = apply_remote_batch(&srv, &remotes, &limits);
        prop_assert!(outcome.results.iter().all(Result::is_ok), "{:?}", outcome.results);

        // Directly: everyone merges everyone, in a random order.
        let snapshot = replicas.clone();
        for r in replicas.iter_mut() {
            for i in order.iter().filter(|i| **i < n) {
                r.merge(&snapshot[*i]).unwrap();
            }
        }
        for r in &replicas {
            prop_assert_eq!(sorted_heads(r), sorted_heads(&outcome.doc));
            prop_assert_eq!(content::read(r).unwrap(), content::read(&outcome.doc).unwrap());
        }
        prop_assert!(validate(&outcome.doc, &limits).is_ok());
    }

    /// Whatever the typed opinion setters write validates, and reads back as written.
    #[test]
    fn typed_opinion_setters_always_produce_valid_documents(
        summary in text(), diagnosis in text(), recommendations in text(), free_text in text(),
        concordance in proptest::option::of(prop_oneof![
            Just(Concordance::Agrees),
            Just(Concordance::MinorDifference),
            Just(Concordance::MajorDifference)
        ]),
    ) {
        let written = OpinionContent { summary, diagnosis, recommendations, concordance, free_text };
        let mut doc = ContentDoc::new(DocKind::Opinion, actor(1)).unwrap();
        opinion::set(&mut doc, &written).unwrap();
        prop_assert!(validate(&doc, &Limits::default()).is_ok());
        prop_assert_eq!(opinion::get(&doc).unwrap(), written);
    }

    /// Same for the intake, field by field.
    #[test]
    fn typed_intake_setters_always_produce_valid_documents(
        history in text(), questions in text(),
        age in proptest::option::of(0..=130i32),
        gender in proptest::option::of(prop_oneof![
            Just(Gender::Male), Just(Gender::Female), Just(Gender::Other)
        ]),
    ) {
        let written = Intake {
            patient_age: age,
            patient_gender: gender,
            medical_history: history,
            questions,
        };
        let mut doc = ContentDoc::new(DocKind::Intake, actor(1)).unwrap();
        intake::set(&mut doc, &written).unwrap();
        prop_assert!(validate(&doc, &Limits::default()).is_ok());
        prop_assert_eq!(intake::get(&doc).unwrap(), written);
    }
}

/// How a pushed change's bytes are damaged in [`damaged_changes_are_refused_alone`].
#[derive(Clone, Debug)]
enum Damage {
    /// XOR the byte at (index modulo the length) with a non-zero mask.
    Flip(usize, u8),
    /// Keep only the first (index modulo the length) bytes.
    Truncate(usize),
    /// Insert bytes at (index modulo the length).
    Insert(usize, Vec<u8>),
    /// Replace everything with these bytes.
    Garbage(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, m)| Damage::Flip(i, m)),
        any::<usize>().prop_map(Damage::Truncate),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, b)| Damage::Insert(i, b)),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Damage::Garbage),
    ]
}

impl Damage {
    fn apply(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        let at = |i: usize| i % bytes.len().max(1);
        match self {
            Damage::Flip(i, mask) => {
                if let Some(b) = out.get_mut(at(*i)) {
                    *b ^= mask;
                }
            }
            Damage::Truncate(i) => out.truncate(at(*i)),
            Damage::Insert(i, extra) => {
                let i = at(*i).min(out.len());
                out.splice(i..i, extra.iter().copied());
            }
            Damage::Garbage(g) => out.clone_from(g),
        }
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Bad input loses nothing (DESIGN §8; `cargo fuzz` needs a nightly toolchain this project
    /// does not have, so the wire decoding and content validation are driven by random damage
    /// here): a pushed change whose bytes are flipped, truncated, extended or replaced never
    /// panics the server's `apply_remote_batch`; it is refused with a content code, or (when the
    /// damage left valid bytes, e.g. an inserted byte in an unused field) applied; the other
    /// device's change pushed after it in the same batch is applied either way, and the result is
    /// schema-valid. The same damaged bytes inside a push body never panic the wire decoder.
    #[test]
    fn damaged_changes_are_refused_alone(text in "[a-z ]{1,40}", other in "[a-z]{1,20}", d in damage()) {
        let limits = Limits::default();
        let srv = server(DocKind::Intake);
        let genesis = srv.heads();
        let mut a = ContentDoc::new(DocKind::Intake, actor(1)).unwrap();
        intake::set_medical_history(&mut a, &text).unwrap();
        let mut b = ContentDoc::new(DocKind::Intake, actor(2)).unwrap();
        intake::set_questions(&mut b, &other).unwrap();
        let damaged = d.apply(&a.save_after(&genesis));
        let good = b.save_after(&genesis);
        let ops = [
            RemoteChange { bytes: &damaged, heads_before: &genesis },
            RemoteChange { bytes: &good, heads_before: &genesis },
        ];
        let outcome = apply_remote_batch(&srv, &ops, &limits);
        match &outcome.results[0] {
            Ok(_) => {}
            Err(r) => prop_assert!(
                matches!(
                    r.code,
                    RefusalCode::ChangeMalformed
                        | RefusalCode::ChangeMissingDeps
                        | RefusalCode::DocumentInvalid
                        | RefusalCode::ChangeTooLarge
                ),
                "{:?}",
                r.code
            ),
        }
        prop_assert!(outcome.results[1].is_ok(), "{:?}", outcome.results[1]);
        prop_assert!(validate(&outcome.doc, &limits).is_ok());
        let Content::Intake(seen) = content::read(&outcome.doc).unwrap() else {
            panic!("an intake")
        };
        prop_assert_eq!(seen.questions, other);

        // The wire decoder: a push carrying the damaged bytes round-trips; the same damage
        // done to the push's JSON body decodes or fails with an error, never a panic.
        use sop_core::sync::v1::{Bytes, ChangeOp, DeviceId, Op, OpId, PushRequest};
        let case_id = sop_core::ids::CaseId(uuid::Uuid::from_u128(7));
        let req = PushRequest {
            device_id: DeviceId(uuid::Uuid::from_u128(1)),
            ops: vec![Op::Change(ChangeOp {
                op_id: OpId(uuid::Uuid::from_u128(2)),
                doc_id: DocRef::new(case_id, ContentKind::Intake).doc_id(),
                case_id,
                kind: ContentKind::Intake,
                change: Bytes(damaged.clone()),
                heads_before: genesis.clone(),
            })],
        };
        let body = serde_json::to_vec(&req).unwrap();
        prop_assert_eq!(&serde_json::from_slice::<PushRequest>(&body).unwrap(), &req);
        let _ = serde_json::from_slice::<PushRequest>(&d.apply(&body));
    }
}
