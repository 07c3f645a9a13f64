//! The Verification API: a logged-in user proves an e-mail (magic link or
//! code) or a phone (code), which then joins their profile, as primary or
//! secondary per `update_primary`.

use super::messaging::{Channel, Message, Postman};
use super::otp::{self, Check, NewVerification, OtpPolicy, VerificationRow};
use super::users::{code_message, MobileUserRow};
use super::VerifyError;
use crate::domain::now_ms;
use crate::store::contacts as crow;
use crate::store::Db;

/// 409 when another user of the integrator already verified this value.
async fn not_taken(db: &Db, u: &MobileUserRow, kind: &str, value: &str) -> Result<(), VerifyError> {
    if crow::verified_elsewhere(db.read(), &u.integrator_id, kind, value, &u.contact_id)
        .await?
        .is_some()
    {
        return Err(VerifyError::Conflict(format!(
            "this {} is already verified by another user",
            if kind == "phone" {
                "phone number"
            } else {
                "email"
            }
        )));
    }
    Ok(())
}

/// Sends a code to an e-mail or phone of the user.
// The arguments are the request's parts, each from a different source
// (state, path, body); a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub async fn send_code(
    db: &Db,
    postman: &Postman,
    key: &[u8],
    policy: &OtpPolicy,
    u: &MobileUserRow,
    kind: &str,
    target: &str,
    message: Option<Message>,
) -> Result<(), VerifyError> {
    not_taken(db, u, kind, target).await?;
    let code = otp::new_code();
    let v = NewVerification::new(&u.integrator_id, kind, "otp", target, &code, policy.ttl_ms)
        .of(Some(&u.contact_id), Some(&u.id));
    otp::insert(db, key, &v).await?;
    let id = &v.id;
    let mut m = code_message(policy, kind, target, &code);
    if let Some(custom) = message {
        m.body = custom
            .body
            .replace("{otp}", &code)
            .replace("{app}", &policy.app_name);
        if !custom.subject.is_empty() {
            m.subject = custom.subject;
        }
    }
    if let Err(e) = postman.send(db, &u.integrator_id, &m).await {
        crate::store::verifications::delete(db, id).await?;
        return Err(e);
    }
    // A new code replaces any earlier one for the same address.
    crate::store::verifications::expire_others(db, &u.id, kind, target, id, now_ms()).await?;
    Ok(())
}

/// Checks a code sent to `target`. `Ok(false)`: wrong code (an attempt
/// used); 404 when no code was sent there; 409 when the code is no longer
/// usable (expired, used, or too many attempts).
// The arguments are the request's parts, each from a different source
// (state, path, body); a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub async fn validate_code(
    db: &Db,
    key: &[u8],
    policy: &OtpPolicy,
    u: &MobileUserRow,
    kind: &str,
    target: &str,
    passcode: &str,
    update_primary: bool,
) -> Result<bool, VerifyError> {
    let passcode = passcode.trim();
    if passcode.len() != 6 || !passcode.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::Invalid(
            "passcode must be the 6-digit code".into(),
        ));
    }
    let v = otp::latest_for(db, &u.id, "otp", kind, target)
        .await?
        .ok_or_else(|| {
            VerifyError::NotFound(format!("no code was sent to this {kind} for this user"))
        })?;
    match otp::check(db, key, &v, passcode, false, policy.max_attempts).await? {
        Check::Passed => {
            attach_verified(db, u, &v, update_primary).await?;
            Ok(true)
        }
        Check::Wrong { .. } => Ok(false),
        Check::Finished(status) => Err(VerifyError::Conflict(match status.as_str() {
            "passed" => "this code was already used; request a new one".to_string(),
            "expired" => "this code has expired; request a new one".to_string(),
            _ => "too many wrong attempts for this code; request a new one".to_string(),
        })),
    }
}

/// Adds the verified value to the user's profile: primary when asked, or
/// when the user has no verified primary of that kind yet; otherwise
/// secondary. The verification is used up in the same transaction.
pub async fn attach_verified(
    db: &Db,
    u: &MobileUserRow,
    v: &VerificationRow,
    update_primary: bool,
) -> Result<(), VerifyError> {
    let mut tx = db.begin().await?;
    if !otp::consume(&mut tx, &v.id).await? {
        return Err(VerifyError::Conflict(
            "this code was already used; request a new one".into(),
        ));
    }
    let now = now_ms();
    let points = crow::points_in(&mut tx, &u.contact_id).await?;
    let has_verified_primary = points.iter().any(|p| {
        p.kind == v.kind && p.is_primary == 1 && p.verified_at.is_some() && p.value != v.target
    });
    crow::upsert_point(&mut tx, &u.contact_id, &v.kind, &v.target, Some(now), now).await?;
    if update_primary || !has_verified_primary {
        crow::set_primary(&mut tx, &u.contact_id, &v.kind, &v.target).await?;
        crow::set_primary_value(&mut tx, &u.contact_id, &v.kind, &v.target, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Is `uri` on the integrator's allow-list? Compared without its query;
/// an entry ending in `/` allows the paths below it.
pub fn redirect_allowed(allowed: &[String], uri: &str) -> bool {
    let Ok(u) = url::Url::parse(uri) else {
        return false;
    };
    if !matches!(u.scheme(), "https" | "http") || u.host_str().is_none() {
        return false;
    }
    let mut bare = u.clone();
    bare.set_query(None);
    bare.set_fragment(None);
    let bare = bare.as_str();
    allowed.iter().any(|a| {
        let a = a.trim();
        a == bare || (a.ends_with('/') && bare.starts_with(a))
    })
}

/// Sends a magic link to an e-mail of the user.
// The arguments are the request's parts, each from a different source
// (state, path, body); a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub async fn send_link(
    db: &Db,
    postman: &Postman,
    key: &[u8],
    policy: &OtpPolicy,
    public_url: &str,
    u: &MobileUserRow,
    email: &str,
    redirect_uri: &str,
    update_primary: bool,
    content: &EmailContent,
) -> Result<(), VerifyError> {
    not_taken(db, u, "email", email).await?;
    let secret = crate::security::random_token();
    let v = NewVerification {
        update_primary,
        redirect_uri: Some(redirect_uri),
        ..NewVerification::new(
            &u.integrator_id,
            "email",
            "link",
            email,
            &secret,
            policy.ttl_ms,
        )
        .of(Some(&u.contact_id), Some(&u.id))
    };
    otp::insert(db, key, &v).await?;
    let id = &v.id;
    let link = format!(
        "{}/v1/verification/links/email/{id}?t={secret}",
        public_url.trim_end_matches('/')
    );
    let m = Message {
        channel: Channel::Email,
        to: email.into(),
        subject: content
            .subject
            .clone()
            .unwrap_or_else(|| format!("Confirm your e-mail for {}", policy.app_name)),
        body: format!(
            "{}\n\n{link}\n\nThe link works once, for {} minutes.\n",
            content
                .text
                .clone()
                .unwrap_or_else(|| "Open this link to confirm your e-mail address:".into()),
            policy.ttl_ms / 60_000
        ),
    };
    if let Err(e) = postman.send(db, &u.integrator_id, &m).await {
        crate::store::verifications::delete(db, id).await?;
        return Err(e);
    }
    Ok(())
}

/// Optional texts of the e-mail (`email_content`).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct EmailContent {
    pub subject: Option<String>,
    pub text: Option<String>,
}

/// Confirms a magic link; returns where to send the browser and whether
/// it verified the e-mail.
pub async fn confirm_link(
    db: &Db,
    key: &[u8],
    policy: &OtpPolicy,
    id: &str,
    secret: &str,
) -> Result<(String, bool), VerifyError> {
    let v = crate::store::verifications::get_link(db, id)
        .await?
        .ok_or_else(|| VerifyError::NotFound("this link is not valid".into()))?;
    let redirect = v.redirect_uri.clone().unwrap_or_default();
    let ok = match otp::check(db, key, &v, secret, false, policy.max_attempts).await? {
        Check::Passed => {
            let u = super::users::user(db, v.user_id.as_deref().unwrap_or(""))
                .await?
                .ok_or_else(|| VerifyError::NotFound("the user of this link is gone".into()))?;
            attach_verified(db, &u, &v, v.update_primary == 1).await?;
            true
        }
        _ => false,
    };
    let mut u = url::Url::parse(&redirect)
        .map_err(|_| VerifyError::Invalid("the link has no valid redirect".into()))?;
    u.query_pairs_mut()
        .append_pair("result", if ok { "true" } else { "false" });
    Ok((u.to_string(), ok))
}
