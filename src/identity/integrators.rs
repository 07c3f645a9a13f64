//! Integrators: the banks and fintechs that drive kycdesk over the API.
//! The API secret is shown once and stored as its SHA-256 (it is 256 random
//! bits, so a slow hash adds nothing).

use super::IdentityError;
use crate::audit::{self, Event};
use crate::domain::now_ms;
use crate::security::{constant_time_eq, random_token, sha256_hex};
use crate::store::integrators::{self as rows, IntegratorAuthRow};
use crate::store::Db;
use base64::Engine;
use serde::Serialize;

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

pub async fn create(
    db: &Db,
    name: &str,
    webhook_url: Option<&str>,
    frame_ancestors: &[String],
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
        http_url(w, "webhook URL")?;
    }
    let mut origins = Vec::new();
    for o in frame_ancestors {
        let u = http_url(o, "frame ancestor")?;
        if u.path() != "/" || u.query().is_some() {
            return Err(IdentityError::Invalid(format!(
                "the frame ancestor '{o}' must be an origin (scheme://host[:port])"
            )));
        }
        origins.push(u.origin().ascii_serialization());
    }
    let mut wh = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut wh);
    let creds = Credentials {
        integrator_id: uuid::Uuid::new_v4().to_string(),
        api_key: format!("kd_{}", &random_token()[..32]),
        api_secret: random_token(),
        webhook_secret: format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(wh)
        ),
    };
    let mut tx = db.begin().await?;
    rows::insert(
        &mut tx,
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
    audit::record(
        db,
        &mut tx,
        Event {
            actor,
            action: "integrator.create",
            scan_id: None,
            client_addr,
            detail: serde_json::json!({"integrator_id": creds.integrator_id, "name": name}),
        },
    )
    .await?;
    tx.commit().await?;
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
