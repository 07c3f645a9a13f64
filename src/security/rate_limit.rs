//! The one rate limiter: every limit kycdesk enforces lives in the
//! database (so it holds across app servers and restarts) and is taken in
//! one atomic statement *before* the work it guards.
//!
//! - `Attempt`: a failure counter. `max_failures` failures within the
//!   window lock the key for `lock_ms` (desk login per e-mail, the API
//!   token endpoint per address).
//! - `one_per_window`: one call per window per key (the mobile verification
//!   and login endpoints per client and endpoint).

use crate::domain::now_ms;
use crate::store::rate_limits::{self as rows, Refusal};
use crate::store::Db;

#[derive(Debug, Clone)]
pub struct Policy {
    pub max_failures: i64,
    pub window_ms: i64,
    pub lock_ms: i64,
}

impl Default for Policy {
    /// The desk login's: five failures in 15 minutes lock for 15 minutes.
    fn default() -> Self {
        Policy {
            max_failures: 5,
            window_ms: 15 * 60_000,
            lock_ms: 15 * 60_000,
        }
    }
}

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_ms: i64,
}

impl Limited {
    /// Whole seconds, rounded up (never 0: `Retry-After: 0` invites a loop).
    pub fn retry_after_secs(self) -> i64 {
        ((self.retry_after_ms + 999) / 1000).max(1)
    }

    pub fn retry_after_minutes(self) -> i64 {
        ((self.retry_after_ms + 59_999) / 60_000).max(1)
    }
}

/// How long a reservation waits for a slot held by attempts still being
/// evaluated before it is refused (they take milliseconds; this only bites
/// when something is stuck).
const FULL_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// One attempt's slot in a failure counter keyed by anything (a normalised
/// e-mail, an address). The slot is taken atomically *before* the
/// credentials are compared (`reserve`): failures plus attempts in flight
/// never exceed `max_failures`, so a concurrent burst of wrong guesses has
/// at most that many compared. Attempts that succeed give their slot back,
/// so a burst of correct credentials waits a few milliseconds for a slot
/// instead of being refused for its own concurrency.
pub struct Attempt<'a> {
    key: &'a str,
    policy: &'a Policy,
}

impl<'a> Attempt<'a> {
    /// Takes this attempt's slot; `Err` while the key is locked (or no slot
    /// came free within `FULL_WAIT`).
    pub async fn reserve(
        db: &Db,
        key: &'a str,
        policy: &'a Policy,
    ) -> Result<Result<Attempt<'a>, Limited>, sqlx::Error> {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            let now = now_ms();
            match rows::reserve_attempt(db.write(), key, now, policy.window_ms, policy.max_failures)
                .await?
            {
                Ok(()) => return Ok(Ok(Attempt { key, policy })),
                Err(Refusal::Locked(until)) => {
                    return Ok(Err(Limited {
                        retry_after_ms: until - now,
                    }))
                }
                Err(Refusal::Full) if started.elapsed() >= FULL_WAIT => {
                    return Ok(Err(Limited {
                        retry_after_ms: 1000,
                    }))
                }
                Err(Refusal::Full) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(20));
                }
            }
        }
    }

    /// The attempt failed: the slot becomes a counted failure; the failure
    /// that reaches the limit locks the key.
    pub async fn fail(self, db: &Db) -> Result<(), sqlx::Error> {
        rows::record_failure(
            db.write(),
            self.key,
            now_ms(),
            self.policy.max_failures,
            self.policy.lock_ms,
        )
        .await
    }

    /// The attempt used up its slot (a code sent under a daily cap): it
    /// counts as failures do.
    pub async fn spend(self, db: &Db) -> Result<(), sqlx::Error> {
        self.fail(db).await
    }

    /// The right password: the slot is given back and earlier failures of
    /// this key are forgotten.
    pub async fn succeed(self, db: &Db) -> Result<(), sqlx::Error> {
        rows::release_attempt(db.write(), self.key, true).await
    }

    /// Neither a failure nor proof of the key's owner (a disabled
    /// integrator, a token issued to an address shared by others): the slot
    /// is given back, earlier failures stay counted.
    pub async fn release(self, db: &Db) -> Result<(), sqlx::Error> {
        rows::release_attempt(db.write(), self.key, false).await
    }
}

/// Refuses a second call with the same key within `window_ms` (0 switches
/// the limit off).
pub async fn one_per_window(
    db: &Db,
    key: &str,
    window_ms: i64,
) -> Result<Result<(), Limited>, sqlx::Error> {
    if window_ms <= 0 {
        return Ok(Ok(()));
    }
    let now = now_ms();
    Ok(
        match rows::take_rate_window(db.write(), key, now, window_ms).await? {
            None => Ok(()),
            Some(last) => Err(Limited {
                retry_after_ms: (last + window_ms - now).max(1),
            }),
        },
    )
}
