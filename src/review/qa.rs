//! Quality assurance of a final decision: a supervisor agrees or disagrees.
//! The case is never changed (final is final); the verdict feeds the
//! overturn rates per agent and per reason.

use super::{event, load, state_of, Actor, CaseError};
use crate::audit;
use crate::domain::now_ms;
use crate::domain::qa::{correct_state, Verdict};
use crate::store::qa::{self, QaRow};
use crate::store::Db;

#[tracing::instrument(skip_all, fields(scan_id = %scan_id, actor = %who.name))]
pub async fn record(
    db: &Db,
    scan_id: &str,
    verdict: &str,
    comment: Option<&str>,
    who: &Actor,
) -> Result<QaRow, CaseError> {
    let p = load(db, scan_id).await?;
    let st = state_of(&p)?;
    if !st.is_final() {
        return Err(CaseError::Conflict(format!(
            "only final decisions are audited; this case is {}",
            st.label().to_lowercase()
        )));
    }
    let v = Verdict::parse(verdict)
        .ok_or_else(|| CaseError::Invalid("choose Agree or Disagree".into()))?;
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if v == Verdict::Disagree && comment.is_none() {
        return Err(CaseError::Invalid(
            "say why the decision was wrong (the comment is required to disagree)".into(),
        ));
    }
    if comment.is_some_and(|c| c.chars().count() > 2000) {
        return Err(CaseError::Invalid(
            "the comment is limited to 2,000 characters".into(),
        ));
    }
    let decided_by = p
        .agent
        .clone()
        .ok_or_else(|| CaseError::Conflict("this case has no deciding reviewer to audit".into()))?;
    if decided_by == who.name {
        return Err(CaseError::Conflict(
            "you decided this case: another supervisor audits it".into(),
        ));
    }
    let row = QaRow {
        id: uuid::Uuid::new_v4().to_string(),
        scan_id: scan_id.into(),
        reviewer: who.name.clone(),
        verdict: v.as_str().into(),
        correct_state: correct_state(st, v).as_str().into(),
        comment: comment.map(str::to_string),
        decided_state: st.as_str().into(),
        decided_by,
        decided_reason: p.rejection_reason.clone(),
        at: now_ms(),
    };
    let mut work = audit::Work::begin(db).await?;
    if let Err(e) = qa::insert(&mut work.tx, &row).await {
        work.tx.rollback().await?;
        return Err(if crate::store::is_unique_violation(&e) {
            CaseError::Conflict("this case already has a QA verdict".into())
        } else {
            e.into()
        });
    }
    work.commit(event(
        who,
        "case.qa",
        scan_id,
        serde_json::json!({"verdict": row.verdict, "correct_state": row.correct_state, "decided_by": row.decided_by}),
    ))
    .await?;
    Ok(row)
}
