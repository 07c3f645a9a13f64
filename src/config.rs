//! Settings from flags and environment, validated once at start.

use crate::accounts::LockoutPolicy;
use crate::domain::validation::Thresholds;
use std::path::PathBuf;
use url::Url;

pub const DEFAULT_REJECT_REASONS: [&str; 7] = [
    "Document expired",
    "Document illegible or incomplete",
    "Suspected forgery or tampering",
    "Face does not match the document",
    "Liveness check failed",
    "Applicant under age",
    "Data mismatch between document and MRZ",
];

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: String,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub public_url: Url,
    pub demo: bool,
    pub session_idle_ms: i64,
    pub session_absolute_ms: i64,
    pub claim_idle_ms: i64,
    pub lockout: LockoutPolicy,
    pub reject_reasons: Vec<String>,
    pub thresholds: Thresholds,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Lifetime of API access tokens.
    pub token_ttl_secs: i64,
    pub webhooks: crate::webhooks::WebhookPolicy,
    pub evidence: crate::evidence::intake::EvidenceLimits,
    /// How long an onboarding link works (from its creation, until submitted).
    pub onboarding_ttl_ms: i64,
    /// One-time codes, magic links, mobile-API limits and tokens.
    pub otp: crate::verification::otp::OtpPolicy,
    pub messaging: crate::verification::messaging::MessagingSettings,
    /// How long a quiz can be answered.
    pub quiz_ttl_ms: i64,
    /// Agents may create manual approvals (supervisors and admins always can).
    pub agents_can_approve: bool,
}

impl Settings {
    /// Defaults for a data dir: embedded SQLite inside it, local bind.
    pub fn new(data_dir: PathBuf) -> Settings {
        let database_url = default_database_url(&data_dir);
        Settings {
            bind: "127.0.0.1:8080".into(),
            database_url,
            data_dir,
            public_url: Url::parse("http://127.0.0.1:8080").expect("a constant URL parses"),
            demo: false,
            session_idle_ms: 30 * 60_000,
            session_absolute_ms: 12 * 3_600_000,
            claim_idle_ms: 30 * 60_000,
            lockout: LockoutPolicy::default(),
            reject_reasons: DEFAULT_REJECT_REASONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            thresholds: Thresholds::default(),
            workers: 0,
            token_ttl_secs: 15 * 60,
            webhooks: crate::webhooks::WebhookPolicy::default(),
            evidence: crate::evidence::intake::EvidenceLimits::default(),
            onboarding_ttl_ms: 7 * 24 * 3_600_000,
            otp: crate::verification::otp::OtpPolicy::default(),
            messaging: crate::verification::messaging::MessagingSettings {
                smtp_url: None,
                from: "kycdesk <no-reply@localhost>".into(),
            },
            quiz_ttl_ms: 15 * 60_000,
            agents_can_approve: false,
        }
    }

    /// `Secure` cookies and the `__Host-` prefix only make sense over https.
    pub fn https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    pub fn session_cookie(&self) -> &'static str {
        if self.https() {
            "__Host-kycdesk_session"
        } else {
            "kycdesk_session"
        }
    }

    pub fn login_csrf_cookie(&self) -> &'static str {
        if self.https() {
            "__Host-kycdesk_login"
        } else {
            "kycdesk_login"
        }
    }
}

pub fn default_database_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}", data_dir.join("kycdesk.db").display())
}

pub fn parse_public_url(raw: &str) -> Result<Url, String> {
    let u = Url::parse(raw).map_err(|e| format!("the public URL '{raw}' is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(format!(
            "the public URL '{raw}' must be http(s)://host[:port]"
        ));
    }
    Ok(u)
}
