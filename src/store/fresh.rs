//! Rows a request checks every time (an integrator behind an API token, a
//! desk session) kept in memory for a short, stated while.
//!
//! Correctness rests on two rules. A change made on this instance calls
//! `changed` after it commits, which ends every cached row at once. A row
//! is stored under the generation read *before* the row was read, so a row
//! read while a change commits is never served after `changed`. Another app
//! server sharing the database sees the change within the cache's TTL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct FreshCache<V> {
    ttl: Duration,
    /// Past this many rows the cache starts over (bounded memory).
    max: usize,
    generation: AtomicU64,
    rows: Mutex<HashMap<String, (Instant, u64, V)>>,
}

impl<V: Clone> FreshCache<V> {
    pub fn new(ttl: Duration, max: usize) -> Self {
        FreshCache {
            ttl,
            max,
            generation: AtomicU64::new(0),
            rows: Mutex::new(HashMap::new()),
        }
    }

    /// Read before reading the row from the database; pass it to `put`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The row, when it was read within the TTL and no change came since.
    pub fn get(&self, key: &str) -> Option<V> {
        let generation = self.generation();
        self.rows
            .lock()
            .ok()?
            .get(key)
            .filter(|(at, g, _)| *g == generation && at.elapsed() < self.ttl)
            .map(|(_, _, v)| v.clone())
    }

    pub fn put(&self, key: &str, generation: u64, value: V) {
        if let Ok(mut m) = self.rows.lock() {
            if m.len() >= self.max {
                m.clear();
            }
            m.insert(key.to_string(), (Instant::now(), generation, value));
        }
    }

    /// Changes the cached row in place, keeping when and under which
    /// generation it was read (for this instance's own writes to it).
    pub fn update(&self, key: &str, f: impl FnOnce(&mut V)) {
        if let Ok(mut m) = self.rows.lock() {
            if let Some((_, _, v)) = m.get_mut(key) {
                f(v);
            }
        }
    }

    /// The cached row, or `read`'s answer cached under the generation taken
    /// before reading (a missing row is not cached: the next request reads
    /// again, so a row created meanwhile is found at once).
    pub async fn read_through<E, F>(&self, key: &str, read: F) -> Result<Option<V>, E>
    where
        F: std::future::Future<Output = Result<Option<V>, E>>,
    {
        let generation = self.generation();
        if let Some(row) = self.get(key) {
            return Ok(Some(row));
        }
        let row = read.await?;
        if let Some(r) = &row {
            self.put(key, generation, r.clone());
        }
        Ok(row)
    }

    /// Ends every cached row: called after a change is committed.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_ends_rows_read_before_it() {
        let c = FreshCache::new(Duration::from_secs(60), 10);
        let g = c.generation();
        c.put("a", g, 1);
        assert_eq!(c.get("a"), Some(1));
        c.changed();
        assert_eq!(c.get("a"), None);
        // A row read while the change committed (old generation) stays out.
        c.put("a", g, 1);
        assert_eq!(c.get("a"), None);
        c.put("a", c.generation(), 2);
        assert_eq!(c.get("a"), Some(2));
    }

    #[test]
    fn rows_expire_after_the_ttl() {
        let c = FreshCache::new(Duration::from_millis(20), 10);
        c.put("a", c.generation(), 1);
        assert_eq!(c.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(c.get("a"), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let c = FreshCache::new(Duration::from_secs(60), 2);
        let g = c.generation();
        c.put("a", g, 1);
        c.put("b", g, 2);
        c.put("c", g, 3);
        assert_eq!(c.get("a"), None);
        assert_eq!(c.get("c"), Some(3));
    }

    #[tokio::test]
    async fn read_through_caches_found_rows_only_under_the_earlier_generation() {
        let c = FreshCache::new(Duration::from_secs(60), 10);
        let none: Result<Option<i32>, ()> = c.read_through("a", async { Ok(None) }).await;
        assert_eq!(none, Ok(None));
        assert_eq!(c.get("a"), None, "a missing row is not cached");
        let read = c.read_through("a", async { Ok::<_, ()>(Some(1)) }).await;
        assert_eq!(read, Ok(Some(1)));
        // Served from the cache: the read is not awaited.
        let cached = c
            .read_through("a", async { Err::<Option<i32>, ()>(()) })
            .await;
        assert_eq!(cached, Ok(Some(1)));
        // A change committing while the row is read keeps it out.
        let raced = c
            .read_through("b", async {
                c.changed();
                Ok::<_, ()>(Some(2))
            })
            .await;
        assert_eq!(raced, Ok(Some(2)));
        assert_eq!(c.get("b"), None);
    }

    #[test]
    fn update_keeps_the_generation() {
        let c = FreshCache::new(Duration::from_secs(60), 10);
        let g = c.generation();
        c.put("a", g, 1);
        c.update("a", |v| *v = 5);
        assert_eq!(c.get("a"), Some(5));
        c.changed();
        c.update("a", |v| *v = 6);
        assert_eq!(c.get("a"), None);
    }
}
