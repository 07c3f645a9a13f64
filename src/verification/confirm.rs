//! Contact confirmation on the hosted page (SPEC §4): before the document
//! steps the applicant proves a phone and/or an e-mail by a one-time code,
//! when the integrator asks for it. The same codes as the Apto and
//! Verification APIs (keyed hashes, 15 minutes, 5 attempts); a confirmed
//! value becomes a verified point of the process's contact and is written
//! on the process for its JSON and certified zip.
//!
//! Limits, all taken atomically before any work (`security::rate_limit`):
//! - one code per link and kind per `OtpPolicy::rate_window_ms` (the
//!   page's resend countdown);
//! - at most `CODES_PER_LINK` codes per link and kind per day;
//! - at most `CODES_PER_DESTINATION` codes per phone number or address
//!   per day, whatever the link: a leaked link cannot spam a number.

use super::messaging::{Message, Postman};
use super::otp::{self, Check, NewVerification, OtpPolicy};
use super::VerifyError;
use crate::domain::confirmation::{self, BadValue, Confirmation, Confirmed, ContactKind};
use crate::domain::now_ms;
use crate::security::rate_limit::{self, Attempt, Limited, Policy};
use crate::store::contacts as crow;
use crate::store::processes as prow;
use crate::store::Db;

/// `verifications.channel` of the hosted page's codes.
pub const CHANNEL: &str = "onboarding";
pub const CODES_PER_LINK: i64 = 5;
pub const CODES_PER_DESTINATION: i64 = 10;
const DAY_MS: i64 = 24 * 3_600_000;

/// Why a request was refused; `code` is what the page translates.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("{}", .0.message)]
    BadValue(BadValue),
    #[error("this onboarding does not ask to confirm a {0}")]
    NotAsked(&'static str),
    #[error("the {0} is already confirmed")]
    AlreadyConfirmed(&'static str),
    #[error("{message}")]
    Limited {
        code: &'static str,
        message: String,
        retry_after_secs: i64,
    },
    #[error("no code was sent yet: ask for one first")]
    NoCode,
    #[error("wrong code; {left} attempts left")]
    WrongCode { left: i64 },
    #[error("the code expired: ask for a new one")]
    Expired,
    #[error("too many wrong attempts: ask for a new code")]
    Exhausted,
    #[error("{0}")]
    Delivery(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ConfirmError {
    /// The stable code the page translates.
    pub fn code(&self) -> &'static str {
        match self {
            ConfirmError::BadValue(b) => b.code,
            ConfirmError::NotAsked(_) => "not_asked",
            ConfirmError::AlreadyConfirmed(_) => "already_confirmed",
            ConfirmError::Limited { code, .. } => code,
            ConfirmError::NoCode => "no_code",
            ConfirmError::WrongCode { .. } => "wrong_code",
            ConfirmError::Expired => "code_expired",
            ConfirmError::Exhausted => "code_exhausted",
            ConfirmError::Delivery(_) => "not_delivered",
            ConfirmError::Internal(_) => "other",
        }
    }
}

impl From<sqlx::Error> for ConfirmError {
    fn from(e: sqlx::Error) -> Self {
        ConfirmError::Internal(e.into())
    }
}

impl From<VerifyError> for ConfirmError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Delivery(m) => ConfirmError::Delivery(m),
            other => ConfirmError::Internal(other.into()),
        }
    }
}

/// Where each asked-for point stands for this process: the value confirmed,
/// if any.
pub fn status(
    asked: Confirmation,
    confirmed: &[Confirmed],
) -> Vec<(ContactKind, Option<&Confirmed>)> {
    asked
        .kinds()
        .into_iter()
        .map(|k| (k, confirmed.iter().find(|c| c.kind == k.as_str())))
        .collect()
}

/// The asked-for points not confirmed yet (submission waits for them).
pub fn missing(asked: Confirmation, confirmed: &[Confirmed]) -> Vec<ContactKind> {
    status(asked, confirmed)
        .into_iter()
        .filter(|(_, c)| c.is_none())
        .map(|(k, _)| k)
        .collect()
}

/// What the page is told after a code went out.
pub struct Sent {
    pub to_masked: String,
    pub resend_in_secs: i64,
    pub expires_in_secs: i64,
}

/// The process a request acts for.
pub struct ForProcess<'a> {
    pub scan_id: &'a str,
    pub integrator_id: &'a str,
    pub asked: Confirmation,
    pub confirmed: &'a [Confirmed],
}

fn limited(code: &'static str, what: &str, l: Limited) -> ConfirmError {
    ConfirmError::Limited {
        code,
        message: format!("{what}; retry in {} s", l.retry_after_secs()),
        retry_after_secs: l.retry_after_secs(),
    }
}

fn check_asked(p: &ForProcess<'_>, kind: ContactKind) -> Result<(), ConfirmError> {
    if !p.asked.requires(kind) {
        return Err(ConfirmError::NotAsked(kind.as_str()));
    }
    if p.confirmed.iter().any(|c| c.kind == kind.as_str()) {
        return Err(ConfirmError::AlreadyConfirmed(kind.as_str()));
    }
    Ok(())
}

/// Sends a code to the typed phone or e-mail. `message` words it in the
/// applicant's language. Refusals take nothing: a cap's slot is given back
/// when a later limit refuses.
#[allow(clippy::too_many_arguments)]
pub async fn send(
    db: &Db,
    postman: &Postman,
    key: &[u8],
    policy: &OtpPolicy,
    p: &ForProcess<'_>,
    kind: ContactKind,
    typed: &str,
    country: Option<&str>,
    message: impl FnOnce(&str, &str) -> Message,
) -> Result<Sent, ConfirmError> {
    check_asked(p, kind)?;
    let target = confirmation::target(kind, typed, country).map_err(ConfirmError::BadValue)?;
    let caps = Policy {
        max_failures: CODES_PER_LINK,
        window_ms: DAY_MS,
        lock_ms: DAY_MS,
    };
    let link_key = format!("onboarding-codes:{}:{}", p.scan_id, kind.as_str());
    let link = match Attempt::reserve(db, &link_key, &caps).await? {
        Ok(a) => a,
        Err(l) => {
            return Err(limited(
                "send_limit",
                "this link has asked for as many codes as it may today",
                l,
            ))
        }
    };
    let dest_caps = Policy {
        max_failures: CODES_PER_DESTINATION,
        ..caps.clone()
    };
    let dest_key = format!("onboarding-to:{target}");
    let dest = match Attempt::reserve(db, &dest_key, &dest_caps).await? {
        Ok(a) => a,
        Err(l) => {
            link.release(db).await?;
            return Err(limited(
                "send_limit",
                "this number or address has received as many codes as it may today",
                l,
            ));
        }
    };
    let window_key = format!("onboarding-resend:{}:{}", p.scan_id, kind.as_str());
    if let Err(l) = rate_limit::one_per_window(db, &window_key, policy.rate_window_ms).await? {
        link.release(db).await?;
        dest.release(db).await?;
        return Err(limited("resend_wait", "a code was sent a moment ago", l));
    }
    // Past every limit: this code counts against both caps (the one that
    // reaches its cap locks it for the rest of the day).
    link.spend(db).await?;
    dest.spend(db).await?;
    // A contact links the code to the applicant; it is created from the
    // document on first need, as for the other verification APIs.
    let contact = super::contact_for_process(db, p.scan_id)
        .await
        .map_err(ConfirmError::from)?
        .ok_or_else(|| anyhow::anyhow!("process {} vanished", p.scan_id))?;
    let code = otp::new_code();
    let v = NewVerification::new(
        p.integrator_id,
        kind.as_str(),
        CHANNEL,
        &target,
        &code,
        policy.ttl_ms,
    )
    .of(Some(&contact), None);
    otp::insert(db, key, &v).await?;
    // Shown with a dash (123-456), as the other codes are.
    let shown = format!("{}-{}", &code[..3], &code[3..]);
    postman
        .send(db, p.integrator_id, &message(&target, &shown))
        .await?;
    Ok(Sent {
        to_masked: confirmation::masked(kind, &target),
        resend_in_secs: (policy.rate_window_ms + 999) / 1000,
        expires_in_secs: policy.ttl_ms / 1000,
    })
}

/// Checks a typed code against the newest one sent for this process and
/// kind. On success, in one transaction under the process lock: the code
/// is used up, the contact gains the verified point, the process records
/// the confirmation, and the audit log says so.
// The actor is passed as its two audit columns: `review::Actor` would make
// verification depend on review.
#[allow(clippy::too_many_arguments)]
pub async fn check(
    db: &Db,
    key: &[u8],
    policy: &OtpPolicy,
    p: &ForProcess<'_>,
    kind: ContactKind,
    typed: &str,
    actor: &str,
    client_addr: &str,
) -> Result<Confirmed, ConfirmError> {
    check_asked(p, kind)?;
    let digits: String = typed.chars().filter(char::is_ascii_digit).collect();
    let Some(contact) = crow::of_process(db.read(), p.scan_id).await? else {
        return Err(ConfirmError::NoCode);
    };
    let Some(v) =
        crate::store::verifications::latest_of_contact(db, &contact, CHANNEL, kind.as_str())
            .await?
    else {
        return Err(ConfirmError::NoCode);
    };
    // A typed value that is not six digits is a wrong code like any other:
    // it takes an attempt, so the form cannot be used to probe for free.
    match otp::check(db, key, &v, &digits, false, policy.max_attempts)
        .await
        .map_err(ConfirmError::from)?
    {
        Check::Passed => {}
        Check::Wrong { left: 0 } => return Err(ConfirmError::Exhausted),
        Check::Wrong { left } => return Err(ConfirmError::WrongCode { left }),
        Check::Finished(s) if s == "expired" => return Err(ConfirmError::Expired),
        Check::Finished(_) => return Err(ConfirmError::Exhausted),
    }
    let now = now_ms();
    let confirmed = Confirmed {
        kind: kind.as_str().into(),
        value: v.target.clone(),
        at: now,
    };
    let mut work = crate::audit::Work::begin(db).await?;
    db.lock_process(&mut work.tx, p.scan_id).await?;
    if !otp::consume(&mut work.tx, &v.id).await? {
        // A second tab sent the same code a moment earlier.
        return Err(ConfirmError::AlreadyConfirmed(kind.as_str()));
    }
    crow::upsert_point(
        &mut work.tx,
        &contact,
        kind.as_str(),
        &v.target,
        Some(now),
        now,
    )
    .await?;
    prow::add_confirmed(&mut work.tx, p.scan_id, &confirmed).await?;
    work.commit(crate::audit::Event {
        actor,
        action: "onboarding.contact_confirm",
        scan_id: Some(p.scan_id),
        client_addr,
        // The value is on the contact; the log keeps only a hint of it.
        detail: serde_json::json!({
            "type": kind.as_str(),
            "to": confirmation::masked(kind, &v.target),
        }),
    })
    .await?;
    Ok(confirmed)
}
