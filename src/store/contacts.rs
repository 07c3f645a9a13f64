//! Contacts (applicants) and their phones, e-mails and addresses.

use super::Tx;
use crate::domain::contact::Pii;
use sqlx::AnyPool;

const COLS: &str = "id, integrator_id, first_name, last_name, birthdate, email, phone, address1, address2, city, region, postal_code, country, tax_id, ip_address, created_at, updated_at";

#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct ContactRow {
    pub id: String,
    pub integrator_id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birthdate: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address1: Option<String>,
    pub address2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub tax_id: Option<String>,
    pub ip_address: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ContactRow {
    pub fn pii(&self) -> Pii {
        Pii {
            tax_id: self.tax_id.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            address1: self.address1.clone(),
            address2: self.address2.clone(),
            city: self.city.clone(),
            region: self.region.clone(),
            postal_code: self.postal_code.clone(),
            phone: self.phone.clone(),
            birthdate: self.birthdate.clone(),
            email: self.email.clone(),
            ip_address: self.ip_address.clone(),
        }
    }

    pub fn display_name(&self) -> String {
        let n = format!(
            "{} {}",
            self.first_name.as_deref().unwrap_or(""),
            self.last_name.as_deref().unwrap_or("")
        );
        let n = n.trim();
        if n.is_empty() {
            "(no name yet)".into()
        } else {
            n.to_string()
        }
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// The twelve PII columns, in the order both `insert` and `update` name them.
fn bind_pii<'q>(q: AnyQuery<'q>, p: &Pii) -> AnyQuery<'q> {
    q.bind(p.first_name.clone())
        .bind(p.last_name.clone())
        .bind(p.birthdate.clone())
        .bind(p.email.clone())
        .bind(p.phone.clone())
        .bind(p.address1.clone())
        .bind(p.address2.clone())
        .bind(p.city.clone())
        .bind(p.region.clone())
        .bind(p.postal_code.clone())
        .bind(p.tax_id.clone())
        .bind(p.ip_address.clone())
}

pub async fn insert(
    tx: &mut Tx,
    id: &str,
    integrator_id: &str,
    p: &Pii,
    now: i64,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO contacts ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13, $14, $15, $15)"
    );
    let q = sqlx::query(&sql).bind(id).bind(integrator_id);
    bind_pii(q, p).bind(now).execute(&mut **tx).await?;
    Ok(())
}

/// Writes the contact's current PII (the caller merged old and new).
pub async fn update(tx: &mut Tx, id: &str, p: &Pii, now: i64) -> Result<(), sqlx::Error> {
    let q = sqlx::query(
        "UPDATE contacts SET first_name = $1, last_name = $2, birthdate = $3, email = $4, phone = $5, \
         address1 = $6, address2 = $7, city = $8, region = $9, postal_code = $10, tax_id = $11, \
         ip_address = $12, updated_at = $13 WHERE id = $14",
    );
    bind_pii(q, p).bind(now).bind(id).execute(&mut **tx).await?;
    Ok(())
}

/// A contact of this integrator (another integrator's contact is not found).
pub async fn get(
    pool: &AnyPool,
    integrator_id: &str,
    id: &str,
) -> Result<Option<ContactRow>, sqlx::Error> {
    sqlx::query_as::<_, ContactRow>(&format!(
        "SELECT {COLS} FROM contacts WHERE id = $1 AND integrator_id = $2"
    ))
    .bind(id)
    .bind(integrator_id)
    .fetch_optional(pool)
    .await
}

/// Any integrator's contact: for the desk, which sees every tenant.
pub async fn get_any(pool: &AnyPool, id: &str) -> Result<Option<ContactRow>, sqlx::Error> {
    sqlx::query_as::<_, ContactRow>(&format!("SELECT {COLS} FROM contacts WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn recent(pool: &AnyPool, limit: i64) -> Result<Vec<ContactRow>, sqlx::Error> {
    sqlx::query_as::<_, ContactRow>(&format!(
        "SELECT {COLS} FROM contacts ORDER BY created_at DESC, id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PointRow {
    pub id: String,
    pub contact_id: String,
    pub kind: String,
    pub value: String,
    pub is_primary: i64,
    pub verified_at: Option<i64>,
    pub created_at: i64,
    /// Phones: the calling code, when it was given apart (mobile API).
    pub country_code: Option<String>,
}

pub async fn points(pool: &AnyPool, contact_id: &str) -> Result<Vec<PointRow>, sqlx::Error> {
    sqlx::query_as::<_, PointRow>(
        "SELECT id, contact_id, kind, value, is_primary, verified_at, created_at, country_code FROM contact_points \
         WHERE contact_id = $1 ORDER BY created_at, id",
    )
    .bind(contact_id)
    .fetch_all(pool)
    .await
}

pub async fn points_in(tx: &mut Tx, contact_id: &str) -> Result<Vec<PointRow>, sqlx::Error> {
    sqlx::query_as::<_, PointRow>(
        "SELECT id, contact_id, kind, value, is_primary, verified_at, created_at, country_code FROM contact_points \
         WHERE contact_id = $1 ORDER BY created_at, id",
    )
    .bind(contact_id)
    .fetch_all(&mut **tx)
    .await
}

/// Records the calling code of a phone point (given apart by the mobile API).
pub async fn set_country_code(
    tx: &mut Tx,
    contact_id: &str,
    value: &str,
    country_code: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE contact_points SET country_code = $1 WHERE contact_id = $2 AND kind = 'phone' AND value = $3",
    )
    .bind(country_code)
    .bind(contact_id)
    .bind(value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds a point, or marks an existing one verified / primary.
pub async fn upsert_point(
    tx: &mut Tx,
    contact_id: &str,
    kind: &str,
    value: &str,
    verified_at: Option<i64>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let n = sqlx::query(
        "UPDATE contact_points SET verified_at = COALESCE(verified_at, $1) WHERE contact_id = $2 AND kind = $3 AND value = $4",
    )
    .bind(verified_at)
    .bind(contact_id)
    .bind(kind)
    .bind(value)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if n == 0 {
        sqlx::query(
            "INSERT INTO contact_points (id, contact_id, kind, value, is_primary, verified_at, created_at) \
             VALUES ($1, $2, $3, $4, 0, $5, $6)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(contact_id)
        .bind(kind)
        .bind(value)
        .bind(verified_at)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Makes `value` the only primary point of its kind.
pub async fn set_primary(
    tx: &mut Tx,
    contact_id: &str,
    kind: &str,
    value: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE contact_points SET is_primary = CASE WHEN value = $1 THEN 1 ELSE 0 END WHERE contact_id = $2 AND kind = $3",
    )
    .bind(value)
    .bind(contact_id)
    .bind(kind)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The verified contact (of this integrator) other than `except` that holds
/// this phone or e-mail, if any.
pub async fn verified_elsewhere(
    pool: &AnyPool,
    integrator_id: &str,
    kind: &str,
    value: &str,
    except: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar::<_, String>(
        "SELECT p.contact_id FROM contact_points p JOIN contacts c ON c.id = p.contact_id \
         WHERE p.kind = $1 AND p.value = $2 AND p.verified_at IS NOT NULL AND c.integrator_id = $3 AND p.contact_id <> $4 LIMIT 1",
    )
    .bind(kind)
    .bind(value)
    .bind(integrator_id)
    .bind(except)
    .fetch_optional(pool)
    .await
}

/// The document JSON of every process of the contact (newest first).
pub async fn documents(
    pool: &AnyPool,
    contact_id: &str,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as::<_, (String, String, String)>(
        "SELECT scan_id, state, document FROM processes WHERE contact_id = $1 ORDER BY created_at DESC",
    )
    .bind(contact_id)
    .fetch_all(pool)
    .await
}

pub async fn of_process(pool: &AnyPool, scan_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar::<_, Option<String>>("SELECT contact_id FROM processes WHERE scan_id = $1")
        .bind(scan_id)
        .fetch_optional(pool)
        .await
        .map(Option::flatten)
}

/// The same, inside a transaction (two requests may race to link one).
pub async fn of_process_in(tx: &mut Tx, scan_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar::<_, Option<String>>("SELECT contact_id FROM processes WHERE scan_id = $1")
        .bind(scan_id)
        .fetch_optional(&mut **tx)
        .await
        .map(Option::flatten)
}

/// A process's integrator and stored document JSON.
pub async fn process_integrator_and_document(
    pool: &AnyPool,
    scan_id: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as::<_, (String, String)>(
        "SELECT integrator_id, document FROM processes WHERE scan_id = $1",
    )
    .bind(scan_id)
    .fetch_optional(pool)
    .await
}

pub async fn link_process(tx: &mut Tx, scan_id: &str, contact_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE processes SET contact_id = $1 WHERE scan_id = $2")
        .bind(contact_id)
        .bind(scan_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One line of a contact's verification history, whatever its kind.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TimelineRow {
    pub kind: String,
    pub id: String,
    pub state: String,
    pub detail: String,
    pub at: i64,
}

/// The timeline of the contact `contact` names: `$1`, or an expression
/// that finds it (the case page asks by the case).
pub(super) fn timeline_sql(contact: &str) -> String {
    format!(
        "SELECT 'otp:' || kind || ':' || channel AS kind, id, status AS state, target AS detail, created_at AS at FROM verifications WHERE contact_id = {contact} \
         UNION ALL SELECT 'fraudRiskReport', id, state, categories, created_at FROM fraud_reports WHERE contact_id = {contact} \
         UNION ALL SELECT 'quiz', id, state, '', created_at FROM quizzes WHERE contact_id = {contact} \
         UNION ALL SELECT 'adminApproval', id, 'passed', actor || ': ' || reason, created_at FROM approvals WHERE contact_id = {contact} \
         UNION ALL SELECT 'onboarding', scan_id, state, COALESCE(doc_type, ''), created_at FROM processes WHERE contact_id = {contact} \
         ORDER BY at, id"
    )
}

/// Everything that verified (or tried to verify) the contact, oldest first.
pub async fn timeline(pool: &AnyPool, contact_id: &str) -> Result<Vec<TimelineRow>, sqlx::Error> {
    sqlx::query_as::<_, TimelineRow>(&timeline_sql("$1"))
        .bind(contact_id)
        .fetch_all(pool)
        .await
}

/// Sets the contact's primary phone (`kind` "phone") or e-mail column.
pub async fn set_primary_value(
    tx: &mut Tx,
    id: &str,
    kind: &str,
    value: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let sql = if kind == "phone" {
        "UPDATE contacts SET phone = $1, updated_at = $2 WHERE id = $3"
    } else {
        "UPDATE contacts SET email = $1, updated_at = $2 WHERE id = $3"
    };
    sqlx::query(sql)
        .bind(value)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn set_country(tx: &mut Tx, id: &str, country: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE contacts SET country = $1 WHERE id = $2")
        .bind(country)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
