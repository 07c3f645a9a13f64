//! Everything the desk's case page shows of one case, read together.
//!
//! Why: the page read its case in thirteen statements, one at a time. On
//! SQLite each statement is a hop to a reader connection's worker thread
//! and back, and the hops, not the reads, were most of the page's cost.
//! Here every read names the case as `$1` and they go as one query (see
//! `batch::fetch_by_key`); each statement's rows are decoded once, into
//! the same types the single reads return.

use super::audit::{self, Entry};
use super::contacts::{self, TimelineRow};
use super::processes::{self, EvidenceRow, FieldEditRow, NoteRow, ProcessRow};
use super::proposals::{self, Proposal};
use super::qa::{self, QaRow};
use super::retakes::{self, Replaced, Retake};
use super::{batch, Db};
use crate::domain::State;
use sqlx::any::AnyRow;
use sqlx::FromRow;
use std::sync::LazyLock;

pub struct CaseFile {
    pub process: ProcessRow,
    pub evidence: Vec<EvidenceRow>,
    pub edits: Vec<FieldEditRow>,
    pub notes: Vec<NoteRow>,
    /// The history's audit entries, newest first (no views or downloads).
    pub trail: Vec<Entry>,
    pub replaced: Vec<Replaced>,
    pub open_retake: Option<Retake>,
    pub proposals: Vec<Proposal>,
    pub qa: Option<QaRow>,
    /// The applicant's verifications; empty when the case has no contact.
    pub timeline: Vec<TimelineRow>,
    later: Option<String>,
    earlier: Option<String>,
}

impl CaseFile {
    /// The case after this one in its queue's order (the desk's `j`):
    /// oldest first for open states, newest first for final ones.
    pub fn next(&self, state: State) -> Option<&str> {
        if state.oldest_first() {
            self.later.as_deref()
        } else {
            self.earlier.as_deref()
        }
    }

    /// The case before this one in its queue's order (`k`).
    pub fn previous(&self, state: State) -> Option<&str> {
        if state.oldest_first() {
            self.earlier.as_deref()
        } else {
            self.later.as_deref()
        }
    }
}

/// The reads, in the order `load` decodes them.
static READS: LazyLock<Vec<String>> = LazyLock::new(|| {
    vec![
        processes::get_sql(),
        processes::EVIDENCE_FOR.into(),
        processes::FIELD_EDITS_FOR.into(),
        processes::NOTES_FOR.into(),
        audit::for_case_sql(),
        retakes::REPLACED_FOR.into(),
        retakes::open_sql(),
        proposals::all_for_sql(),
        qa::for_case_sql(),
        contacts::timeline_sql("(SELECT c.contact_id FROM processes c WHERE c.scan_id = $1)"),
        processes::NEIGHBOURS.into(),
    ]
});

/// The case and everything around it; `None` when there is no such case.
pub async fn load(db: &Db, scan_id: &str) -> Result<Option<CaseFile>, sqlx::Error> {
    let sqls: Vec<&str> = READS.iter().map(String::as_str).collect();
    let mut groups = batch::fetch_by_key(db.read(), db.backend, &sqls, scan_id)
        .await?
        .into_iter();
    // fetch_by_key answers exactly one group per read.
    let mut next = move || groups.next().unwrap_or_default();
    let Some(process) = first::<ProcessRow>(&next())? else {
        return Ok(None);
    };
    let evidence = all(&next())?;
    let edits = all(&next())?;
    let notes = all(&next())?;
    let trail = all(&next())?;
    let replaced = all(&next())?;
    let open_retake = retakes::decode_open(&next())?;
    let proposals = all(&next())?;
    let qa = first(&next())?;
    let timeline = all(&next())?;
    let (later, earlier) =
        first::<(Option<String>, Option<String>)>(&next())?.unwrap_or((None, None));
    Ok(Some(CaseFile {
        process,
        evidence,
        edits,
        notes,
        trail,
        replaced,
        open_retake,
        proposals,
        qa,
        timeline,
        later,
        earlier,
    }))
}

fn all<T: for<'r> FromRow<'r, AnyRow>>(rows: &[AnyRow]) -> Result<Vec<T>, sqlx::Error> {
    rows.iter().map(T::from_row).collect()
}

fn first<T: for<'r> FromRow<'r, AnyRow>>(rows: &[AnyRow]) -> Result<Option<T>, sqlx::Error> {
    rows.first().map(T::from_row).transpose()
}
