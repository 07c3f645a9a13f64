//! One integration-test binary. Every test marked with `both_backends!`
//! runs against a fresh SQLite file and a fresh PostgreSQL database.

mod audit;
mod audit_explorer;
mod auth;
mod browser;
mod bulk;
mod capture;
mod case;
mod certify;
mod cli;
mod contact_confirm;
mod contract;
mod dashboard;
mod export;
mod four_eyes;
mod helpers;
mod mobbscan;
mod onboarding;
mod pool;
mod qa;
mod queue;
mod races;
mod retake;
mod schema;
mod security;
mod shutdown;
mod text_input;
mod users_admin;
mod verification;
mod webhooks;
mod writer;
