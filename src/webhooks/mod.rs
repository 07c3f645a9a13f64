//! Status webhooks: events are written to an outbox in the same transaction
//! as the change they report (`store::webhooks::enqueue`); this dispatcher
//! posts them, signed per Standard Webhooks, retrying with exponential
//! backoff and jitter for about three days. Pending events live in the
//! database, so they survive restarts; a lease keeps two app servers from
//! posting the same event at once.

use crate::domain::now_ms;
use crate::store::webhooks::{self as rows, Attempt, DueRow, Outcome};
use crate::store::Db;
use base64::Engine;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::sync::watch;

/// How the dispatcher behaves; part of `Settings`.
#[derive(Debug, Clone)]
pub struct WebhookPolicy {
    /// Deliver to loopback / private / link-local addresses. Off in
    /// production (a webhook URL must not reach into the operator's network);
    /// tests and local development turn it on.
    pub allow_private: bool,
    /// Delay before the first retry; each retry doubles it, up to `max_delay_ms`.
    pub first_retry_ms: i64,
    pub max_delay_ms: i64,
    /// After this long since the event, a failed attempt gives up.
    pub max_age_ms: i64,
    pub poll_ms: u64,
    pub timeout_ms: u64,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// On shutdown, how long deliveries in flight may take to finish; the
    /// ones still waiting for their receiver then are abandoned (their
    /// leases handed back, nothing recorded, delivered again later).
    pub shutdown_grace_ms: u64,
}

impl WebhookPolicy {
    /// Checks the bounds an operator can set; an error names the flag.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !(100..=3_600_000).contains(&self.first_retry_ms) {
            return Err((
                "--webhook-first-retry-secs",
                "the first webhook retry delay must be between 0.1 s and 1 h",
            ));
        }
        if self.max_delay_ms < self.first_retry_ms || self.max_delay_ms > 7 * 24 * 3_600_000 {
            return Err((
                "--webhook-max-delay-secs",
                "the webhook retry cap must be at least the first delay and at most 7 days",
            ));
        }
        if !(60_000..=30 * 24 * 3_600_000).contains(&self.max_age_ms) {
            return Err((
                "--webhook-retry-window-hours",
                "the webhook retry window must be between 1 minute and 30 days",
            ));
        }
        if !(100..=300_000).contains(&self.timeout_ms) {
            return Err((
                "--webhook-timeout-secs",
                "the webhook timeout must be between 0.1 s and 300 s",
            ));
        }
        if !(1..=256).contains(&self.concurrency) {
            return Err((
                "--webhook-concurrency",
                "webhook concurrency must be between 1 and 256",
            ));
        }
        if self.shutdown_grace_ms > 600_000 {
            return Err((
                "--shutdown-grace-secs",
                "the shutdown grace must be at most 600 s",
            ));
        }
        Ok(())
    }
}

impl Default for WebhookPolicy {
    fn default() -> Self {
        WebhookPolicy {
            allow_private: false,
            first_retry_ms: 5_000,
            max_delay_ms: 6 * 3_600_000,
            max_age_ms: 3 * 24 * 3_600_000,
            poll_ms: 500,
            timeout_ms: 10_000,
            concurrency: 8,
            shutdown_grace_ms: 10_000,
        }
    }
}

/// The statuses an integrator is told about.
pub const STATUSES: [&str; 5] = [
    "PENDING_VERIFICATION",
    "PENDING_VALIDATION",
    "VERIFIED",
    "NOT_VERIFIED",
    "VIDEO_AVAILABLE",
];

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the webhook secret is not whsec_<base64>")]
    BadSecret,
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the key being
/// the base64-decoded part of `whsec_…`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String, SignError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| SignError::BadSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SignError::BadSecret)?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!("v1,{}", b64.encode(mac.finalize().into_bytes())))
}

/// Delay before retry number `attempts` (1 = the first retry): doubling from
/// `first_retry_ms`, capped, with ±25 % jitter so a recovering receiver is
/// not hit by every queued event in the same second.
pub fn backoff_ms(p: &WebhookPolicy, attempts: i64, jitter: f64) -> i64 {
    let exp = attempts.clamp(1, 40) - 1;
    let base = (p.first_retry_ms as f64) * 2f64.powi(exp as i32);
    let capped = base.min(p.max_delay_ms as f64);
    (capped * (1.0 + jitter.clamp(-0.25, 0.25))).round() as i64
}

/// Addresses a webhook may not reach unless the operator allows it.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Checks a webhook URL when it is configured: http(s), and no literal
/// private address or `localhost` unless allowed. (Names are resolved and
/// checked again at every delivery.)
pub fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, String> {
    let u =
        url::Url::parse(raw).map_err(|e| format!("the webhook URL '{raw}' is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("the webhook URL '{raw}' must be http(s)"));
    }
    let private = match u.host() {
        None => return Err(format!("the webhook URL '{raw}' has no host")),
        Some(url::Host::Ipv4(ip)) => is_private(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_private(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    };
    if private && !allow_private {
        return Err(format!(
            "the webhook URL '{raw}' points at a loopback or private address; \
             set KYCDESK_WEBHOOK_ALLOW_PRIVATE=1 to allow that (development only)"
        ));
    }
    Ok(u)
}

/// Runs until `shutdown` turns true. Deliveries in flight then get
/// `shutdown_grace_ms` to finish (each finished one is recorded); the rest
/// hand their leases back. Callers stop the HTTP server only after this
/// returns: on PostgreSQL the pool's connections may belong to the server's
/// worker runtimes, and die with them.
pub async fn run_dispatcher(db: Db, policy: WebhookPolicy, mut shutdown: watch::Receiver<bool>) {
    tracing::info!("webhook dispatcher started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let worked = match dispatch_due(&db, &policy, &shutdown).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "webhook dispatcher: database error");
                0
            }
        };
        if worked == 0
            && crate::shutdown::wait(&mut shutdown, Duration::from_millis(policy.poll_ms)).await
        {
            break;
        }
    }
    tracing::info!("webhook dispatcher stopped");
}

/// What became of one leased event.
enum Delivery {
    Recorded,
    /// Shutdown's grace ran out while the receiver had not answered.
    Abandoned(String),
}

/// Delivers the events due now, `policy.concurrency` at a time; returns how
/// many were leased. Stops starting new ones once `shutdown` turns true.
pub async fn dispatch_due(
    db: &Db,
    policy: &WebhookPolicy,
    shutdown: &watch::Receiver<bool>,
) -> Result<usize, sqlx::Error> {
    use futures_util::stream::FuturesUnordered;
    let now = now_ms();
    let due = rows::due(db.read(), now, 32).await?;
    let lease_until = now + policy.timeout_ms as i64 + policy.shutdown_grace_ms as i64 + 30_000;
    let mut queue = std::collections::VecDeque::new();
    for d in due {
        if rows::lease(db.write(), &d.id, d.next_attempt_at, lease_until).await? {
            queue.push_back(d);
        }
    }
    let n = queue.len();
    let mut stop = shutdown.clone();
    let (abandon_tx, abandon_rx) = watch::channel(false);
    let mut running = FuturesUnordered::new();
    let mut stopping = *stop.borrow();
    let mut grace_ends: Option<tokio::time::Instant> = None;
    let mut abandoned = Vec::new();
    let mut first_error = None;
    loop {
        while !stopping && running.len() < policy.concurrency.max(1) {
            let Some(d) = queue.pop_front() else { break };
            running.push(deliver(db, policy, d, abandon_rx.clone()));
        }
        if running.is_empty() {
            break;
        }
        let grace = async {
            match grace_ends {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(r) = running.next() => match r {
                Ok(Delivery::Recorded) => {}
                Ok(Delivery::Abandoned(id)) => abandoned.push(id),
                Err(e) => { first_error.get_or_insert(e); }
            },
            r = stop.changed(), if !stopping => {
                stopping = true;
                let _ = r;
                grace_ends = Some(tokio::time::Instant::now() + Duration::from_millis(policy.shutdown_grace_ms));
            }
            _ = grace => {
                // Deliveries still waiting for their receiver give up; those
                // already recording their attempt finish that.
                let _ = abandon_tx.send(true);
                grace_ends = None;
            }
        }
    }
    let released = now_ms();
    for id in abandoned.iter().chain(queue.iter().map(|d| &d.id)) {
        rows::release_lease(db.write(), id, lease_until, released).await?;
    }
    if !abandoned.is_empty() || !queue.is_empty() {
        tracing::warn!(
            abandoned = abandoned.len(),
            not_started = queue.len(),
            "webhook dispatcher stopping: leases handed back"
        );
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

async fn deliver(
    db: &Db,
    policy: &WebhookPolicy,
    d: DueRow,
    mut abandon: watch::Receiver<bool>,
) -> Result<Delivery, sqlx::Error> {
    let started = now_ms();
    let clock = std::time::Instant::now();
    let url = d.webhook_url.clone().unwrap_or_default();
    let result = tokio::select! {
        r = post(policy, &d, &url) => r,
        _ = abandon.wait_for(|a| *a) => return Ok(Delivery::Abandoned(d.id)),
    };
    let duration_ms = clock.elapsed().as_millis() as i64;
    let (status_code, error) = match &result {
        Ok(code) if (200..300).contains(code) => (Some(*code as i64), None),
        Ok(code) => (
            Some(*code as i64),
            Some(format!("the receiver answered {code}")),
        ),
        Err(e) => (None, Some(e.clone())),
    };
    let outcome = if error.is_none() {
        Outcome::Delivered
    } else {
        let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), -0.25..0.25);
        let next = started + backoff_ms(policy, d.attempts + 1, jitter);
        if next > d.created_at + policy.max_age_ms {
            Outcome::GiveUp
        } else {
            Outcome::RetryAt(next)
        }
    };
    match &outcome {
        Outcome::Delivered => tracing::info!(event = %d.id, %url, "webhook delivered"),
        Outcome::RetryAt(t) => {
            tracing::warn!(event = %d.id, %url, error = ?error, retry_in_ms = t - started, "webhook failed; will retry")
        }
        Outcome::GiveUp => {
            tracing::error!(event = %d.id, %url, error = ?error, "webhook failed for good")
        }
    }
    let mut tx = db.begin().await?;
    rows::finish_attempt(
        &mut tx,
        &Attempt {
            event_id: &d.id,
            at: started,
            url: &url,
            status_code,
            error: error.as_deref(),
            duration_ms,
        },
        &outcome,
    )
    .await?;
    tx.commit().await?;
    Ok(Delivery::Recorded)
}

/// One POST; the status code, or why there was none.
async fn post(policy: &WebhookPolicy, d: &DueRow, raw_url: &str) -> Result<u16, String> {
    if raw_url.is_empty() {
        return Err("the integrator has no webhook URL any more".into());
    }
    let url = check_url(raw_url, policy.allow_private)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    // Resolve once, check every address, and connect to the checked one, so
    // a name cannot resolve to something else between check and connect.
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let Some(addr) = addrs.first().copied() else {
        return Err(format!("{host} has no address"));
    };
    if !policy.allow_private {
        if let Some(bad) = addrs.iter().find(|a| is_private(a.ip())) {
            return Err(format!(
                "refused: {host} resolves to the private address {}",
                bad.ip()
            ));
        }
    }
    let secret = d.webhook_secret.as_deref().unwrap_or_default();
    let ts = now_ms() / 1000;
    let signature = sign(secret, &d.id, ts, &d.payload).map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(policy.timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&host, addr)
        .user_agent(concat!("kycdesk-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let mut req = client.post(url);
    // The integrator's own headers (e.g. Authorization); names and values
    // were checked when configured, the signature headers cannot be among them.
    let extra: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&d.webhook_headers)
            .map_err(|e| format!("the integrator's stored webhook headers do not decode: {e}"))?;
    if !extra.keys().any(|k| k.eq_ignore_ascii_case("content-type")) {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in &extra {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req
        .header("webhook-id", &d.id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(d.payload.clone())
        .send()
        .await
        .map_err(|e| error_chain(&e))?;
    Ok(resp.status().as_u16())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_reference_vector() {
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn backoff_doubles_is_capped_and_spans_about_three_days() {
        let p = WebhookPolicy::default();
        assert_eq!(backoff_ms(&p, 1, 0.0), 5_000);
        assert_eq!(backoff_ms(&p, 2, 0.0), 10_000);
        assert_eq!(backoff_ms(&p, 30, 0.0), p.max_delay_ms);
        assert_eq!(backoff_ms(&p, 1, 0.25), 6_250);
        // Attempts until the schedule passes the three-day horizon.
        let (mut t, mut n) = (0i64, 0i64);
        while t <= p.max_age_ms {
            n += 1;
            t += backoff_ms(&p, n, 0.0);
        }
        assert!((15..40).contains(&n), "{n} attempts");
        assert!(t > 70 * 3_600_000, "{t}");
    }

    #[test]
    fn private_targets_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                is_private(ip.parse().unwrap_or_else(|e| panic!("{e}"))),
                "{ip}"
            );
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"] {
            assert!(
                !is_private(ip.parse().unwrap_or_else(|e| panic!("{e}"))),
                "{ip}"
            );
        }
        assert!(check_url("http://localhost:9/x", false).is_err());
        assert!(check_url("http://127.0.0.1:9/x", false).is_err());
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_url("ftp://example.com/", true).is_err());
        assert!(check_url("https://hooks.example.com/kyc", false).is_ok());
    }
}
