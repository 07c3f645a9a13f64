//! Integrators: the banks and fintechs that drive kycdesk over the API.
//! The API secret is shown once and stored as its SHA-256 (it is 256 random
//! bits, so a slow hash adds nothing).

use super::IdentityError;
use crate::audit::{self, Event};
use crate::domain::confirmation::{calling_code, Confirmation};
use crate::domain::now_ms;
use crate::security::{constant_time_eq, random_token, sha256_hex};
use crate::store::integrators::{self as rows, IntegratorAuthRow};
use crate::store::Db;
use base64::Engine;
use serde::Serialize;
use std::collections::BTreeMap;

/// What `kycdesk integrator create` prints, once.
#[derive(Debug, Serialize)]
pub struct Credentials {
    pub integrator_id: String,
    pub api_key: String,
    pub api_secret: String,
    pub webhook_secret: String,
}

fn http_url(raw: &str, what: &str) -> Result<url::Url, IdentityError> {
    let u = url::Url::parse(raw)
        .map_err(|e| IdentityError::Invalid(format!("the {what} '{raw}' is not a URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(IdentityError::Invalid(format!(
            "the {what} '{raw}' must be an http(s) URL"
        )));
    }
    Ok(u)
}

fn new_api_key() -> String {
    format!("kd_{}", &random_token()[..32])
}

/// `whsec_` + base64 of 32 random bytes, as Standard Webhooks expects.
fn new_webhook_secret() -> String {
    let mut wh = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut wh);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(wh)
    )
}

/// Frame ancestors must be bare origins; they are stored normalised.
pub fn origins(frame_ancestors: &[String]) -> Result<Vec<String>, IdentityError> {
    let mut out: Vec<String> = Vec::new();
    for o in frame_ancestors
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
    {
        let u = http_url(o, "frame ancestor")?;
        if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
            return Err(IdentityError::Invalid(format!(
                "the frame ancestor '{o}' must be an origin (scheme://host[:port])"
            )));
        }
        let origin = u.origin().ascii_serialization();
        if !out.contains(&origin) {
            out.push(origin);
        }
    }
    Ok(out)
}

pub async fn create(
    db: &Db,
    name: &str,
    webhook_url: Option<&str>,
    frame_ancestors: &[String],
    allow_private_webhooks: bool,
    actor: &str,
    client_addr: &str,
) -> Result<Credentials, IdentityError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(IdentityError::Invalid(
            "the integrator name must have 1 to 200 characters".into(),
        ));
    }
    if let Some(w) = webhook_url {
        crate::webhooks::check_url(w, allow_private_webhooks).map_err(IdentityError::Invalid)?;
    }
    let origins = origins(frame_ancestors)?;
    let creds = Credentials {
        integrator_id: uuid::Uuid::new_v4().to_string(),
        api_key: new_api_key(),
        api_secret: random_token(),
        webhook_secret: new_webhook_secret(),
    };
    let mut work = audit::Work::begin(db).await?;
    rows::insert(
        &mut work.tx,
        &creds.integrator_id,
        name,
        &creds.api_key,
        &sha256_hex(&creds.api_secret),
        webhook_url,
        &creds.webhook_secret,
        &serde_json::to_string(&origins).map_err(anyhow::Error::from)?,
        now_ms(),
    )
    .await?;
    work.commit(Event {
        actor,
        action: "integrator.create",
        scan_id: None,
        client_addr,
        detail: serde_json::json!({"integrator_id": creds.integrator_id, "name": name}),
    })
    .await?;
    Ok(creds)
}

#[derive(Debug)]
pub enum Authentication {
    Ok(IntegratorAuthRow),
    Invalid,
    Disabled,
}

pub async fn authenticate(
    db: &Db,
    api_key: &str,
    api_secret: &str,
) -> Result<Authentication, sqlx::Error> {
    let Some(row) = rows::by_api_key(db.read(), api_key).await? else {
        return Ok(Authentication::Invalid);
    };
    let matches = row
        .secret_hash
        .as_deref()
        .is_some_and(|h| constant_time_eq(h, &sha256_hex(api_secret)));
    Ok(match (matches, row.enabled == 1) {
        (false, _) => Authentication::Invalid,
        (true, false) => Authentication::Disabled,
        (true, true) => Authentication::Ok(row),
    })
}

/// What an admin may change about an integrator.
#[derive(Debug, Clone)]
pub struct IntegratorSettings {
    pub webhook_url: Option<String>,
    pub frame_ancestors: Vec<String>,
    /// `PENDING_VALIDATION` or `PENDING_VERIFICATION`.
    pub submit_state: String,
    /// Extra headers sent with every webhook (the reference lets integrators
    /// ask for e.g. `Authorization`).
    pub webhook_headers: Vec<(String, String)>,
    /// After submission, navigate the integrator's top window (not only
    /// the iframe) to `redirectUrl`.
    pub redirect_top: bool,
    /// Review target: hours a case may wait in the desk before it is
    /// overdue (1 to 720), or none.
    pub sla_hours: Option<i64>,
    /// The points the hosted page confirms by one-time code first.
    pub confirm_contact: Confirmation,
    /// Calling code assumed for phones typed without one (e.g. "34").
    pub phone_country: Option<String>,
}

/// The longest review target an integrator can set: 30 days.
pub const MAX_SLA_HOURS: i64 = 720;

/// Header names the signature and transport own; an integrator cannot set them.
const RESERVED_HEADERS: [&str; 7] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
];

/// Checks extra webhook headers: valid names, no line breaks in values,
/// nothing the signature or transport owns.
pub fn webhook_headers(
    headers: &[(String, String)],
) -> Result<BTreeMap<String, String>, IdentityError> {
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        let name = name.trim();
        let value = value.trim();
        let valid = !name.is_empty()
            && name.len() <= 100
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid {
            return Err(IdentityError::Invalid(format!(
                "'{name}' is not a valid header name"
            )));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(IdentityError::Invalid(format!(
                "the {name} header is set by kycdesk and cannot be configured"
            )));
        }
        if value.len() > 4096 || value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(IdentityError::Invalid(format!(
                "the value of {name} must be one line of at most 4096 characters"
            )));
        }
        out.insert(name.to_string(), value.to_string());
    }
    if out.len() > 20 {
        return Err(IdentityError::Invalid(
            "at most 20 extra webhook headers".into(),
        ));
    }
    Ok(out)
}

pub async fn update(
    db: &Db,
    id: &str,
    s: &IntegratorSettings,
    allow_private_webhooks: bool,
    actor: &str,
    client_addr: &str,
) -> Result<(), IdentityError> {
    let webhook = s
        .webhook_url
        .as_deref()
        .map(str::trim)
        .filter(|w| !w.is_empty());
    if let Some(w) = webhook {
        crate::webhooks::check_url(w, allow_private_webhooks).map_err(IdentityError::Invalid)?;
    }
    if !matches!(
        s.submit_state.as_str(),
        "PENDING_VALIDATION" | "PENDING_VERIFICATION"
    ) {
        return Err(IdentityError::Invalid(
            "submissions go to PENDING_VALIDATION or PENDING_VERIFICATION".into(),
        ));
    }
    let origins = origins(&s.frame_ancestors)?;
    let headers = webhook_headers(&s.webhook_headers)?;
    if s.sla_hours
        .is_some_and(|h| !(1..=MAX_SLA_HOURS).contains(&h))
    {
        return Err(IdentityError::Invalid(format!(
            "the review target must be between 1 and {MAX_SLA_HOURS} hours, or empty for none"
        )));
    }
    let phone_country = s
        .phone_country
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(calling_code)
        .transpose()
        .map_err(IdentityError::Invalid)?;
    let mut work = audit::Work::begin(db).await?;
    let origins_json = serde_json::to_string(&origins).map_err(anyhow::Error::from)?;
    let headers_json = serde_json::to_string(&headers).map_err(anyhow::Error::from)?;
    if rows::update_settings(
        &mut work.tx,
        id,
        &rows::StoredSettings {
            webhook_url: webhook,
            frame_ancestors: &origins_json,
            submit_state: &s.submit_state,
            webhook_headers: &headers_json,
            redirect_top: s.redirect_top,
            sla_hours: s.sla_hours,
            confirm_contact: s.confirm_contact,
            phone_country: phone_country.as_deref(),
        },
    )
    .await?
        == 0
    {
        return Err(IdentityError::Invalid("no such integrator".into()));
    }
    work.commit(Event {
            actor,
            action: "integrator.update",
            scan_id: None,
            client_addr,
            detail: serde_json::json!({"integrator_id": id, "webhook_url": webhook, "frame_ancestors": origins, "submit_state": s.submit_state, "webhook_headers": headers.keys().collect::<Vec<_>>(), "redirect_top": s.redirect_top, "sla_hours": s.sla_hours, "confirm_contact": s.confirm_contact.as_str(), "phone_country": phone_country}),
        })
    .await?;
    // Cached token checks see the change at once on this instance.
    db.integrators_changed();
    Ok(())
}

/// The identity-verification settings of an integrator: the sandbox switch
/// (where `000000` passes mobile verifications) and the magic-link redirect
/// allow-list. Each URI must be absolute http(s) without a fragment.
pub async fn set_verification(
    db: &Db,
    id: &str,
    sandbox: bool,
    redirect_uris: &[String],
    actor: &str,
    client_addr: &str,
) -> Result<(), IdentityError> {
    let mut uris = vec![];
    for u in redirect_uris {
        let parsed = url::Url::parse(u)
            .map_err(|e| IdentityError::Invalid(format!("redirect URI '{u}': {e}")))?;
        if !matches!(parsed.scheme(), "https" | "http") || parsed.fragment().is_some() {
            return Err(IdentityError::Invalid(format!(
                "redirect URI '{u}' must be an http(s) URI without a #fragment"
            )));
        }
        if !uris.contains(u) {
            uris.push(u.clone());
        }
    }
    let json = serde_json::to_string(&uris).map_err(anyhow::Error::from)?;
    let mut work = audit::Work::begin(db).await?;
    let n = rows::set_verification_settings(&mut work.tx, id, sandbox, &json).await?;
    if n == 0 {
        return Err(IdentityError::Invalid("no such integrator".into()));
    }
    work.commit(Event {
        actor,
        action: "integrator.verification_settings",
        scan_id: None,
        client_addr,
        detail: serde_json::json!({"integrator_id": id, "sandbox": sandbox, "redirect_uris": uris}),
    })
    .await?;
    // Cached token checks see the change at once on this instance.
    db.integrators_changed();
    Ok(())
}

/// A new API secret, shown once; the old one stops working at once, and so
/// do tokens issued with it.
#[derive(Debug, Serialize)]
pub struct RotatedSecret {
    pub api_key: String,
    pub api_secret: String,
}

pub async fn rotate_secret(
    db: &Db,
    id: &str,
    actor: &str,
    client_addr: &str,
) -> Result<RotatedSecret, IdentityError> {
    let secret = random_token();
    let mut work = audit::Work::begin(db).await?;
    if rows::set_credentials(
        &mut work.tx,
        id,
        &new_api_key(),
        &sha256_hex(&secret),
        &new_webhook_secret(),
    )
    .await?
        == 0
    {
        return Err(IdentityError::Invalid("no such integrator".into()));
    }
    work.commit(Event {
        actor,
        action: "integrator.rotate_secret",
        scan_id: None,
        client_addr,
        detail: serde_json::json!({"integrator_id": id}),
    })
    .await?;
    let api_key = rows::api_key_of(db.write(), id).await?.unwrap_or_default();
    // Cached token checks see the change at once on this instance.
    db.integrators_changed();
    Ok(RotatedSecret {
        api_key,
        api_secret: secret,
    })
}

pub async fn set_enabled(
    db: &Db,
    id: &str,
    enabled: bool,
    actor: &str,
    client_addr: &str,
) -> Result<(), IdentityError> {
    let mut work = audit::Work::begin(db).await?;
    if rows::set_enabled_in(&mut work.tx, id, enabled).await? == 0 {
        return Err(IdentityError::Invalid("no such integrator".into()));
    }
    work.commit(Event {
        actor,
        action: if enabled {
            "integrator.enable"
        } else {
            "integrator.disable"
        },
        scan_id: None,
        client_addr,
        detail: serde_json::json!({"integrator_id": id}),
    })
    .await?;
    // Cached token checks see the change at once on this instance.
    db.integrators_changed();
    Ok(())
}

/// Sets the key an integrator signs `POST /v1/user` payloads with
/// (`Content-Type: application/jwt`, HS256). At least 32 characters: it is
/// an HMAC key. The audit entry says that it changed, never what it is.
pub async fn set_user_payload_key(
    db: &Db,
    id: &str,
    key: &str,
    actor: &str,
    client_addr: &str,
) -> Result<(), IdentityError> {
    let key = key.trim();
    if key.chars().count() < 32 {
        return Err(IdentityError::Invalid(
            "the payload signing key must have at least 32 characters".into(),
        ));
    }
    let mut work = audit::Work::begin(db).await?;
    if crate::store::integrators::set_user_payload_key(&mut work.tx, id, Some(key)).await? == 0 {
        return Err(IdentityError::Invalid("no such integrator".into()));
    }
    work.commit(Event {
        actor,
        action: "integrator.user_payload_key",
        scan_id: None,
        client_addr,
        detail: serde_json::json!({"integrator_id": id}),
    })
    .await?;
    // Cached token checks see the change at once on this instance.
    db.integrators_changed();
    Ok(())
}
