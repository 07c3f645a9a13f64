//! kycdesk: a self-hosted identity-onboarding (KYC) platform with a
//! server-rendered review desk.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod accounts;
pub mod api;
pub mod app;
pub mod assets;
pub mod audit;
pub mod certify;
pub mod cli;
pub mod config;
pub mod demo;
pub mod desk;
pub mod domain;
pub mod evidence;
pub mod onboarding;
pub mod review;
pub mod security;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod tools;
pub mod verification;
pub mod webhooks;
