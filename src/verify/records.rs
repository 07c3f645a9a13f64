//! Fraud-risk reports, quizzes and manual approvals of contacts, and the
//! contact's combined verification status.

use super::fraud::{self, Category};
use super::quiz::{self, Question};
use super::{Pii, VerifyError};
use crate::domain::now_ms;
use crate::store::contacts as crow;
use crate::store::{Bind, Binds, Db};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FraudRow {
    pub id: String,
    pub integrator_id: String,
    pub contact_id: String,
    pub inputs: String,
    pub state: String,
    pub categories: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QuizRow {
    pub id: String,
    pub integrator_id: String,
    pub contact_id: String,
    pub inputs: String,
    pub state: String,
    pub questions: String,
    pub correct: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApprovalRow {
    pub id: String,
    pub integrator_id: String,
    pub contact_id: String,
    pub reason: String,
    pub actor: String,
    pub created_at: i64,
}

impl FraudRow {
    pub fn pii(&self) -> Pii {
        serde_json::from_str(&self.inputs).unwrap_or_default()
    }
    pub fn categories(&self) -> Vec<Category> {
        serde_json::from_str(&self.categories).unwrap_or_default()
    }
}

impl QuizRow {
    pub fn pii(&self) -> Pii {
        serde_json::from_str(&self.inputs).unwrap_or_default()
    }
    pub fn questions(&self) -> Vec<Question> {
        serde_json::from_str(&self.questions).unwrap_or_default()
    }
}

/// The contact a request names (`apiture:contact`), or a new one made from
/// the request's PII; and that PII merged over what the contact holds.
pub async fn resolve_contact(
    db: &Db,
    integrator_id: &str,
    contact_id: Option<&str>,
    pii: &Pii,
) -> Result<(String, Pii), VerifyError> {
    match contact_id {
        Some(id) => {
            let c = crow::get(db.read(), integrator_id, id)
                .await?
                .ok_or_else(|| {
                    VerifyError::Invalid(format!(
                        "the apiture:contact link names no contact: {}",
                        super::contact_uri(id)
                    ))
                })?;
            let mut tx = db.begin().await?;
            let merged = super::merge_into_contact(&mut tx, &c, pii).await?;
            tx.commit().await?;
            Ok((c.id, merged))
        }
        None => {
            if pii.first_name.is_none() || pii.last_name.is_none() {
                return Err(VerifyError::Invalid(
                    "give an apiture:contact link, or the identity's firstName and lastName (and what else is known)".into(),
                ));
            }
            let mut tx = db.begin().await?;
            let id = super::create_contact_in(&mut tx, integrator_id, pii).await?;
            tx.commit().await?;
            Ok((id, pii.clone()))
        }
    }
}

pub async fn create_fraud_report(
    db: &Db,
    minimum_age: u32,
    integrator_id: &str,
    contact_id: Option<&str>,
    pii: Pii,
) -> Result<FraudRow, VerifyError> {
    let (contact_id, pii) = resolve_contact(db, integrator_id, contact_id, &pii).await?;
    let facts = fraud::facts(db, &contact_id).await?;
    let outcome = fraud::assess(db, minimum_age, &pii, &facts).await?;
    let row = FraudRow {
        id: uuid::Uuid::new_v4().to_string(),
        integrator_id: integrator_id.into(),
        contact_id,
        inputs: serde_json::to_string(&pii).map_err(anyhow::Error::from)?,
        state: outcome.state.into(),
        categories: serde_json::to_string(&outcome.categories).map_err(anyhow::Error::from)?,
        created_at: now_ms(),
    };
    sqlx::query(
        "INSERT INTO fraud_reports (id, integrator_id, contact_id, inputs, state, categories, search, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(&row.integrator_id)
    .bind(&row.contact_id)
    .bind(&row.inputs)
    .bind(&row.state)
    .bind(&row.categories)
    .bind(pii.search_text())
    .bind(row.created_at)
    .execute(db.write())
    .await?;
    Ok(row)
}

const FRAUD_COLS: &str = "id, integrator_id, contact_id, inputs, state, categories, created_at";
const QUIZ_COLS: &str = "id, integrator_id, contact_id, inputs, state, questions, correct, created_at, expires_at, finished_at";

pub async fn fraud_report(
    db: &Db,
    integrator_id: &str,
    id: &str,
) -> Result<Option<FraudRow>, sqlx::Error> {
    sqlx::query_as::<_, FraudRow>(&format!(
        "SELECT {FRAUD_COLS} FROM fraud_reports WHERE id = $1 AND integrator_id = $2"
    ))
    .bind(id)
    .bind(integrator_id)
    .fetch_optional(db.read())
    .await
}

pub async fn create_quiz(
    db: &Db,
    ttl_ms: i64,
    integrator_id: &str,
    contact_id: Option<&str>,
    pii: Pii,
) -> Result<QuizRow, VerifyError> {
    let (contact_id, pii) = resolve_contact(db, integrator_id, contact_id, &pii).await?;
    let k = quiz::knowledge(db, &contact_id, &pii).await?;
    // Not enough known about the contact: say so now, not after a round trip.
    let state = if quiz::generate(&k).is_some() {
        "pending"
    } else {
        "failedGetQuestions"
    };
    let now = now_ms();
    let row = QuizRow {
        id: uuid::Uuid::new_v4().to_string(),
        integrator_id: integrator_id.into(),
        contact_id,
        inputs: serde_json::to_string(&pii).map_err(anyhow::Error::from)?,
        state: state.into(),
        questions: "[]".into(),
        correct: None,
        created_at: now,
        expires_at: now + ttl_ms,
        finished_at: (state != "pending").then_some(now),
    };
    sqlx::query(&format!(
        "INSERT INTO quizzes ({QUIZ_COLS}, search) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9, $10)"
    ))
    .bind(&row.id)
    .bind(&row.integrator_id)
    .bind(&row.contact_id)
    .bind(&row.inputs)
    .bind(&row.state)
    .bind(&row.questions)
    .bind(row.created_at)
    .bind(row.expires_at)
    .bind(row.finished_at)
    .bind(pii.search_text())
    .execute(db.write())
    .await?;
    Ok(row)
}

/// A quiz; one past its expiry is marked `expired` on read (unless done).
pub async fn quiz(db: &Db, integrator_id: &str, id: &str) -> Result<Option<QuizRow>, sqlx::Error> {
    let q = sqlx::query_as::<_, QuizRow>(&format!(
        "SELECT {QUIZ_COLS} FROM quizzes WHERE id = $1 AND integrator_id = $2"
    ))
    .bind(id)
    .bind(integrator_id)
    .fetch_optional(db.write())
    .await?;
    let Some(mut q) = q else { return Ok(None) };
    let now = now_ms();
    if matches!(q.state.as_str(), "pending" | "asked") && now >= q.expires_at {
        sqlx::query(
            "UPDATE quizzes SET state = 'expired', finished_at = $1 WHERE id = $2 AND state IN ('pending', 'asked')",
        )
        .bind(now)
        .bind(&q.id)
        .execute(db.write())
        .await?;
        q.state = "expired".into();
        q.finished_at = Some(now);
    }
    Ok(Some(q))
}

/// pending → asked, with fresh questions. 409 in any other state.
pub async fn ask(db: &Db, q: &QuizRow) -> Result<Vec<Question>, VerifyError> {
    if q.state != "pending" {
        return Err(VerifyError::Conflict(format!(
            "questions may only be generated while the quiz is pending; it is {}",
            q.state
        )));
    }
    let k = quiz::knowledge(db, &q.contact_id, &q.pii()).await?;
    let Some(questions) = quiz::generate(&k) else {
        sqlx::query("UPDATE quizzes SET state = 'failedGetQuestions', finished_at = $1 WHERE id = $2 AND state = 'pending'")
            .bind(now_ms())
            .bind(&q.id)
            .execute(db.write())
            .await?;
        return Err(VerifyError::Conflict(
            "not enough is known about this contact to ask questions (state failedGetQuestions)"
                .into(),
        ));
    };
    let n = sqlx::query(
        "UPDATE quizzes SET state = 'asked', questions = $1 WHERE id = $2 AND state = 'pending'",
    )
    .bind(serde_json::to_string(&questions).map_err(anyhow::Error::from)?)
    .bind(&q.id)
    .execute(db.write())
    .await?
    .rows_affected();
    if n == 0 {
        return Err(VerifyError::Conflict(
            "the quiz changed state meanwhile".into(),
        ));
    }
    Ok(questions)
}

/// asked → passed | failed (or expired when late). 409 in any other state.
pub async fn answer(db: &Db, q: &QuizRow, answers: &[(String, String)]) -> Result<(), VerifyError> {
    if q.state == "expired" {
        return Ok(());
    }
    if q.state != "asked" {
        return Err(VerifyError::Conflict(format!(
            "answers may only be submitted while the quiz is asked; it is {}",
            q.state
        )));
    }
    let questions = q.questions();
    let right = quiz::score(&questions, answers).map_err(VerifyError::Invalid)?;
    let state = if quiz::passes(right, questions.len()) {
        "passed"
    } else {
        "failed"
    };
    // Through `scoring`, so two concurrent submissions cannot both score.
    let n = sqlx::query("UPDATE quizzes SET state = 'scoring' WHERE id = $1 AND state = 'asked'")
        .bind(&q.id)
        .execute(db.write())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(VerifyError::Conflict(
            "the answers were already submitted".into(),
        ));
    }
    sqlx::query("UPDATE quizzes SET state = $1, correct = $2, finished_at = $3 WHERE id = $4")
        .bind(state)
        .bind(right as i64)
        .bind(now_ms())
        .bind(&q.id)
        .execute(db.write())
        .await?;
    Ok(())
}

pub async fn create_approval(
    db: &Db,
    contact: &crow::ContactRow,
    reason: &str,
    actor: &str,
    client_addr: &str,
) -> Result<ApprovalRow, VerifyError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(VerifyError::Invalid(
            "a manual approval needs a reason".into(),
        ));
    }
    if reason.chars().count() > 2000 {
        return Err(VerifyError::Invalid(
            "the reason is limited to 2000 characters".into(),
        ));
    }
    let row = ApprovalRow {
        id: uuid::Uuid::new_v4().to_string(),
        integrator_id: contact.integrator_id.clone(),
        contact_id: contact.id.clone(),
        reason: reason.into(),
        actor: actor.into(),
        created_at: now_ms(),
    };
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO approvals (id, integrator_id, contact_id, reason, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&row.id)
    .bind(&row.integrator_id)
    .bind(&row.contact_id)
    .bind(&row.reason)
    .bind(&row.actor)
    .bind(row.created_at)
    .execute(&mut *tx)
    .await?;
    let scan_id: Option<String> = sqlx::query_scalar(
        "SELECT scan_id FROM processes WHERE contact_id = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(&contact.id)
    .fetch_optional(&mut *tx)
    .await?;
    crate::audit::record(
        db,
        &mut tx,
        crate::audit::Event {
            actor,
            action: "contact.approved",
            scan_id: scan_id.as_deref(),
            client_addr,
            detail: serde_json::json!({"contactId": contact.id, "approvalId": row.id, "reason": row.reason}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn approval(
    db: &Db,
    integrator_id: &str,
    id: &str,
) -> Result<Option<ApprovalRow>, sqlx::Error> {
    sqlx::query_as::<_, ApprovalRow>(
        "SELECT id, integrator_id, contact_id, reason, actor, created_at FROM approvals WHERE id = $1 AND integrator_id = $2",
    )
    .bind(id)
    .bind(integrator_id)
    .fetch_optional(db.read())
    .await
}

/// One finished identity verification of a contact (`contactVerification`).
#[derive(Debug, Clone)]
pub struct Verified {
    pub kind: &'static str,
    pub id: String,
    pub state: String,
    pub at: i64,
}

pub async fn contact_verifications(
    db: &Db,
    contact_id: &str,
    kind: Option<&str>,
) -> Result<Vec<Verified>, sqlx::Error> {
    let mut out = vec![];
    if kind.is_none_or(|k| k == "fraudRiskReport") {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT id, state, created_at FROM fraud_reports WHERE contact_id = $1")
                .bind(contact_id)
                .fetch_all(db.read())
                .await?;
        out.extend(rows.into_iter().map(|(id, state, at)| Verified {
            kind: "fraudRiskReport",
            id,
            state,
            at,
        }));
    }
    if kind.is_none_or(|k| k == "quiz") {
        let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT id, state, finished_at FROM quizzes WHERE contact_id = $1 AND state IN ('passed', 'failed')",
        )
        .bind(contact_id)
        .fetch_all(db.read())
        .await?;
        out.extend(rows.into_iter().map(|(id, state, at)| Verified {
            kind: "quiz",
            id,
            state,
            at: at.unwrap_or(0),
        }));
    }
    if kind.is_none_or(|k| k == "adminApproval") {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT id, created_at FROM approvals WHERE contact_id = $1")
                .bind(contact_id)
                .fetch_all(db.read())
                .await?;
        out.extend(rows.into_iter().map(|(id, at)| Verified {
            kind: "adminApproval",
            id,
            state: "passed".into(),
            at,
        }));
    }
    out.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// A page request of a collection: `start`, `limit`, `sortBy`, `filter`, `q`.
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    pub start: i64,
    pub limit: i64,
    /// (column, descending)
    pub sort: Vec<(&'static str, bool)>,
    pub filter: Option<Filter>,
    pub q: Option<String>,
}

/// The filter language of Apiture collections: `eq(state,passed)`,
/// `ne`, `lt`, `le`, `gt`, `ge`, `in(state,passed|failed)`, `and(…,…)`,
/// `or(…,…)`, `not(…)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Cmp(&'static str, &'static str, String),
    In(&'static str, Vec<String>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

/// Collection fields that can be filtered and sorted, and their columns.
pub fn column(field: &str, quizzes: bool) -> Option<&'static str> {
    match field {
        "state" => Some("state"),
        "createdAt" => Some("created_at"),
        "contactId" => Some("contact_id"),
        "expiresAt" if quizzes => Some("expires_at"),
        _ => None,
    }
}

fn split_args(s: &str) -> Result<Vec<&str>, String> {
    let mut depth = 0i32;
    let mut out = vec![];
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return Err("unbalanced parentheses".into());
        }
    }
    if depth != 0 {
        return Err("unbalanced parentheses".into());
    }
    out.push(s[start..].trim());
    Ok(out)
}

pub fn parse_filter(s: &str, quizzes: bool) -> Result<Filter, String> {
    let s = s.trim();
    let open = s
        .find('(')
        .ok_or_else(|| format!("'{s}' is not op(field,value)"))?;
    if !s.ends_with(')') {
        return Err(format!("'{s}' must end with ')'"));
    }
    let op = &s[..open];
    let args = split_args(&s[open + 1..s.len() - 1])?;
    let field = |f: &str| {
        column(f, quizzes).ok_or_else(|| {
            format!(
                "'{f}' cannot be filtered: use state, createdAt, contactId{}",
                if quizzes { ", expiresAt" } else { "" }
            )
        })
    };
    let unquote = |v: &str| v.trim_matches(|c| c == '\'' || c == '"').to_string();
    match op {
        "and" | "or" => {
            let parts = args
                .iter()
                .map(|a| parse_filter(a, quizzes))
                .collect::<Result<Vec<_>, _>>()?;
            if parts.len() < 2 {
                return Err(format!("{op}() needs two or more terms"));
            }
            Ok(if op == "and" {
                Filter::And(parts)
            } else {
                Filter::Or(parts)
            })
        }
        "not" if args.len() == 1 => Ok(Filter::Not(Box::new(parse_filter(args[0], quizzes)?))),
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" if args.len() == 2 => {
            let sql = match op {
                "eq" => "=",
                "ne" => "<>",
                "lt" => "<",
                "le" => "<=",
                "gt" => ">",
                _ => ">=",
            };
            Ok(Filter::Cmp(field(args[0])?, sql, unquote(args[1])))
        }
        "in" if args.len() == 2 => Ok(Filter::In(
            field(args[0])?,
            args[1].split('|').map(unquote).collect(),
        )),
        _ => Err(format!(
            "unknown filter operation '{op}' (or wrong number of arguments)"
        )),
    }
}

fn bind_value(col: &str, v: &str, b: &mut Binds) -> Result<String, String> {
    if col.ends_with("_at") {
        let ms = chrono::DateTime::parse_from_rfc3339(v)
            .map(|d| d.timestamp_millis())
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map(|d| {
                    d.and_hms_opt(0, 0, 0)
                        .map(|t| t.and_utc().timestamp_millis())
                        .unwrap_or(0)
                })
            })
            .map_err(|_| format!("'{v}' is not a date-time (RFC 3339) or date"))?;
        Ok(b.push(Bind::Int(ms)))
    } else {
        Ok(b.push(Bind::Text(v.to_string())))
    }
}

fn filter_sql(f: &Filter, b: &mut Binds) -> Result<String, String> {
    Ok(match f {
        Filter::Cmp(col, op, v) => format!("{col} {op} {}", bind_value(col, v, b)?),
        Filter::In(col, vs) => {
            let ps = vs
                .iter()
                .map(|v| bind_value(col, v, b))
                .collect::<Result<Vec<_>, _>>()?;
            format!("{col} IN ({})", ps.join(", "))
        }
        Filter::And(fs) => format!(
            "({})",
            fs.iter()
                .map(|f| filter_sql(f, b))
                .collect::<Result<Vec<_>, _>>()?
                .join(" AND ")
        ),
        Filter::Or(fs) => format!(
            "({})",
            fs.iter()
                .map(|f| filter_sql(f, b))
                .collect::<Result<Vec<_>, _>>()?
                .join(" OR ")
        ),
        Filter::Not(f) => format!("NOT ({})", filter_sql(f, b)?),
    })
}

/// One page of a collection, plus whether more follow.
async fn page<T>(
    db: &Db,
    table: &str,
    cols: &str,
    integrator_id: &str,
    p: &PageQuery,
) -> Result<(Vec<T>, bool), VerifyError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut b = Binds::default();
    let mut wh = vec![format!(
        "integrator_id = {}",
        b.push(Bind::Text(integrator_id.into()))
    )];
    if let Some(f) = &p.filter {
        wh.push(filter_sql(f, &mut b).map_err(VerifyError::Unprocessable)?);
    }
    if let Some(q) = &p.q {
        let q = super::fold(q);
        if !q.is_empty() {
            let esc = q
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            wh.push(format!(
                "search LIKE {} ESCAPE '\\'",
                b.push(Bind::Text(format!("%{esc}%")))
            ));
        }
    }
    let mut order: Vec<String> = p
        .sort
        .iter()
        .map(|(c, desc)| format!("{c} {}", if *desc { "DESC" } else { "ASC" }))
        .collect();
    if order.is_empty() {
        order.push("created_at DESC".into());
    }
    order.push("id".into());
    let sql = format!(
        "SELECT {cols} FROM {table} WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
        wh.join(" AND "),
        order.join(", "),
        b.push(Bind::Int(p.limit + 1)),
        b.push(Bind::Int(p.start)),
    );
    let mut rows: Vec<T> = b
        .apply_as(sqlx::query_as::<_, T>(&sql))
        .fetch_all(db.read())
        .await?;
    let more = rows.len() as i64 > p.limit;
    rows.truncate(p.limit as usize);
    Ok((rows, more))
}

pub async fn fraud_reports(
    db: &Db,
    integrator_id: &str,
    p: &PageQuery,
) -> Result<(Vec<FraudRow>, bool), VerifyError> {
    page(db, "fraud_reports", FRAUD_COLS, integrator_id, p).await
}

pub async fn quizzes(
    db: &Db,
    integrator_id: &str,
    p: &PageQuery,
) -> Result<(Vec<QuizRow>, bool), VerifyError> {
    page(db, "quizzes", QUIZ_COLS, integrator_id, p).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_into_whitelisted_columns() {
        let f = parse_filter(
            "and(eq(state,passed),ge(createdAt,2018-01-01T00:00:00Z))",
            false,
        );
        assert!(matches!(f, Ok(Filter::And(ref v)) if v.len() == 2));
        assert!(parse_filter("eq(inputs,x)", false).is_err());
        assert!(parse_filter("eq(expiresAt,2018-01-01)", false).is_err());
        assert!(parse_filter("eq(expiresAt,2018-01-01)", true).is_ok());
        assert!(parse_filter("eq(state,passed", false).is_err());
        assert_eq!(
            parse_filter("in(state,passed|failed)", false),
            Ok(Filter::In("state", vec!["passed".into(), "failed".into()]))
        );
        let mut b = Binds::default();
        let sql = parse_filter("or(eq(state,'passed'),not(eq(state,failed)))", false)
            .and_then(|f| filter_sql(&f, &mut b))
            .unwrap_or_default();
        assert_eq!(sql, "(state = $1 OR NOT (state = $2))");
    }
}
