//! Building the application: database, blob store, routes. Tests call
//! `Application::build` with port 0 and talk to the real server.

use crate::config::Settings;
use crate::evidence::thumbs::Thumbnails;
use crate::evidence::BlobStore;
use crate::store::Db;
use crate::{assets, desk, security};
use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use std::net::TcpListener;
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;

/// Shared by every handler.
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
    /// Sends one-time codes and magic links (SMTP / outbox).
    pub postman: crate::verify::messaging::Postman,
}

pub struct Application {
    port: u16,
    server: Server,
    /// Tells background tasks (the webhook dispatcher) to stop.
    shutdown: tokio::sync::watch::Sender<bool>,
    background: Vec<tokio::task::JoinHandle<()>>,
    pub state: web::Data<AppState>,
    /// The demo integrator's API credentials, when this start seeded the demo.
    pub demo_credentials: Option<crate::identity::integrators::Credentials>,
}

impl Application {
    pub async fn build(mut settings: Settings) -> anyhow::Result<Application> {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!("cannot create the data dir {}", settings.data_dir.display())
        })?;
        let db = Db::connect(&settings.database_url).await?;
        db.migrate().await?;
        let blobs = BlobStore::open(&settings.data_dir).context("cannot open the blob store")?;
        let thumbs = Thumbnails::open(&settings.data_dir, blobs.clone())
            .context("cannot open the thumbnail cache")?;

        let jwt_hex = crate::store::integrators::instance_secret(
            db.write(),
            "jwt_hs256",
            &crate::security::random_token(),
        )
        .await?;
        let jwt_key = hex::decode(jwt_hex).context("the stored JWT key is corrupt")?;
        let signing_key = crate::certify::signing::load_or_create(&settings.data_dir)?;

        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let addr = listener.local_addr()?;
        if settings.public_url.host_str() == Some("127.0.0.1")
            && settings.public_url.port() == Some(8080)
            && addr.port() != 8080
        {
            // The default public URL follows the real bind address.
            settings.public_url = crate::config::parse_public_url(&format!("http://{addr}"))
                .map_err(anyhow::Error::msg)?;
        }
        let workers = settings.workers;
        let demo = settings.demo;
        let openapi =
            crate::api::openapi::document(settings.public_url.as_str()).to_pretty_json()?;
        let postman = crate::verify::messaging::Postman::from_settings(&settings)?;
        let state = web::Data::new(AppState {
            postman,
            db,
            settings,
            blobs,
            thumbs,
            jwt_key,
            openapi,
            signing_key,
        });
        let demo_credentials = if demo {
            crate::demo::seed_if_empty(&state, crate::demo::DEFAULT_PROCESSES).await?
        } else {
            None
        };

        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let background = vec![tokio::spawn(crate::webhooks::run_dispatcher(
            state.db.clone(),
            state.settings.webhooks.clone(),
            shutdown_rx,
        ))];

        let data = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(security::security_headers))
                .wrap(actix_web::middleware::from_fn(
                    security::request_id::middleware,
                ))
                .wrap(TracingLogger::default())
                .app_data(data.clone())
                .configure(desk::routes)
                .configure(crate::onboarding::routes)
                .into_utoipa_app()
                .configure(crate::api::routes)
                .into_app()
                .configure(crate::api::identity_routes)
                .route("/api/openapi.json", web::get().to(crate::api::openapi_json))
                .route("/static/{name}", web::get().to(assets::serve))
                .route(
                    "/healthz",
                    web::get().to(|| async { HttpResponse::Ok().body("ok") }),
                )
                .route(
                    "/",
                    web::get().to(|| async { desk::redirect("/desk/queue") }),
                )
        })
        .listen(listener)?;
        if workers > 0 {
            server = server.workers(workers);
        }
        Ok(Application {
            port: addr.port(),
            server: server.run(),
            shutdown,
            background,
            state,
            demo_credentials,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server stops (signal or `StopHandle::stop`), then
    /// stops the background tasks.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let r = self.server.await;
        let _ = self.shutdown.send(true);
        for t in self.background {
            let _ = t.await;
        }
        r
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            server: self.server.handle(),
            shutdown: self.shutdown.clone(),
        }
    }
}

/// Stops a running application from elsewhere (tests restart one this way).
#[derive(Clone)]
pub struct StopHandle {
    server: actix_web::dev::ServerHandle,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl StopHandle {
    /// Stops background tasks first (no new webhook attempt starts), then
    /// the HTTP server.
    pub async fn stop(&self) {
        let _ = self.shutdown.send(true);
        self.server.stop(true).await;
    }
}
