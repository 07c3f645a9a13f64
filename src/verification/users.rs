//! Mobile-API (Apto-style) users: verified phone or e-mail as the primary
//! credential, birthdate as the secondary one, long-lived revocable tokens.

use super::messaging::{Channel, Message, Postman};
use super::otp::{self, Check, NewVerification, OtpPolicy, VerificationRow};
use super::{valid_email, Pii, VerifyError};
use crate::domain::now_ms;
use crate::store::contacts as crow;
use crate::store::Db;
use serde_json::{json, Value};

pub use crate::store::mobile_users::MobileUserRow;

/// A phone (`+<country code><number>`) or e-mail to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datapoint {
    Phone {
        country_code: String,
        number: String,
    },
    Email(String),
}

impl Datapoint {
    pub fn kind(&self) -> &'static str {
        match self {
            Datapoint::Phone { .. } => "phone",
            Datapoint::Email(_) => "email",
        }
    }

    /// A phone's calling code, when it was given apart.
    pub fn country_code(&self) -> Option<&str> {
        match self {
            Datapoint::Phone { country_code, .. } if !country_code.is_empty() => Some(country_code),
            _ => None,
        }
    }

    /// The stored, compared form.
    pub fn target(&self) -> String {
        match self {
            Datapoint::Phone {
                country_code,
                number,
            } => format!("+{country_code}{number}"),
            Datapoint::Email(e) => e.clone(),
        }
    }

    /// `{datapoint_type, datapoint: {data_type, country_code, phone | phone_number}}`
    /// or the e-mail equivalent, as the reference and its guide write them.
    pub fn parse(datapoint_type: Option<&str>, dp: &Value) -> Result<Datapoint, VerifyError> {
        let data_type = dp
            .get("data_type")
            .and_then(Value::as_str)
            .or(datapoint_type)
            .unwrap_or("");
        match data_type {
            "phone" => {
                let cc: String = dp
                    .get("country_code")
                    .map(|v| match v {
                        Value::Number(n) => n.to_string(),
                        other => other.as_str().unwrap_or("").to_string(),
                    })
                    .unwrap_or_default()
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect();
                let raw = dp
                    .get("phone_number")
                    .or_else(|| dp.get("phone"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let number: String = raw.chars().filter(char::is_ascii_digit).collect();
                if cc.is_empty() || cc.len() > 3 {
                    return Err(VerifyError::Invalid(
                        "datapoint.country_code must be 1 to 3 digits, e.g. \"1\"".into(),
                    ));
                }
                if number.len() < 4 || number.len() > 14 {
                    return Err(VerifyError::Invalid(
                        "datapoint.phone_number must hold 4 to 14 digits".into(),
                    ));
                }
                Ok(Datapoint::Phone {
                    country_code: cc,
                    number,
                })
            }
            "email" => {
                let e = dp
                    .get("email")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .trim()
                    .to_lowercase();
                if valid_email(&e) {
                    Ok(Datapoint::Email(e))
                } else {
                    Err(VerifyError::Invalid(
                        "datapoint.email must be an e-mail address".into(),
                    ))
                }
            }
            "" => Err(VerifyError::Invalid(
                "datapoint_type (phone or email) and datapoint are required".into(),
            )),
            other => Err(VerifyError::Invalid(format!(
                "datapoint_type '{other}' cannot be verified: use phone or email"
            ))),
        }
    }
}

/// The message carrying a code, by the datapoint's channel.
pub fn code_message(policy: &OtpPolicy, dp_kind: &str, to: &str, code: &str) -> Message {
    // Shown with a dash, as the reference says users receive it (111-222).
    let shown = format!("{}-{}", &code[..3], &code[3..]);
    if dp_kind == "phone" {
        Message {
            channel: Channel::Sms,
            to: to.into(),
            subject: "Verification code".into(),
            body: format!(
                "{shown} is your {} verification code. It expires in {} minutes.",
                policy.app_name,
                policy.ttl_ms / 60_000
            ),
        }
    } else {
        Message {
            channel: Channel::Email,
            to: to.into(),
            subject: format!("Your {} verification code", policy.app_name),
            body: format!(
                "Your verification code is {shown}.\n\nIt expires in {} minutes. If you did not ask for it, ignore this message.\n",
                policy.ttl_ms / 60_000
            ),
        }
    }
}

/// The mobile user holding this verified phone or e-mail, if any.
pub async fn user_by_point(
    db: &Db,
    integrator_id: &str,
    kind: &str,
    value: &str,
) -> Result<Option<MobileUserRow>, sqlx::Error> {
    crate::store::mobile_users::by_point(db, integrator_id, kind, value).await
}

pub async fn user(db: &Db, id: &str) -> Result<Option<MobileUserRow>, sqlx::Error> {
    crate::store::mobile_users::get(db, id).await
}

/// Starts verifying a phone or e-mail: stores the code's hash, sends the
/// code. When a user already holds the datapoint (a login), a birthdate
/// verification is started beside it as the secondary credential.
pub async fn start(
    db: &Db,
    postman: &Postman,
    key: &[u8],
    policy: &OtpPolicy,
    integrator_id: &str,
    dp: &Datapoint,
    for_user: Option<&MobileUserRow>,
) -> Result<(VerificationRow, Option<VerificationRow>), VerifyError> {
    let target = dp.target();
    let existing = match for_user {
        Some(u) => Some(u.clone()),
        None => user_by_point(db, integrator_id, dp.kind(), &target).await?,
    };
    let mut secondary_id = None;
    // A known user's verification comes with its secondary credential, on
    // /start and /primary/start alike (the reference answers both with it).
    if let Some(u) = &existing {
        let contact = crow::get(db.read(), integrator_id, &u.contact_id).await?;
        if let Some(birthdate) = contact.and_then(|c| c.birthdate) {
            let v = NewVerification::new(
                integrator_id,
                "birthdate",
                "mobile",
                "",
                &birthdate,
                policy.ttl_ms,
            )
            .of(Some(&u.contact_id), Some(&u.id));
            otp::insert(db, key, &v).await?;
            secondary_id = Some(v.id);
        }
    }
    let code = otp::new_code();
    let v = NewVerification::new(
        integrator_id,
        dp.kind(),
        "mobile",
        &target,
        &code,
        policy.ttl_ms,
    )
    .of(
        existing.as_ref().map(|u| u.contact_id.as_str()),
        existing.as_ref().map(|u| u.id.as_str()),
    )
    .with_secondary(secondary_id.as_deref());
    otp::insert(db, key, &v).await?;
    let id = v.id;
    if let Err(e) = postman
        .send(
            db,
            integrator_id,
            &code_message(policy, dp.kind(), &target, &code),
        )
        .await
    {
        // Nothing half-done stays behind.
        crate::store::verifications::delete(db, &id).await?;
        if let Some(s) = &secondary_id {
            crate::store::verifications::delete(db, s).await?;
        }
        return Err(e);
    }
    let primary = otp::get(db, integrator_id, &id)
        .await?
        .ok_or_else(|| VerifyError::Internal(anyhow::anyhow!("verification vanished")))?;
    let secondary = match &secondary_id {
        Some(s) => otp::get(db, integrator_id, s).await?,
        None => None,
    };
    Ok((primary, secondary))
}

/// Restarts a phone or e-mail verification with a new id and code; the old
/// one stops working.
pub async fn restart(
    db: &Db,
    postman: &Postman,
    key: &[u8],
    policy: &OtpPolicy,
    old: &VerificationRow,
) -> Result<(VerificationRow, Option<VerificationRow>), VerifyError> {
    if old.kind == "birthdate" || old.channel != "mobile" {
        return Err(VerifyError::Invalid(
            "only phone number or e-mail verifications can be restarted".into(),
        ));
    }
    let code = otp::new_code();
    let v = NewVerification::new(
        &old.integrator_id,
        &old.kind,
        "mobile",
        &old.target,
        &code,
        policy.ttl_ms,
    )
    .of(old.contact_id.as_deref(), old.user_id.as_deref())
    .with_secondary(old.secondary_id.as_deref());
    otp::insert(db, key, &v).await?;
    let id = v.id;
    if let Err(e) = postman
        .send(
            db,
            &old.integrator_id,
            &code_message(policy, &old.kind, &old.target, &code),
        )
        .await
    {
        crate::store::verifications::delete(db, &id).await?;
        return Err(e);
    }
    crate::store::verifications::finish(db, &old.id, "expired", now_ms()).await?;
    let v = otp::get(db, &old.integrator_id, &id)
        .await?
        .ok_or_else(|| VerifyError::Internal(anyhow::anyhow!("verification vanished")))?;
    let s = match &v.secondary_id {
        Some(s) => otp::get(db, &v.integrator_id, s).await?,
        None => None,
    };
    Ok((v, s))
}

/// Finishes a verification with its secret: the code (dashes allowed) or,
/// for a birthdate, `YYYY-MM-DD`.
pub async fn finish(
    db: &Db,
    key: &[u8],
    policy: &OtpPolicy,
    sandbox: bool,
    v: &VerificationRow,
    secret: &str,
) -> Result<VerificationRow, VerifyError> {
    let secret = secret.trim();
    let secret = if v.kind == "birthdate" {
        if super::parse_birthdate(secret).is_none() {
            return Err(VerifyError::Invalid(
                "the secret of a birthdate verification is the date of birth as YYYY-MM-DD".into(),
            ));
        }
        secret.to_string()
    } else {
        let digits: String = secret.chars().filter(|c| *c != '-' && *c != ' ').collect();
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VerifyError::Invalid(
                "secret must be the 6-digit code".into(),
            ));
        }
        digits
    };
    otp::check(db, key, v, &secret, sandbox, policy.max_attempts).await?;
    otp::get(db, &v.integrator_id, &v.id)
        .await?
        .ok_or_else(|| VerifyError::NotFound("No existing verification".into()))
}

pub fn verification_json(v: &VerificationRow, secondary: Option<&VerificationRow>) -> Value {
    let mut j = json!({
        "type": "verification",
        "verification_type": v.kind,
        "verification_mechanism": v.kind,
        "verification_id": v.id,
        "status": v.status,
    });
    if let Some(s) = secondary {
        j["secondary_credential"] = json!({
            "type": "verification",
            "verification_type": s.kind,
            "verification_id": s.id,
            "status": s.status,
        });
    }
    j
}

/// What `POST /v1/user` and `PUT /v1/user` carry, parsed.
#[derive(Debug, Default)]
pub struct UserData {
    pub pii: Pii,
    pub country: Option<String>,
    /// (datapoint, verification id) of phones and e-mails.
    pub credentials: Vec<(Datapoint, Option<String>)>,
}

pub fn parse_data_points(v: &Value) -> Result<UserData, VerifyError> {
    let list = v.get("data").and_then(Value::as_array).ok_or_else(|| {
        VerifyError::Invalid("data_points must be {\"type\": \"list\", \"data\": [...]}".into())
    })?;
    let mut out = UserData::default();
    let s = |p: &Value, k: &str| -> Option<String> {
        p.get(k)
            .and_then(Value::as_str)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    for p in list {
        match p.get("data_type").and_then(Value::as_str).unwrap_or("") {
            "phone" | "email" => {
                let dp = Datapoint::parse(None, p)?;
                let vid = p
                    .get("verification")
                    .and_then(|v| v.get("verification_id"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                match &dp {
                    Datapoint::Phone { .. } => out.pii.phone = Some(dp.target()),
                    Datapoint::Email(e) => out.pii.email = Some(e.clone()),
                }
                out.credentials.push((dp, vid));
            }
            "birthdate" => {
                let d = s(p, "date").unwrap_or_default();
                if super::parse_birthdate(&d).is_none() {
                    return Err(VerifyError::Invalid(format!(
                        "birthdate.date '{d}' must be a past date as YYYY-MM-DD"
                    )));
                }
                out.pii.birthdate = Some(d);
            }
            "name" => {
                out.pii.first_name = s(p, "first_name");
                out.pii.last_name = s(p, "last_name");
            }
            "address" => {
                out.pii.address1 = s(p, "street_one");
                out.pii.address2 = s(p, "street_two");
                out.pii.city = s(p, "locality");
                out.pii.region = s(p, "region");
                out.pii.postal_code = s(p, "postal_code");
                out.country = s(p, "country");
            }
            "id_document" => out.pii.tax_id = s(p, "value"),
            other => {
                return Err(VerifyError::Invalid(format!(
                    "data_type '{other}' is not one of phone, email, birthdate, name, address, id_document"
                )))
            }
        }
    }
    out.pii = out.pii.validated().map_err(VerifyError::Invalid)?;
    Ok(out)
}

fn mask(tax_id: &str) -> String {
    let digits: Vec<char> = tax_id.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("***-**-{tail}")
}

/// The user as the reference returns it. The tax id is masked.
pub async fn user_json(db: &Db, u: &MobileUserRow, token: &str) -> Result<Value, VerifyError> {
    let c = crow::get_any(db.read(), &u.contact_id)
        .await?
        .ok_or_else(|| VerifyError::NotFound("User does not exist".into()))?;
    let points = crow::points(db.read(), &c.id).await?;
    let mut data = vec![];
    for p in points
        .iter()
        .filter(|p| p.kind == "phone" || p.kind == "email")
    {
        let mut j = if p.kind == "phone" {
            // The reference's {country_code, phone_number}: the national
            // number after the calling code (the whole E.164 value when the
            // code was never given apart, e.g. a phone the Identity API set).
            let cc = p.country_code.as_deref();
            let national = cc
                .and_then(|c| p.value.strip_prefix(&format!("+{c}")))
                .unwrap_or(&p.value);
            json!({"type": "phone", "country_code": cc, "phone_number": national})
        } else {
            json!({"type": "email", "email": p.value})
        };
        j["verified"] = json!(p.verified_at.is_some());
        j["primary"] = json!(p.is_primary == 1);
        data.push(j);
    }
    if let Some(b) = &c.birthdate {
        data.push(json!({"type": "birthdate", "date": b}));
    }
    if c.first_name.is_some() || c.last_name.is_some() {
        data.push(json!({"type": "name", "first_name": c.first_name, "last_name": c.last_name}));
    }
    if c.address1.is_some() {
        data.push(json!({"type": "address", "street_one": c.address1, "street_two": c.address2,
            "locality": c.city, "region": c.region, "postal_code": c.postal_code, "country": c.country}));
    }
    if let Some(t) = &c.tax_id {
        data.push(json!({"type": "id_document", "doc_type": "SSN", "value": mask(t)}));
    }
    let n = data.len();
    Ok(json!({
        "type": "user",
        "user_id": u.id,
        "user_token": token,
        "user_data": {"type": "list", "data": data, "page": 0, "rows": n, "has_more": false, "total_rows": n},
        "metadata": u.metadata,
    }))
}

/// A passed, unused verification of this integrator, or why not.
async fn usable(db: &Db, integrator_id: &str, id: &str) -> Result<VerificationRow, VerifyError> {
    let v = otp::get(db, integrator_id, id)
        .await?
        .ok_or_else(|| VerifyError::NotFound("No existing verification".into()))?;
    if v.consumed_at.is_some() {
        return Err(VerifyError::Unauthorized(
            "this verification was already used; start a new one".into(),
        ));
    }
    if v.status != "passed" {
        return Err(VerifyError::Unauthorized(format!(
            "verification {} is {}, not passed",
            v.id, v.status
        )));
    }
    Ok(v)
}

pub fn new_user_token() -> String {
    crate::security::random_token()
}

async fn issue_token(
    tx: &mut crate::store::Tx,
    user_id: &str,
    policy: &OtpPolicy,
) -> Result<String, sqlx::Error> {
    let token = new_user_token();
    let now = now_ms();
    crate::store::mobile_users::insert_token(
        tx,
        &crate::security::sha256_hex(&token),
        user_id,
        now,
        now + policy.user_token_ttl_ms,
    )
    .await?;
    Ok(token)
}

/// Creates a user from a passed verification of its phone (or e-mail) and
/// its data; the verification is used up.
pub async fn create(
    db: &Db,
    policy: &OtpPolicy,
    integrator_id: &str,
    data: UserData,
    metadata: Option<String>,
) -> Result<(MobileUserRow, String), VerifyError> {
    if metadata.as_ref().is_some_and(|m| m.chars().count() > 256) {
        return Err(VerifyError::Invalid(
            "metadata is limited to 256 characters".into(),
        ));
    }
    let Some((dp, Some(vid))) = data
        .credentials
        .iter()
        .find(|(_, vid)| vid.is_some())
        .cloned()
    else {
        return Err(VerifyError::Invalid(
            "the phone (or email) data point needs verification.verification_id of a passed verification".into(),
        ));
    };
    if data.pii.birthdate.is_none() {
        return Err(VerifyError::Invalid(
            "a birthdate data point is required (it is the secondary credential)".into(),
        ));
    }
    let v = usable(db, integrator_id, &vid).await?;
    if v.kind != dp.kind() || v.target != dp.target() {
        return Err(VerifyError::Invalid(format!(
            "verification {vid} verified another {}",
            v.kind
        )));
    }
    if user_by_point(db, integrator_id, dp.kind(), &dp.target())
        .await?
        .is_some()
    {
        return Err(VerifyError::Invalid(format!(
            "a user with this {} already exists: log in instead",
            dp.kind()
        )));
    }
    let mut tx = db.begin().await?;
    if !otp::consume(&mut tx, &vid).await? {
        return Err(VerifyError::Unauthorized(
            "User session expired: this verification was already used to create a user".into(),
        ));
    }
    let contact_id = super::create_contact_in(&mut tx, integrator_id, &data.pii).await?;
    if let Some(c) = &data.country {
        crow::set_country(&mut tx, &contact_id, c).await?;
    }
    let now = now_ms();
    crow::upsert_point(
        &mut tx,
        &contact_id,
        dp.kind(),
        &dp.target(),
        Some(now),
        now,
    )
    .await?;
    if let Some(cc) = dp.country_code() {
        crow::set_country_code(&mut tx, &contact_id, &dp.target(), cc).await?;
    }
    crow::set_primary(&mut tx, &contact_id, dp.kind(), &dp.target()).await?;
    let id = format!(
        "crdhldr_{}",
        &hex::encode(uuid::Uuid::new_v4().as_bytes())[..20]
    );
    crate::store::mobile_users::insert(
        &mut tx,
        &MobileUserRow {
            id: id.clone(),
            integrator_id: integrator_id.into(),
            contact_id: contact_id.clone(),
            metadata: metadata.clone(),
            created_at: now,
        },
    )
    .await?;
    crate::store::verifications::reassign(&mut tx, &vid, &contact_id, &id).await?;
    let token = issue_token(&mut tx, &id, policy).await?;
    tx.commit().await?;
    Ok((
        MobileUserRow {
            id,
            integrator_id: integrator_id.into(),
            contact_id,
            metadata,
            created_at: now,
        },
        token,
    ))
}

/// Updates a user's data. New phones and e-mails come in unverified unless
/// they carry a passed verification of their own.
pub async fn update(db: &Db, u: &MobileUserRow, data: UserData) -> Result<(), VerifyError> {
    let contact = crow::get_any(db.read(), &u.contact_id)
        .await?
        .ok_or_else(|| VerifyError::NotFound("User does not exist".into()))?;
    let mut tx = db.begin().await?;
    super::merge_into_contact(&mut tx, &contact, &data.pii).await?;
    for (dp, vid) in &data.credentials {
        let mut verified = None;
        if let Some(vid) = vid {
            let v = usable(db, &u.integrator_id, vid).await?;
            if v.target != dp.target() {
                return Err(VerifyError::Invalid(format!(
                    "verification {vid} verified another {}",
                    v.kind
                )));
            }
            if !otp::consume(&mut tx, vid).await? {
                return Err(VerifyError::Unauthorized(
                    "this verification was already used; start a new one".into(),
                ));
            }
            verified = Some(now_ms());
        }
        crow::upsert_point(
            &mut tx,
            &u.contact_id,
            dp.kind(),
            &dp.target(),
            verified,
            now_ms(),
        )
        .await?;
        if let Some(cc) = dp.country_code() {
            crow::set_country_code(&mut tx, &u.contact_id, &dp.target(), cc).await?;
        }
    }
    if let Some(c) = &data.country {
        crow::set_country(&mut tx, &u.contact_id, c).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Logs in with a passed primary-credential verification and a passed
/// birthdate verification of the same user; both are used up.
pub async fn login(
    db: &Db,
    policy: &OtpPolicy,
    integrator_id: &str,
    ids: &[String],
) -> Result<(MobileUserRow, String), VerifyError> {
    if ids.len() != 2 {
        return Err(VerifyError::Invalid(
            "verifications must list two verification_ids: the primary credential's and the birthdate's".into(),
        ));
    }
    let mut vs = vec![];
    for id in ids {
        vs.push(usable(db, integrator_id, id).await?);
    }
    let (Some(primary), Some(secondary)) = (
        vs.iter().find(|v| v.kind != "birthdate"),
        vs.iter().find(|v| v.kind == "birthdate"),
    ) else {
        return Err(VerifyError::Invalid(
            "login needs one phone or email verification and one birthdate verification".into(),
        ));
    };
    let u = user_by_point(db, integrator_id, &primary.kind, &primary.target)
        .await?
        .ok_or_else(|| VerifyError::NotFound("no user holds this credential".into()))?;
    if secondary.user_id.as_deref() != Some(u.id.as_str()) {
        return Err(VerifyError::Unauthorized(
            "the birthdate verification belongs to another login".into(),
        ));
    }
    let mut tx = db.begin().await?;
    for v in [primary, secondary] {
        if !otp::consume(&mut tx, &v.id).await? {
            return Err(VerifyError::Unauthorized(
                "this verification was already used; start a new one".into(),
            ));
        }
    }
    let token = issue_token(&mut tx, &u.id, policy).await?;
    tx.commit().await?;
    Ok((u, token))
}

/// The live user of a token, or None (unknown, expired or revoked).
pub async fn by_token(db: &Db, token: &str) -> Result<Option<MobileUserRow>, sqlx::Error> {
    crate::store::mobile_users::by_token_hash(db, &crate::security::sha256_hex(token), now_ms())
        .await
}

/// Ends every live token of the contact's mobile users (desk action),
/// audited in the same transaction. Returns how many were ended.
pub async fn revoke_contact_tokens(
    db: &Db,
    contact_id: &str,
    scan_id: Option<&str>,
    actor: &str,
    client_addr: &str,
) -> Result<u64, sqlx::Error> {
    let mut work = crate::audit::Work::begin(db).await?;
    let n = crate::store::mobile_users::revoke_contact_tokens(&mut work.tx, contact_id, now_ms())
        .await?;
    work.commit(crate::audit::Event {
        actor,
        action: "contact.tokens_revoked",
        scan_id,
        client_addr,
        detail: json!({"contactId": contact_id, "revoked": n}),
    })
    .await?;
    Ok(n)
}

/// Re-verifies a logged-in user's primary phone (or e-mail).
pub async fn start_primary(
    db: &Db,
    postman: &Postman,
    key: &[u8],
    policy: &OtpPolicy,
    u: &MobileUserRow,
) -> Result<(VerificationRow, Option<VerificationRow>), VerifyError> {
    let points = crow::points(db.read(), &u.contact_id).await?;
    let p = points
        .iter()
        .find(|p| p.is_primary == 1 && p.kind == "phone")
        .or_else(|| points.iter().find(|p| p.is_primary == 1))
        .ok_or_else(|| VerifyError::Invalid("this user has no primary credential".into()))?;
    let dp = if p.kind == "phone" {
        // Stored as +<cc><number>; the split does not matter for the target.
        Datapoint::Phone {
            country_code: String::new(),
            number: p.value.trim_start_matches('+').to_string(),
        }
    } else {
        Datapoint::Email(p.value.clone())
    };
    start(db, postman, key, policy, &u.integrator_id, &dp, Some(u)).await
}

pub fn check_outcome(c: &Check) -> &'static str {
    match c {
        Check::Passed => "passed",
        Check::Wrong { .. } => "wrong",
        Check::Finished(_) => "finished",
    }
}
