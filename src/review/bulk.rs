//! Bulk actions on a queue selection (supervisors): assign to a desk user,
//! release claims, add a note. Each case is its own unit of work with its
//! own audit entry, so one case that cannot take the action (decided
//! meanwhile, claimed by someone else since) is reported and the others
//! still go through. There is deliberately no bulk accept or reject.

use super::{event, load, state_of, Actor, CaseError};
use crate::audit;
use crate::domain::now_ms;
use crate::store::processes as rows;
use crate::store::Db;

/// The most cases one bulk action takes (a few queue pages).
pub const MAX_CASES: usize = 500;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Give the claim to this desk user (validated by the caller: an
    /// active user's e-mail).
    Assign(String),
    Release,
    Note(String),
}

/// What happened to each selected case.
#[derive(Debug, Default)]
pub struct Outcome {
    pub done: Vec<String>,
    /// Cases left unchanged, with why.
    pub skipped: Vec<(String, String)>,
}

/// Checks the whole request before any case changes: a bad note or an
/// empty or oversized selection changes nothing.
pub fn check(cases: &[String], action: &Action) -> Result<(), CaseError> {
    if cases.is_empty() {
        return Err(CaseError::Invalid(
            "select at least one case (the boxes at the start of each row)".into(),
        ));
    }
    if cases.len() > MAX_CASES {
        return Err(CaseError::Invalid(format!(
            "select at most {MAX_CASES} cases at a time ({} selected)",
            cases.len()
        )));
    }
    if let Action::Note(body) = action {
        super::note_body(body)?;
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(cases = cases.len(), actor = %who.name))]
pub async fn apply(
    db: &Db,
    cases: &[String],
    action: &Action,
    who: &Actor,
) -> Result<Outcome, CaseError> {
    check(cases, action)?;
    let mut out = Outcome::default();
    let mut seen = std::collections::HashSet::new();
    for scan_id in cases {
        if !seen.insert(scan_id.as_str()) {
            continue;
        }
        let result = match action {
            Action::Assign(to) => assign(db, scan_id, to, who).await,
            Action::Release => release(db, scan_id, who).await,
            Action::Note(body) => super::add_note(db, scan_id, body, who).await,
        };
        match result {
            Ok(()) => out.done.push(scan_id.clone()),
            Err(CaseError::Internal(e)) => return Err(CaseError::Internal(e)),
            Err(e) => out.skipped.push((scan_id.clone(), e.to_string())),
        }
    }
    Ok(out)
}

async fn assign(db: &Db, scan_id: &str, to: &str, who: &Actor) -> Result<(), CaseError> {
    let p = load(db, scan_id).await?;
    if state_of(&p)?.is_final() {
        return Err(CaseError::Conflict("it is final".into()));
    }
    if p.claimed_by.as_deref() == Some(to) {
        return Err(CaseError::Conflict(format!("{to} already holds it")));
    }
    let mut work = audit::Work::begin(db).await?;
    if rows::assign(&mut work.tx, scan_id, to, now_ms()).await? == 0 {
        return Err(CaseError::Conflict("it was decided meanwhile".into()));
    }
    work.commit(event(
        who,
        "case.assign",
        scan_id,
        serde_json::json!({"from": p.claimed_by, "to": to, "bulk": true}),
    ))
    .await?;
    Ok(())
}

async fn release(db: &Db, scan_id: &str, who: &Actor) -> Result<(), CaseError> {
    let p = load(db, scan_id).await?;
    let Some(holder) = p.claimed_by else {
        return Err(CaseError::Conflict("nobody holds it".into()));
    };
    let mut work = audit::Work::begin(db).await?;
    if rows::release_held(&mut work.tx, scan_id, &holder).await? == 0 {
        return Err(CaseError::Conflict(
            "its claim changed meanwhile; reload and select it again".into(),
        ));
    }
    work.commit(event(
        who,
        "case.release",
        scan_id,
        serde_json::json!({"holder": holder, "bulk": true}),
    ))
    .await?;
    Ok(())
}
