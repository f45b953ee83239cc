//! Why a command was refused: a stable machine code (what apps and tests match on) and a message a
//! person can read, in English and Arabic, naming the case's current status where it matters.
//!
//! Adding a code: add the variant, its `as_str`, its [`RefusalClass`] and its two messages; the
//! exhaustive matches make the compiler list every place.

use crate::case::Status;
use crate::lang::{status_name_ar, status_name_en};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a refusal maps to HTTP: the server uses this, not the individual codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalClass {
    /// 404: the case (or a thing in it) does not exist for this actor.
    NotFound,
    /// 403: the actor may see the case but not do this.
    Forbidden,
    /// 409: not possible in the case's current state.
    Conflict,
    /// 400: the input is wrong.
    Invalid,
}

/// Stable refusal codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefusalCode {
    CaseNotFound,
    CaseAlreadyExists,
    Forbidden,
    InvalidStatus,
    ReviewTypeInactive,
    CategoryInactive,
    AgeInvalid,
    GenderRequired,
    MedicalHistoryRequired,
    NothingToUpdate,
    TextTooLong,
    CoordinatorNotEligible,
    SameCoordinator,
    PricingMissing,
    UnknownPayment,
    AmountMismatch,
    PaymentNotPending,
    IdAlreadyUsed,
    NoDoctors,
    DoctorNotEligible,
    DoctorAlreadyAssigned,
    DoctorIsCoordinator,
    DoctorNotAssigned,
    OpinionAlreadySubmitted,
    LastDoctor,
    ItemsRequired,
    ItemEmpty,
    ItemTooLong,
    TooManyItems,
    NoOpenRequest,
    RequestNotFound,
    RequestNotOpen,
    FileTypeNotAllowed,
    FileEmpty,
    FileTooLarge,
    CaseStorageFull,
    UploadIncomplete,
    FileNameInvalid,
    Sha256Invalid,
    DocumentNotFound,
    OpinionEmpty,
    OpinionsMissing,
    SummaryEmpty,
    ReasonRequired,
    ReasonTooLong,
    ReminderTooSoon,
    AlreadySent,
    NotDue,
    RefundNotRequested,
    ReportAlreadyStored,
    LinkInvalid,
    FieldInvalid,
    MappingCategoryInvalid,
    MappingDoctorsRequired,
    MappingExists,
    ReportNotReady,
    ChangeMalformed,
    ChangeMissingDeps,
    ChangeTooLarge,
    DocumentTooLarge,
    DocumentInvalid,
    ContentFrozen,
    BatchTooLarge,
}

impl RefusalCode {
    /// The wire name of the code.
    pub fn as_str(self) -> &'static str {
        use RefusalCode::*;
        match self {
            CaseNotFound => "case_not_found",
            CaseAlreadyExists => "case_already_exists",
            Forbidden => "forbidden",
            InvalidStatus => "invalid_status",
            ReviewTypeInactive => "review_type_inactive",
            CategoryInactive => "category_inactive",
            AgeInvalid => "age_invalid",
            GenderRequired => "gender_required",
            MedicalHistoryRequired => "medical_history_required",
            NothingToUpdate => "nothing_to_update",
            TextTooLong => "text_too_long",
            CoordinatorNotEligible => "coordinator_not_eligible",
            SameCoordinator => "same_coordinator",
            PricingMissing => "pricing_missing",
            UnknownPayment => "unknown_payment",
            AmountMismatch => "amount_mismatch",
            PaymentNotPending => "payment_not_pending",
            IdAlreadyUsed => "id_already_used",
            NoDoctors => "no_doctors",
            DoctorNotEligible => "doctor_not_eligible",
            DoctorAlreadyAssigned => "doctor_already_assigned",
            DoctorIsCoordinator => "doctor_is_coordinator",
            DoctorNotAssigned => "doctor_not_assigned",
            OpinionAlreadySubmitted => "opinion_already_submitted",
            LastDoctor => "last_doctor",
            ItemsRequired => "items_required",
            ItemEmpty => "item_empty",
            ItemTooLong => "item_too_long",
            TooManyItems => "too_many_items",
            NoOpenRequest => "no_open_request",
            RequestNotFound => "request_not_found",
            RequestNotOpen => "request_not_open",
            FileTypeNotAllowed => "file_type_not_allowed",
            FileEmpty => "file_empty",
            FileTooLarge => "file_too_large",
            CaseStorageFull => "case_storage_full",
            UploadIncomplete => "upload_incomplete",
            FileNameInvalid => "file_name_invalid",
            Sha256Invalid => "sha256_invalid",
            DocumentNotFound => "document_not_found",
            OpinionEmpty => "opinion_empty",
            OpinionsMissing => "opinions_missing",
            SummaryEmpty => "summary_empty",
            ReasonRequired => "reason_required",
            ReasonTooLong => "reason_too_long",
            ReminderTooSoon => "reminder_too_soon",
            AlreadySent => "already_sent",
            NotDue => "not_due",
            RefundNotRequested => "refund_not_requested",
            ReportAlreadyStored => "report_already_stored",
            LinkInvalid => "link_invalid",
            FieldInvalid => "field_invalid",
            MappingCategoryInvalid => "mapping_category_invalid",
            MappingDoctorsRequired => "mapping_doctors_required",
            MappingExists => "mapping_exists",
            ReportNotReady => "report_not_ready",
            ChangeMalformed => "change_malformed",
            ChangeMissingDeps => "change_missing_deps",
            ChangeTooLarge => "change_too_large",
            DocumentTooLarge => "document_too_large",
            DocumentInvalid => "document_invalid",
            ContentFrozen => "content_frozen",
            BatchTooLarge => "batch_too_large",
        }
    }

    /// How this refusal maps to HTTP.
    pub fn class(self) -> RefusalClass {
        use RefusalCode::*;
        match self {
            CaseNotFound | UnknownPayment | RequestNotFound | DocumentNotFound => {
                RefusalClass::NotFound
            }
            Forbidden => RefusalClass::Forbidden,
            CaseAlreadyExists
            | InvalidStatus
            | ReviewTypeInactive
            | CategoryInactive
            | SameCoordinator
            | PricingMissing
            | PaymentNotPending
            | IdAlreadyUsed
            | DoctorAlreadyAssigned
            | OpinionAlreadySubmitted
            | LastDoctor
            | NoOpenRequest
            | RequestNotOpen
            | CaseStorageFull
            | UploadIncomplete
            | OpinionsMissing
            | ReminderTooSoon
            | AlreadySent
            | NotDue
            | RefundNotRequested
            | ReportAlreadyStored
            | DoctorNotAssigned
            | MappingExists
            | ReportNotReady
            | ChangeMissingDeps
            | DocumentTooLarge
            | ContentFrozen => RefusalClass::Conflict,
            AgeInvalid
            | GenderRequired
            | MedicalHistoryRequired
            | NothingToUpdate
            | TextTooLong
            | CoordinatorNotEligible
            | AmountMismatch
            | NoDoctors
            | DoctorNotEligible
            | DoctorIsCoordinator
            | ItemsRequired
            | ItemEmpty
            | ItemTooLong
            | TooManyItems
            | FileTypeNotAllowed
            | FileEmpty
            | FileTooLarge
            | FileNameInvalid
            | Sha256Invalid
            | OpinionEmpty
            | SummaryEmpty
            | ReasonRequired
            | ReasonTooLong
            | LinkInvalid
            | FieldInvalid
            | MappingCategoryInvalid
            | MappingDoctorsRequired
            | ChangeMalformed
            | ChangeTooLarge
            | DocumentInvalid
            | BatchTooLarge => RefusalClass::Invalid,
        }
    }

    /// The message in English and Arabic. `status` is the case's current status, named in the
    /// messages where the refusal is about it.
    fn messages(self, status: Option<Status>) -> (String, String) {
        use RefusalCode::*;
        let (st_en, st_ar) = match status {
            Some(s) => (status_name_en(s), status_name_ar(s)),
            None => ("none", "لا يوجد"),
        };
        let fixed = |en: &str, ar: &str| (en.to_owned(), ar.to_owned());
        match self {
            CaseNotFound => fixed("Case not found", "الحالة غير موجودة"),
            CaseAlreadyExists => fixed(
                "A case with this id already exists",
                "توجد حالة بهذا المعرف بالفعل",
            ),
            Forbidden => fixed(
                "You are not allowed to do this on this case",
                "غير مسموح لك بهذا الإجراء على هذه الحالة",
            ),
            InvalidStatus => (
                format!("This is not possible while the case is {st_en}"),
                format!("هذا الإجراء غير ممكن بينما الحالة {st_ar}"),
            ),
            ReviewTypeInactive => {
                fixed("The review type is not available", "نوع المراجعة غير متاح")
            }
            CategoryInactive => fixed(
                "The disease category is not available",
                "فئة المرض غير متاحة",
            ),
            AgeInvalid => fixed(
                "Patient age must be between 0 and 130",
                "يجب أن يكون عمر المريض بين 0 و 130",
            ),
            GenderRequired => fixed("Patient gender is required", "جنس المريض مطلوب"),
            MedicalHistoryRequired => fixed("Medical history is required", "التاريخ الطبي مطلوب"),
            NothingToUpdate => fixed("Nothing to update", "لا يوجد ما يتم تحديثه"),
            TextTooLong => fixed(
                "A text field is longer than allowed",
                "أحد الحقول النصية أطول من المسموح",
            ),
            CoordinatorNotEligible => fixed(
                "This doctor cannot coordinate cases of this category",
                "هذا الطبيب لا يمكنه تنسيق حالات هذه الفئة",
            ),
            SameCoordinator => fixed(
                "This doctor is already the coordinator",
                "هذا الطبيب هو المنسق بالفعل",
            ),
            PricingMissing => fixed("The case has no price fixed", "لم يتم تحديد سعر للحالة"),
            UnknownPayment => fixed("Payment not found", "عملية الدفع غير موجودة"),
            AmountMismatch => fixed(
                "The paid amount or currency does not match the case",
                "المبلغ المدفوع أو العملة لا يطابق الحالة",
            ),
            PaymentNotPending => (
                format!("There is no pending payment while the case is {st_en}"),
                format!("لا توجد عملية دفع معلقة بينما الحالة {st_ar}"),
            ),
            IdAlreadyUsed => fixed("This id is already used", "هذا المعرف مستخدم بالفعل"),
            NoDoctors => fixed(
                "At least one doctor is required",
                "يجب تحديد طبيب واحد على الأقل",
            ),
            DoctorNotEligible => fixed(
                "This doctor is not eligible for this category",
                "هذا الطبيب غير مؤهل لهذه الفئة",
            ),
            DoctorAlreadyAssigned => fixed(
                "This doctor is already assigned to the case",
                "هذا الطبيب معيّن على الحالة بالفعل",
            ),
            DoctorIsCoordinator => fixed(
                "The coordinator cannot also be a reviewing specialist",
                "لا يمكن للمنسق أن يكون طبيبًا مراجعًا أيضًا",
            ),
            DoctorNotAssigned => fixed(
                "This doctor is not assigned to the case",
                "هذا الطبيب غير معيّن على الحالة",
            ),
            OpinionAlreadySubmitted => {
                fixed("The opinion is already submitted", "تم تقديم الرأي بالفعل")
            }
            LastDoctor => fixed(
                "At least one specialist must remain on the case",
                "يجب أن يبقى طبيب مختص واحد على الأقل في الحالة",
            ),
            ItemsRequired => fixed(
                "List at least one requested document",
                "حدد مستندًا مطلوبًا واحدًا على الأقل",
            ),
            ItemEmpty => fixed(
                "A requested document item is empty",
                "أحد المستندات المطلوبة فارغ",
            ),
            ItemTooLong => fixed(
                "A requested document item is longer than 500 characters",
                "أحد المستندات المطلوبة أطول من 500 حرف",
            ),
            TooManyItems => fixed(
                "Too many requested document items",
                "عدد المستندات المطلوبة كبير جدًا",
            ),
            NoOpenRequest => (
                format!(
                    "Documents can be added only to a draft or for an open document request; the case is {st_en}"
                ),
                format!("يمكن إضافة المستندات فقط للمسودة أو لطلب مستندات مفتوح؛ الحالة {st_ar}"),
            ),
            RequestNotFound => fixed("Document request not found", "طلب المستندات غير موجود"),
            RequestNotOpen => fixed(
                "This document request is already answered",
                "تمت الإجابة على طلب المستندات هذا بالفعل",
            ),
            FileTypeNotAllowed => fixed(
                "This file type is not allowed (PDF, JPEG, PNG, HEIC, DICOM or a ZIP of DICOM)",
                "نوع الملف غير مسموح (PDF أو JPEG أو PNG أو HEIC أو DICOM أو ملف ZIP من DICOM)",
            ),
            FileEmpty => fixed("The file is empty", "الملف فارغ"),
            FileTooLarge => fixed(
                "The file is larger than the allowed size per file",
                "حجم الملف أكبر من المسموح للملف الواحد",
            ),
            CaseStorageFull => fixed(
                "The case's documents would exceed the allowed total size",
                "ستتجاوز مستندات الحالة الحجم الإجمالي المسموح",
            ),
            UploadIncomplete => fixed(
                "The file has not been uploaded completely yet; finish the upload first",
                "لم يكتمل رفع الملف بعد؛ أكمل الرفع أولًا",
            ),
            FileNameInvalid => fixed(
                "The file name is empty or too long",
                "اسم الملف فارغ أو طويل جدًا",
            ),
            Sha256Invalid => fixed(
                "The SHA-256 must be 64 hexadecimal characters",
                "يجب أن يتكون SHA-256 من 64 حرفًا ست عشريًا",
            ),
            DocumentNotFound => fixed("Document not found", "المستند غير موجود"),
            OpinionEmpty => fixed("The opinion summary is required", "ملخص الرأي مطلوب"),
            OpinionsMissing => fixed(
                "Every specialist must submit an opinion first",
                "يجب أن يقدم كل طبيب مختص رأيه أولاً",
            ),
            SummaryEmpty => fixed("The final summary is required", "الملخص النهائي مطلوب"),
            ReasonRequired => fixed("A reason is required", "السبب مطلوب"),
            ReasonTooLong => fixed(
                "The reason is longer than 1000 characters",
                "السبب أطول من 1000 حرف",
            ),
            ReminderTooSoon => fixed(
                "A reminder was already sent in the last 12 hours",
                "تم إرسال تذكير خلال آخر 12 ساعة",
            ),
            AlreadySent => fixed(
                "This notice was already sent for the case",
                "تم إرسال هذا الإشعار لهذه الحالة بالفعل",
            ),
            NotDue => (
                format!("Nothing is due yet while the case is {st_en}"),
                format!("لا يوجد شيء مستحق بعد بينما الحالة {st_ar}"),
            ),
            RefundNotRequested => fixed(
                "No refund was requested for this payment",
                "لم يتم طلب استرداد لهذه الدفعة",
            ),
            ReportAlreadyStored => fixed("The report is already stored", "تم حفظ التقرير بالفعل"),
            LinkInvalid => fixed(
                "The payment link is empty or too long",
                "رابط الدفع فارغ أو طويل جدًا",
            ),
            FieldInvalid => fixed(
                "A field is missing or invalid",
                "أحد الحقول مفقود أو غير صالح",
            ),
            MappingCategoryInvalid => fixed(
                "The disease category does not exist or is not active",
                "فئة المرض غير موجودة أو غير مفعلة",
            ),
            MappingDoctorsRequired => fixed(
                "List at least one coordinator doctor",
                "حدد طبيبًا منسقًا واحدًا على الأقل",
            ),
            MappingExists => fixed(
                "This category already has an active coordinator mapping",
                "توجد بالفعل قائمة منسقين مفعلة لهذه الفئة",
            ),
            ReportNotReady => fixed("The report is not ready yet", "التقرير ليس جاهزًا بعد"),
            ChangeMalformed => fixed(
                "The content change could not be read (malformed or truncated data)",
                "تعذرت قراءة تعديل المحتوى (بيانات تالفة أو مقطوعة)",
            ),
            ChangeMissingDeps => fixed(
                "The content change depends on changes the server does not have",
                "يعتمد تعديل المحتوى على تعديلات غير موجودة لدى الخادم",
            ),
            ChangeTooLarge => fixed(
                "The content change is larger than allowed",
                "تعديل المحتوى أكبر من الحجم المسموح",
            ),
            DocumentTooLarge => fixed(
                "The document would become larger than allowed",
                "سيصبح المستند أكبر من الحجم المسموح",
            ),
            DocumentInvalid => fixed(
                "The document content does not have the expected form",
                "محتوى المستند ليس بالشكل المتوقع",
            ),
            ContentFrozen => fixed(
                "This text was already submitted and can no longer be changed",
                "تم تقديم هذا النص بالفعل ولا يمكن تعديله بعد الآن",
            ),
            BatchTooLarge => fixed(
                "Too many operations in one request",
                "عدد العمليات في الطلب الواحد كبير جدًا",
            ),
        }
    }
}

impl fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused command: the code and the reason in both languages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message_en}")]
pub struct Refusal {
    pub code: RefusalCode,
    pub message_en: String,
    pub message_ar: String,
}

impl Refusal {
    /// A refusal whose message does not depend on the case's status.
    pub fn new(code: RefusalCode) -> Self {
        Self::with_status(code, None)
    }

    /// A refusal whose message names the case's current status.
    pub fn with_status(code: RefusalCode, status: Option<Status>) -> Self {
        let (message_en, message_ar) = code.messages(status);
        Self {
            code,
            message_en,
            message_ar,
        }
    }

    /// `field_invalid`, naming the field (a wire name such as `price`, never a value).
    pub fn field(field: &str) -> Self {
        Self {
            code: RefusalCode::FieldInvalid,
            message_en: format!("The field `{field}` is missing or invalid"),
            message_ar: format!("الحقل `{field}` مفقود أو غير صالح"),
        }
    }

    pub fn class(&self) -> RefusalClass {
        self.code.class()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_status_message_names_the_status_in_both_languages() {
        let r = Refusal::with_status(RefusalCode::InvalidStatus, Some(Status::AwaitingPayment));
        assert!(
            r.message_en.contains("awaiting payment"),
            "{}",
            r.message_en
        );
        assert!(r.message_ar.contains("بانتظار الدفع"), "{}", r.message_ar);
    }

    #[test]
    fn codes_serialize_as_their_wire_names() {
        let json = serde_json::to_string(&RefusalCode::DoctorNotEligible).unwrap_or_default();
        assert_eq!(json, "\"doctor_not_eligible\"");
        assert_eq!(
            RefusalCode::DoctorNotEligible.as_str(),
            "doctor_not_eligible"
        );
    }
}
