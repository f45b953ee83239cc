//! Fixed catalog, ids, users and clock, and a case in every status built by running real commands
//! through `sop_core::rules::execute` (never by writing `Case` fields by hand), so a fixture is a
//! state the rules can actually reach.
//!
//! Every fixture (where its status allows it) has a complete intake, a document on the case, an
//! open document request (opened with T4, so from `awaiting_payment` on), a payment link, and a
//! removed specialist (`doctors_assigned` and later). The clock starts at [`base`] and moves one
//! minute per command; nothing reads the wall clock.

use chrono::{TimeDelta, TimeZone, Utc};
use sop_core::Timestamp;
use sop_core::actor::Actor;
use sop_core::case::{Case, Gender, Intake, Status};
use sop_core::catalog::{Catalog, CoordinatorMapping, DiseaseCategory, ReviewType};
use sop_core::command::{Command, DoctorToAssign, NewDocument, OpinionContent, RequestSpec};
use sop_core::event::{Decision, Event};
use sop_core::ids::{
    CaseId, CategoryId, DocumentId, MappingId, PaymentId, ReportId, RequestId, ReviewTypeId, UserId,
};
use sop_core::refusal::{Refusal, RefusalCode};
use sop_core::rules::{Context, Limits, execute};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Ids

pub const CASE: CaseId = CaseId(Uuid::from_u128(0x0195_a000_0000_7000_8000_0000_0000_0001));
pub const RT: ReviewTypeId = ReviewTypeId(Uuid::from_u128(0x7001));
pub const RT_INACTIVE: ReviewTypeId = ReviewTypeId(Uuid::from_u128(0x7002));
pub const DC: CategoryId = CategoryId(Uuid::from_u128(0xdc01));
pub const DC_INACTIVE: CategoryId = CategoryId(Uuid::from_u128(0xdc02));
/// A category with a coordinator mapping that is no longer active.
pub const DC_UNMAPPED: CategoryId = CategoryId(Uuid::from_u128(0xdc03));
pub const MAPPING: MappingId = MappingId(Uuid::from_u128(0xcc01));
pub const MAPPING_OLD: MappingId = MappingId(Uuid::from_u128(0xcc02));
pub const PAY1: PaymentId = PaymentId(Uuid::from_u128(0xfa01));
pub const PAY2: PaymentId = PaymentId(Uuid::from_u128(0xfa02));
pub const PAY3: PaymentId = PaymentId(Uuid::from_u128(0xfa03));
pub const REQ1: RequestId = RequestId(Uuid::from_u128(0xe001));
pub const REQ2: RequestId = RequestId(Uuid::from_u128(0xe002));
pub const REQ3: RequestId = RequestId(Uuid::from_u128(0xe003));
pub const DOC1: DocumentId = DocumentId(Uuid::from_u128(0xd0c1));
pub const DOC2: DocumentId = DocumentId(Uuid::from_u128(0xd0c2));
pub const DOC3: DocumentId = DocumentId(Uuid::from_u128(0xd0c3));
pub const REPORT: ReportId = ReportId(Uuid::from_u128(0x4e01));

/// The review type's price (minor units), currency and SLA.
pub const PRICE: i64 = 150_000;
pub const CURRENCY: &str = "SAR";
pub const REVIEW_DAYS: i32 = 7;

pub const MIB: i64 = 1024 * 1024;
pub const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const LINK1: &str = "https://pay.example/p/fa01";

// ---------------------------------------------------------------------------------------------
// Users and actors

/// The patient who owns [`CASE`].
pub fn p1() -> UserId {
    UserId::new("PAT1")
}
/// Another patient.
pub fn p2() -> UserId {
    UserId::new("PAT2")
}
/// Coordinators of the category (the active mapping).
pub fn c1() -> UserId {
    UserId::new("EMP1")
}
pub fn c2() -> UserId {
    UserId::new("EMP2")
}
/// Eligible specialists of the category.
pub fn d1() -> UserId {
    UserId::new("EMP11")
}
pub fn d2() -> UserId {
    UserId::new("EMP12")
}
pub fn d3() -> UserId {
    UserId::new("EMP13")
}
/// A doctor in no category and no mapping.
pub fn d9() -> UserId {
    UserId::new("EMP99")
}
pub fn a1() -> UserId {
    UserId::new("ADM1")
}

pub fn patient(id: UserId) -> Actor {
    Actor::Patient(id)
}
pub fn doctor(id: UserId) -> Actor {
    Actor::Doctor(id)
}
pub fn owner() -> Actor {
    Actor::Patient(p1())
}
pub fn admin() -> Actor {
    Actor::Admin(a1())
}
pub fn platform() -> Actor {
    Actor::PaymentPlatform
}
pub fn system() -> Actor {
    Actor::System
}

// ---------------------------------------------------------------------------------------------
// Clock and catalog

/// The fixed start of every fixture: Monday 2025-03-03 08:00 UTC.
pub fn base() -> Timestamp {
    Utc.with_ymd_and_hms(2025, 3, 3, 8, 0, 0).unwrap()
}

pub fn review_type(rt_id: ReviewTypeId, active: bool) -> ReviewType {
    ReviewType {
        rt_id,
        title_en: "Standard review".into(),
        title_ar: "مراجعة عادية".into(),
        description_en: "A written second opinion".into(),
        description_ar: "رأي ثانٍ مكتوب".into(),
        duration_en: "5–7 days".into(),
        duration_ar: "٥–٧ أيام".into(),
        price: PRICE,
        currency: CURRENCY.into(),
        expected_review_days: REVIEW_DAYS,
        icon: "doc".into(),
        active,
        created_at: base() - TimeDelta::days(30),
    }
}

/// One active review type and one active category (eligible D1, D2, D3) with an active
/// coordinator mapping (C1, C2); plus an inactive review type, an inactive category and a
/// category whose only mapping is inactive, for the guards that need them.
pub fn catalog() -> Catalog {
    Catalog {
        review_types: vec![review_type(RT, true), review_type(RT_INACTIVE, false)],
        categories: vec![
            DiseaseCategory {
                dc_id: DC,
                label_en: "Cardiology".into(),
                label_ar: "أمراض القلب".into(),
                active: true,
                doctor_ids: vec![d1(), d2(), d3()],
            },
            DiseaseCategory {
                dc_id: DC_INACTIVE,
                label_en: "Retired".into(),
                label_ar: "متوقفة".into(),
                active: false,
                doctor_ids: vec![d1()],
            },
            DiseaseCategory {
                dc_id: DC_UNMAPPED,
                label_en: "Dermatology".into(),
                label_ar: "الأمراض الجلدية".into(),
                active: true,
                doctor_ids: vec![d1(), d2()],
            },
        ],
        mappings: vec![
            CoordinatorMapping {
                cc_id: MAPPING,
                speciality_id: DC,
                doctor_ids: vec![c1(), c2()],
                active: true,
            },
            CoordinatorMapping {
                cc_id: MAPPING_OLD,
                speciality_id: DC_UNMAPPED,
                doctor_ids: vec![c1(), c2()],
                active: false,
            },
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// Command payloads

pub fn full_intake() -> Intake {
    Intake {
        patient_age: Some(54),
        patient_gender: Some(Gender::Female),
        medical_history: "Hypertension since 2015; chest pain on exertion.".into(),
        questions: "Is the proposed bypass surgery necessary?".into(),
    }
}

pub fn create(submit: bool) -> Command {
    create_with(RT, DC, full_intake(), submit)
}

pub fn create_with(
    rt_id: ReviewTypeId,
    dc_id: CategoryId,
    intake: Intake,
    submit: bool,
) -> Command {
    Command::CreateCase {
        case_id: CASE,
        rt_id,
        dc_id,
        intake,
        submit,
    }
}

pub fn request(id: RequestId, items: &[&str]) -> RequestSpec {
    RequestSpec {
        request_id: id,
        items: items.iter().map(|s| (*s).to_owned()).collect(),
    }
}

pub fn assign_coordinator(doctor: UserId, payment_id: PaymentId) -> Command {
    Command::AssignCoordinator {
        doctor_id: doctor,
        payment_id,
        requested_documents: None,
    }
}

pub fn paid(payment_id: PaymentId) -> Command {
    Command::PaymentSucceeded {
        payment_id,
        amount: PRICE,
        currency: CURRENCY.into(),
    }
}

pub fn failed(payment_id: PaymentId) -> Command {
    Command::PaymentFailed { payment_id }
}

pub fn assign(doctors: &[UserId]) -> Command {
    Command::AssignDoctors {
        doctors: doctors
            .iter()
            .map(|d| DoctorToAssign {
                doctor_id: d.clone(),
                requested_documents: None,
            })
            .collect(),
    }
}

pub fn doc(id: DocumentId, content_type: &str, size: i64) -> NewDocument {
    NewDocument {
        document_id: id,
        file_name: "scan.pdf".into(),
        content_type: content_type.into(),
        size,
        sha256: SHA_A.into(),
        request_id: None,
    }
}

pub fn upload(id: DocumentId, size: i64) -> Command {
    Command::UploadDocument {
        document: doc(id, "application/pdf", size),
    }
}

pub fn opinion(summary: &str) -> Command {
    Command::SubmitOpinion {
        opinion: OpinionContent {
            summary: summary.into(),
            diagnosis: "Stable angina".into(),
            recommendations: "Medical therapy first".into(),
            concordance: None,
            free_text: String::new(),
        },
    }
}

pub fn summary(text: &str) -> Command {
    Command::SubmitSummary {
        summary: text.into(),
    }
}

pub fn cancel(reason: &str) -> Command {
    Command::Cancel {
        reason: reason.into(),
    }
}

pub fn reject(reason: &str) -> Command {
    Command::Reject {
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The fixture: a case, its event history and a clock

/// A case (or none yet), the events that built it, the catalog and a clock.
#[derive(Clone, Debug)]
pub struct Fx {
    pub catalog: Catalog,
    pub limits: Limits,
    pub now: Timestamp,
    pub case: Option<Case>,
    pub events: Vec<Event>,
}

impl Default for Fx {
    fn default() -> Self {
        Self::new()
    }
}

impl Fx {
    /// No case yet, at [`base`].
    pub fn new() -> Self {
        Self {
            catalog: catalog(),
            limits: Limits::default(),
            now: base(),
            case: None,
            events: Vec::new(),
        }
    }

    pub fn ctx(&self) -> Context<'_> {
        Context {
            catalog: &self.catalog,
            limits: &self.limits,
            now: self.now,
        }
    }

    /// The case; panics when there is none yet.
    pub fn case(&self) -> &Case {
        self.case.as_ref().expect("the fixture has a case")
    }

    pub fn status(&self) -> Status {
        self.case().status
    }

    /// Runs `command` at the current time without keeping the result.
    pub fn try_run(
        &self,
        actor: &Actor,
        command: &Command,
    ) -> Result<(Option<Case>, Decision), Refusal> {
        execute(self.case.as_ref(), command, actor, &self.ctx())
    }

    /// Runs `command`, keeps the new case and its events, and moves the clock one minute on.
    /// Panics when the command is refused.
    pub fn run(&mut self, actor: &Actor, command: Command) -> Decision {
        match self.try_run(actor, &command) {
            Ok((next, decision)) => {
                self.case = next;
                self.events.extend(decision.events.iter().cloned());
                self.now += TimeDelta::minutes(1);
                decision
            }
            Err(refusal) => panic!(
                "fixture step {} by {actor:?} refused: {refusal} (status {:?})",
                command.name(),
                self.case.as_ref().map(|c| c.status)
            ),
        }
    }

    /// Runs `command`, expects a refusal, checks the case did not change and returns the code.
    pub fn refused(&self, actor: &Actor, command: Command) -> RefusalCode {
        let before = self.case.clone();
        match self.try_run(actor, &command) {
            Ok((_, decision)) => panic!(
                "{} by {actor:?} was expected to be refused but gave {:?}",
                command.name(),
                decision
                    .events
                    .iter()
                    .map(|e| e.kind.name())
                    .collect::<Vec<_>>()
            ),
            Err(refusal) => {
                assert_eq!(self.case, before, "a refusal must not change the case");
                refusal.code
            }
        }
    }

    pub fn advance(&mut self, by: TimeDelta) -> &mut Self {
        self.now += by;
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Cases in every status

/// Which form of a status fixture a test needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// D1 and D2 active with no opinion yet, D3 removed.
    Standard,
    /// As `Standard`, and in `doctors_assigned` D1 and D2 have submitted their opinions (so T15
    /// can succeed).
    OpinionsIn,
}

/// A draft by P1 with a complete intake and one document (DOC1).
pub fn draft() -> Fx {
    let mut fx = Fx::new();
    fx.run(&owner(), create(false));
    fx.run(&owner(), upload(DOC1, 2 * MIB));
    fx
}

/// A draft whose intake is `intake` (T1 accepts an incomplete draft).
pub fn draft_with(intake: Intake) -> Fx {
    let mut fx = Fx::new();
    fx.run(&owner(), create_with(RT, DC, intake, false));
    fx
}

pub fn submitted() -> Fx {
    let mut fx = draft();
    fx.run(&owner(), Command::SubmitCase);
    fx
}

/// Coordinator C1, payment PAY1 with its link, and REQ1 (requested by C1) open.
pub fn awaiting_payment() -> Fx {
    let mut fx = submitted();
    fx.run(
        &admin(),
        Command::AssignCoordinator {
            doctor_id: c1(),
            payment_id: PAY1,
            requested_documents: Some(request(REQ1, &["Latest angiography report"])),
        },
    );
    fx.run(
        &system(),
        Command::PaymentLinkCreated {
            payment_id: PAY1,
            link: LINK1.into(),
        },
    );
    fx
}

pub fn payment_failed() -> Fx {
    let mut fx = awaiting_payment();
    fx.run(&platform(), failed(PAY1));
    fx
}

pub fn payment_successful() -> Fx {
    let mut fx = awaiting_payment();
    fx.run(&platform(), paid(PAY1));
    fx
}

/// D1 and D2 active, D3 assigned then removed.
pub fn doctors_assigned() -> Fx {
    let mut fx = payment_successful();
    fx.run(&doctor(c1()), assign(&[d1(), d2(), d3()]));
    fx.run(&doctor(c1()), Command::UnassignDoctor { doctor_id: d3() });
    fx
}

/// As [`doctors_assigned`], with D1's and D2's opinions submitted.
pub fn opinions_in() -> Fx {
    let mut fx = doctors_assigned();
    fx.run(&doctor(d1()), opinion("Agree with the treating team."));
    fx.run(&doctor(d2()), opinion("Minor difference on medication."));
    fx
}

/// Summary submitted; the report is not stored yet.
pub fn completed() -> Fx {
    let mut fx = opinions_in();
    fx.run(
        &doctor(c1()),
        summary("Both specialists agree: medical therapy first."),
    );
    fx
}

/// Cancelled by the admin while doctors were assigned (paid, so a refund of PAY1 is requested).
pub fn cancelled() -> Fx {
    let mut fx = doctors_assigned();
    fx.run(&admin(), cancel("The patient withdrew consent."));
    fx
}

/// Rejected by the admin after payment (a refund of PAY1 is requested).
pub fn rejected() -> Fx {
    let mut fx = payment_successful();
    fx.run(&admin(), reject("Outside the scope of the service."));
    fx
}

/// The fixture for `status` (`None`: no case yet).
pub fn at(status: Option<Status>, variant: Variant) -> Fx {
    let Some(status) = status else {
        return Fx::new();
    };
    let fx = match status {
        Status::Draft => draft(),
        Status::Submitted => submitted(),
        Status::AwaitingPayment => awaiting_payment(),
        Status::PaymentFailed => payment_failed(),
        Status::PaymentSuccessful => payment_successful(),
        Status::DoctorsAssigned if variant == Variant::OpinionsIn => opinions_in(),
        Status::DoctorsAssigned => doctors_assigned(),
        Status::Completed => completed(),
        Status::Cancelled => cancelled(),
        Status::Rejected => rejected(),
    };
    assert_eq!(fx.status(), status, "fixture reached the wrong status");
    fx
}

/// The event kind names of a decision, in order.
pub fn names(decision: &Decision) -> Vec<&'static str> {
    decision.events.iter().map(|e| e.kind.name()).collect()
}
