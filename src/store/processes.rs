//! Processes (cases) and everything that hangs off them: evidence, field
//! edits, notes, decisions, claims and the per-state counters.

use super::{Bind, Binds, Stmt, Tx};
use crate::domain::confirmation::Confirmed;
use crate::domain::queue::{Assignee, QueueFilter, Search, Sort};
use crate::domain::{Document, State};
use sqlx::AnyPool;
use std::collections::HashMap;

/// An integrator as the queue filter offers it (the full row is
/// `store::integrators::IntegratorRow`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IntegratorChoice {
    pub id: String,
    pub name: String,
    pub enabled: i64,
    pub created_at: i64,
}

pub async fn insert_integrator(
    tx: &mut Tx,
    id: &str,
    name: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO integrators (id, name, enabled, created_at) VALUES ($1, $2, 1, $3)")
        .bind(id)
        .bind(name)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn list_integrators(pool: &AnyPool) -> Result<Vec<IntegratorChoice>, sqlx::Error> {
    sqlx::query_as::<_, IntegratorChoice>(
        "SELECT id, name, enabled, created_at FROM integrators ORDER BY name",
    )
    .fetch_all(pool)
    .await
}

/// Everything stored for a process, as loaded for the case page and API.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProcessRow {
    pub scan_id: String,
    pub integrator_id: String,
    pub integrator_name: String,
    pub state: String,
    pub version: i64,
    pub country_id: Option<String>,
    pub doc_type: Option<String>,
    pub doc_specific_type: Option<String>,
    pub redirect_url: Option<String>,
    pub verification_extra_data: String,
    pub license_id: Option<String>,
    pub verification_result: Option<String>,
    pub agent: Option<String>,
    pub document: String,
    pub extra_parameters: String,
    pub validations: String,
    pub failing_validations: String,
    pub pdf_checksum: Option<String>,
    pub rejection_reason: Option<String>,
    pub comment: Option<String>,
    pub client_info: Option<String>,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub verification_time: Option<i64>,
    /// JSON: the phone / e-mail confirmed by code on the hosted page.
    pub confirmed_contacts: String,
}

impl ProcessRow {
    pub fn state(&self) -> Result<State, crate::domain::process::UnknownState> {
        self.state.parse()
    }

    /// The stored document. A row that no longer parses is an error (500
    /// with a request id), never an empty document.
    pub fn document(&self) -> Result<Document, CorruptRow> {
        decode_document(&self.scan_id, &self.document)
    }

    /// The stored validations. A row that no longer parses is an error,
    /// never an empty set (which would read as "nothing failing").
    pub fn validations(
        &self,
    ) -> Result<std::collections::BTreeMap<String, crate::domain::Validation>, CorruptRow> {
        serde_json::from_str(&self.validations).map_err(|e| CorruptRow {
            scan_id: self.scan_id.clone(),
            column: "validations",
            error: e.to_string(),
        })
    }

    /// The integrator's `verificationExtraData`, likewise.
    pub fn verification_extra_data(&self) -> Result<serde_json::Value, CorruptRow> {
        serde_json::from_str(&self.verification_extra_data).map_err(|e| CorruptRow {
            scan_id: self.scan_id.clone(),
            column: "verification_extra_data",
            error: e.to_string(),
        })
    }

    /// What the applicant confirmed by code, likewise.
    pub fn confirmed_contacts(&self) -> Result<Vec<Confirmed>, CorruptRow> {
        decode_confirmed(&self.scan_id, &self.confirmed_contacts)
    }

    /// The stored `extraParameters`, likewise.
    pub fn extra_parameters(&self) -> Result<Vec<serde_json::Value>, CorruptRow> {
        serde_json::from_str(&self.extra_parameters).map_err(|e| CorruptRow {
            scan_id: self.scan_id.clone(),
            column: "extra_parameters",
            error: e.to_string(),
        })
    }
}

/// Decodes a stored `document` column; every row type that selects it
/// goes through here, so a corrupt one is the same error everywhere.
pub fn decode_document(scan_id: &str, text: &str) -> Result<Document, CorruptRow> {
    serde_json::from_str(text).map_err(|e| CorruptRow {
        scan_id: scan_id.to_string(),
        column: "document",
        error: e.to_string(),
    })
}

fn decode_confirmed(scan_id: &str, text: &str) -> Result<Vec<Confirmed>, CorruptRow> {
    serde_json::from_str(text).map_err(|e| CorruptRow {
        scan_id: scan_id.to_string(),
        column: "confirmed_contacts",
        error: e.to_string(),
    })
}

/// Adds (or replaces, for its kind) a confirmed phone or e-mail. The
/// caller holds the process lock, so two confirmations cannot lose one
/// another.
pub async fn add_confirmed(tx: &mut Tx, scan_id: &str, c: &Confirmed) -> anyhow::Result<()> {
    let text: String =
        sqlx::query_scalar("SELECT confirmed_contacts FROM processes WHERE scan_id = $1")
            .bind(scan_id)
            .fetch_one(&mut **tx)
            .await?;
    let mut all = decode_confirmed(scan_id, &text)?;
    all.retain(|o| o.kind != c.kind);
    all.push(c.clone());
    all.sort_by(|a, b| a.kind.cmp(&b.kind));
    sqlx::query("UPDATE processes SET confirmed_contacts = $1 WHERE scan_id = $2")
        .bind(serde_json::to_string(&all)?)
        .bind(scan_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A stored JSON column that no longer decodes.
#[derive(Debug, thiserror::Error)]
#[error("process {scan_id}: the stored {column} does not decode: {error}")]
pub struct CorruptRow {
    pub scan_id: String,
    pub column: &'static str,
    pub error: String,
}

const PROCESS_COLS: &str =
    "p.scan_id, p.integrator_id, i.name AS integrator_name, p.state, p.version, \
    p.country_id, p.doc_type, p.doc_specific_type, p.redirect_url, p.verification_extra_data, \
    p.license_id, p.verification_result, p.agent, p.document, p.extra_parameters, p.validations, \
    p.failing_validations, p.pdf_checksum, p.rejection_reason, p.comment, p.client_info, \
    p.claimed_by, p.claimed_at, p.created_at, p.updated_at, p.verification_time, p.confirmed_contacts";

/// The case `$1` (see `case_file`).
pub(super) fn get_sql() -> String {
    format!(
        "SELECT {PROCESS_COLS} FROM processes p JOIN integrators i ON i.id = p.integrator_id WHERE p.scan_id = $1"
    )
}

pub async fn get(pool: &AnyPool, scan_id: &str) -> Result<Option<ProcessRow>, sqlx::Error> {
    sqlx::query_as::<_, ProcessRow>(&get_sql())
        .bind(scan_id)
        .fetch_optional(pool)
        .await
}

/// What the API's process answer says of each evidence: its kind and type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EvidenceName {
    pub kind: String,
    pub evidence_type: String,
}

impl From<&EvidenceRow> for EvidenceName {
    fn from(e: &EvidenceRow) -> Self {
        EvidenceName {
            kind: e.kind.clone(),
            evidence_type: e.evidence_type.clone(),
        }
    }
}

/// A process and the names of its evidence in one statement (the
/// integrator API's hottest read: one round trip to the database instead
/// of two). The names come aggregated with control-character separators,
/// which no kind or type holds, and are sorted here.
pub async fn get_with_evidence_names(
    db: &super::Db,
    scan_id: &str,
) -> Result<Option<(ProcessRow, Vec<EvidenceName>)>, sqlx::Error> {
    use sqlx::Row;
    let agg = match db.backend {
        super::Backend::Sqlite => "group_concat",
        super::Backend::Postgres => "string_agg",
    };
    let sql = format!(
        "SELECT {PROCESS_COLS}, \
         (SELECT {agg}(e.kind || $2 || e.evidence_type, $3) FROM evidence e WHERE e.scan_id = p.scan_id) AS evidence_names \
         FROM processes p JOIN integrators i ON i.id = p.integrator_id WHERE p.scan_id = $1"
    );
    let found = if let Some(inline) = db.inline() {
        // One primary-key read: on the request's thread (see `inline`).
        inline.read(|c| {
            use rusqlite::OptionalExtension;
            c.prepare_cached(&sql)?
                .query_row(
                    rusqlite::named_params! {"$1": scan_id, "$2": KIND_SEP, "$3": NAME_SEP},
                    |r| {
                        Ok((
                            process_from_sqlite(r)?,
                            r.get::<_, Option<String>>("evidence_names")?,
                        ))
                    },
                )
                .optional()
        })?
    } else {
        match sqlx::query(&sql)
            .bind(scan_id)
            .bind(KIND_SEP)
            .bind(NAME_SEP)
            .fetch_optional(db.read())
            .await?
        {
            Some(row) => Some((
                <ProcessRow as sqlx::FromRow<_>>::from_row(&row)?,
                row.try_get("evidence_names")?,
            )),
            None => None,
        }
    };
    let Some((process, joined)) = found else {
        return Ok(None);
    };
    let mut names = Vec::new();
    for item in joined.iter().flat_map(|j| j.split(NAME_SEP)) {
        let (kind, t) = item.split_once(KIND_SEP).ok_or_else(|| {
            sqlx::Error::Decode(format!("evidence name {item:?} of {scan_id} has no kind").into())
        })?;
        names.push(EvidenceName {
            kind: kind.to_string(),
            evidence_type: t.to_string(),
        });
    }
    names.sort();
    Ok(Some((process, names)))
}

/// A [`ProcessRow`] of [`PROCESS_COLS`] read by rusqlite (see `inline`):
/// the same columns by name as its `sqlx::FromRow`; a NULL or a value of
/// another type where the row holds none is an error.
fn process_from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProcessRow> {
    Ok(ProcessRow {
        scan_id: r.get("scan_id")?,
        integrator_id: r.get("integrator_id")?,
        integrator_name: r.get("integrator_name")?,
        state: r.get("state")?,
        version: r.get("version")?,
        country_id: r.get("country_id")?,
        doc_type: r.get("doc_type")?,
        doc_specific_type: r.get("doc_specific_type")?,
        redirect_url: r.get("redirect_url")?,
        verification_extra_data: r.get("verification_extra_data")?,
        license_id: r.get("license_id")?,
        verification_result: r.get("verification_result")?,
        agent: r.get("agent")?,
        document: r.get("document")?,
        extra_parameters: r.get("extra_parameters")?,
        validations: r.get("validations")?,
        failing_validations: r.get("failing_validations")?,
        pdf_checksum: r.get("pdf_checksum")?,
        rejection_reason: r.get("rejection_reason")?,
        comment: r.get("comment")?,
        client_info: r.get("client_info")?,
        claimed_by: r.get("claimed_by")?,
        claimed_at: r.get("claimed_at")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        verification_time: r.get("verification_time")?,
        confirmed_contacts: r.get("confirmed_contacts")?,
    })
}

/// A case as a decision reads it: the process, its integrator's SLA
/// target (hours) and its evidence.
#[derive(Debug, Clone)]
pub struct ForDecision {
    pub process: ProcessRow,
    pub sla_hours: Option<i64>,
    pub evidence: Vec<EvidenceRow>,
}

/// [`ForDecision`] in one statement (one row per evidence item, or one
/// with no evidence): a decision made three reads of these before its
/// transaction, each a round trip (PostgreSQL) or a hop to a SQLite worker.
pub async fn get_for_decision(
    pool: &AnyPool,
    scan_id: &str,
) -> Result<Option<ForDecision>, sqlx::Error> {
    use sqlx::Row;
    let sql = format!(
        "SELECT {PROCESS_COLS}, i.sla_hours AS sla_hours, \
         e.id AS e_id, e.kind AS e_kind, e.evidence_type AS e_evidence_type, e.sha256 AS e_sha256, \
         e.size AS e_size, e.media_type AS e_media_type, e.created_at AS e_created_at, \
         e.width AS e_width, e.height AS e_height \
         FROM processes p JOIN integrators i ON i.id = p.integrator_id \
         LEFT JOIN evidence e ON e.scan_id = p.scan_id \
         WHERE p.scan_id = $1 ORDER BY e.kind, e.evidence_type"
    );
    let rows = sqlx::query(&sql).bind(scan_id).fetch_all(pool).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let process = <ProcessRow as sqlx::FromRow<_>>::from_row(first)?;
    let sla_hours: Option<i64> = first.try_get("sla_hours")?;
    let mut evidence = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(id) = row.try_get::<Option<String>, _>("e_id")? else {
            continue;
        };
        evidence.push(EvidenceRow {
            id,
            scan_id: process.scan_id.clone(),
            kind: row.try_get("e_kind")?,
            evidence_type: row.try_get("e_evidence_type")?,
            sha256: row.try_get("e_sha256")?,
            size: row.try_get("e_size")?,
            media_type: row.try_get("e_media_type")?,
            created_at: row.try_get("e_created_at")?,
            width: row.try_get("e_width")?,
            height: row.try_get("e_height")?,
        });
    }
    Ok(Some(ForDecision {
        process,
        sla_hours,
        evidence,
    }))
}

/// Separators of [`get_with_evidence_names`]' aggregate (unit and record
/// separators: kinds and types hold only letters, digits, - and _, as
/// `review::attach` checks).
const KIND_SEP: &str = "\u{1f}";
const NAME_SEP: &str = "\u{1e}";

pub async fn get_in_tx(tx: &mut Tx, scan_id: &str) -> Result<Option<ProcessRow>, sqlx::Error> {
    sqlx::query_as::<_, ProcessRow>(&format!(
        "SELECT {PROCESS_COLS} FROM processes p JOIN integrators i ON i.id = p.integrator_id WHERE p.scan_id = $1"
    ))
    .bind(scan_id)
    .fetch_optional(&mut **tx)
    .await
}

/// A process as first written (demo data, bulk loads, onboarding).
#[derive(Debug, Clone)]
pub struct NewProcess {
    pub scan_id: String,
    pub integrator_id: String,
    pub state: State,
    pub country_id: Option<String>,
    pub doc_type: Option<String>,
    pub doc_specific_type: Option<String>,
    pub redirect_url: Option<String>,
    pub document: Document,
    pub validations: String,
    pub failing_validations: String,
    pub agent: Option<String>,
    pub verification_result: Option<String>,
    pub rejection_reason: Option<String>,
    pub comment: Option<String>,
    pub client_info: Option<String>,
    pub pdf_checksum: Option<String>,
    pub created_at: i64,
    pub verification_time: Option<i64>,
}

impl NewProcess {
    /// A process just opened for `integrator_id`: `CREATED`, nothing
    /// captured, checked or decided yet. Callers fill in what they know
    /// with struct-update syntax.
    pub fn created(scan_id: String, integrator_id: String, created_at: i64) -> NewProcess {
        NewProcess {
            scan_id,
            integrator_id,
            state: State::Created,
            country_id: None,
            doc_type: None,
            doc_specific_type: None,
            redirect_url: None,
            document: Document::default(),
            validations: "{}".into(),
            failing_validations: String::new(),
            agent: None,
            verification_result: None,
            rejection_reason: None,
            comment: None,
            client_info: None,
            pdf_checksum: None,
            created_at,
            verification_time: None,
        }
    }
}

const INSERT_COLS: &str = "scan_id, integrator_id, state, version, country_id, doc_type, doc_specific_type, \
    redirect_url, document, validations, failing_validations, facial_matching_score, facial_liveness_score, \
    search_name, search_surname, document_number, agent, verification_result, rejection_reason, comment, \
    client_info, pdf_checksum, created_at, updated_at, verification_time";
const INSERT_ARITY: usize = 24;

fn push_process(b: &mut Binds, p: &NewProcess) -> String {
    let (name, surname, number) = p.document.search_keys();
    let score = |s: &Option<String>| s.as_deref().and_then(|v| v.trim().parse::<f64>().ok());
    let opt = |b: &mut Binds, v: &Option<String>| match v {
        Some(s) => b.push(Bind::Text(s.clone())),
        None => "NULL".to_string(),
    };
    let optf = |b: &mut Binds, v: Option<f64>| match v {
        Some(f) => b.push(Bind::Real(f)),
        None => "NULL".to_string(),
    };
    let doc = serde_json::to_string(&p.document).unwrap_or_else(|_| "{}".into());
    let vt = p
        .verification_time
        .map(|t| t.to_string())
        .unwrap_or_else(|| "NULL".into());
    let parts = [
        b.push(Bind::Text(p.scan_id.clone())),
        b.push(Bind::Text(p.integrator_id.clone())),
        b.push(Bind::Text(p.state.as_str().into())),
        "1".into(),
        opt(b, &p.country_id),
        opt(b, &p.doc_type),
        opt(b, &p.doc_specific_type),
        opt(b, &p.redirect_url),
        b.push(Bind::Text(doc)),
        b.push(Bind::Text(p.validations.clone())),
        b.push(Bind::Text(p.failing_validations.clone())),
        optf(b, score(&p.document.facial_matching_score)),
        optf(b, score(&p.document.facial_liveness_score)),
        b.push(Bind::Text(name)),
        b.push(Bind::Text(surname)),
        b.push(Bind::Text(number)),
        opt(b, &p.agent),
        opt(b, &p.verification_result),
        opt(b, &p.rejection_reason),
        opt(b, &p.comment),
        opt(b, &p.client_info),
        opt(b, &p.pdf_checksum),
        p.created_at.to_string(),
        p.created_at.to_string(),
        vt,
    ];
    debug_assert_eq!(parts.len(), INSERT_ARITY + 1);
    format!("({})", parts.join(", "))
}

/// Inserts many processes in one statement and bumps the state counters.
/// `shard`: the counter shard the new cases are counted in
/// (`Db::counter_shard`).
pub async fn insert_many(tx: &mut Tx, ps: &[NewProcess], shard: i64) -> Result<(), sqlx::Error> {
    if ps.is_empty() {
        return Ok(());
    }
    // SQLite looks up `$N` parameters by name, linearly: statements of a
    // thousand parameters keep that cost negligible, ten thousand do not.
    for chunk in ps.chunks(40) {
        let mut b = Binds::default();
        let rows: Vec<String> = chunk.iter().map(|p| push_process(&mut b, p)).collect();
        let sql = format!(
            "INSERT INTO processes ({INSERT_COLS}) VALUES {}",
            rows.join(", ")
        );
        b.apply(sqlx::query(&sql)).execute(&mut **tx).await?;
    }
    let words: Vec<(&str, i64, Vec<String>)> = ps
        .iter()
        .map(|p| (p.scan_id.as_str(), p.created_at, p.document.search_words()))
        .collect();
    super::search_words::insert(tx, &words).await?;
    let mut per_state: HashMap<State, i64> = HashMap::new();
    let mut open: std::collections::BTreeMap<(State, i64), i64> = Default::default();
    let mut finals = Vec::new();
    let mut countries = std::collections::BTreeSet::new();
    for p in ps {
        *per_state.entry(p.state).or_default() += 1;
        countries.extend(p.country_id.as_deref());
        if p.state.is_final() {
            finals.push(super::metrics::Final::of(
                &p.integrator_id,
                p.state,
                p.agent.as_deref(),
                p.rejection_reason.as_deref(),
                p.created_at,
                p.verification_time,
            ));
        } else {
            *open
                .entry((p.state, crate::domain::metrics::hour_of(p.created_at)))
                .or_default() += 1;
        }
    }
    for c in countries {
        sqlx::query("INSERT INTO process_countries (country_id) VALUES ($1) ON CONFLICT (country_id) DO NOTHING")
            .bind(c)
            .execute(&mut **tx)
            .await?;
    }
    for (state, n) in per_state {
        state_count_stmt(shard, state, n).execute(tx).await?;
    }
    super::metrics::add_open(tx, &open, shard).await?;
    super::metrics::add_finals(tx, &finals, 1, shard).await?;
    Ok(())
}

/// One case entering (`delta` 1) or leaving (-1) `state`: the state
/// counters and the backlog rollup (by the case's creation hour) together,
/// so no state change can update one and forget the other.
pub async fn bump_count(
    tx: &mut Tx,
    shard: i64,
    state: State,
    created_at: i64,
    delta: i64,
) -> Result<(), sqlx::Error> {
    for s in count_stmts(shard, state, created_at, delta) {
        s.execute(tx).await?;
    }
    Ok(())
}

/// `bump_count` as statements for a `Batch`.
pub fn count_stmts(shard: i64, state: State, created_at: i64, delta: i64) -> Vec<Stmt> {
    let mut out: Vec<Stmt> = super::metrics::open_stmt(shard, state, created_at, delta)
        .into_iter()
        .collect();
    out.push(state_count_stmt(shard, state, delta));
    out
}

fn state_count_stmt(shard: i64, state: State, delta: i64) -> Stmt {
    Stmt::new(
        "INSERT INTO state_counts (state, shard, n) VALUES ($1, $2, $3) \
         ON CONFLICT (state, shard) DO UPDATE SET n = state_counts.n + $3",
    )
    .text(state.as_str())
    .int(shard)
    .int(delta)
}

/// Cases per state: the sum of each state's counter shards.
pub async fn state_counts(pool: &AnyPool) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows = sqlx::query_as::<_, (String, i64)>(
        "SELECT state, CAST(SUM(n) AS BIGINT) FROM state_counts GROUP BY state",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// One line of a review queue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueueRow {
    pub scan_id: String,
    pub state: String,
    pub integrator_name: String,
    pub country_id: Option<String>,
    pub doc_type: Option<String>,
    pub document: String,
    pub failing_validations: String,
    pub facial_matching_score: Option<f64>,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<i64>,
    pub created_at: i64,
    /// The integrator's review target in hours, if it set one.
    pub sla_hours: Option<i64>,
    /// The decision, for exports of decided cases.
    pub agent: Option<String>,
    pub verification_result: Option<String>,
    pub rejection_reason: Option<String>,
    pub comment: Option<String>,
    pub verification_time: Option<i64>,
}

impl QueueRow {
    pub fn document(&self) -> Result<Document, CorruptRow> {
        decode_document(&self.scan_id, &self.document)
    }

    /// An open case waiting longer than its integrator's review target.
    pub fn overdue(&self, state: State, now: i64) -> bool {
        !state.is_final()
            && self
                .sla_hours
                .is_some_and(|h| self.created_at + h * 3_600_000 < now)
    }
}

/// The smallest string above every string starting with the hex prefix
/// `p`: its last digit raised by one (`0c87` -> `0c88`, `9` -> `a`, `f` ->
/// `g`). Digits and letters only, so the bound holds under any collation
/// (locale collations skip punctuation such as `:` at first level).
fn raise_last(p: &str) -> String {
    let mut chars: Vec<char> = p.chars().collect();
    let raised = match chars.pop() {
        Some('9') => 'a',
        Some(c @ ('0'..='8' | 'a'..='f')) => char::from(c as u8 + 1),
        // Not reached: the prefix is hex and ends in a digit (domain::queue).
        _ => 'g',
    };
    chars.push(raised);
    chars.into_iter().collect()
}

/// One index walk of a search: the union of the newest rows of each is
/// cut to the page.
enum Branch {
    /// Cases matching a condition on `p` (a document number, a scanId
    /// range, or a state walked newest first with word probes).
    Rows(String),
    /// The cases in one key range of a word table, walked newest first as
    /// `w`: `table` is `process_words` or `process_word_pairs`, `key` fixes
    /// the key's leading columns, `checks` (each ` AND …`) tests the other
    /// search words on the entry.
    Keyed {
        table: &'static str,
        key: String,
        checks: String,
    },
}

/// `%`, `_` and the escape itself taken literally in a LIKE pattern.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// "The case holds a word in [lo, hi)": one seek in process_words'
/// (scan_id, word) index, no case row read (the state walk's test).
struct Probe {
    lo: String,
    hi: String,
}

impl Probe {
    fn new(b: &mut Binds, prefix: &str) -> Probe {
        Probe {
            lo: b.push(Bind::Text(prefix.to_string())),
            hi: b.push(Bind::Text(format!("{prefix}\u{10FFFF}"))),
        }
    }

    fn on(&self, t: &str) -> String {
        format!(
            "EXISTS (SELECT 1 FROM process_words x WHERE x.scan_id = {t}.scan_id AND x.word >= {} AND x.word < {})",
            self.lo, self.hi
        )
    }
}

/// The most indexed words one search word may stand for (its completions)
/// before the search walks the states newest first instead: such a prefix
/// is so short that matching cases are dense, so the walk stops soon.
const MAX_COMPLETIONS: usize = 64;

/// The most branches a search of two or more words may read from the
/// pair table (the product of two words' completions); beyond it one word
/// drives instead (see [`name_branches`]).
const MAX_PAIR_BRANCHES: usize = 16;

/// The branches finding cases where every search word starts a word of the
/// names. No branch at all when some word has no completion. Two words
/// whose completions make at most [`MAX_PAIR_BRANCHES`] pairs are looked up
/// in the pair table (see [`pair_branches`]). Otherwise one word drives
/// (the one with the fewest completions, then the longest): a branch per
/// completion, walked newest first, testing the other words.
async fn name_branches(
    pool: &AnyPool,
    b: &mut Binds,
    words: &[String],
) -> Result<Vec<Branch>, sqlx::Error> {
    let completions = super::search_words::starting_with(pool, words, MAX_COMPLETIONS + 1).await?;
    if completions.iter().any(Vec::is_empty) {
        return Ok(Vec::new());
    }
    if let Some((i, j)) = best_pair(&completions) {
        return Ok(pair_branches(b, words, &completions, (i, j)));
    }
    let Some(driver) = (0..words.len()).min_by_key(|&i| {
        (
            completions[i].len(),
            std::cmp::Reverse(words[i].chars().count()),
        )
    }) else {
        return Ok(Vec::new());
    };
    if completions[driver].len() > MAX_COMPLETIONS {
        let probes: Vec<Probe> = words.iter().map(|w| Probe::new(b, w)).collect();
        let all: Vec<String> = probes.iter().map(|pr| pr.on("p")).collect();
        let all = all.join(" AND ");
        return Ok(State::ALL
            .iter()
            .map(|s| {
                Branch::Rows(format!(
                    "p.state = {} AND {all}",
                    b.push(Bind::Text(s.as_str().into()))
                ))
            })
            .collect());
    }
    // Bound once, shared by every branch: " maria garcia" holds a word
    // starting "gar" exactly when it matches "% gar%".
    let checks: String = (0..words.len())
        .filter(|&i| i != driver)
        .map(|i| {
            let pattern = b.push(Bind::Text(format!("% {}%", like_escape(&words[i]))));
            format!(" AND w.all_words LIKE {pattern} ESCAPE '\\'")
        })
        .collect();
    Ok(completions[driver]
        .iter()
        .map(|word| Branch::Keyed {
            table: "process_words",
            key: format!("w.word = {}", b.push(Bind::Text(word.clone()))),
            checks: checks.clone(),
        })
        .collect())
}

/// The two search words whose completions make the fewest pairs, if
/// those are at most [`MAX_PAIR_BRANCHES`].
fn best_pair(completions: &[Vec<String>]) -> Option<(usize, usize)> {
    let n = completions.len();
    (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .map(|(i, j)| (completions[i].len() * completions[j].len(), i, j))
        .filter(|&(pairs, ..)| pairs <= MAX_PAIR_BRANCHES)
        .min()
        .map(|(_, i, j)| (i, j))
}

/// Search words `i` and `j` looked up in the pair table: a branch per pair
/// of their completions (one key each, newest first); a completion of
/// both is one word, looked up in the word table. The cases of too many
/// words to pair are walked in the overflow key and tested word by word.
/// Further search words are tested on each entry.
fn pair_branches(
    b: &mut Binds,
    words: &[String],
    completions: &[Vec<String>],
    (i, j): (usize, usize),
) -> Vec<Branch> {
    let checks: String = (0..words.len())
        .filter(|&k| k != i && k != j)
        .map(|k| format!(" AND {}", Probe::new(b, &words[k]).on("w")))
        .collect();
    let mut keys = std::collections::BTreeSet::new();
    for x in &completions[i] {
        for y in &completions[j] {
            keys.insert(if x <= y { (x, y) } else { (y, x) });
        }
    }
    let mut out: Vec<Branch> = keys
        .into_iter()
        .map(|(x, y)| {
            if x == y {
                Branch::Keyed {
                    table: "process_words",
                    key: format!("w.word = {}", b.push(Bind::Text(x.clone()))),
                    checks: checks.clone(),
                }
            } else {
                Branch::Keyed {
                    table: "process_word_pairs",
                    key: format!(
                        "w.first = {} AND w.second = {}",
                        b.push(Bind::Text(x.clone())),
                        b.push(Bind::Text(y.clone()))
                    ),
                    checks: checks.clone(),
                }
            }
        })
        .collect();
    let both = format!(
        " AND {} AND {}",
        Probe::new(b, &words[i]).on("w"),
        Probe::new(b, &words[j]).on("w")
    );
    out.push(Branch::Keyed {
        table: "process_word_pairs",
        key: "w.first = '' AND w.second = ''".into(),
        checks: format!("{both}{checks}"),
    });
    out
}

/// A page of the queue. Keyset pagination on (created_at, scan_id): a page
/// 10,000 rows deep costs the same as the first one.
pub async fn queue(
    pool: &AnyPool,
    f: &QueueFilter,
    now: i64,
    claim_cutoff: i64,
    limit: i64,
) -> Result<Vec<QueueRow>, sqlx::Error> {
    let mut b = Binds::default();
    let mut wh: Vec<String> = Vec::new();
    let mut text: Option<Vec<Branch>> = None;
    // A search spans every state: a reviewer looking for a person should find
    // them wherever their case is.
    let ascending = match &f.search {
        None => {
            wh.push(format!(
                "p.state = {}",
                b.push(Bind::Text(f.state.as_str().into()))
            ));
            f.sort != Sort::Newest
        }
        Some(Search::ScanId(id)) => {
            wh.push(format!("p.scan_id = {}", b.push(Bind::Text(id.clone()))));
            false
        }
        Some(Search::Text { folded, upper }) => {
            let mut branches = vec![Branch::Rows(format!(
                "p.document_number = {}",
                b.push(Bind::Text(upper.clone()))
            ))];
            if !folded.is_empty() {
                branches.extend(name_branches(pool, &mut b, std::slice::from_ref(folded)).await?);
            }
            text = Some(branches);
            false
        }
        Some(Search::Words(words)) => {
            let branches = name_branches(pool, &mut b, words).await?;
            if branches.is_empty() {
                // Some word starts no indexed name at all.
                return Ok(Vec::new());
            }
            text = Some(branches);
            false
        }
        Some(Search::ScanIdPrefix { prefix, upper }) => {
            // The range uses the primary key; its upper bound is the prefix
            // with its last character raised, which orders correctly under
            // any collation (hex digits and letters, never past them). The
            // LIKE keeps the match exact.
            let lo = b.push(Bind::Text(prefix.clone()));
            let hi = b.push(Bind::Text(raise_last(prefix)));
            let like = b.push(Bind::Text(format!("{prefix}%")));
            let num = b.push(Bind::Text(upper.clone()));
            text = Some(vec![
                Branch::Rows(format!(
                    "p.scan_id >= {lo} AND p.scan_id < {hi} AND p.scan_id LIKE {like}"
                )),
                Branch::Rows(format!("p.document_number = {num}")),
            ]);
            false
        }
    };
    if let Some(i) = &f.integrator {
        wh.push(format!(
            "p.integrator_id = {}",
            b.push(Bind::Text(i.clone()))
        ));
    }
    if let Some(c) = &f.country {
        wh.push(format!("p.country_id = {}", b.push(Bind::Text(c.clone()))));
    }
    if let Some(d) = &f.doc_type {
        wh.push(format!("p.doc_type = {}", b.push(Bind::Text(d.clone()))));
    }
    if let Some(ms) = f.from_ms {
        wh.push(format!("p.created_at >= {}", b.push(Bind::Int(ms))));
    }
    if let Some(ms) = f.to_ms {
        wh.push(format!("p.created_at < {}", b.push(Bind::Int(ms))));
    }
    match &f.assignee {
        None => {}
        Some(Assignee::Unassigned) => wh.push(format!(
            "(p.claimed_by IS NULL OR p.claimed_at < {})",
            b.push(Bind::Int(claim_cutoff))
        )),
        Some(Assignee::User(u)) => {
            let u = b.push(Bind::Text(u.clone()));
            let c = b.push(Bind::Int(claim_cutoff));
            wh.push(format!("(p.claimed_by = {u} AND p.claimed_at >= {c})"));
        }
    }
    if let Some(v) = &f.failing {
        wh.push(format!(
            "p.failing_validations LIKE {}",
            b.push(Bind::Text(format!("%,{v},%")))
        ));
    }
    if let Some(s) = f.score_min {
        wh.push(format!(
            "p.facial_matching_score >= {}",
            b.push(Bind::Real(s))
        ));
    }
    if let Some(s) = f.score_max {
        wh.push(format!(
            "p.facial_matching_score <= {}",
            b.push(Bind::Real(s))
        ));
    }
    if f.overdue {
        // Past the integrator's review target; integrators without one have
        // no overdue cases.
        wh.push(format!(
            "p.created_at + (SELECT sla_hours FROM integrators WHERE id = p.integrator_id) * 3600000 < {}",
            b.push(Bind::Int(now))
        ));
    }
    // Sorting by score orders on the score first (none counts as -1, so a
    // case without one is looked at first), then the usual keyset.
    let by_score = f.sort == Sort::LowestScore && f.search.is_none();
    // (created_at, scan_id) of the previous page's last row.
    let mut after: Option<(String, String)> = None;
    if let Some(c) = &f.after {
        let at = b.push(Bind::Int(c.created_at));
        let id = b.push(Bind::Text(c.scan_id.clone()));
        let op = if ascending { ">" } else { "<" };
        match c.score {
            Some(sc) if by_score => {
                let sc = b.push(Bind::Real(sc));
                wh.push(format!(
                    "(COALESCE(p.facial_matching_score, -1), p.created_at, p.scan_id) {op} ({sc}, {at}, {id})"
                ));
            }
            _ if text.is_some() => after = Some((at, id)),
            _ => wh.push(format!("(p.created_at, p.scan_id) {op} ({at}, {id})")),
        }
    }
    let dir = if ascending { "ASC" } else { "DESC" };
    let score_order = if by_score {
        format!("COALESCE(p.facial_matching_score, -1) {dir}, ")
    } else {
        String::new()
    };
    let lim = b.push(Bind::Int(limit));
    let filter = match text {
        None => wh.join(" AND "),
        // A name prefix can match tens of thousands of cases. Each branch
        // walks one index range newest first and stops at a page, the
        // newest page is picked from those narrow tuples (DISTINCT: a case
        // found by two branches counts once), and only that page is read
        // from the table. UNION ALL under DISTINCT rather than UNION:
        // every branch is already in page order, so PostgreSQL merges them
        // (Merge Append, then Unique) and stops once it has a page, a few
        // entries into each branch; UNION hashed a full page of every
        // branch first. A two-word search of eleven branches at 1M cases
        // ran in 0.4-0.7 ms instead of 1.2-1.3 (EXPLAIN ANALYZE, median of
        // 50). SQLite answers both forms alike (sqlite3 shell, 100k).
        Some(branches) => {
            debug_assert!(!ascending, "a search lists newest first");
            let rest: String = wh.iter().map(|w| format!(" AND {w}")).collect();
            let page = |t: &str| match &after {
                Some((at, id)) => format!(" AND ({t}.created_at, {t}.scan_id) < ({at}, {id})"),
                None => String::new(),
            };
            let union: Vec<String> = branches
                .iter()
                .enumerate()
                .map(|(i, br)| {
                    let inner = match br {
                        Branch::Rows(c) => format!(
                            "SELECT p.scan_id, p.created_at FROM processes p WHERE {c}{}{rest} \
                             ORDER BY p.created_at DESC, p.scan_id DESC LIMIT {lim}",
                            page("p")
                        ),
                        Branch::Keyed { table, key, checks } => {
                            let join = if rest.is_empty() {
                                ""
                            } else {
                                " JOIN processes p ON p.scan_id = w.scan_id"
                            };
                            format!(
                                "SELECT w.scan_id, w.created_at FROM {table} w{join} \
                                 WHERE {key}{}{checks}{rest} \
                                 ORDER BY w.created_at DESC, w.scan_id DESC LIMIT {lim}",
                                page("w")
                            )
                        }
                    };
                    format!("SELECT scan_id, created_at FROM ({inner}) b{i}")
                })
                .collect();
            format!(
                "p.scan_id IN (SELECT m.scan_id FROM (SELECT DISTINCT u.scan_id, u.created_at FROM ({}) u \
                 ORDER BY u.created_at {dir}, u.scan_id {dir} LIMIT {lim}) m)",
                union.join(" UNION ALL ")
            )
        }
    };
    let sql = format!(
        "SELECT p.scan_id, p.state, i.name AS integrator_name, p.country_id, p.doc_type, p.document, \
         p.failing_validations, p.facial_matching_score, p.claimed_by, p.claimed_at, p.created_at, i.sla_hours, \
         p.agent, p.verification_result, p.rejection_reason, p.comment, p.verification_time \
         FROM processes p JOIN integrators i ON i.id = p.integrator_id \
         WHERE {filter} ORDER BY {score_order}p.created_at {dir}, p.scan_id {dir} LIMIT {lim}"
    );
    b.apply(sqlx::query(&sql))
        .try_map(|row: sqlx::any::AnyRow| <QueueRow as sqlx::FromRow<_>>::from_row(&row))
        .fetch_all(pool)
        .await
}

/// The cases just after and just before `$1` in its state, in
/// (created_at, scan_id) order: one step each way along the (state,
/// created_at, scan_id) index. Which is "next" depends on the state's
/// queue order (see `case_file::CaseFile::next`).
pub(super) const NEIGHBOURS: &str = "SELECT \
     (SELECT n.scan_id FROM processes n WHERE n.state = p.state \
       AND (n.created_at, n.scan_id) > (p.created_at, p.scan_id) \
       ORDER BY n.created_at ASC, n.scan_id ASC LIMIT 1) AS later, \
     (SELECT n.scan_id FROM processes n WHERE n.state = p.state \
       AND (n.created_at, n.scan_id) < (p.created_at, p.scan_id) \
       ORDER BY n.created_at DESC, n.scan_id DESC LIMIT 1) AS earlier \
     FROM processes p WHERE p.scan_id = $1";

/// What the queue page shows around its rows: the tab counts, the Mine
/// count, the filter drop-downs' countries and integrators.
#[derive(Debug, Default)]
pub struct QueueChrome {
    /// Cases per state, the sum of its `state_counts` shards.
    pub counts: HashMap<String, i64>,
    /// Cases `user` holds a live claim on (the Mine tab).
    pub mine: i64,
    /// Countries that have cases, in order.
    pub countries: Vec<String>,
    /// Integrators by name.
    pub integrators: Vec<IntegratorChoice>,
    /// Active desk users by e-mail, when asked for (the supervisor's
    /// assign drop-down).
    pub assignees: Vec<String>,
}

/// The queue page's chrome in one statement. Five small reads, each its
/// own round trip, cost the queue page more than its rows did: on
/// PostgreSQL a third of serve's CPU went to send() at 1M cases. The
/// union tags each row with what it is; a tag nobody wrote is a
/// corrupt answer, not something to skip. `with_assignees` adds the
/// active desk users (a bound flag, so both forms share one prepared
/// statement).
pub async fn queue_chrome(
    pool: &AnyPool,
    user: &str,
    claim_cutoff: i64,
    with_assignees: bool,
) -> Result<QueueChrome, sqlx::Error> {
    let rows = sqlx::query_as::<_, (String, String, String, i64, i64)>(
        "SELECT kind, k, label, n, at FROM ( \
           SELECT 'state' AS kind, state AS k, '' AS label, CAST(SUM(n) AS BIGINT) AS n, CAST(0 AS BIGINT) AS at \
             FROM state_counts GROUP BY state \
           UNION ALL SELECT 'mine', '', '', COUNT(*), CAST(0 AS BIGINT) FROM processes \
             WHERE claimed_by = $1 AND claimed_at >= $2 \
           UNION ALL SELECT 'country', country_id, '', CAST(0 AS BIGINT), CAST(0 AS BIGINT) FROM process_countries \
           UNION ALL SELECT 'integrator', id, name, enabled, created_at FROM integrators \
           UNION ALL SELECT 'user', email, '', CAST(0 AS BIGINT), CAST(0 AS BIGINT) FROM users \
             WHERE active = 1 AND $3 = 1 \
         ) c ORDER BY kind, label, k",
    )
    .bind(user)
    .bind(claim_cutoff)
    .bind(i64::from(with_assignees))
    .fetch_all(pool)
    .await?;
    let mut chrome = QueueChrome::default();
    for (kind, k, label, n, at) in rows {
        match kind.as_str() {
            "state" => {
                chrome.counts.insert(k, n);
            }
            "mine" => chrome.mine = n,
            "country" => chrome.countries.push(k),
            "integrator" => chrome.integrators.push(IntegratorChoice {
                id: k,
                name: label,
                enabled: n,
                created_at: at,
            }),
            "user" => chrome.assignees.push(k),
            other => {
                return Err(sqlx::Error::Decode(
                    format!("queue chrome: unknown row kind {other:?}").into(),
                ))
            }
        }
    }
    Ok(chrome)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EvidenceRow {
    pub id: String,
    pub scan_id: String,
    pub kind: String,
    pub evidence_type: String,
    pub sha256: String,
    pub size: i64,
    pub media_type: String,
    pub created_at: i64,
    /// Pixel size of images (None for other kinds, or legacy rows).
    pub width: Option<i64>,
    pub height: Option<i64>,
}

pub async fn insert_evidence(tx: &mut Tx, e: &EvidenceRow) -> Result<(), sqlx::Error> {
    evidence_stmt(e).execute(tx).await.map(drop)
}

fn evidence_stmt(e: &EvidenceRow) -> Stmt {
    Stmt::new(
        "INSERT INTO evidence (id, scan_id, kind, evidence_type, sha256, size, media_type, created_at, width, height) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .text(e.id.clone())
    .text(e.scan_id.clone())
    .text(e.kind.clone())
    .text(e.evidence_type.clone())
    .text(e.sha256.clone())
    .int(e.size)
    .text(e.media_type.clone())
    .int(e.created_at)
    .opt_int(e.width)
    .opt_int(e.height)
}

pub(super) const EVIDENCE_FOR: &str = "SELECT id, scan_id, kind, evidence_type, sha256, size, media_type, created_at, width, height FROM evidence \
     WHERE scan_id = $1 ORDER BY kind, evidence_type";

pub async fn evidence_for(pool: &AnyPool, scan_id: &str) -> Result<Vec<EvidenceRow>, sqlx::Error> {
    sqlx::query_as::<_, EvidenceRow>(EVIDENCE_FOR)
        .bind(scan_id)
        .fetch_all(pool)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FieldEditRow {
    pub id: String,
    pub scan_id: String,
    pub field: String,
    pub original_value: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub actor: String,
    pub reason: String,
    pub at: i64,
}

pub async fn insert_field_edit(tx: &mut Tx, e: &FieldEditRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO field_edits (id, scan_id, field, original_value, old_value, new_value, actor, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(e.id.clone())
    .bind(e.scan_id.clone())
    .bind(e.field.clone())
    .bind(e.original_value.clone())
    .bind(e.old_value.clone())
    .bind(e.new_value.clone())
    .bind(e.actor.clone())
    .bind(e.reason.clone())
    .bind(e.at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) const FIELD_EDITS_FOR: &str =
    "SELECT id, scan_id, field, original_value, old_value, new_value, actor, reason, at \
     FROM field_edits WHERE scan_id = $1 ORDER BY at, id";

pub async fn field_edits_for(
    pool: &AnyPool,
    scan_id: &str,
) -> Result<Vec<FieldEditRow>, sqlx::Error> {
    sqlx::query_as::<_, FieldEditRow>(FIELD_EDITS_FOR)
        .bind(scan_id)
        .fetch_all(pool)
        .await
}

/// The value first extracted for a field: the `original_value` of its first
/// edit, if it was ever edited.
pub async fn original_value(
    tx: &mut Tx,
    scan_id: &str,
    field: &str,
) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar::<_, Option<String>>(
        "SELECT original_value FROM field_edits WHERE scan_id = $1 AND field = $2 ORDER BY at, id LIMIT 1",
    )
    .bind(scan_id)
    .bind(field)
    .fetch_optional(&mut **tx)
    .await
}

/// Writes an edited document if the process is still at `version`.
pub async fn update_document(
    tx: &mut Tx,
    scan_id: &str,
    version: i64,
    doc: &Document,
    validations: &str,
    failing: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let (name, surname, number) = doc.search_keys();
    let score = |s: &Option<String>| s.as_deref().and_then(|v| v.trim().parse::<f64>().ok());
    let json = serde_json::to_string(doc).unwrap_or_else(|_| "{}".into());
    let q = sqlx::query(
        "UPDATE processes SET document = $1, validations = $2, failing_validations = $3, \
         facial_matching_score = $4, facial_liveness_score = $5, search_name = $6, search_surname = $7, \
         document_number = $8, updated_at = $9, version = version + 1 \
         WHERE scan_id = $10 AND version = $11",
    )
    .bind(json)
    .bind(validations)
    .bind(failing);
    let q = super::bind_opt_f64(q, score(&doc.facial_matching_score));
    let q = super::bind_opt_f64(q, score(&doc.facial_liveness_score));
    let n = q
        .bind(name)
        .bind(surname)
        .bind(number)
        .bind(now)
        .bind(scan_id)
        .bind(version)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if n == 1 {
        super::search_words::replace(tx, scan_id, &doc.search_words()).await?;
    }
    Ok(n)
}

/// The state change of a decision. Guarded by version and source state, so
/// of two racing decisions exactly one updates a row.
#[derive(Debug, Clone)]
pub struct Transition<'a> {
    pub scan_id: &'a str,
    pub version: i64,
    pub from: State,
    pub to: State,
    pub agent: &'a str,
    pub verification_result: Option<&'a str>,
    pub rejection_reason: Option<&'a str>,
    pub comment: Option<&'a str>,
    pub now: i64,
}

/// What a guarded transition did.
#[derive(Debug)]
pub struct Transitioned {
    /// The UPDATE matched the version and state the decision was made on.
    pub changed: bool,
    /// On SQLite, the audit chain's last entry as the same statement read
    /// it (`Some(None)`: the chain is empty), so the decision's own entry
    /// needs no read of its own: one hop less while the single writer is
    /// held (see `audit::Work::head_read`). `None` on PostgreSQL, where the
    /// head is read under the audit lock, which is taken last.
    pub audit_head: Option<super::audit::Head>,
}

const TRANSITION: &str = "UPDATE processes SET state = $1, version = version + 1, agent = $2, \
     verification_result = COALESCE($3, verification_result), \
     rejection_reason = COALESCE($4, rejection_reason), comment = COALESCE($5, comment), \
     verification_time = CASE WHEN $6 = 1 THEN $7 ELSE verification_time END, \
     claimed_by = CASE WHEN $6 = 1 THEN NULL ELSE claimed_by END, \
     claimed_at = CASE WHEN $6 = 1 THEN NULL ELSE claimed_at END, updated_at = $7 \
     WHERE scan_id = $8 AND version = $9 AND state = $10";

/// `TRANSITION` returning the audit chain's head (SQLite), built once.
static TRANSITION_RETURNING_HEAD: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{TRANSITION} RETURNING {}", super::audit::HEAD_COLUMNS));

/// The same, beginning the transaction (see `begin_transition`).
static BEGIN_TRANSITION_RETURNING_HEAD: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        format!(
            "{}{}",
            super::writer::BEGIN_LINE,
            *TRANSITION_RETURNING_HEAD
        )
    });

fn bind_transition<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    t: &Transition<'q>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(t.to.as_str())
        .bind(t.agent)
        .bind(t.verification_result)
        .bind(t.rejection_reason)
        .bind(t.comment)
        .bind(i64::from(t.to.is_final()))
        .bind(t.now)
        .bind(t.scan_id)
        .bind(t.version)
        .bind(t.from.as_str())
}

/// What `TRANSITION_RETURNING_HEAD` answered: a row only when the UPDATE
/// matched; the head's two columns are both NULL when the chain is empty.
fn transitioned_sqlite(row: Option<&sqlx::any::AnyRow>) -> Result<Transitioned, sqlx::Error> {
    Ok(match row {
        None => Transitioned {
            changed: false,
            audit_head: None,
        },
        Some(row) => Transitioned {
            changed: true,
            audit_head: Some(super::audit::head_of(row)?),
        },
    })
}

/// The transition as a statement of a transaction already begun (after
/// an edit, or a four-eyes proposal's close).
pub async fn transition(
    tx: &mut Tx,
    backend: super::Backend,
    t: &Transition<'_>,
) -> Result<Transitioned, sqlx::Error> {
    match backend {
        super::Backend::Postgres => {
            let n = bind_transition(sqlx::query(TRANSITION), t)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            Ok(Transitioned {
                changed: n == 1,
                audit_head: None,
            })
        }
        super::Backend::Sqlite => {
            let row = bind_transition(sqlx::query(&TRANSITION_RETURNING_HEAD), t)
                .fetch_optional(&mut **tx)
                .await?;
            transitioned_sqlite(row.as_ref())
        }
    }
}

/// Begins the decision's transaction with the transition as its first
/// statement: on SQLite one round trip to the writer for both (see
/// `writer::Tx::begin_with`).
pub async fn begin_transition(
    db: &super::Db,
    t: &Transition<'_>,
) -> Result<(Tx, Transitioned), sqlx::Error> {
    match db.backend {
        super::Backend::Postgres => {
            let mut tx = db.begin().await?;
            let moved = transition(&mut tx, db.backend, t).await?;
            Ok((tx, moved))
        }
        super::Backend::Sqlite => {
            let (tx, rows) = Tx::begin_with(db.write(), &BEGIN_TRANSITION_RETURNING_HEAD, |q| {
                bind_transition(q, t)
            })
            .await?;
            if rows.len() > 1 {
                return Err(sqlx::Error::Protocol(format!(
                    "a transition of one case changed {} rows",
                    rows.len()
                )));
            }
            Ok((tx, transitioned_sqlite(rows.first())?))
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DecisionRow {
    pub id: String,
    pub scan_id: String,
    pub decision: String,
    pub from_state: String,
    pub to_state: String,
    pub actor: String,
    pub reason: Option<String>,
    pub comment: Option<String>,
    pub at: i64,
}

/// The decision's row, for a `Batch`.
pub fn decision_stmt(d: &DecisionRow) -> Stmt {
    Stmt::new(
        "INSERT INTO decisions (id, scan_id, decision, from_state, to_state, actor, reason, comment, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .text(d.id.clone())
    .text(d.scan_id.clone())
    .text(d.decision.clone())
    .text(d.from_state.clone())
    .text(d.to_state.clone())
    .text(d.actor.clone())
    .opt_text(d.reason.clone())
    .opt_text(d.comment.clone())
    .int(d.at)
}

pub async fn insert_decision(tx: &mut Tx, d: &DecisionRow) -> Result<(), sqlx::Error> {
    decision_stmt(d).execute(tx).await.map(drop)
}

pub async fn decisions_for(pool: &AnyPool, scan_id: &str) -> Result<Vec<DecisionRow>, sqlx::Error> {
    sqlx::query_as::<_, DecisionRow>(
        "SELECT id, scan_id, decision, from_state, to_state, actor, reason, comment, at FROM decisions \
         WHERE scan_id = $1 ORDER BY at, id",
    )
    .bind(scan_id)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoteRow {
    pub id: String,
    pub scan_id: String,
    pub author: String,
    pub body: String,
    pub at: i64,
}

pub async fn insert_note(tx: &mut Tx, n: &NoteRow) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO notes (id, scan_id, author, body, at) VALUES ($1, $2, $3, $4, $5)")
        .bind(n.id.clone())
        .bind(n.scan_id.clone())
        .bind(n.author.clone())
        .bind(n.body.clone())
        .bind(n.at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) const NOTES_FOR: &str =
    "SELECT id, scan_id, author, body, at FROM notes WHERE scan_id = $1 ORDER BY at, id";

pub async fn notes_for(pool: &AnyPool, scan_id: &str) -> Result<Vec<NoteRow>, sqlx::Error> {
    sqlx::query_as::<_, NoteRow>(NOTES_FOR)
        .bind(scan_id)
        .fetch_all(pool)
        .await
}

/// Takes or refreshes the claim unless someone else holds a live one.
pub async fn claim(
    tx: &mut Tx,
    scan_id: &str,
    who: &str,
    now: i64,
    cutoff: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE processes SET claimed_by = $1, claimed_at = $2 WHERE scan_id = $3 \
         AND (claimed_by IS NULL OR claimed_by = $1 OR claimed_at < $4) \
         AND state NOT IN ('VERIFIED', 'NOT_VERIFIED')",
    )
    .bind(who)
    .bind(now)
    .bind(scan_id)
    .bind(cutoff)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Who holds a case's claim and its state, read inside the transaction
/// whose claim just failed (so it sees the winner's committed claim).
pub async fn claim_holder(
    tx: &mut Tx,
    scan_id: &str,
) -> Result<Option<(Option<String>, String)>, sqlx::Error> {
    sqlx::query_as::<_, (Option<String>, String)>(
        "SELECT claimed_by, state FROM processes WHERE scan_id = $1",
    )
    .bind(scan_id)
    .fetch_optional(&mut **tx)
    .await
}

pub async fn release(tx: &mut Tx, scan_id: &str) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE processes SET claimed_by = NULL, claimed_at = NULL WHERE scan_id = $1")
            .bind(scan_id)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}

/// Gives a case's claim to `to` (a supervisor's assignment), whoever held
/// it; never on a final case. 0 rows when the case is final or absent.
pub async fn assign(tx: &mut Tx, scan_id: &str, to: &str, now: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE processes SET claimed_by = $1, claimed_at = $2 WHERE scan_id = $3 \
         AND state NOT IN ('VERIFIED', 'NOT_VERIFIED')",
    )
    .bind(to)
    .bind(now)
    .bind(scan_id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Releases a claim only while `holder` still holds it (a bulk release
/// acts on what the supervisor saw, not on a claim taken since).
pub async fn release_held(tx: &mut Tx, scan_id: &str, holder: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE processes SET claimed_by = NULL, claimed_at = NULL WHERE scan_id = $1 AND claimed_by = $2",
    )
    .bind(scan_id)
    .bind(holder)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Stores the onboarding token's hash and the integrator's extra data.
pub async fn set_onboarding(
    tx: &mut Tx,
    scan_id: &str,
    token_hash: &str,
    extra: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE processes SET onboarding_token_hash = $1, verification_extra_data = $2 WHERE scan_id = $3")
        .bind(token_hash)
        .bind(extra)
        .bind(scan_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes a process; evidence, edits, notes and decisions go with it
/// (ON DELETE CASCADE). The audit log keeps its entries.
pub async fn delete(tx: &mut Tx, scan_id: &str) -> Result<u64, sqlx::Error> {
    // The word pairs have no foreign key (they have no index by case to
    // cascade through): they are found from the words and go first.
    super::search_words::remove(tx, scan_id).await?;
    Ok(sqlx::query("DELETE FROM processes WHERE scan_id = $1")
        .bind(scan_id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// Whether any evidence still points at a blob (demo cases share some).
/// Asked inside a transaction (PostgreSQL) or on SQLite's held writer
/// connection (see `evidence::forget`).
pub async fn blob_in_use(
    conn: &mut sqlx::AnyConnection,
    sha256: &str,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT (SELECT COUNT(*) FROM evidence WHERE sha256 = $1) \
                  + (SELECT COUNT(*) FROM replaced_evidence WHERE sha256 = $1)",
    )
    .bind(sha256)
    .fetch_one(conn)
    .await?
        > 0)
}

/// Makes `sha256` the process's report PDF (replacing any earlier one) and
/// its `pdfChecksum`.
pub async fn replace_report(
    tx: &mut Tx,
    scan_id: &str,
    sha256: &str,
    size: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    for s in replace_report_stmts(scan_id, sha256, size, now) {
        s.execute(tx).await?;
    }
    Ok(())
}

/// `replace_report` as statements for a `Batch`.
pub fn replace_report_stmts(scan_id: &str, sha256: &str, size: i64, now: i64) -> [Stmt; 3] {
    [
        Stmt::new(
            "DELETE FROM evidence WHERE scan_id = $1 AND kind = 'pdf' AND evidence_type = 'report'",
        )
        .text(scan_id),
        evidence_stmt(&EvidenceRow {
            id: uuid::Uuid::new_v4().to_string(),
            scan_id: scan_id.into(),
            kind: "pdf".into(),
            evidence_type: "report".into(),
            sha256: sha256.into(),
            size,
            media_type: "application/pdf".into(),
            created_at: now,
            width: None,
            height: None,
        }),
        Stmt::new("UPDATE processes SET pdf_checksum = $1 WHERE scan_id = $2")
            .text(sha256)
            .text(scan_id),
    ]
}

/// The applicant's submission: pre-review state → the integrator's
/// configured review state, with fresh validations. Guarded like every
/// transition by version and state.
#[allow(clippy::too_many_arguments)]
pub async fn submit(
    tx: &mut Tx,
    scan_id: &str,
    version: i64,
    from: State,
    to: State,
    validations: &str,
    failing: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE processes SET state = $1, version = version + 1, validations = $2, \
         failing_validations = $3, updated_at = $4 \
         WHERE scan_id = $5 AND version = $6 AND state = $7",
    )
    .bind(to.as_str())
    .bind(validations)
    .bind(failing)
    .bind(now)
    .bind(scan_id)
    .bind(version)
    .bind(from.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Replaces the evidence of one kind and type (a retaken photo) and moves a
/// `CREATED` process to `IN_PROGRESS`; returns whether the state moved and
/// the evidence rows it replaced (the caller keeps or forgets their bytes).
pub async fn put_evidence(
    tx: &mut Tx,
    e: &EvidenceRow,
) -> Result<(bool, Vec<EvidenceRow>), sqlx::Error> {
    let replaced: Vec<EvidenceRow> = sqlx::query_as::<_, EvidenceRow>(
        "SELECT id, scan_id, kind, evidence_type, sha256, size, media_type, created_at, width, height \
         FROM evidence WHERE scan_id = $1 AND kind = $2 AND evidence_type = $3",
    )
    .bind(e.scan_id.clone())
    .bind(e.kind.clone())
    .bind(e.evidence_type.clone())
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM evidence WHERE scan_id = $1 AND kind = $2 AND evidence_type = $3")
        .bind(e.scan_id.clone())
        .bind(e.kind.clone())
        .bind(e.evidence_type.clone())
        .execute(&mut **tx)
        .await?;
    insert_evidence(tx, e).await?;
    let moved = sqlx::query(
        "UPDATE processes SET state = 'IN_PROGRESS', version = version + 1, updated_at = $1 \
         WHERE scan_id = $2 AND state = 'CREATED'",
    )
    .bind(e.created_at)
    .bind(e.scan_id.clone())
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    Ok((moved, replaced))
}

/// How many pieces of evidence a process has received (audited uploads).
pub async fn upload_count(tx: &mut Tx, scan_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM audit_log WHERE scan_id = $1 AND action = 'evidence.add'",
    )
    .bind(scan_id)
    .fetch_one(&mut **tx)
    .await
}

/// The SHA-256 of a process's onboarding token, if it has one.
pub async fn onboarding_token_hash(
    pool: &AnyPool,
    scan_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT onboarding_token_hash FROM processes WHERE scan_id = $1",
    )
    .bind(scan_id)
    .fetch_optional(pool)
    .await?
    .flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The process read on the caller's thread (SQLite, `inline`) answers
    /// what the pool's read answers: the same row, the same evidence, the
    /// same absence, and the same refusal of a corrupt row.
    #[tokio::test]
    async fn the_inline_read_answers_as_the_pool_does() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let db = super::super::Db::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        db.migrate().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(db.inline().is_some(), "SQLite reads inline");
        let pool = super::super::Db {
            inline: None,
            ..db.clone()
        };
        let run = |sql: &'static str| {
            let db = db.clone();
            async move {
                sqlx::query(sql)
                    .execute(&db.write)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        };
        run("INSERT INTO integrators (id, name, enabled, created_at) VALUES ('i1', 'Acme', 1, 1)")
            .await;
        run("INSERT INTO processes (scan_id, integrator_id, state, document, claimed_by, claimed_at, \
             verification_time, created_at, updated_at) \
             VALUES ('a-1', 'i1', 'PENDING_VERIFICATION', '{\"name\":\"Núñez\"}', 'agent@x', 5, NULL, 2, 3)")
            .await;
        run(
            "INSERT INTO processes (scan_id, integrator_id, state, created_at, updated_at) \
             VALUES ('b-2', 'i1', 'VERIFIED', 4, 4)",
        )
        .await;
        run("INSERT INTO evidence (id, scan_id, kind, evidence_type, sha256, size, media_type, created_at) \
             VALUES ('e2', 'a-1', 'image', 'selfie', 'x', 1, 'image/jpeg', 1), \
                    ('e1', 'a-1', 'image', 'front', 'y', 1, 'image/jpeg', 1)")
            .await;
        for id in ["a-1", "b-2", "missing"] {
            let inline = get_with_evidence_names(&db, id)
                .await
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            let pooled = get_with_evidence_names(&pool, id)
                .await
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(format!("{inline:?}"), format!("{pooled:?}"), "{id}");
            assert_eq!(inline.is_some(), id != "missing", "{id}");
        }
        let (a, names) = get_with_evidence_names(&db, "a-1")
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("a-1 is there"));
        assert_eq!((a.claimed_at, a.verification_time), (Some(5), None));
        assert_eq!(a.document, "{\"name\":\"Núñez\"}");
        let kinds: Vec<_> = names.iter().map(|n| n.evidence_type.as_str()).collect();
        assert_eq!(kinds, ["front", "selfie"]);
        // A version that is not a number: both reads refuse the row.
        run("UPDATE processes SET version = 'two' WHERE scan_id = 'b-2'").await;
        assert!(get_with_evidence_names(&db, "b-2").await.is_err());
        assert!(get_with_evidence_names(&pool, "b-2").await.is_err());
        db.close().await;
    }
}
