//! SQLite reads run on the calling thread (rusqlite) instead of a sqlx
//! connection's worker thread.
//!
//! sqlx runs every SQLite connection on a thread of its own: a statement is
//! a message to that thread, a wake-up, and the rows sent back one by one.
//! Under getVerificationProcessData at 1M cases (16 connections, perf) a
//! third of `serve`'s samples were those hand-offs (futex waits and wakes,
//! context switches), against about 2 % for SQLite's own work: the read is
//! one primary-key lookup in pages the OS already caches, tens of
//! microseconds. Such a read now runs where the request runs, on a
//! connection taken from a small idle list. It blocks that HTTP worker for
//! as long as the read takes, which is the trade: only short, indexed
//! point reads belong here, never a scan or a search.
//!
//! Connections are opened on demand (one per thread reading at once: the
//! HTTP workers, in practice) and kept idle for the next read; each keeps
//! the readers' settings (`query_only`, a 1 MB page cache; see
//! `sqlite_setup`).

use std::sync::Mutex;

/// Reads on the caller's thread, for one SQLite database file.
pub struct Inline {
    path: String,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl std::fmt::Debug for Inline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inline").field("path", &self.path).finish()
    }
}

/// A rusqlite failure as the store's error type.
fn error(e: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::AnyDriverError(Box::new(e))
}

impl Inline {
    pub fn new(path: String) -> Inline {
        Inline {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch(&format!(
            "PRAGMA busy_timeout = 10000; PRAGMA query_only = ON; PRAGMA cache_size = -{};",
            super::READER_CACHE_KIB
        ))?;
        Ok(conn)
    }

    /// Runs `f` on an idle connection (or a new one), then keeps the
    /// connection for the next read.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, sqlx::Error> {
        // A poisoned list only means a reader panicked while holding the
        // lock to push or pop; the list itself is intact.
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match taken {
            Some(c) => c,
            None => self.open().map_err(error)?,
        };
        let out = f(&conn).map_err(error);
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        out
    }
}
