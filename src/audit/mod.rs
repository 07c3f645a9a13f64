//! The append-only audit log. Every entry carries the SHA-256 of the previous
//! one, so removing or editing any entry breaks every hash after it and
//! `kycdesk audit verify` names the first broken entry.

use crate::store::{audit as rows, Backend, Batch, Db, Tx};
use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, by whom, from where. `detail` never holds secrets.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub scan_id: Option<&'a str>,
    pub client_addr: &'a str,
    pub detail: serde_json::Value,
}

pub use crate::store::audit::Entry;

/// The hash over a canonical JSON array of every field but the hash itself.
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    scan_id: Option<&str>,
    client_addr: &str,
    detail: &str,
    prev_hash: &str,
) -> String {
    let canonical = serde_json::json!([
        seq,
        at,
        actor,
        action,
        scan_id,
        client_addr,
        detail,
        prev_hash
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Appends inside the caller's transaction, so the entry lands exactly when
/// the change it records does.
async fn record(
    db: &Db,
    tx: &mut Tx,
    e: Event<'_>,
    head: Option<rows::Head>,
) -> Result<(), sqlx::Error> {
    let entry = next_entry(db, tx, e, head).await?;
    rows::insert(tx, &entry).await
}

/// The entry that follows the chain's last one: `head` when this
/// transaction already read it (SQLite), otherwise read here after taking
/// the audit lock (PostgreSQL), so the entry must be inserted in this same
/// transaction.
async fn next_entry(
    db: &Db,
    tx: &mut Tx,
    e: Event<'_>,
    head: Option<rows::Head>,
) -> Result<Entry, sqlx::Error> {
    let head = match head {
        Some(h) if db.backend == Backend::Sqlite => h,
        _ => {
            db.lock_audit(tx).await?;
            rows::last(tx).await?
        }
    };
    let (prev_seq, prev_hash) = head.unwrap_or((0, GENESIS.to_string()));
    let seq = prev_seq + 1;
    let at = crate::domain::now_ms();
    let detail = e.detail.to_string();
    let hash = entry_hash(
        seq,
        at,
        e.actor,
        e.action,
        e.scan_id,
        e.client_addr,
        &detail,
        &prev_hash,
    );
    Ok(Entry {
        seq,
        at,
        actor: e.actor.into(),
        action: e.action.into(),
        scan_id: e.scan_id.map(str::to_string),
        client_addr: e.client_addr.into(),
        detail,
        prev_hash,
        hash,
    })
}

/// Records an event that changes nothing else (logins, views, downloads)
/// and returns once it is committed.
///
/// Why grouped: each such event was a transaction of its own, and on
/// SQLite a transaction is four hops to the single writer (begin, read the
/// chain's last entry, insert, commit), so every case page view held the
/// writer four times. Here the events that arrive while one group is
/// being written wait for the next: whoever gets the turn appends all
/// queued events in one transaction (group commit), and every caller
/// still returns only after its own entry is committed, or with the
/// error that stopped it.
pub async fn record_now(db: &Db, e: Event<'_>) -> Result<(), sqlx::Error> {
    let (done, mut answer) = tokio::sync::oneshot::channel();
    let pending = rows::Pending {
        actor: e.actor.into(),
        action: e.action.into(),
        scan_id: e.scan_id.map(str::to_string),
        client_addr: e.client_addr.into(),
        detail: e.detail.to_string(),
        done,
    };
    lock(&db.appends.queue)?.push(pending);
    let turn = db.appends.turn.lock().await;
    // The group before ours may have carried our event.
    if let Ok(result) = answer.try_recv() {
        return result.map_err(sqlx::Error::Protocol);
    }
    let group = std::mem::take(&mut *lock(&db.appends.queue)?);
    // Written by a task of its own: a caller that goes away mid-write
    // (a closed connection drops its request) must not abandon the others'
    // events half way.
    let writer = tokio::spawn(append_group(db.clone(), group));
    let written = writer.await;
    drop(turn);
    if let Err(e) = written {
        return Err(sqlx::Error::Protocol(format!(
            "the audit writer failed: {e}"
        )));
    }
    match answer.await {
        Ok(result) => result.map_err(sqlx::Error::Protocol),
        Err(_) => Err(sqlx::Error::Protocol(
            "the audit entry was not written".into(),
        )),
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, sqlx::Error> {
    m.lock()
        .map_err(|_| sqlx::Error::Protocol("the audit queue is poisoned".into()))
}

/// Appends `group` in one transaction and tells each waiter the outcome.
async fn append_group(db: Db, group: Vec<rows::Pending>) {
    let written = write_group(&db, &group).await.map_err(|e| e.to_string());
    if let Err(e) = &written {
        tracing::error!(error = %e, events = group.len(), "audit entries not written");
    }
    for p in group {
        // A waiter that went away needs no answer.
        let _ = p.done.send(written.clone());
    }
}

async fn write_group(db: &Db, group: &[rows::Pending]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    db.lock_audit(&mut tx).await?;
    let (mut seq, mut prev_hash) = rows::last(&mut tx)
        .await?
        .unwrap_or((0, GENESIS.to_string()));
    let mut entries = Vec::with_capacity(group.len());
    for p in group {
        seq += 1;
        let at = crate::domain::now_ms();
        let hash = entry_hash(
            seq,
            at,
            &p.actor,
            &p.action,
            p.scan_id.as_deref(),
            &p.client_addr,
            &p.detail,
            &prev_hash,
        );
        let entry = Entry {
            seq,
            at,
            actor: p.actor.clone(),
            action: p.action.clone(),
            scan_id: p.scan_id.clone(),
            client_addr: p.client_addr.clone(),
            detail: p.detail.clone(),
            prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
        };
        entries.push(entry);
    }
    let mut batch = Batch::default();
    batch.extend(rows::insert_many_stmts(&entries));
    batch.execute(&mut tx, db.backend).await?;
    tx.commit().await
}

/// A unit of work: one change and its audit entry, committed together or
/// not at all. The change is written through `tx`; `commit` appends the
/// entry and commits. Dropped without `commit` (an early `?` or `return`),
/// everything rolls back and nothing is recorded.
pub struct Work<'a> {
    db: &'a Db,
    pub tx: Tx,
    recorded: usize,
    /// The chain's head as a statement of this transaction read it, for
    /// the next entry only (see `head_read`).
    head: Option<rows::Head>,
}

impl<'a> Work<'a> {
    pub async fn begin(db: &'a Db) -> Result<Work<'a>, sqlx::Error> {
        Ok(Work {
            db,
            tx: db.begin().await?,
            recorded: 0,
            head: None,
        })
    }

    /// A unit of work on a transaction begun elsewhere (with its first
    /// statement, see `store::processes::begin_transition`).
    pub fn on(db: &'a Db, tx: Tx) -> Work<'a> {
        Work {
            db,
            tx,
            recorded: 0,
            head: None,
        }
    }

    /// The chain's head, read by a statement of this transaction that
    /// changed something else (on SQLite, whose single writer already
    /// holds the chain still), so the next entry is built on it without a
    /// read of its own. A head gone stale cannot fork the chain: an
    /// entry's seq is the table's primary key, so an entry built on an old
    /// head collides with the one after it and the transaction fails.
    pub fn head_read(&mut self, head: rows::Head) {
        self.head = Some(head);
    }

    /// Appends an entry without committing (a change that records more
    /// than one event).
    pub async fn record(&mut self, e: Event<'_>) -> Result<(), sqlx::Error> {
        record(self.db, &mut self.tx, e, self.head.take()).await?;
        self.recorded += 1;
        Ok(())
    }

    /// Writes `batch` and appends the entry for it, in one round trip on
    /// SQLite (see `store::batch`). On PostgreSQL the batch runs first and
    /// the audit lock is taken after it, the lock order every writer keeps.
    pub async fn record_batch(
        &mut self,
        mut batch: Batch,
        e: Event<'_>,
    ) -> Result<(), sqlx::Error> {
        match self.db.backend {
            Backend::Sqlite => {
                let entry = next_entry(self.db, &mut self.tx, e, self.head.take()).await?;
                batch.push(rows::insert_stmt(&entry));
                batch.execute(&mut self.tx, self.db.backend).await?;
            }
            Backend::Postgres => {
                batch.execute(&mut self.tx, self.db.backend).await?;
                record(self.db, &mut self.tx, e, self.head.take()).await?;
            }
        }
        self.recorded += 1;
        Ok(())
    }

    /// Writes `batch`, appends the entry for it and commits: on SQLite
    /// one round trip for all three (see `store::writer::Tx::commit_with`).
    pub async fn commit_batch(mut self, mut batch: Batch, e: Event<'_>) -> Result<(), sqlx::Error> {
        match self.db.backend {
            Backend::Sqlite => {
                let entry = next_entry(self.db, &mut self.tx, e, self.head.take()).await?;
                batch.push(rows::insert_stmt(&entry));
                self.tx.commit_with(batch).await
            }
            Backend::Postgres => {
                self.record_batch(batch, e).await?;
                self.commit_recorded().await
            }
        }
    }

    /// Commits a change whose entries were appended with `record` (a change
    /// that must do more after its entry, such as placing blobs, before it
    /// commits). Refuses a unit of work that recorded nothing.
    pub async fn commit_recorded(self) -> Result<(), sqlx::Error> {
        if self.recorded == 0 {
            return Err(sqlx::Error::Protocol(
                "a unit of work tried to commit without an audit entry".into(),
            ));
        }
        self.tx.commit().await
    }

    /// Appends the change's entry, then commits both (on SQLite in one
    /// round trip).
    pub async fn commit(self, e: Event<'_>) -> Result<(), sqlx::Error> {
        self.commit_batch(Batch::default(), e).await
    }
}

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Intact { entries: u64 },
    Broken { seq: i64, reason: String },
}

/// Re-computes the whole chain in batches (memory stays flat at any size).
pub async fn verify(db: &Db) -> Result<Verdict, sqlx::Error> {
    let mut prev_hash = GENESIS.to_string();
    let mut expected_seq = 1i64;
    let mut count = 0u64;
    loop {
        let batch = rows::batch_after(db.read(), expected_seq - 1, 5_000).await?;
        if batch.is_empty() {
            return Ok(Verdict::Intact { entries: count });
        }
        for e in batch {
            if e.seq != expected_seq {
                return Ok(Verdict::Broken {
                    seq: expected_seq,
                    reason: format!("entry {expected_seq} is missing (next is {})", e.seq),
                });
            }
            if e.prev_hash != prev_hash {
                return Ok(Verdict::Broken {
                    seq: e.seq,
                    reason: "its previous-hash link does not match the entry before it".into(),
                });
            }
            let want = entry_hash(
                e.seq,
                e.at,
                &e.actor,
                &e.action,
                e.scan_id.as_deref(),
                &e.client_addr,
                &e.detail,
                &e.prev_hash,
            );
            if want != e.hash {
                return Ok(Verdict::Broken {
                    seq: e.seq,
                    reason: "its content does not match its hash".into(),
                });
            }
            prev_hash = e.hash;
            expected_seq += 1;
            count += 1;
        }
    }
}
