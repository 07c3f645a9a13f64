//! Desk sessions, stored server-side in our database (see DESIGN note in the
//! README): the cookie holds a random token, the database only its SHA-256.

use crate::desk::error::DeskError;
use crate::domain::{now_ms, Role};
use crate::security::{client_addr, constant_time_eq, is_htmx, random_token, sha256_hex};
use crate::state::AppState;
use crate::store::users as rows;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{http::Method, web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

/// How often `last_seen_at` is written: once a minute is precise enough for
/// a 30-minute idle timeout and spares a write per request.
const TOUCH_EVERY_MS: i64 = 60_000;

/// A logged-in desk user. Extracting it authenticates the request and, for
/// any method that can change state, checks the CSRF header.
#[derive(Debug, Clone)]
pub struct DeskSession {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    pub csrf: String,
    pub client_addr: String,
    /// The password is temporary (an admin set it): only the password page
    /// and logout open until it is changed.
    pub must_change_password: bool,
    token_hash: String,
}

impl DeskSession {
    pub fn require(&self, role: Role) -> Result<(), DeskError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(DeskError::Forbidden(format!(
                "this page needs the {role} role"
            )))
        }
    }

    pub fn actor(&self) -> crate::review::Actor {
        crate::review::Actor {
            name: self.email.clone(),
            client_addr: self.client_addr.clone(),
        }
    }

    pub fn token_hash(&self) -> &str {
        &self.token_hash
    }

    pub async fn end(&self, state: &AppState) -> Result<(), sqlx::Error> {
        rows::delete_session(&state.db, &self.token_hash).await
    }
}

impl FromRequest for DeskSession {
    type Error = DeskError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let htmx = is_htmx(&req);
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| DeskError::Internal(anyhow::anyhow!("application state missing")))?;
            // Only computed on the way to the login page, not per request.
            let unauth = |expired| DeskError::Unauthenticated {
                htmx,
                expired,
                back_to: return_path(&req, htmx),
            };
            let token = req
                .cookie(state.settings.session_cookie())
                .map(|c| c.value().to_string())
                .ok_or_else(|| unauth(false))?;
            let hash = sha256_hex(&token);
            let row = rows::live_session(&state.db, &hash)
                .await?
                .ok_or_else(|| unauth(true))?;
            let now = now_ms();
            let s = &state.settings;
            if now - row.last_seen_at > crate::domain::ms(s.session_idle)
                || now - row.created_at > crate::domain::ms(s.session_absolute)
            {
                rows::delete_session(&state.db, &hash).await?;
                return Err(unauth(true));
            }
            let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
            if !safe {
                let sent = req
                    .headers()
                    .get("X-CSRF-Token")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !constant_time_eq(sent, &row.csrf_token) {
                    return Err(DeskError::Csrf);
                }
            }
            if now - row.last_seen_at > TOUCH_EVERY_MS {
                rows::touch_session(&state.db, &hash, now).await?;
            }
            let must_change = row.must_change_password == 1;
            if must_change && !matches!(req.path(), "/desk/password" | "/desk/logout") {
                return Err(DeskError::MustChangePassword { htmx });
            }
            let role = row
                .role
                .parse::<Role>()
                .map_err(|e| DeskError::Internal(anyhow::anyhow!(e)))?;
            Ok(DeskSession {
                user_id: row.user_id,
                email: row.email,
                role,
                csrf: row.csrf_token,
                client_addr: client_addr(&req),
                must_change_password: must_change,
                token_hash: hash,
            })
        })
    }
}

/// Starts a fresh session (a new id at every login) and returns the token
/// for the cookie.
pub async fn start(
    state: &AppState,
    user_id: &str,
    client_addr: &str,
) -> Result<String, sqlx::Error> {
    let token = random_token();
    let mut tx = state.db.begin().await?;
    rows::insert_session(
        &mut tx,
        &sha256_hex(&token),
        user_id,
        &random_token(),
        now_ms(),
        client_addr,
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// HttpOnly, SameSite=Strict, path `/`; Secure (and the `__Host-` name) over
/// https. No Max-Age: the server decides when a session ends.
pub fn cookie<'a>(state: &AppState, name: &'a str, value: String) -> Cookie<'a> {
    let mut c = Cookie::new(name, value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Strict);
    c.set_path("/");
    c.set_secure(state.settings.https());
    c
}

pub fn removal<'a>(state: &AppState, name: &'a str) -> Cookie<'a> {
    let mut c = cookie(state, name, String::new());
    c.make_removal();
    c
}

/// Where to return after logging in: the page asked for, or for an htmx
/// request the page it was sent from; only a desk page qualifies.
fn return_path(req: &HttpRequest, htmx: bool) -> Option<String> {
    let path = if htmx {
        let u = req
            .headers()
            .get("HX-Current-URL")
            .and_then(|v| v.to_str().ok())
            .and_then(|u| url::Url::parse(u).ok())?;
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    } else if *req.method() == Method::GET {
        req.uri().to_string()
    } else {
        return None;
    };
    Some(path).filter(|p| super::auth::is_return_path(p))
}
