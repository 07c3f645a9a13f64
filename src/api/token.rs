//! Access tokens: HS256 JWTs signed with a per-instance key kept in the
//! database (every app server shares it). Only HS256 is accepted, and
//! `exp`, `iat`, `aud`, `iss` and `sub` must be present and valid.

use super::problem::Problem;
use crate::state::AppState;
use crate::store::integrators as rows;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub const AUDIENCE: &str = "kycdesk-api";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// Which API secret the token was issued for: rotating the secret ends
    /// every token issued with the old one.
    pub sv: String,
}

/// A short fingerprint of the stored secret hash (not usable to guess it).
pub fn secret_version(secret_hash: Option<&str>) -> String {
    crate::security::sha256_hex(secret_hash.unwrap_or_default())[..16].to_string()
}

pub fn issuer(state: &AppState) -> String {
    state
        .settings
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_string()
}

pub fn issue(
    state: &AppState,
    integrator_id: &str,
    secret_hash: Option<&str>,
) -> Result<String, Problem> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: integrator_id.into(),
        iss: issuer(state),
        aud: AUDIENCE.into(),
        iat: now,
        exp: now + state.settings.token_ttl.as_secs() as i64,
        jti: uuid::Uuid::new_v4().to_string(),
        sv: secret_version(secret_hash),
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&state.jwt_key),
    )
    .map_err(|e| Problem::Internal(e.into()))
}

pub fn verify(state: &AppState, token: &str) -> Result<Claims, Problem> {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&[AUDIENCE]);
    v.set_issuer(&[issuer(state)]);
    v.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
    v.leeway = 5;
    decode::<Claims>(token, &DecodingKey::from_secret(&state.jwt_key), &v)
        .map(|d| d.claims)
        .map_err(|e| Problem::Unauthorized(format!("invalid access token: {e}")))
}

/// The integrator calling the API, authenticated by `Authorization: Bearer`.
#[derive(Debug, Clone)]
pub struct ApiClient {
    pub integrator_id: String,
    pub name: String,
    pub submit_state: String,
    pub client_addr: String,
}

impl ApiClient {
    pub fn actor(&self) -> crate::review::Actor {
        crate::review::Actor {
            name: format!("integrator:{}", self.name),
            client_addr: self.client_addr.clone(),
        }
    }
}

impl FromRequest for ApiClient {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = super::app_state(&req)?;
            let token = req
                .headers()
                .get("Authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .ok_or_else(|| {
                    Problem::Unauthorized(
                        "send the access token as 'Authorization: Bearer <token>'".into(),
                    )
                })?;
            let claims = verify(state, token.trim())?;
            // A disabled integrator loses access at once, not when its token expires.
            let row = rows::auth_by_id(&state.db, &claims.sub)
                .await?
                .ok_or_else(|| {
                    Problem::Unauthorized("the integrator of this token no longer exists".into())
                })?;
            if row.enabled != 1 {
                return Err(Problem::Forbidden("this integrator is disabled".into()));
            }
            if claims.sv != secret_version(row.secret_hash.as_deref()) {
                return Err(Problem::Unauthorized(
                    "the API secret was rotated; get a new token".into(),
                ));
            }
            Ok(ApiClient {
                integrator_id: row.id,
                name: row.name,
                submit_state: row.submit_state,
                client_addr: crate::security::client_addr(&req),
            })
        })
    }
}
