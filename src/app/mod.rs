//! The composition root: builds the application (database, blob store,
//! keys, background tasks) and mounts every family's routes. Tests call
//! `Application::build` with port 0 and talk to the real server.

pub mod fallback;

use crate::config::Settings;
use crate::evidence::thumbs::Thumbnails;
use crate::evidence::BlobStore;
pub use crate::state::AppState;
use crate::store::Db;
use crate::{assets, desk, security};
use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use std::net::TcpListener;
use std::time::Duration;
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;

pub struct Application {
    port: u16,
    server: Server,
    /// Tells background tasks (the webhook dispatcher) to stop.
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Turns true once `run_until_stopped` has finished.
    stopped: tokio::sync::watch::Sender<bool>,
    background: Vec<tokio::task::JoinHandle<()>>,
    pub state: web::Data<AppState>,
    /// The demo integrator's API credentials, when this start seeded the demo.
    pub demo_credentials: Option<crate::accounts::integrators::Credentials>,
}

impl Application {
    pub async fn build(mut settings: Settings) -> anyhow::Result<Application> {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!("cannot create the data dir {}", settings.data_dir.display())
        })?;
        let db = Db::connect(&settings.database_url).await?;
        db.migrate().await?;
        if crate::store::metrics::build_once(&db).await? {
            tracing::info!("dashboard rollups built from the stored processes");
        }
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

        let listener = TcpListener::bind(settings.bind)
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let addr = listener.local_addr()?;
        if settings.public_url.port() == Some(0) {
            // Port 0 asks for any free port: a public URL naming port 0 can
            // only mean the port the listener was given.
            settings
                .public_url
                .set_port(Some(addr.port()))
                .map_err(|()| anyhow::anyhow!("the public URL cannot take a port"))?;
        }
        let workers = settings.workers;
        let demo = settings.demo;
        let openapi =
            crate::api::openapi::document(settings.public_url.as_str()).to_pretty_json()?;
        let mobile_openapi =
            crate::api::openapi::mobile_document(settings.public_url.as_str()).to_pretty_json()?;
        let identity_openapi = crate::api::openapi::identity_document(settings.public_url.as_str())
            .to_pretty_json()?;
        let postman = crate::verification::messaging::Postman::from_settings(&settings.messaging)?;
        let mut documented_routes = fallback::DocumentedRoutes::default();
        documented_routes.add_document("", &serde_json::from_str(&openapi)?);
        documented_routes.add_document("", &serde_json::from_str(&mobile_openapi)?);
        documented_routes.add_document("/identity", &serde_json::from_str(&identity_openapi)?);
        let state = web::Data::new(AppState {
            postman,
            db,
            settings,
            blobs,
            thumbs,
            jwt_key,
            openapi,
            mobile_openapi,
            identity_openapi,
            signing_key,
        });
        let demo_credentials = if demo {
            crate::demo::seed_if_empty(&state, crate::demo::DEFAULT_PROCESSES).await?
        } else {
            None
        };

        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let dispatcher_db = state
            .db
            .for_background(
                &state.settings.database_url,
                (state.settings.webhooks.concurrency as u32).clamp(2, 16),
            )
            .await?;
        let mut background = vec![
            tokio::spawn(crate::webhooks::run_dispatcher(
                dispatcher_db,
                state.settings.webhooks.clone(),
                shutdown_rx.clone(),
            )),
            tokio::spawn(sweep_expired_retakes(state.db.clone(), shutdown_rx.clone())),
        ];
        background.push(tokio::spawn(fold_counter_shards(
            state.db.clone(),
            shutdown_rx.clone(),
        )));
        if let Some(c) = state.db.checkpointer(&state.settings.database_url).await? {
            background.push(tokio::spawn(checkpoint_wal(c, shutdown_rx)));
        }

        let data = state.clone();
        let documented_routes = web::Data::new(documented_routes);
        let mut server = HttpServer::new(move || {
            // Called once on each worker's own thread.
            let data = web::Data::new(data.for_worker());
            App::new()
                .wrap(actix_web::middleware::from_fn(refuse_nul))
                .wrap(actix_web::middleware::from_fn(security::security_headers))
                .wrap(actix_web::middleware::from_fn(
                    security::request_id::middleware,
                ))
                .wrap(TracingLogger::default())
                .app_data(data)
                .app_data(documented_routes.clone())
                .configure(desk::routes)
                .configure(crate::onboarding::routes)
                .into_utoipa_app()
                .configure(crate::api::routes)
                .configure(crate::api::apto::routes)
                .configure(crate::api::apiture::routes)
                .into_app()
                .configure(crate::api::identity_routes)
                .route("/api/openapi.json", web::get().to(crate::api::openapi_json))
                .route(
                    "/api/openapi/mobile.json",
                    web::get().to(crate::api::mobile_openapi_json),
                )
                .route("/static/{name}", web::get().to(assets::serve))
                .route(
                    "/healthz",
                    web::get().to(|| async { HttpResponse::Ok().body("ok") }),
                )
                .route(
                    "/",
                    web::get().to(|| async { desk::redirect("/desk/queue") }),
                )
                .default_service(web::to(fallback::fallback))
        })
        .disable_signals()
        .shutdown_timeout(
            state
                .settings
                .webhooks
                .shutdown_grace_ms
                .div_ceil(1000)
                .max(1),
        )
        .listen(listener)?;
        if workers > 0 {
            server = server.workers(workers);
        }
        Ok(Application {
            port: addr.port(),
            server: server.run(),
            shutdown,
            stopped: tokio::sync::watch::channel(false).0,
            background,
            state,
            demo_credentials,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `StopHandle::stop` (the CLI calls it on SIGTERM /
    /// Ctrl-C). Stopping takes background work down first, within the
    /// webhook shutdown grace, while the HTTP workers (whose runtimes may
    /// own pooled database connections) are still alive; then the server
    /// stops, finishing requests in flight within the same grace.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let grace = Duration::from_millis(self.state.settings.webhooks.shutdown_grace_ms);
        let mut server = tokio::spawn(self.server);
        let mut stop = self.shutdown.subscribe();
        let served = tokio::select! {
            r = &mut server => Some(r),
            _ = stop.wait_for(|s| *s) => None,
        };
        self.shutdown.send_replace(true);
        let begun = tokio::time::Instant::now();
        for t in self.background {
            // The dispatcher keeps to the grace itself; this bounds a stuck one.
            let left = (begun + grace + Duration::from_secs(2))
                .saturating_duration_since(tokio::time::Instant::now());
            if tokio::time::timeout(left, t).await.is_err() {
                tracing::warn!("a background task did not stop within the grace");
            }
        }
        let r = match served {
            Some(r) => r,
            None => {
                let left = (begun + grace).saturating_duration_since(tokio::time::Instant::now());
                if tokio::time::timeout(left.max(Duration::from_millis(500)), handle.stop(true))
                    .await
                    .is_err()
                {
                    handle.stop(false).await;
                }
                server.await
            }
        };
        self.stopped.send_replace(true);
        r.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            shutdown: self.shutdown.clone(),
            stopped: self.stopped.subscribe(),
        }
    }
}

/// Stops a running application from elsewhere (the CLI on a signal; tests).
#[derive(Clone)]
pub struct StopHandle {
    shutdown: tokio::sync::watch::Sender<bool>,
    stopped: tokio::sync::watch::Receiver<bool>,
}

impl StopHandle {
    /// Asks `run_until_stopped` to stop (background tasks first, then the
    /// HTTP server) and waits until it has.
    pub async fn stop(&self) {
        self.shutdown.send_replace(true);
        let mut stopped = self.stopped.clone();
        let _ = stopped.wait_for(|s| *s).await;
    }
}

/// Refuses a request carrying U+0000 in its path, query or text body (see
/// `security::text_input`) with 400 in the error shape of the family the
/// path belongs to; nothing behind it runs.
async fn refuse_nul(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use crate::security::text_input::{check, Verdict, MAX_CHECKED_BODY};
    use actix_web::ResponseError;
    let (status, message) = match check(&mut req).await {
        Verdict::Clean => return Ok(next.call(req).await?.map_into_boxed_body()),
        Verdict::Refused(place) => (actix_web::http::StatusCode::BAD_REQUEST, place.message()),
        Verdict::TooLarge => (
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a text request body may be at most {} KiB",
                MAX_CHECKED_BODY >> 10
            ),
        ),
    };
    let path = req.path();
    let too_large = status == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE;
    let response = if path.starts_with("/desk") {
        desk::error::DeskError::BadRequest(message).error_response()
    } else if path.starts_with("/identity") {
        crate::api::apiture::HalError(crate::api::problem::Problem::BadRequest(message))
            .error_response()
    } else if too_large {
        crate::api::problem::Problem::TooLarge(message).error_response()
    } else {
        crate::api::problem::Problem::BadRequest(message).error_response()
    };
    let mut response = response;
    *response.status_mut() = status;
    Ok(req.into_response(response))
}

/// SQLite: checkpoints the WAL twice a second from its own connection, so
/// the writer's commits never do it (see `store::Checkpointer`).
async fn checkpoint_wal(
    c: crate::store::Checkpointer,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let pause = std::time::Duration::from_millis(500);
    crate::shutdown::every(shutdown, pause, || async {
        if let Err(e) = c.run().await {
            tracing::warn!(error = %e, "WAL checkpoint failed; the next one retries");
        }
    })
    .await
}

/// Folds the counter shards of past days back into one row per key (see
/// `store::metrics::fold_shards`; nothing to fold on SQLite), at start and
/// then hourly.
async fn fold_counter_shards(db: crate::store::Db, shutdown: tokio::sync::watch::Receiver<bool>) {
    let pause = std::time::Duration::from_secs(3600);
    crate::shutdown::every(shutdown, pause, || async {
        match crate::store::metrics::fold_shards(&db, crate::domain::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(keys = n, "counter shards folded"),
            Err(e) => {
                tracing::warn!(error = %e, "folding counter shards failed; the next run retries")
            }
        }
    })
    .await
}

/// Returns cases whose retake link expired unanswered to their queue: at
/// start, then every minute (so a case is back within a minute of expiry).
async fn sweep_expired_retakes(db: crate::store::Db, shutdown: tokio::sync::watch::Receiver<bool>) {
    let pause = std::time::Duration::from_secs(60);
    crate::shutdown::every(shutdown, pause, || async {
        match crate::review::retake::return_expired(&db, crate::domain::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                cases = n,
                "expired retake requests: cases returned to review"
            ),
            Err(e) => tracing::warn!(error = %e, "expired retake sweep failed"),
        }
    })
    .await
}
