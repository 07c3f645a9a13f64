//! What every handler shares: the database, settings, blob store, keys and
//! the served OpenAPI documents. Its own module, below every handler, so
//! handlers depend on it and the composition root (`app`) on them.

use crate::config::Settings;
use crate::evidence::thumbs::Thumbnails;
use crate::evidence::BlobStore;
use crate::store::Db;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Settings,
    pub blobs: BlobStore,
    pub thumbs: Thumbnails,
    /// HS256 key for API access tokens, created once per instance.
    pub jwt_key: Vec<u8>,
    /// Ed25519 key that signs certified zips (in the data dir).
    pub signing_key: ed25519_dalek::SigningKey,
    /// The integrator API's OpenAPI document, serialised once.
    pub openapi: String,
    /// The mobile and Verification APIs' document, serialised once.
    pub mobile_openapi: String,
    /// The Identity API's document (`/identity/apiDoc`), serialised once.
    pub identity_openapi: String,
    /// Sends one-time codes and magic links (SMTP / outbox).
    pub postman: crate::verification::messaging::Postman,
}

impl AppState {
    /// This state for one HTTP worker, made on its thread: its own
    /// database pool on PostgreSQL (see `Db::for_worker`), the rest shared
    /// or copied once.
    pub fn for_worker(&self) -> AppState {
        AppState {
            db: self.db.for_worker(),
            ..self.clone()
        }
    }

    /// What the certified zip is issued with.
    pub fn zip_issuer(&self) -> crate::certify::zip::Issuer<'_> {
        crate::certify::zip::Issuer {
            db: &self.db,
            blobs: &self.blobs,
            signing_key: &self.signing_key,
            public_url: self.settings.public_url.as_str(),
        }
    }
}
