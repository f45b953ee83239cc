//! `/app/*`: the patient app's endpoints (audience `snr_usr`).

use crate::auth::PatientAuth;
use crate::envelope::{Envelope, ok};
use crate::extract::JsonOrEmpty;
use crate::lang::RequestLang;
use crate::state::AppState;
use axum::Router;
use axum::routing::post;
use serde::{Deserialize, Serialize};

/// The routes of `/app`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/how", post(how))
}

/// The body of `/app/how`: nothing is needed (the language comes from the `lang` header); an
/// empty body or `{}` are both fine and unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct HowRequest {}

/// One step of "how it works".
#[derive(Debug, Serialize)]
pub struct HowStep {
    /// Position, from 1.
    pub step: u8,
    /// Short title.
    pub title: &'static str,
    /// One-sentence explanation.
    pub description: &'static str,
}

/// (title en, title ar, description en, description ar), in order.
const HOW_STEPS: [(&str, &str, &str, &str); 5] = [
    (
        "Submit your case",
        "أرسل حالتك",
        "Describe your condition, answer a few questions and upload your medical documents.",
        "صف حالتك وأجب عن بعض الأسئلة وارفع مستنداتك الطبية.",
    ),
    (
        "A coordinator is assigned",
        "يتم تعيين منسق",
        "A coordinating doctor takes charge of your case and may ask for more documents.",
        "يتولى طبيب منسق متابعة حالتك وقد يطلب مستندات إضافية.",
    ),
    (
        "Pay",
        "ادفع",
        "Pay the review fee securely through the payment link.",
        "ادفع رسوم المراجعة بأمان من خلال رابط الدفع.",
    ),
    (
        "Specialists review",
        "مراجعة الأطباء المختصين",
        "Specialists study your case and give their opinions.",
        "يدرس الأطباء المختصون حالتك ويقدمون آراءهم.",
    ),
    (
        "Receive your report",
        "استلم تقريرك",
        "Receive the final second-opinion report in the app.",
        "استلم تقرير الرأي الطبي الثاني النهائي في التطبيق.",
    ),
];

/// `POST /app/how`: the "how it works" steps in the language of the `lang` header.
pub async fn how(
    PatientAuth(_user): PatientAuth,
    RequestLang(lang): RequestLang,
    // Parsed so that a malformed body is refused like everywhere else; it carries nothing yet.
    JsonOrEmpty(_request): JsonOrEmpty<HowRequest>,
) -> Envelope<Vec<HowStep>> {
    let steps = HOW_STEPS
        .iter()
        .zip(1u8..)
        .map(|(&(title_en, title_ar, desc_en, desc_ar), step)| HowStep {
            step,
            title: lang.pick(title_en, title_ar),
            description: lang.pick(desc_en, desc_ar),
        })
        .collect();
    ok(steps)
}
