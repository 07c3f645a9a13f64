//! kycdesk: a self-hosted identity-onboarding (KYC) platform with a
//! server-rendered review desk.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod assets;
pub mod audit;
pub mod bench;
pub mod bench_api;
pub mod cases;
pub mod certify;
pub mod cli;
pub mod config;
pub mod demo;
pub mod desk;
pub mod domain;
pub mod evidence;
pub mod identity;
pub mod onboarding;
pub mod security;
pub mod startup;
pub mod store;
pub mod verify;
pub mod webhooks;
