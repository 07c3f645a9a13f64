//! Asking the applicant to retake chosen evidence. The case goes back to
//! the pre-review state `IN_PROGRESS` (integrators see only MobbScan's own
//! states plus kycdesk's documented pre-review ones), the applicant's link
//! reopens for just those steps with a new expiry, and resubmitting returns
//! the case to the queue it left. What was replaced is kept (see `attach`).

use super::{event, load, require_claim, state_of, Actor, CaseError};
use crate::audit;
use crate::config::Settings;
use crate::domain::retake::{Request, Step};
use crate::domain::{now_ms, rfc3339_ms, State};
use crate::store::processes::EvidenceRow;
use crate::store::retakes::{self, Retake};
use crate::store::Db;

/// What a reviewer asks for.
#[derive(Debug, Clone, Default)]
pub struct RetakeInput {
    pub steps: Vec<String>,
    pub reason: String,
    pub message: Option<String>,
    pub expected_version: Option<i64>,
}

/// Reopens a claimed case's link for the chosen steps, in one transaction:
/// state and claim, the request, the state counters, the integrator's
/// webhook (`IN_PROGRESS` with a `retake` object) and the audit entry. A
/// case has one open request at a time (a unique index backs the check).
#[tracing::instrument(skip_all, fields(scan_id = %scan_id, actor = %who.name))]
pub async fn request(
    db: &Db,
    s: &Settings,
    scan_id: &str,
    input: &RetakeInput,
    who: &Actor,
) -> Result<Retake, CaseError> {
    let p = load(db, scan_id).await?;
    let from = state_of(&p)?;
    if from.is_final() {
        return Err(CaseError::Conflict(format!(
            "{} already decided this case ({}); a final case cannot be sent back to the applicant",
            p.agent.as_deref().unwrap_or("someone else"),
            from.label()
        )));
    }
    if !from.is_decidable() {
        return Err(CaseError::Conflict(format!(
            "the case is {} (the applicant has not submitted it), so there is nothing to retake yet",
            from.label().to_lowercase()
        )));
    }
    let has_back = p.doc_type.as_deref() != Some("Passport");
    let req = Request::new(
        &input.steps,
        &input.reason,
        input.message.as_deref(),
        has_back,
    )
    .map_err(CaseError::Invalid)?;
    require_claim(&p, &who.name, s)?;
    let lang = retakes::applicant_lang(db.read(), scan_id)
        .await?
        .unwrap_or_else(|| "en".into());
    let now = now_ms();
    let r = Retake {
        id: uuid::Uuid::new_v4().to_string(),
        scan_id: scan_id.into(),
        steps: req.steps.clone(),
        reason: req.reason.as_str().into(),
        message: req.message.clone(),
        lang,
        from_state: from.as_str().into(),
        requested_by: who.name.clone(),
        requested_at: now,
        expires_at: now.saturating_add(crate::domain::ms(s.onboarding_ttl)),
        resubmitted_at: None,
    };
    let version = input.expected_version.unwrap_or(p.version);
    let mut work = audit::Work::begin(db).await?;
    if retakes::reopen(&mut work.tx, scan_id, version, from, now).await? == 0 {
        work.tx.rollback().await?;
        return Err(CaseError::Conflict(
            "the case changed since you opened it (decided, or sent back already); reload it"
                .into(),
        ));
    }
    if let Err(e) = retakes::insert(&mut work.tx, &r).await {
        work.tx.rollback().await?;
        return Err(if crate::store::is_unique_violation(&e) {
            CaseError::Conflict("the applicant was already asked to retake evidence".into())
        } else {
            e.into()
        });
    }
    let shard = db.counter_shard();
    crate::store::processes::bump_count(&mut work.tx, shard.id(), from, p.created_at, -1).await?;
    crate::store::processes::bump_count(
        &mut work.tx,
        shard.id(),
        State::InProgress,
        p.created_at,
        1,
    )
    .await?;
    let steps: Vec<&str> = r.steps.iter().map(|s| s.as_str()).collect();
    let mut extra = serde_json::Map::new();
    extra.insert(
        "retake".into(),
        serde_json::json!({
            "steps": steps, "reason": r.reason, "expiresAt": rfc3339_ms(r.expires_at),
        }),
    );
    crate::store::webhooks::enqueue_with(
        &mut work.tx,
        &p.integrator_id,
        scan_id,
        State::InProgress.as_str(),
        extra,
        now,
    )
    .await?;
    work.commit(event(
        who,
        "case.retake",
        scan_id,
        serde_json::json!({
            "steps": steps, "reason": r.reason, "message": r.message, "from": from.as_str(),
            "expires_at": r.expires_at, "retake": r.id,
        }),
    ))
    .await?;
    Ok(r)
}

/// Cases returned per sweep; a larger backlog is taken by the next ones.
const SWEEP_BATCH: i64 = 200;

/// Returns every case whose retake link expired unanswered to the queue
/// it left, one transaction each: the request closed as expired, the state
/// back (guarded: a case resubmitted or changed meanwhile is left alone),
/// the counters, the integrator's webhook with the state it returns to, and
/// an audit entry by `system`. Returns how many cases went back.
#[tracing::instrument(skip_all)]
pub async fn return_expired(db: &Db, now: i64) -> Result<usize, CaseError> {
    let mut returned = 0;
    for r in retakes::expired_open(db.read(), now, SWEEP_BATCH).await? {
        let to = r
            .from_state
            .parse::<State>()
            .map_err(|e| CaseError::Internal(anyhow::anyhow!("stored retake {}: {e}", r.id)))?;
        let p = load(db, &r.scan_id).await?;
        let mut work = audit::Work::begin(db).await?;
        db.lock_process(&mut work.tx, &r.scan_id).await?;
        if retakes::close_expired(&mut work.tx, &r.id, now).await? == 0
            || retakes::return_case(&mut work.tx, &r.scan_id, to, now).await? == 0
        {
            // Resubmitted (or swept by another server) in the meantime.
            work.tx.rollback().await?;
            continue;
        }
        let shard = db.counter_shard();
        crate::store::processes::bump_count(
            &mut work.tx,
            shard.id(),
            State::InProgress,
            p.created_at,
            -1,
        )
        .await?;
        crate::store::processes::bump_count(&mut work.tx, shard.id(), to, p.created_at, 1).await?;
        crate::store::webhooks::enqueue(
            &mut work.tx,
            &p.integrator_id,
            &r.scan_id,
            to.as_str(),
            now,
        )
        .await?;
        work.commit(audit::Event {
            actor: "system",
            action: "case.retake_expired",
            scan_id: Some(&r.scan_id),
            client_addr: "",
            detail: serde_json::json!({
                "retake": r.id, "to": to.as_str(), "expires_at": r.expires_at,
            }),
        })
        .await?;
        returned += 1;
    }
    Ok(returned)
}

/// Whether an upload of `kind/type` fits an open request at `now`.
pub fn allows(r: &Retake, kind: &str, evidence_type: &str, now: i64) -> Result<(), String> {
    if now > r.expires_at {
        return Err("the retake request has expired; ask the reviewer for a new one".into());
    }
    match Step::of_evidence(kind, evidence_type) {
        Some(step) if r.steps.contains(&step) => Ok(()),
        _ => Err(format!(
            "only {} were asked for again",
            labels(&r.steps).to_lowercase()
        )),
    }
}

/// The state a resubmission returns to, once every step asked for has new
/// evidence (uploaded after the request).
pub fn ready(r: &Retake, evidence: &[EvidenceRow], now: i64) -> Result<State, CaseError> {
    if now > r.expires_at {
        return Err(CaseError::Conflict(
            "the retake request has expired; ask the reviewer for a new one".into(),
        ));
    }
    let missing: Vec<Step> = r
        .steps
        .iter()
        .copied()
        .filter(|st| {
            !evidence.iter().any(|e| {
                e.kind == st.kind()
                    && e.evidence_type == st.as_str()
                    && e.created_at >= r.requested_at
            })
        })
        .collect();
    if !missing.is_empty() {
        return Err(CaseError::Conflict(format!(
            "retake {} before submitting",
            labels(&missing).to_lowercase()
        )));
    }
    r.from_state
        .parse::<State>()
        .map_err(|e| CaseError::Internal(anyhow::anyhow!("stored retake {}: {e}", r.id)))
}

/// "Document front and Selfie".
pub fn labels(steps: &[Step]) -> String {
    let names: Vec<&str> = steps.iter().map(|s| s.label()).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}
