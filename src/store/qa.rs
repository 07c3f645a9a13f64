//! Quality assurance: final decisions to audit, verdicts and overturn rates.

use super::{Bind, Binds, Tx};
use crate::domain::qa::DecisionFilter;
use sqlx::AnyPool;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QaRow {
    pub id: String,
    pub scan_id: String,
    pub reviewer: String,
    pub verdict: String,
    pub correct_state: String,
    pub comment: Option<String>,
    pub decided_state: String,
    pub decided_by: String,
    pub decided_reason: Option<String>,
    pub at: i64,
}

const COLS: &str = "id, scan_id, reviewer, verdict, correct_state, comment, decided_state, \
                    decided_by, decided_reason, at";

pub async fn insert(tx: &mut Tx, r: &QaRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO qa_reviews ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(r.id.clone())
    .bind(r.scan_id.clone())
    .bind(r.reviewer.clone())
    .bind(r.verdict.clone())
    .bind(r.correct_state.clone())
    .bind(r.comment.clone())
    .bind(r.decided_state.clone())
    .bind(r.decided_by.clone())
    .bind(r.decided_reason.clone())
    .bind(r.at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) fn for_case_sql() -> String {
    format!("SELECT {COLS} FROM qa_reviews WHERE scan_id = $1")
}

pub async fn for_case(pool: &AnyPool, scan_id: &str) -> Result<Option<QaRow>, sqlx::Error> {
    sqlx::query_as::<_, QaRow>(&for_case_sql())
        .bind(scan_id)
        .fetch_optional(pool)
        .await
}

/// (key, verdicts, disagreements): per deciding agent, or per rejection
/// reason (rejections only).
pub async fn rates_by_agent(pool: &AnyPool) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as::<_, (String, i64, i64)>(
        "SELECT decided_by, COUNT(*), SUM(CASE WHEN verdict = 'disagree' THEN 1 ELSE 0 END) \
         FROM qa_reviews GROUP BY decided_by ORDER BY decided_by",
    )
    .fetch_all(pool)
    .await
}

pub async fn rates_by_reason(pool: &AnyPool) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as::<_, (String, i64, i64)>(
        "SELECT decided_reason, COUNT(*), SUM(CASE WHEN verdict = 'disagree' THEN 1 ELSE 0 END) \
         FROM qa_reviews WHERE decided_state = 'NOT_VERIFIED' AND decided_reason IS NOT NULL \
         GROUP BY decided_reason ORDER BY decided_reason",
    )
    .fetch_all(pool)
    .await
}

/// A final decision as the audit lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Decided {
    pub scan_id: String,
    pub state: String,
    pub agent: Option<String>,
    pub rejection_reason: Option<String>,
    pub verification_time: Option<i64>,
    pub integrator_name: String,
    pub document: String,
    pub failing_validations: String,
    pub qa_verdict: Option<String>,
}

impl Decided {
    pub fn document(&self) -> Result<crate::domain::Document, super::processes::CorruptRow> {
        super::processes::decode_document(&self.scan_id, &self.document)
    }
}

fn conditions(f: &DecisionFilter, b: &mut Binds) -> Vec<String> {
    let mut wh = vec![format!(
        "p.state = {}",
        b.push(Bind::Text(f.state.as_str().into()))
    )];
    if let Some(a) = &f.agent {
        wh.push(format!("p.agent = {}", b.push(Bind::Text(a.clone()))));
    }
    if let Some(r) = &f.reason {
        wh.push(format!(
            "p.rejection_reason = {}",
            b.push(Bind::Text(r.clone()))
        ));
    }
    if let Some(i) = &f.integrator {
        wh.push(format!(
            "p.integrator_id = {}",
            b.push(Bind::Text(i.clone()))
        ));
    }
    if let Some(ms) = f.from_ms {
        wh.push(format!("p.verification_time >= {}", b.push(Bind::Int(ms))));
    }
    if let Some(ms) = f.to_ms {
        wh.push(format!("p.verification_time < {}", b.push(Bind::Int(ms))));
    }
    if let Some(v) = &f.failing {
        wh.push(format!(
            "p.failing_validations LIKE {}",
            b.push(Bind::Text(format!("%,{v},%")))
        ));
    }
    wh
}

/// Final decisions matching the filter, newest decision first.
pub async fn decisions(
    pool: &AnyPool,
    f: &DecisionFilter,
    limit: i64,
) -> Result<Vec<Decided>, sqlx::Error> {
    let mut b = Binds::default();
    let wh = conditions(f, &mut b).join(" AND ");
    let lim = b.push(Bind::Int(limit));
    let sql = format!(
        "SELECT p.scan_id, p.state, p.agent, p.rejection_reason, p.verification_time, \
         i.name AS integrator_name, p.document, p.failing_validations, q.verdict AS qa_verdict \
         FROM processes p JOIN integrators i ON i.id = p.integrator_id \
         LEFT JOIN qa_reviews q ON q.scan_id = p.scan_id \
         WHERE {wh} ORDER BY p.verification_time DESC, p.scan_id DESC LIMIT {lim}"
    );
    b.apply(sqlx::query(&sql))
        .try_map(|row: sqlx::any::AnyRow| <Decided as sqlx::FromRow<_>>::from_row(&row))
        .fetch_all(pool)
        .await
}

/// The listed form of chosen cases (the sampler's draw), newest first.
pub async fn decisions_of(pool: &AnyPool, ids: &[String]) -> Result<Vec<Decided>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = Binds::default();
    let list: Vec<String> = ids.iter().map(|i| b.push(Bind::Text(i.clone()))).collect();
    let sql = format!(
        "SELECT p.scan_id, p.state, p.agent, p.rejection_reason, p.verification_time, \
         i.name AS integrator_name, p.document, p.failing_validations, q.verdict AS qa_verdict \
         FROM processes p JOIN integrators i ON i.id = p.integrator_id \
         LEFT JOIN qa_reviews q ON q.scan_id = p.scan_id \
         WHERE p.scan_id IN ({}) ORDER BY p.agent, p.verification_time DESC, p.scan_id DESC",
        list.join(", ")
    );
    b.apply(sqlx::query(&sql))
        .try_map(|row: sqlx::any::AnyRow| <Decided as sqlx::FromRow<_>>::from_row(&row))
        .fetch_all(pool)
        .await
}

/// How many final decisions match (the page's total).
pub async fn count(pool: &AnyPool, f: &DecisionFilter) -> Result<i64, sqlx::Error> {
    let mut b = Binds::default();
    let wh = conditions(f, &mut b).join(" AND ");
    let sql = format!("SELECT COUNT(*) FROM processes p WHERE {wh}");
    b.apply(sqlx::query(&sql))
        .try_map(|row: sqlx::any::AnyRow| {
            use sqlx::Row;
            row.try_get::<i64, _>(0)
        })
        .fetch_one(pool)
        .await
}

/// (scanId, agent) of every decision matching the filter, for the sampler.
pub async fn decided_by(
    pool: &AnyPool,
    f: &DecisionFilter,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let mut b = Binds::default();
    let wh = conditions(f, &mut b).join(" AND ");
    let sql =
        format!("SELECT p.scan_id, p.agent FROM processes p WHERE {wh} AND p.agent IS NOT NULL");
    b.apply(sqlx::query(&sql))
        .try_map(|row: sqlx::any::AnyRow| {
            use sqlx::Row;
            Ok((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?))
        })
        .fetch_all(pool)
        .await
}

/// The desk's reviewers, for the agent filter (the users table is small;
/// a DISTINCT over a million cases is not).
pub async fn agents(pool: &AnyPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar::<_, String>("SELECT email FROM users ORDER BY email")
        .fetch_all(pool)
        .await
}
