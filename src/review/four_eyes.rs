//! Four-eyes (maker-checker): a desk decision the admin's policy holds
//! becomes a proposal. The case keeps its state (integrators still see
//! `PENDING_VERIFICATION`, no webhook), and a different reviewer confirms it
//! (it becomes final, one webhook) or overturns it with a reason (the other
//! decision becomes final). The proposer can never close their own
//! proposal: refused here, by the closing statement and by the table's CHECK.

use super::{event, state_of, write_edit, Actor, CaseError, Channel, DecisionInput, PreparedEdit};
use crate::audit;
use crate::config::Settings;
use crate::domain::four_eyes::{Rule, Verdict};
use crate::domain::process::Decision;
use crate::domain::State;
use crate::evidence::BlobStore;
use crate::store::processes::ProcessRow;
use crate::store::proposals::{self, Proposal};
use crate::store::Db;

/// The proposal a second reviewer closes, passed into the decision's
/// transaction.
#[derive(Debug, Clone)]
pub struct Closing {
    pub proposal_id: String,
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub proposed_by: String,
}

pub(super) struct Proposed<'a> {
    pub rule: Rule,
    pub reason: Option<&'a str>,
    pub comment: Option<&'a str>,
    pub edit_reason: Option<&'a str>,
    pub version: i64,
    pub now: i64,
}

/// Records a held decision: corrections typed with it are saved, the claim
/// is released, the version moves on (a stale tab's decision conflicts),
/// and the proposal waits in the Second review queue.
pub(super) async fn propose(
    db: &Db,
    p: &ProcessRow,
    input: &DecisionInput,
    prepared: Option<&PreparedEdit>,
    ask: &Proposed<'_>,
    who: &Actor,
) -> Result<State, CaseError> {
    let scan_id = p.scan_id.as_str();
    let mut version = ask.version;
    let mut work = audit::Work::begin(db).await?;
    if let Some(e) = prepared {
        write_edit(
            &mut work.tx,
            scan_id,
            version,
            e,
            who,
            ask.edit_reason
                .unwrap_or("personalData sent with the decision"),
            ask.now,
        )
        .await?;
        version += 1;
    }
    if proposals::hold(&mut work.tx, scan_id, version, ask.now).await? == 0 {
        work.tx.rollback().await?;
        return Err(CaseError::Conflict(
            "the case changed since you opened it; reload and decide again".into(),
        ));
    }
    let proposal = Proposal {
        id: uuid::Uuid::new_v4().to_string(),
        scan_id: scan_id.into(),
        decision: input.decision.as_str().into(),
        reason: ask.reason.map(str::to_string),
        comment: ask.comment.map(str::to_string),
        rule: ask.rule.as_str().into(),
        proposed_by: who.name.clone(),
        proposed_at: ask.now,
        outcome: None,
        reviewed_by: None,
        reviewed_at: None,
        review_reason: None,
    };
    if let Err(e) = proposals::insert(&mut work.tx, &proposal).await {
        work.tx.rollback().await?;
        return Err(if crate::store::is_unique_violation(&e) {
            CaseError::Conflict(
                "a decision on this case already waits for a second reviewer".into(),
            )
        } else {
            e.into()
        });
    }
    work.commit(event(
        who,
        "case.propose",
        scan_id,
        serde_json::json!({
            "decision": input.decision.as_str(), "reason": ask.reason, "rule": ask.rule.as_str(),
            "proposal": proposal.id,
        }),
    ))
    .await?;
    state_of(p)
}

/// What the second reviewer sends.
#[derive(Debug, Clone)]
pub struct SecondInput {
    pub verdict: Verdict,
    /// Why the proposal is overturned (required to overturn).
    pub reason: Option<String>,
    /// The rejection reason when overturning an accept.
    pub rejection_reason: Option<String>,
    pub expected_version: Option<i64>,
}

/// Confirms or overturns the open proposal on a case. Of concurrent
/// reviewers exactly one closes it; the others get a conflict.
#[tracing::instrument(skip_all, fields(scan_id = %scan_id, actor = %who.name))]
pub async fn second_review(
    db: &Db,
    s: &Settings,
    blobs: &BlobStore,
    scan_id: &str,
    input: &SecondInput,
    who: &Actor,
) -> Result<State, CaseError> {
    let case = super::load_for_decision(db, scan_id).await?;
    let open = proposals::open(db.read(), scan_id).await?.ok_or_else(|| {
        CaseError::Conflict("no decision on this case waits for a second review".into())
    })?;
    if open.proposed_by == who.name {
        return Err(CaseError::Conflict(
            "you proposed this decision: a different reviewer must confirm or overturn it".into(),
        ));
    }
    let proposed = Decision::parse(&open.decision)
        .map_err(|e| CaseError::Internal(anyhow::anyhow!("proposal {}: {e}", open.id)))?;
    let why = input
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    if input.verdict == Verdict::Overturn && why.is_none() {
        return Err(CaseError::Invalid(
            "say why you overturn the proposal".into(),
        ));
    }
    let decision = input.verdict.outcome(proposed);
    let (reason, comment) = match input.verdict {
        Verdict::Confirm => (open.reason.clone(), open.comment.clone()),
        Verdict::Overturn => (
            match decision {
                Decision::Reject => input.rejection_reason.clone(),
                _ => None,
            },
            why.clone(),
        ),
    };
    let decided = DecisionInput {
        decision,
        expected_version: input.expected_version,
        reason,
        comment,
        changes: Default::default(),
        edit_reason: None,
    };
    let closing = Closing {
        proposal_id: open.id.clone(),
        verdict: input.verdict,
        reason: why,
        proposed_by: open.proposed_by.clone(),
    };
    super::decide_closing(
        db,
        s,
        blobs,
        case,
        &decided,
        who,
        Channel::SecondReview,
        Some(&closing),
    )
    .await
}
