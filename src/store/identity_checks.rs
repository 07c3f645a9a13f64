//! The identity checks of a contact beyond its documents: fraud-risk
//! reports, knowledge-based quizzes and manual approvals. Their inputs,
//! categories and questions are stored as JSON and decoded by
//! `verification::records` (a row that no longer decodes is an error there).

use super::collection::{page, PageError, PageQuery};
use super::{Db, Tx};

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

const FRAUD_COLS: &str = "id, integrator_id, contact_id, inputs, state, categories, created_at";
const QUIZ_COLS: &str = "id, integrator_id, contact_id, inputs, state, questions, correct, created_at, expires_at, finished_at";

/// `search` is the folded text the collections' `q` looks in.
pub async fn insert_fraud_report(db: &Db, r: &FraudRow, search: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO fraud_reports (id, integrator_id, contact_id, inputs, state, categories, search, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.id)
    .bind(&r.integrator_id)
    .bind(&r.contact_id)
    .bind(&r.inputs)
    .bind(&r.state)
    .bind(&r.categories)
    .bind(search)
    .bind(r.created_at)
    .execute(db.write())
    .await?;
    Ok(())
}

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

pub async fn fraud_reports(
    db: &Db,
    integrator_id: &str,
    p: &PageQuery,
) -> Result<(Vec<FraudRow>, bool), PageError> {
    page(db, "fraud_reports", FRAUD_COLS, integrator_id, p).await
}

pub async fn insert_quiz(db: &Db, q: &QuizRow, search: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO quizzes ({QUIZ_COLS}, search) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9, $10)"
    ))
    .bind(&q.id)
    .bind(&q.integrator_id)
    .bind(&q.contact_id)
    .bind(&q.inputs)
    .bind(&q.state)
    .bind(&q.questions)
    .bind(q.created_at)
    .bind(q.expires_at)
    .bind(q.finished_at)
    .bind(search)
    .execute(db.write())
    .await?;
    Ok(())
}

/// Read from the writer: a quiz's state moves with every call.
pub async fn quiz(db: &Db, integrator_id: &str, id: &str) -> Result<Option<QuizRow>, sqlx::Error> {
    sqlx::query_as::<_, QuizRow>(&format!(
        "SELECT {QUIZ_COLS} FROM quizzes WHERE id = $1 AND integrator_id = $2"
    ))
    .bind(id)
    .bind(integrator_id)
    .fetch_optional(db.write())
    .await
}

pub async fn quizzes(
    db: &Db,
    integrator_id: &str,
    p: &PageQuery,
) -> Result<(Vec<QuizRow>, bool), PageError> {
    page(db, "quizzes", QUIZ_COLS, integrator_id, p).await
}

/// pending or asked → expired.
pub async fn expire_quiz(db: &Db, id: &str, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE quizzes SET state = 'expired', finished_at = $1 WHERE id = $2 AND state IN ('pending', 'asked')",
    )
    .bind(at)
    .bind(id)
    .execute(db.write())
    .await?;
    Ok(())
}

/// pending → failedGetQuestions.
pub async fn quiz_without_questions(db: &Db, id: &str, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE quizzes SET state = 'failedGetQuestions', finished_at = $1 WHERE id = $2 AND state = 'pending'")
        .bind(at)
        .bind(id)
        .execute(db.write())
        .await?;
    Ok(())
}

/// pending → asked with these questions; false when no longer pending.
pub async fn ask_quiz(db: &Db, id: &str, questions_json: &str) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE quizzes SET state = 'asked', questions = $1 WHERE id = $2 AND state = 'pending'",
    )
    .bind(questions_json)
    .bind(id)
    .execute(db.write())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// asked → scoring; false when another submission got there first.
pub async fn start_scoring(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("UPDATE quizzes SET state = 'scoring' WHERE id = $1 AND state = 'asked'")
        .bind(id)
        .execute(db.write())
        .await?
        .rows_affected();
    Ok(n == 1)
}

pub async fn finish_quiz(
    db: &Db,
    id: &str,
    state: &str,
    correct: i64,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE quizzes SET state = $1, correct = $2, finished_at = $3 WHERE id = $4")
        .bind(state)
        .bind(correct)
        .bind(at)
        .bind(id)
        .execute(db.write())
        .await?;
    Ok(())
}

pub async fn insert_approval(tx: &mut Tx, a: &ApprovalRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO approvals (id, integrator_id, contact_id, reason, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&a.id)
    .bind(&a.integrator_id)
    .bind(&a.contact_id)
    .bind(&a.reason)
    .bind(&a.actor)
    .bind(a.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The contact's newest onboarding process, which its audit entries name.
pub async fn newest_process_of_contact(
    tx: &mut Tx,
    contact_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT scan_id FROM processes WHERE contact_id = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(contact_id)
    .fetch_optional(&mut **tx)
    .await
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

/// (id, state, created_at) of the contact's fraud-risk reports.
pub async fn fraud_states(
    db: &Db,
    contact_id: &str,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT id, state, created_at FROM fraud_reports WHERE contact_id = $1")
        .bind(contact_id)
        .fetch_all(db.read())
        .await
}

/// (id, state, finished_at) of the contact's scored quizzes.
pub async fn scored_quizzes(
    db: &Db,
    contact_id: &str,
) -> Result<Vec<(String, String, Option<i64>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, state, finished_at FROM quizzes WHERE contact_id = $1 AND state IN ('passed', 'failed')",
    )
    .bind(contact_id)
    .fetch_all(db.read())
    .await
}

/// (id, created_at) of the contact's manual approvals.
pub async fn approvals_of(db: &Db, contact_id: &str) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT id, created_at FROM approvals WHERE contact_id = $1")
        .bind(contact_id)
        .fetch_all(db.read())
        .await
}
