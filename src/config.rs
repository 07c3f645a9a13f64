//! Settings: the `serve` flags and their environment variables, checked
//! once by `Settings::try_from(ServeArgs)`. Nothing downstream re-checks a
//! bound; tests build their settings through the same conversion.

use crate::domain::validation::Thresholds;
use clap::builder::BoolishValueParser;
use clap::{Args, Parser};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
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

#[derive(Args, Clone, Debug)]
pub struct DbArgs {
    /// sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://<data-dir>/kycdesk.db]
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where the SQLite file, evidence blobs and keys live.
    #[arg(long, env = "KYCDESK_DATA_DIR", default_value = "./kycdesk-data")]
    pub data_dir: PathBuf,
}

impl DbArgs {
    pub fn url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| default_database_url(&self.data_dir))
    }
}

#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    #[arg(long, env = "KYCDESK_BIND", default_value = "127.0.0.1:8080")]
    /// IP:port to listen on (port 0: any free port).
    pub bind: SocketAddr,
    #[command(flatten)]
    pub db: DbArgs,
    /// The URL people use to reach this server [default: http://<bind>]
    #[arg(long, env = "KYCDESK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Seed demo data (users, integrators, a few hundred cases) into an empty database.
    #[arg(long)]
    pub demo: bool,
    /// Minutes without activity after which a desk session ends.
    #[arg(long, env = "KYCDESK_SESSION_IDLE_MINUTES", default_value_t = 30)]
    pub session_idle_minutes: i64,
    /// Hours after login after which a desk session ends regardless.
    #[arg(long, env = "KYCDESK_SESSION_ABSOLUTE_HOURS", default_value_t = 12)]
    pub session_absolute_hours: i64,
    /// Rejection reasons offered on the desk, separated by '|'.
    #[arg(long, env = "KYCDESK_REJECT_REASONS", value_delimiter = '|')]
    pub reject_reasons: Vec<String>,
    /// Deliver webhooks to loopback / private addresses (development only).
    #[arg(long, env = "KYCDESK_WEBHOOK_ALLOW_PRIVATE", value_parser = BoolishValueParser::new())]
    pub webhook_allow_private: bool,
    /// Seconds before the first webhook retry; each retry doubles the delay.
    #[arg(long, env = "KYCDESK_WEBHOOK_FIRST_RETRY_SECS", default_value_t = 5.0)]
    pub webhook_first_retry_secs: f64,
    /// The longest delay between two webhook retries, in seconds.
    #[arg(long, env = "KYCDESK_WEBHOOK_MAX_DELAY_SECS", default_value_t = 21_600)]
    pub webhook_max_delay_secs: i64,
    /// Hours after an event during which failed deliveries are retried.
    #[arg(long, env = "KYCDESK_WEBHOOK_RETRY_WINDOW_HOURS", default_value_t = 72)]
    pub webhook_retry_window_hours: i64,
    /// Seconds a webhook receiver has to answer.
    #[arg(long, env = "KYCDESK_WEBHOOK_TIMEOUT_SECS", default_value_t = 10)]
    pub webhook_timeout_secs: u64,
    /// Webhook deliveries in flight at once.
    #[arg(long, env = "KYCDESK_WEBHOOK_CONCURRENCY", default_value_t = 8)]
    pub webhook_concurrency: usize,
    /// On SIGTERM / Ctrl-C: seconds for webhook deliveries and requests in
    /// flight to finish before they are abandoned.
    #[arg(long, env = "KYCDESK_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Minutes an API access token lives.
    #[arg(long, env = "KYCDESK_TOKEN_TTL_MINUTES", default_value_t = 15)]
    pub token_ttl_minutes: i64,
    /// Hours an onboarding link works (until the applicant submits).
    #[arg(long, env = "KYCDESK_ONBOARDING_TTL_HOURS", default_value_t = 168)]
    pub onboarding_ttl_hours: i64,
    /// Largest accepted image upload, in MB.
    #[arg(long, env = "KYCDESK_MAX_IMAGE_MB", default_value_t = 15)]
    pub max_image_mb: u64,
    /// Largest accepted recording upload, in MB.
    #[arg(long, env = "KYCDESK_MAX_RECORDING_MB", default_value_t = 200)]
    pub max_recording_mb: u64,
    /// Images with more pixels than this (in megapixels) are refused before decoding.
    #[arg(long, env = "KYCDESK_MAX_MEGAPIXELS", default_value_t = 40)]
    pub max_megapixels: u64,
    /// The minimum age of an applicant (the applicantOfAge validation).
    #[arg(long, env = "KYCDESK_MINIMUM_AGE", default_value_t = 18)]
    pub minimum_age: u32,
    /// Face-match score (0-1) at or above which facialMatchingScore passes.
    #[arg(long, env = "KYCDESK_FACE_MATCH_THRESHOLD", default_value_t = 0.70)]
    pub face_match_threshold: f64,
    /// Liveness score (0-1) at or above which facialLivenessScore passes.
    #[arg(long, env = "KYCDESK_LIVENESS_THRESHOLD", default_value_t = 0.70)]
    pub liveness_threshold: f64,
    /// SMTP server for e-mail codes and magic links, e.g. smtp://mail:25 or
    /// smtps://user:pass@mail:465. Without it, e-mail stays in the desk's outbox.
    #[arg(long, env = "KYCDESK_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// The From address of those e-mails.
    #[arg(
        long,
        env = "KYCDESK_SMTP_FROM",
        default_value = "kycdesk <no-reply@localhost>"
    )]
    pub smtp_from: String,
    /// Seconds a client must wait between calls to one verification or login endpoint.
    #[arg(long, env = "KYCDESK_OTP_RATE_WINDOW_SECS", default_value_t = 30)]
    pub otp_rate_window_secs: i64,
    /// Days a mobile user token lives.
    #[arg(long, env = "KYCDESK_USER_TOKEN_TTL_DAYS", default_value_t = 365)]
    pub user_token_ttl_days: i64,
    /// Let agents (not only supervisors) record manual approvals.
    #[arg(long, env = "KYCDESK_AGENTS_CAN_APPROVE", value_parser = BoolishValueParser::new())]
    pub agents_can_approve: bool,
}

/// A flag whose value is out of bounds; nothing starts.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

fn bad(flag: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        flag,
        message: message.into(),
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database_url: String,
    pub data_dir: PathBuf,
    /// Where people reach this server. When `--public-url` is not given it
    /// is `http://<bind>`; with port 0 the real port replaces it once bound.
    pub public_url: Url,
    pub demo: bool,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    /// A claim nobody touched for this long may be taken over.
    pub claim_idle: Duration,
    pub lockout: crate::security::rate_limit::Policy,
    pub reject_reasons: Vec<String>,
    pub thresholds: Thresholds,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Lifetime of API access tokens.
    pub token_ttl: Duration,
    pub webhooks: crate::webhooks::WebhookPolicy,
    pub evidence: crate::evidence::intake::EvidenceLimits,
    /// How long an onboarding link works (from its creation, until submitted).
    pub onboarding_ttl: Duration,
    /// One-time codes, magic links, mobile-API limits and tokens.
    pub otp: crate::verification::otp::OtpPolicy,
    pub messaging: crate::verification::messaging::MessagingSettings,
    /// How long a quiz can be answered.
    pub quiz_ttl: Duration,
    /// Agents may create manual approvals (supervisors and admins always can).
    pub agents_can_approve: bool,
}

impl ServeArgs {
    /// The flags as `kycdesk serve --data-dir DIR` reads them (their
    /// defaults, or the environment variables that set them).
    pub fn for_data_dir(dir: &Path) -> Result<ServeArgs, clap::Error> {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let only = Only::try_parse_from([
            std::ffi::OsStr::new("serve"),
            std::ffi::OsStr::new("--data-dir"),
            dir.as_os_str(),
        ])?;
        Ok(only.serve)
    }
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3_600)
}

fn within(
    flag: &'static str,
    v: i64,
    range: std::ops::RangeInclusive<i64>,
    what: &str,
) -> Result<u64, ConfigError> {
    if range.contains(&v) {
        Ok(v as u64)
    } else {
        Err(bad(
            flag,
            format!(
                "{what} must be between {} and {}",
                range.start(),
                range.end()
            ),
        ))
    }
}

impl TryFrom<ServeArgs> for Settings {
    type Error = ConfigError;

    fn try_from(a: ServeArgs) -> Result<Settings, ConfigError> {
        let database_url = a.db.url();
        crate::store::Backend::from_url(&database_url).map_err(|m| bad("--database-url", m))?;
        let public_url = parse_public_url(
            &a.public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", a.bind)),
        )
        .map_err(|m| bad("--public-url", m))?;
        let session_idle = minutes(within(
            "--session-idle-minutes",
            a.session_idle_minutes,
            1..=7 * 24 * 60,
            "the idle timeout in minutes",
        )?);
        let session_absolute = hours(within(
            "--session-absolute-hours",
            a.session_absolute_hours,
            1..=24 * 365,
            "the session lifetime in hours",
        )?);
        let reasons: Vec<String> = a
            .reject_reasons
            .iter()
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect();
        let reject_reasons = if reasons.is_empty() {
            DEFAULT_REJECT_REASONS
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            reasons
        };

        if !a.webhook_first_retry_secs.is_finite() || a.webhook_first_retry_secs <= 0.0 {
            return Err(bad(
                "--webhook-first-retry-secs",
                "must be a positive number of seconds",
            ));
        }
        let webhooks = crate::webhooks::WebhookPolicy {
            allow_private: a.webhook_allow_private,
            first_retry_ms: (a.webhook_first_retry_secs * 1000.0).round() as i64,
            max_delay_ms: a.webhook_max_delay_secs.saturating_mul(1000),
            max_age_ms: a.webhook_retry_window_hours.saturating_mul(3_600_000),
            timeout_ms: a.webhook_timeout_secs.saturating_mul(1000),
            concurrency: a.webhook_concurrency,
            shutdown_grace_ms: a.shutdown_grace_secs.saturating_mul(1000),
            ..Default::default()
        };
        webhooks.validate().map_err(|(flag, m)| bad(flag, m))?;

        let otp = crate::verification::otp::OtpPolicy {
            rate_window_ms: within(
                "--otp-rate-window-secs",
                a.otp_rate_window_secs,
                0..=3600,
                "the window in seconds",
            )? as i64
                * 1000,
            user_token_ttl_ms: within(
                "--user-token-ttl-days",
                a.user_token_ttl_days,
                1..=3650,
                "the lifetime in days",
            )? as i64
                * 86_400_000,
            ..Default::default()
        };
        let token_ttl = minutes(within(
            "--token-ttl-minutes",
            a.token_ttl_minutes,
            1..=24 * 60,
            "the token lifetime in minutes (1 minute to 24 hours)",
        )?);
        let onboarding_ttl = hours(within(
            "--onboarding-ttl-hours",
            a.onboarding_ttl_hours,
            1..=24 * 365,
            "the link lifetime in hours (1 hour to 1 year)",
        )?);

        for (flag, v) in [
            ("--max-image-mb", a.max_image_mb),
            ("--max-recording-mb", a.max_recording_mb),
            ("--max-megapixels", a.max_megapixels),
        ] {
            if v == 0 {
                return Err(bad(flag, "evidence limits must be positive"));
            }
        }
        for (flag, v) in [
            ("--max-image-mb", a.max_image_mb),
            ("--max-megapixels", a.max_megapixels),
        ] {
            if v > 200 {
                return Err(bad(
                    flag,
                    "images are decoded in memory: keep it at 200 or less",
                ));
            }
        }
        if a.max_recording_mb > 4096 {
            return Err(bad("--max-recording-mb", "must be at most 4096"));
        }
        let evidence = crate::evidence::intake::EvidenceLimits {
            image_max_bytes: a.max_image_mb << 20,
            recording_max_bytes: a.max_recording_mb << 20,
            max_pixels: a.max_megapixels * 1_000_000,
            ..Default::default()
        };

        for (flag, v) in [
            ("--face-match-threshold", a.face_match_threshold),
            ("--liveness-threshold", a.liveness_threshold),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(bad(flag, "must be between 0 and 1"));
            }
        }
        if a.minimum_age > 130 {
            return Err(bad("--minimum-age", "must be a plausible age"));
        }
        let thresholds = Thresholds {
            minimum_age: a.minimum_age,
            facial_matching: a.face_match_threshold,
            facial_liveness: a.liveness_threshold,
            ..Default::default()
        };

        Ok(Settings {
            bind: a.bind,
            database_url,
            data_dir: a.db.data_dir,
            public_url,
            demo: a.demo,
            session_idle,
            session_absolute,
            claim_idle: minutes(30),
            lockout: crate::security::rate_limit::Policy::default(),
            reject_reasons,
            thresholds,
            workers: 0,
            token_ttl,
            webhooks,
            evidence,
            onboarding_ttl,
            otp,
            messaging: crate::verification::messaging::MessagingSettings {
                smtp_url: a.smtp_url.filter(|u| !u.trim().is_empty()),
                from: a.smtp_from,
            },
            quiz_ttl: minutes(15),
            agents_can_approve: a.agents_can_approve,
        })
    }
}

impl Settings {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServeArgs {
        let mut a = ServeArgs::for_data_dir(Path::new("/tmp/kycdesk-config-test"))
            .unwrap_or_else(|e| panic!("{e}"));
        // Independent of the environment the tests run in.
        a.db.database_url = None;
        a.public_url = None;
        a.bind = SocketAddr::from(([127, 0, 0, 1], 8080));
        a
    }

    #[test]
    fn the_defaults_convert_and_name_what_they_mean() {
        let s = Settings::try_from(args()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(
            s.database_url,
            "sqlite:///tmp/kycdesk-config-test/kycdesk.db"
        );
        assert_eq!(s.session_idle, Duration::from_secs(30 * 60));
        assert_eq!(s.session_absolute, Duration::from_secs(12 * 3600));
        assert_eq!(s.token_ttl, Duration::from_secs(15 * 60));
        assert_eq!(s.onboarding_ttl, Duration::from_secs(168 * 3600));
        assert_eq!(s.reject_reasons.len(), DEFAULT_REJECT_REASONS.len());
        assert_eq!(s.evidence.image_max_bytes, 15 << 20);
        assert_eq!(s.webhooks.shutdown_grace_ms, 10_000);
    }

    #[test]
    fn an_out_of_bounds_value_is_refused_naming_its_flag() {
        type Spoil = Box<dyn Fn(&mut ServeArgs)>;
        let cases: Vec<(&str, Spoil)> = vec![
            (
                "--session-idle-minutes",
                Box::new(|a| a.session_idle_minutes = 0),
            ),
            (
                "--token-ttl-minutes",
                Box::new(|a| a.token_ttl_minutes = 24 * 60 + 1),
            ),
            (
                "--onboarding-ttl-hours",
                Box::new(|a| a.onboarding_ttl_hours = 0),
            ),
            ("--max-image-mb", Box::new(|a| a.max_image_mb = 201)),
            ("--max-recording-mb", Box::new(|a| a.max_recording_mb = 0)),
            (
                "--face-match-threshold",
                Box::new(|a| a.face_match_threshold = 1.5),
            ),
            (
                "--liveness-threshold",
                Box::new(|a| a.liveness_threshold = f64::NAN),
            ),
            ("--minimum-age", Box::new(|a| a.minimum_age = 200)),
            (
                "--otp-rate-window-secs",
                Box::new(|a| a.otp_rate_window_secs = -1),
            ),
            (
                "--user-token-ttl-days",
                Box::new(|a| a.user_token_ttl_days = 0),
            ),
            (
                "--webhook-concurrency",
                Box::new(|a| a.webhook_concurrency = 0),
            ),
            (
                "--webhook-first-retry-secs",
                Box::new(|a| a.webhook_first_retry_secs = f64::INFINITY),
            ),
            (
                "--shutdown-grace-secs",
                Box::new(|a| a.shutdown_grace_secs = 601),
            ),
            (
                "--public-url",
                Box::new(|a| a.public_url = Some("ftp://x".into())),
            ),
            (
                "--database-url",
                Box::new(|a| a.db.database_url = Some("mysql://x".into())),
            ),
        ];
        for (flag, spoil) in cases {
            let mut a = args();
            spoil(&mut a);
            match Settings::try_from(a) {
                Ok(_) => panic!("{flag}: accepted"),
                Err(e) => assert_eq!(e.flag, flag, "{e}"),
            }
        }
    }

    #[test]
    fn a_public_url_given_is_kept_and_port_zero_is_left_for_the_listener() {
        let mut a = args();
        a.public_url = Some("https://desk.bank.example".into());
        let s = Settings::try_from(a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.public_url.as_str(), "https://desk.bank.example/");
        let mut a = args();
        a.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        let s = Settings::try_from(a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.public_url.port(), Some(0));
    }
}
