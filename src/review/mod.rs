//! Review operations on a case — claim, edit personal data, note, decide —
//! shared by the desk and (later) the integrator API, so both go through the
//! same validation, transactions and audit entries.

use crate::audit::{self, Event};
use crate::config::Settings;
use crate::domain::validation::{self, failing_key};
use crate::domain::{now_ms, Document, State};
use crate::evidence::upload::StoredEvidence;
use crate::evidence::{BlobStore, StagedBlob};
use crate::store::processes::{
    self as rows, DecisionRow, FieldEditRow, ForDecision, NoteRow, ProcessRow, Transition,
};
use crate::store::{Backend, Batch, Db};
use std::collections::BTreeMap;

pub mod bulk;
pub mod four_eyes;
pub mod qa;
pub mod retake;

/// Places the blobs a transaction's rows refer to, then commits; with
/// `last`, writes that batch and its audit entry first. Placing comes
/// after the audit entry, so every transaction takes its locks in the same
/// order (blob locks last). On SQLite, where placing takes no lock (the
/// held writer is the lock), the blobs are placed before `last`, so that
/// the batch, its entry and COMMIT go to the writer in one round trip. If
/// anything fails, the placed bytes are forgotten again: nothing refers to
/// them.
async fn commit_with_blobs(
    db: &Db,
    blobs: &BlobStore,
    mut work: audit::Work<'_>,
    last: Option<(Batch, Event<'_>)>,
    staged: Vec<StagedBlob>,
) -> Result<(), CaseError> {
    let shas: Vec<String> = staged.iter().map(|b| b.sha256.clone()).collect();
    let result = async {
        match (db.backend, last) {
            (Backend::Sqlite, Some((batch, e))) => {
                for b in staged {
                    blobs.place(db, &mut work.tx, b).await?;
                }
                work.commit_batch(batch, e).await
            }
            (_, last) => {
                if let Some((batch, e)) = last {
                    work.record_batch(batch, e).await?;
                }
                for b in staged {
                    blobs.place(db, &mut work.tx, b).await?;
                }
                work.commit_recorded().await
            }
        }
    }
    .await;
    if let Err(e) = result {
        for sha in &shas {
            crate::evidence::forget(db, blobs, None, sha).await;
        }
        return Err(e.into());
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("no such case")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    /// A per-process ceiling was reached (uploads).
    #[error("{0}")]
    Limit(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for CaseError {
    fn from(e: sqlx::Error) -> Self {
        CaseError::Internal(e.into())
    }
}

/// Who is acting and from where, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub client_addr: String,
}

/// A claim lapses after `idle_ms` without activity by its holder.
pub fn claim_is_live(
    claimed_by: Option<&str>,
    claimed_at: Option<i64>,
    now: i64,
    idle_ms: i64,
) -> bool {
    claimed_by.is_some() && claimed_at.is_some_and(|t| t > now - idle_ms)
}

async fn load(db: &Db, scan_id: &str) -> Result<ProcessRow, CaseError> {
    rows::get(db.read(), scan_id)
        .await?
        .ok_or(CaseError::NotFound)
}

/// A guarded write that changed no row lost a race: the conflict says
/// what to do next.
fn changed_or(rows: u64, conflict: &str) -> Result<(), CaseError> {
    if rows == 0 {
        return Err(CaseError::Conflict(conflict.into()));
    }
    Ok(())
}

fn state_of(p: &ProcessRow) -> Result<State, CaseError> {
    p.state()
        .map_err(|e| CaseError::Internal(anyhow::anyhow!("stored process {}: {e}", p.scan_id)))
}

/// The caller must hold a live claim before changing a case on the desk.
fn require_claim(p: &ProcessRow, who: &str, s: &Settings) -> Result<(), CaseError> {
    let now = now_ms();
    match &p.claimed_by {
        Some(holder)
            if claim_is_live(
                p.claimed_by.as_deref(),
                p.claimed_at,
                now,
                crate::domain::ms(s.claim_idle),
            ) && holder == who =>
        {
            Ok(())
        }
        Some(holder)
            if claim_is_live(
                p.claimed_by.as_deref(),
                p.claimed_at,
                now,
                crate::domain::ms(s.claim_idle),
            ) =>
        {
            Err(CaseError::Conflict(format!(
                "{holder} is working on this case; ask a supervisor to release it"
            )))
        }
        _ => Err(CaseError::Conflict(
            "claim the case before changing it".to_string(),
        )),
    }
}

#[tracing::instrument(skip_all, fields(scan_id = %scan_id, actor = %who.name))]
pub async fn claim(db: &Db, s: &Settings, scan_id: &str, who: &Actor) -> Result<(), CaseError> {
    let p = load(db, scan_id).await?;
    if state_of(&p)?.is_final() {
        return Err(CaseError::Conflict(
            "this case is final and cannot be claimed".into(),
        ));
    }
    let now = now_ms();
    let mut work = audit::Work::begin(db).await?;
    if rows::claim(
        &mut work.tx,
        scan_id,
        &who.name,
        now,
        now - crate::domain::ms(s.claim_idle),
    )
    .await?
        == 0
    {
        // The claim loaded above may be older than the one that won: name
        // the holder as the database has it now.
        let current = rows::claim_holder(&mut work.tx, scan_id).await?;
        work.tx.rollback().await?;
        return Err(match current {
            None => CaseError::NotFound,
            Some((_, st)) if st.parse::<State>().is_ok_and(|s| s.is_final()) => {
                CaseError::Conflict(format!(
                    "this case was decided meanwhile ({st}) and cannot be claimed"
                ))
            }
            Some((Some(holder), _)) => CaseError::Conflict(format!(
                "{holder} already holds this case; ask a supervisor to release it"
            )),
            Some((None, _)) => CaseError::Conflict(
                "the claim changed while you pressed it; press Claim again".into(),
            ),
        });
    }
    work.commit(event(who, "case.claim", scan_id, serde_json::json!({})))
        .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(scan_id = %scan_id, actor = %who.name))]
pub async fn release(db: &Db, scan_id: &str, who: &Actor) -> Result<(), CaseError> {
    let p = load(db, scan_id).await?;
    let mut work = audit::Work::begin(db).await?;
    rows::release(&mut work.tx, scan_id).await?;
    work.commit(event(
        who,
        "case.release",
        scan_id,
        serde_json::json!({"holder": p.claimed_by}),
    ))
    .await?;
    Ok(())
}

fn event<'a>(
    who: &'a Actor,
    action: &'a str,
    scan_id: &'a str,
    detail: serde_json::Value,
) -> Event<'a> {
    Event {
        actor: &who.name,
        action,
        scan_id: Some(scan_id),
        client_addr: &who.client_addr,
        detail,
    }
}

/// The front and selfie among a case's evidence, with their sizes.
pub fn images_of(ev: &[crate::store::processes::EvidenceRow]) -> validation::Images {
    let seen = |t: &str| match ev
        .iter()
        .find(|e| e.kind == "image" && e.evidence_type == t)
    {
        None => validation::Seen::Absent,
        Some(e) => match (e.width, e.height) {
            (Some(w), Some(h)) => validation::Seen::Sized(w as u32, h as u32),
            _ => validation::Seen::Present,
        },
    };
    validation::Images {
        front: seen("front"),
        selfie: seen("selfie"),
    }
}

/// Recomputes validations for a document, given which images exist.
#[tracing::instrument(skip_all, fields(scan_id = %scan_id))]
pub async fn validations_for(
    db: &Db,
    s: &Settings,
    scan_id: &str,
    doc: &Document,
) -> Result<BTreeMap<String, crate::domain::Validation>, CaseError> {
    let ev = rows::evidence_for(db.read(), scan_id).await?;
    Ok(validation::validate(
        doc,
        &images_of(&ev),
        chrono::Utc::now().date_naive(),
        &s.thresholds,
    ))
}

/// Applies `personalData` edits. Only fields that really change are written;
/// each change keeps the originally extracted value, who, when and why.
/// `expected_version` guards against overwriting an edit made meanwhile.
/// A `personalData` edit: field name → new value (empty clears it).
#[derive(Debug, Clone, Default)]
pub struct EditInput {
    pub expected_version: Option<i64>,
    pub changes: BTreeMap<String, String>,
    pub reason: String,
}

#[tracing::instrument(skip_all, fields(scan_id = %scan_id, actor = %who.name))]
pub async fn edit(
    db: &Db,
    s: &Settings,
    scan_id: &str,
    input: &EditInput,
    who: &Actor,
    channel: Channel,
) -> Result<usize, CaseError> {
    let reason = input.reason.trim();
    let (expected_version, changes) = (input.expected_version, &input.changes);
    if reason.is_empty() {
        return Err(CaseError::Invalid("give a reason for the change".into()));
    }
    let p = load(db, scan_id).await?;
    let state = state_of(&p)?;
    if state.is_final() {
        return Err(CaseError::Conflict(format!(
            "the case is {}: final cases cannot be changed",
            state.named()
        )));
    }
    if channel.needs_claim() {
        require_claim(&p, &who.name, s)?;
    }
    let version = expected_version.unwrap_or(p.version);
    if version != p.version {
        return Err(CaseError::Conflict(
            "the case changed since you opened it; reload to see the latest data".into(),
        ));
    }
    let Some(prepared) = prepare_edit(db, s, &p, changes).await? else {
        return Ok(0);
    };
    let now = now_ms();
    let mut work = audit::Work::begin(db).await?;
    write_edit(&mut work.tx, scan_id, version, &prepared, who, reason, now).await?;
    let applied = &prepared.applied;
    if channel.needs_claim() {
        rows::claim(
            &mut work.tx,
            scan_id,
            &who.name,
            now,
            now - crate::domain::ms(s.claim_idle),
        )
        .await?;
    }
    let fields: Vec<&str> = applied.iter().map(|(f, _, _)| f.as_str()).collect();
    work.commit(event(
        who,
        "case.edit",
        scan_id,
        serde_json::json!({"fields": fields, "reason": reason}),
    ))
    .await?;
    Ok(applied.len())
}

/// An edit computed against the case as loaded: the new document, its
/// validations and the (field, old, new) changes.
pub struct PreparedEdit {
    doc: Document,
    checks: BTreeMap<String, crate::domain::Validation>,
    validations: String,
    failing: String,
    applied: Vec<(String, Option<String>, Option<String>)>,
}

/// Applies `personalData` changes to a copy of the document; `None` when
/// nothing would change. Unknown field names are refused whole.
async fn prepare_edit(
    db: &Db,
    s: &Settings,
    p: &ProcessRow,
    changes: &BTreeMap<String, String>,
) -> Result<Option<PreparedEdit>, CaseError> {
    let mut doc = p.document().map_err(anyhow::Error::from)?;
    let mut applied = Vec::new();
    for (field, value) in changes {
        let new = Some(value.trim().to_string()).filter(|v| !v.is_empty());
        let slot = doc
            .personal_field_mut(field)
            .ok_or_else(|| CaseError::Invalid(format!("'{field}' is not a personalData field")))?;
        if *slot != new {
            if let Some(v) = &new {
                crate::domain::process::check_personal_value(field, v)
                    .map_err(CaseError::Invalid)?;
            }
            applied.push((field.clone(), slot.clone(), new.clone()));
            *slot = new;
        }
    }
    if applied.is_empty() {
        return Ok(None);
    }
    let v = validations_for(db, s, &p.scan_id, &doc).await?;
    Ok(Some(PreparedEdit {
        validations: serde_json::to_string(&v).map_err(anyhow::Error::from)?,
        failing: failing_key(&v),
        checks: v,
        doc,
        applied,
    }))
}

/// Writes a prepared edit inside the caller's transaction, guarded by the
/// version it was prepared against, with one history row per field that
/// keeps the originally extracted value.
async fn write_edit(
    tx: &mut crate::store::Tx,
    scan_id: &str,
    version: i64,
    e: &PreparedEdit,
    who: &Actor,
    reason: &str,
    now: i64,
) -> Result<(), CaseError> {
    changed_or(
        rows::update_document(
            tx,
            scan_id,
            version,
            &e.doc,
            &e.validations,
            &e.failing,
            now,
        )
        .await?,
        "the case changed since you opened it; reload to see the latest data",
    )?;
    for (field, old, new) in &e.applied {
        let original = match rows::original_value(tx, scan_id, field).await? {
            Some(first) => first,
            None => old.clone(),
        };
        rows::insert_field_edit(
            tx,
            &FieldEditRow {
                id: uuid::Uuid::new_v4().to_string(),
                scan_id: scan_id.into(),
                field: field.clone(),
                original_value: original,
                old_value: old.clone(),
                new_value: new.clone(),
                actor: who.name.clone(),
                reason: reason.into(),
                at: now,
            },
        )
        .await?;
    }
    Ok(())
}

/// A note's text, trimmed and checked.
fn note_body(body: &str) -> Result<&str, CaseError> {
    let body = body.trim();
    if body.is_empty() {
        return Err(CaseError::Invalid("the note is empty".into()));
    }
    if body.chars().count() > 4000 {
        return Err(CaseError::Invalid(
            "notes are limited to 4,000 characters".into(),
        ));
    }
    Ok(body)
}

#[tracing::instrument(skip_all, fields(scan_id = %scan_id, actor = %who.name))]
pub async fn add_note(db: &Db, scan_id: &str, body: &str, who: &Actor) -> Result<(), CaseError> {
    let body = note_body(body)?;
    load(db, scan_id).await?;
    let mut work = audit::Work::begin(db).await?;
    rows::insert_note(
        &mut work.tx,
        &NoteRow {
            id: uuid::Uuid::new_v4().to_string(),
            scan_id: scan_id.into(),
            author: who.name.clone(),
            body: body.into(),
            at: now_ms(),
        },
    )
    .await?;
    work.commit(event(who, "case.note", scan_id, serde_json::json!({})))
        .await?;
    Ok(())
}

pub use crate::domain::process::Decision;

/// Who asks for a review operation. The desk's agents must hold the case's
/// claim and reject with one of the configured reasons; integrators decide
/// over the API with no claim and a free-text reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Desk,
    Integrator,
    /// A second reviewer confirming or overturning a four-eyes proposal.
    SecondReview,
}

impl Channel {
    fn needs_claim(self) -> bool {
        self == Channel::Desk
    }

    fn reasons_are_configured(self) -> bool {
        self != Channel::Integrator
    }

    /// A reviewer who changed personal data before deciding says why, as
    /// for any edit; the API's `personalData` carries no reason.
    fn edits_need_reason(self) -> bool {
        self != Channel::Integrator
    }

    /// The desk's first decisions are subject to the four-eyes policy.
    fn under_policy(self) -> bool {
        self == Channel::Desk
    }
}

#[derive(Debug, Clone)]
pub struct DecisionInput {
    pub decision: Decision,
    pub expected_version: Option<i64>,
    pub reason: Option<String>,
    pub comment: Option<String>,
    /// `personalData` applied in the same transaction (accept / pending).
    pub changes: BTreeMap<String, String>,
    /// Why `changes` were made (the desk asks; the API sends none).
    pub edit_reason: Option<String>,
}

/// Decides a case in one transaction: state change (guarded by version and
/// state), decision record, state counters and audit entry. Of two racing
/// decisions exactly one commits; the other gets a conflict and nothing of it
/// is written.
#[tracing::instrument(skip_all, fields(scan_id = %case.process.scan_id, actor = %who.name))]
pub async fn decide(
    db: &Db,
    s: &Settings,
    blobs: &BlobStore,
    case: ForDecision,
    input: &DecisionInput,
    who: &Actor,
    channel: Channel,
) -> Result<State, CaseError> {
    decide_closing(db, s, blobs, case, input, who, channel, None).await
}

/// The case as `decide` reads it (see `store::processes::get_for_decision`):
/// the caller reads it first, so one that must look at it (the API checks
/// the case is its integrator's) reads it once. The decision is still
/// guarded by the version read here.
pub async fn load_for_decision(db: &Db, scan_id: &str) -> Result<ForDecision, CaseError> {
    rows::get_for_decision(db.read(), scan_id)
        .await?
        .ok_or(CaseError::NotFound)
}

/// `decide`, closing a four-eyes proposal in the same transaction when the
/// second reviewer is deciding.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn decide_closing(
    db: &Db,
    s: &Settings,
    blobs: &BlobStore,
    case: ForDecision,
    input: &DecisionInput,
    who: &Actor,
    channel: Channel,
    closing: Option<&four_eyes::Closing>,
) -> Result<State, CaseError> {
    // The SLA target was read with the case, before the writer is taken:
    // the breach flag counts the target as it was when the decision was made.
    let ForDecision {
        process: p,
        sla_hours,
        evidence,
    } = case;
    let scan_id = p.scan_id.as_str();
    let from = state_of(&p)?;
    if from.is_final() {
        return Err(CaseError::Conflict(format!(
            "{} already decided this case: it is already {}; final cases cannot be changed",
            p.agent.as_deref().unwrap_or("someone else"),
            from.named()
        )));
    }
    let to = from.after(input.decision).map_err(CaseError::Conflict)?;
    let reason = input
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let comment = input
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if input.decision == Decision::Reject {
        match reason {
            None => return Err(CaseError::Invalid("choose a rejection reason".into())),
            Some(r)
                if channel.reasons_are_configured() && !s.reject_reasons.iter().any(|x| x == r) =>
            {
                return Err(CaseError::Invalid(format!(
                    "'{r}' is not one of the configured rejection reasons"
                )))
            }
            _ => {}
        }
    }
    if channel.needs_claim() {
        require_claim(&p, &who.name, s)?;
    }
    if channel.under_policy() {
        if let Some(open) = crate::store::proposals::open(db.read(), scan_id).await? {
            return Err(CaseError::Conflict(format!(
                "{} proposed to {} this case; it waits for a second reviewer to confirm or overturn it",
                open.proposed_by, open.decision
            )));
        }
    }
    let mut version = input.expected_version.unwrap_or(p.version);
    let prepared = prepare_edit(db, s, &p, &input.changes).await?;
    let edit_reason = input
        .edit_reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if let (Some(e), None, true) = (&prepared, edit_reason, channel.edits_need_reason()) {
        let fields: Vec<&str> = e
            .applied
            .iter()
            .map(|(f, _, _)| crate::domain::process::field_label(f))
            .collect();
        return Err(CaseError::Invalid(format!(
            "You changed {} without saving. Enter a reason for the change to save it with \
             the decision, or undo the change.",
            fields.join(", ")
        )));
    }
    let now = now_ms();
    if channel.under_policy() && to.is_final() {
        let failing = match &prepared {
            Some(e) => !failing_key(&e.checks).is_empty(),
            None => !p.failing_validations.trim_matches(',').is_empty(),
        };
        let policy = crate::store::proposals::policy(db.read()).await?;
        if let Some(rule) = policy.rule_for(input.decision, &p.integrator_id, scan_id, failing) {
            let ask = four_eyes::Proposed {
                rule,
                reason,
                comment,
                edit_reason,
                version,
                now,
            };
            return four_eyes::propose(db, &p, input, prepared.as_ref(), &ask, who).await;
        }
    }
    // A final decision re-issues the report PDF with the decision on it.
    // It is rendered before the transaction and staged; only a commit places
    // it, so a decision that loses its race leaves no file.
    let report = if to.is_final() {
        let (doc, checks) = match &prepared {
            Some(e) => (e.doc.clone(), e.checks.clone()),
            None => (
                p.document().map_err(anyhow::Error::from)?,
                p.validations().map_err(anyhow::Error::from)?,
            ),
        };
        let line = crate::certify::DecisionLine {
            state: to,
            actor: match closing {
                Some(c) => format!(
                    "{} ({} the proposal of {})",
                    who.name,
                    c.verdict.as_str(),
                    c.proposed_by
                ),
                None => who.name.clone(),
            },
            at: now,
            reason: reason.map(str::to_string),
            comment: comment.map(str::to_string),
        };
        Some(crate::certify::stage_report(blobs, &p, &doc, &checks, &evidence, Some(line)).await?)
    } else {
        None
    };
    // A confirmed proposal is its proposer's decision (the checker is
    // recorded with the proposal); an overturn is the checker's.
    let agent = match closing {
        Some(c) if c.verdict == crate::domain::four_eyes::Verdict::Confirm => {
            c.proposed_by.as_str()
        }
        _ => who.name.as_str(),
    };
    let transition = |version: i64| Transition {
        scan_id,
        version,
        from,
        to,
        agent,
        verification_result: match input.decision {
            Decision::Accept => Some("OK"),
            Decision::Reject => Some("KO"),
            Decision::Pending => None,
        },
        rejection_reason: if input.decision == Decision::Reject {
            reason
        } else {
            None
        },
        comment,
        now,
    };
    let (mut work, moved) = if closing.is_none() && prepared.is_none() {
        // The common decision: the transition is the transaction's first
        // statement, and begins it (one round trip to SQLite's writer).
        let (tx, moved) = rows::begin_transition(db, &transition(version)).await?;
        (audit::Work::on(db, tx), moved)
    } else {
        let mut work = audit::Work::begin(db).await?;
        if let Some(c) = closing {
            // Exactly one second reviewer closes a proposal, never its
            // author (the statement and the table's CHECK both refuse that).
            if crate::store::proposals::close(
                &mut work.tx,
                &c.proposal_id,
                c.verdict.as_str(),
                &who.name,
                c.reason.as_deref(),
                now,
            )
            .await?
                == 0
            {
                work.tx.rollback().await?;
                return Err(CaseError::Conflict(
                    "this proposal was already confirmed or overturned by another reviewer; reload the case"
                        .into(),
                ));
            }
        }
        if let Some(e) = &prepared {
            write_edit(
                &mut work.tx,
                scan_id,
                version,
                e,
                who,
                edit_reason.unwrap_or("personalData sent with the decision"),
                now,
            )
            .await?;
            version += 1;
        }
        let moved = rows::transition(&mut work.tx, db.backend, &transition(version)).await?;
        (work, moved)
    };
    if !moved.changed {
        work.tx.rollback().await?;
        let now_p = load(db, scan_id).await?;
        return Err(CaseError::Conflict(match now_p.state() {
            Ok(st) if st.is_final() => format!(
                "{} already decided this case ({}); your decision was not applied",
                now_p.agent.as_deref().unwrap_or("someone else"),
                st.label()
            ),
            _ => "the case changed since you opened it; reload and decide again".into(),
        }));
    }
    if let Some(head) = moved.audit_head {
        work.head_read(head);
    }
    // Everything else the decision writes goes to the database in one
    // round trip on SQLite, where the single writer is held meanwhile
    // (see `store::batch`).
    let mut batch = Batch::default();
    batch.push(rows::decision_stmt(&DecisionRow {
        id: uuid::Uuid::new_v4().to_string(),
        scan_id: scan_id.into(),
        decision: input.decision.as_str().into(),
        from_state: from.as_str().into(),
        to_state: to.as_str().into(),
        actor: who.name.clone(),
        reason: reason.map(str::to_string),
        comment: comment.map(str::to_string),
        at: now,
    }));
    // The case's own rows first, the counters every decision shares last:
    // on PostgreSQL their row locks are then held for the fewest round
    // trips before the commit (and this is the writers' lock order).
    if let Some((staged, size)) = &report {
        batch.extend(rows::replace_report_stmts(
            scan_id,
            &staged.sha256,
            *size,
            now,
        ));
    }
    batch.push(crate::store::webhooks::enqueue_stmt(
        &p.integrator_id,
        scan_id,
        to.as_str(),
        serde_json::Map::new(),
        now,
    ));
    let shard = db.counter_shard();
    batch.extend(rows::count_stmts(shard.id(), from, p.created_at, -1));
    batch.extend(rows::count_stmts(shard.id(), to, p.created_at, 1));
    if to.is_final() {
        batch.extend(crate::store::metrics::finals_stmts(
            &[crate::store::metrics::Final::of(
                &p.integrator_id,
                to,
                Some(agent),
                // What the row now stores (the UPDATE keeps an earlier
                // reason when none is given), so a later delete uncounts
                // exactly this key.
                reason.or(p.rejection_reason.as_deref()),
                p.created_at,
                Some(now),
            )],
            1,
            &std::collections::HashMap::from([(p.integrator_id.clone(), sla_hours)]),
            shard.id(),
        ));
    }
    let new_report = report.as_ref().map(|(b, _)| b.sha256.clone());
    let entry = event(
        who,
        "case.decide",
        scan_id,
        serde_json::json!({
            "decision": input.decision.as_str(), "from": from.as_str(), "to": to.as_str(), "reason": reason,
            "fields": prepared.as_ref().map(|e| e.applied.iter().map(|(f, _, _)| f.clone()).collect::<Vec<_>>()).unwrap_or_default(),
            "four_eyes": closing.map(|c| serde_json::json!({
                "proposal": c.proposal_id, "verdict": c.verdict.as_str(), "proposed_by": c.proposed_by,
            })),
        }),
    );
    commit_with_blobs(
        db,
        blobs,
        work,
        Some((batch, entry)),
        report.map(|(b, _)| b).into_iter().collect(),
    )
    .await?;
    if let (Some(old), Some(new)) = (&p.pdf_checksum, &new_report) {
        if old != new {
            crate::evidence::forget(db, blobs, None, old).await;
        }
    }
    Ok(to)
}

/// Attaches checked, stored evidence (see `evidence::upload`) to a process
/// the applicant has not yet submitted, replacing one of the same kind and
/// type. A recording raises the `VIDEO_AVAILABLE` webhook in the same
/// transaction.
#[tracing::instrument(skip_all, fields(scan_id = %scan_id, actor = %who.name))]
pub async fn attach_evidence(
    db: &Db,
    blobs: &BlobStore,
    scan_id: &str,
    evidence_type: &str,
    e: StoredEvidence,
    who: &Actor,
) -> Result<(), CaseError> {
    let sha256 = e.sha256.clone();
    let dropped = attach(db, blobs, scan_id, evidence_type, e, who).await?;
    // A photo the applicant took again before submitting loses its old
    // bytes, unless something else uses them (a retake keeps them: see
    // `attach`).
    for old in dropped.iter().filter(|s| **s != sha256) {
        crate::evidence::forget(db, blobs, None, old).await;
    }
    Ok(())
}

/// Uploads a process accepts in all (retakes included): enough for any
/// honest applicant, a ceiling for anyone filling the disk.
pub const MAX_UPLOADS: i64 = 40;

async fn attach(
    db: &Db,
    blobs: &BlobStore,
    scan_id: &str,
    evidence_type: &str,
    e: StoredEvidence,
    who: &Actor,
) -> Result<Vec<String>, CaseError> {
    let t = evidence_type.trim();
    if t.is_empty()
        || t.len() > 40
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(CaseError::Invalid(format!(
            "'{t}' is not an evidence type (letters, digits, - and _, e.g. front, back, selfie, video)"
        )));
    }
    let p = load(db, scan_id).await?;
    let st = state_of(&p)?;
    if !matches!(st, State::Created | State::InProgress) {
        return Err(CaseError::Conflict(format!(
            "the process is {st}: evidence can only be added before it is submitted"
        )));
    }
    let kind = e.kind.as_str();
    let now = now_ms();
    let mut work = audit::Work::begin(db).await?;
    // Uploads to one process are serialised by its row, taken first (the
    // lock order every writer follows): counting in the transaction that
    // adds the next one lets a burst through only up to the ceiling, and two
    // uploads to one slot never collide on its unique index.
    db.lock_process(&mut work.tx, scan_id).await?;
    if rows::upload_count(&mut work.tx, scan_id).await? >= MAX_UPLOADS {
        work.tx.rollback().await?;
        return Err(CaseError::Limit(format!(
            "this process has received {MAX_UPLOADS} uploads; no more are accepted"
        )));
    }
    // Under a retake request only the steps asked for reopen.
    let open_retake = crate::store::retakes::open(&mut *work.tx, scan_id).await?;
    if let Some(r) = &open_retake {
        if let Err(m) = retake::allows(r, kind, t, now) {
            work.tx.rollback().await?;
            return Err(CaseError::Conflict(m));
        }
    }
    let row = crate::store::processes::EvidenceRow {
        id: uuid::Uuid::new_v4().to_string(),
        scan_id: scan_id.into(),
        kind: kind.into(),
        evidence_type: t.into(),
        sha256: e.sha256.clone(),
        size: e.size,
        media_type: e.accepted.media_type.into(),
        created_at: now,
        width: e.accepted.dimensions.map(|d| d.0 as i64),
        height: e.accepted.dimensions.map(|d| d.1 as i64),
    };
    let (moved, replaced) = rows::put_evidence(&mut work.tx, &row).await?;
    // What the reviewer saw before asking for the retake is kept, bytes and
    // all; a retake retaken again before resubmitting replaces only itself.
    let mut dropped = Vec::new();
    for old in replaced {
        match &open_retake {
            Some(r) if old.created_at < r.requested_at => {
                crate::store::retakes::keep_replaced(&mut work.tx, &r.id, &old, now).await?;
            }
            _ => dropped.push(old.sha256),
        }
    }
    // Held to the commit (see `store::CounterShards`).
    let shard = db.counter_shard();
    if moved {
        rows::bump_count(&mut work.tx, shard.id(), State::Created, p.created_at, -1).await?;
        rows::bump_count(&mut work.tx, shard.id(), State::InProgress, p.created_at, 1).await?;
    }
    if kind == "recording" {
        crate::store::webhooks::enqueue(
            &mut work.tx,
            &p.integrator_id,
            scan_id,
            "VIDEO_AVAILABLE",
            now,
        )
        .await?;
    }
    work.record(event(
            who,
            "evidence.add",
            scan_id,
            serde_json::json!({"kind": kind, "type": t, "sha256": e.sha256, "size": e.size, "media_type": e.accepted.media_type}),
        ),
    )
    .await?;
    commit_with_blobs(db, blobs, work, None, vec![e.blob]).await?;
    Ok(dropped)
}

/// The applicant's submission: validations, the report PDF, the state the
/// integrator configured (`PENDING_VALIDATION` or `PENDING_VERIFICATION`)
/// and its webhook, all in one transaction.
#[tracing::instrument(skip_all, fields(scan_id = %scan_id, actor = %who.name))]
pub async fn submit(
    db: &Db,
    s: &Settings,
    blobs: &BlobStore,
    scan_id: &str,
    who: &Actor,
    lang: Option<&str>,
) -> Result<State, CaseError> {
    let p = load(db, scan_id).await?;
    let from = state_of(&p)?;
    if !matches!(from, State::Created | State::InProgress) {
        return Err(CaseError::Conflict(format!(
            "the process was already submitted (it is {from})"
        )));
    }
    let integrator = crate::store::integrators::by_id(db.read(), &p.integrator_id)
        .await?
        .ok_or(CaseError::NotFound)?;
    let evidence = rows::evidence_for(db.read(), scan_id).await?;
    let open_retake = crate::store::retakes::open(db.read(), scan_id).await?;
    // A resubmitted retake returns to the queue it left; a first
    // submission goes where the integrator configured.
    let to = match &open_retake {
        Some(r) => retake::ready(r, &evidence, now_ms())?,
        None => match integrator.submit_state.parse::<State>() {
            Ok(st @ (State::PendingValidation | State::PendingVerification)) => st,
            _ => State::PendingVerification,
        },
    };
    let doc = p.document().map_err(anyhow::Error::from)?;
    let checks = validations_for(db, s, scan_id, &doc).await?;
    let mut shown = p.clone();
    shown.state = to.as_str().into();
    let (report, size) =
        crate::certify::stage_report(blobs, &shown, &doc, &checks, &evidence, None).await?;
    let sha = report.sha256.clone();
    let now = now_ms();
    let mut work = audit::Work::begin(db).await?;
    let validations = serde_json::to_string(&checks).map_err(anyhow::Error::from)?;
    changed_or(
        rows::submit(
            &mut work.tx,
            scan_id,
            p.version,
            from,
            to,
            &validations,
            &failing_key(&checks),
            now,
        )
        .await?,
        "the process changed while it was being submitted; try again",
    )?;
    if let Some(r) = &open_retake {
        // The report the reviewer read before the retake stays beside the
        // new one.
        if let Some(old) = evidence
            .iter()
            .find(|e| e.kind == "pdf" && e.evidence_type == "report")
        {
            crate::store::retakes::keep_replaced(&mut work.tx, &r.id, old, now).await?;
        }
        if crate::store::retakes::close(&mut work.tx, &r.id, now).await? == 0 {
            return Err(CaseError::Conflict(
                "the retake request changed while it was being submitted; try again".into(),
            ));
        }
    }
    if let Some(l) = lang {
        crate::store::retakes::set_applicant_lang(&mut work.tx, scan_id, l).await?;
    }
    rows::replace_report(&mut work.tx, scan_id, &sha, size, now).await?;
    let shard = db.counter_shard();
    rows::bump_count(&mut work.tx, shard.id(), from, p.created_at, -1).await?;
    rows::bump_count(&mut work.tx, shard.id(), to, p.created_at, 1).await?;
    crate::store::webhooks::enqueue(&mut work.tx, &p.integrator_id, scan_id, to.as_str(), now)
        .await?;
    work.record(event(
        who,
        "case.submit",
        scan_id,
        serde_json::json!({"to": to.as_str(), "pdf_sha256": sha, "retake": open_retake.as_ref().map(|r| &r.id)}),
    ))
    .await?;
    commit_with_blobs(db, blobs, work, None, vec![report]).await?;
    Ok(to)
}

/// What a capture engine extracted: document fields, the MRZ text and the
/// face scores. Fields not sent stay as they are.
#[derive(Debug, Clone, Default)]
pub struct Extracted {
    pub fields: BTreeMap<String, String>,
    pub mrz: Option<String>,
    pub facial_matching_score: Option<f64>,
    pub facial_liveness_score: Option<f64>,
}

/// Records extracted data on a process the applicant has not submitted:
/// these are the originally extracted values (later desk edits keep them).
/// An MRZ is parsed by kycdesk itself and fills the fields it repeats that
/// the capture left empty. Validations are recomputed.
#[tracing::instrument(skip_all, fields(scan_id = %scan_id, actor = %who.name))]
pub async fn set_extracted(
    db: &Db,
    s: &Settings,
    scan_id: &str,
    x: &Extracted,
    who: &Actor,
) -> Result<Document, CaseError> {
    let p = load(db, scan_id).await?;
    let st = state_of(&p)?;
    if !matches!(st, State::Created | State::InProgress) {
        return Err(CaseError::Conflict(format!(
            "the process is {st}: extracted data can only be set before it is submitted"
        )));
    }
    for (k, v) in [
        ("facialMatchingScore", x.facial_matching_score),
        ("facialLivenessScore", x.facial_liveness_score),
    ] {
        if v.is_some_and(|v| !(0.0..=1.0).contains(&v) || v.is_nan()) {
            return Err(CaseError::Invalid(format!("{k} must be between 0 and 1")));
        }
    }
    let mut doc = p.document().map_err(anyhow::Error::from)?;
    for (field, value) in &x.fields {
        // The published limit is on the value as sent, before trimming.
        if value.chars().count() > 500 {
            return Err(CaseError::Invalid(format!(
                "{field} is longer than 500 characters"
            )));
        }
        let slot = match field.as_str() {
            "documentType" => Some(&mut doc.document_type),
            "issuingState" => Some(&mut doc.issuing_state),
            "dateOfIssuing" => Some(&mut doc.date_of_issuing),
            "nationality" => Some(&mut doc.nationality),
            _ => doc.personal_field_mut(field),
        }
        .ok_or_else(|| CaseError::Invalid(format!("'{field}' is not a document field")))?;
        *slot = Some(value.trim().to_string()).filter(|v| !v.is_empty());
    }
    if x.mrz.as_deref().is_some_and(|m| m.chars().count() > 200) {
        return Err(CaseError::Invalid(
            "the MRZ is longer than 200 characters".into(),
        ));
    }
    if let Some(m) = x.mrz.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        doc.mrz = Some(m.to_string());
        if let Ok(parsed) = crate::domain::mrz::parse(m, chrono::Utc::now().date_naive()) {
            crate::domain::mrz::fill_document(&mut doc, &parsed);
        }
    }
    if let Some(v) = x.facial_matching_score {
        doc.facial_matching_score = Some(format!("{v:.4}"));
    }
    if let Some(v) = x.facial_liveness_score {
        doc.facial_liveness_score = Some(format!("{v:.4}"));
    }
    let checks = validations_for(db, s, scan_id, &doc).await?;
    let now = now_ms();
    let mut work = audit::Work::begin(db).await?;
    changed_or(
        rows::update_document(
            &mut work.tx,
            scan_id,
            p.version,
            &doc,
            &serde_json::to_string(&checks).map_err(anyhow::Error::from)?,
            &failing_key(&checks),
            now,
        )
        .await?,
        "the process changed meanwhile; send the data again",
    )?;
    let fields: Vec<&String> = x.fields.keys().collect();
    work.commit(event(
        who,
        "capture.document",
        scan_id,
        serde_json::json!({"fields": fields, "mrz": x.mrz.is_some()}),
    ))
    .await?;
    Ok(doc)
}
