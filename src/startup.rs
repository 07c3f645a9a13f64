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

/// Shared by every handler.
pub struct AppState {
    pub db: Db,
    pub settings: Settings,
    pub blobs: BlobStore,
    pub thumbs: Thumbnails,
    /// HS256 key for API access tokens, created once per instance.
    pub jwt_key: Vec<u8>,
}

pub struct Application {
    port: u16,
    server: Server,
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
        let state = web::Data::new(AppState {
            db,
            settings,
            blobs,
            thumbs,
            jwt_key,
        });
        let demo_credentials = if demo {
            crate::demo::seed_if_empty(&state, crate::demo::DEFAULT_PROCESSES).await?
        } else {
            None
        };

        let data = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(security::security_headers())
                .wrap(actix_web::middleware::from_fn(
                    security::request_id::middleware,
                ))
                .wrap(TracingLogger::default())
                .app_data(data.clone())
                .configure(desk::routes)
                .configure(crate::api::routes)
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
            state,
            demo_credentials,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
