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
use crate::store::rate_limits as rows;
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

/// One attempt's slot in a failure counter keyed by anything (a normalised
/// e-mail, an address). The slot is taken atomically *before* the
/// credentials are compared (`reserve`), so concurrent attempts cannot all
/// be evaluated against one stale count.
pub struct Attempt<'a> {
    key: &'a str,
    policy: &'a Policy,
    /// This attempt's place in the window (1 = the first).
    count: i64,
}

impl<'a> Attempt<'a> {
    /// Takes this attempt's slot; `Err` while the key is locked or its
    /// window has no slot left.
    pub async fn reserve(
        db: &Db,
        key: &'a str,
        policy: &'a Policy,
    ) -> Result<Result<Attempt<'a>, Limited>, sqlx::Error> {
        let now = now_ms();
        let t = rows::reserve_attempt(db.write(), key, now, policy.window_ms).await?;
        if t.locked_until > now {
            return Ok(Err(Limited {
                retry_after_ms: t.locked_until - now,
            }));
        }
        if t.failures > policy.max_failures {
            // Earlier attempts of this burst are still being compared; the
            // last of them to fail sets the lock.
            return Ok(Err(Limited {
                retry_after_ms: policy.lock_ms,
            }));
        }
        Ok(Ok(Attempt {
            key,
            policy,
            count: t.failures,
        }))
    }

    /// The attempt failed: the slot stays taken; the last allowed failure
    /// locks the key.
    pub async fn fail(self, db: &Db) -> Result<(), sqlx::Error> {
        if self.count >= self.policy.max_failures {
            let now = now_ms();
            rows::lock_throttle(db.write(), self.key, now + self.policy.lock_ms, now).await?;
        }
        Ok(())
    }

    pub async fn succeed(self, db: &Db) -> Result<(), sqlx::Error> {
        rows::clear_throttle(db.write(), self.key).await
    }

    /// Neither a success nor a failure: the slot is given back.
    pub async fn release(self, db: &Db) -> Result<(), sqlx::Error> {
        rows::release_attempt(db.write(), self.key).await
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
