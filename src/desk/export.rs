//! CSV export of a queue view, for supervisors and admins: the same filters
//! as the page, every matching case (not one page), decisions with their
//! reasons and reviewers. Streamed in keyset pages, so a million rows take
//! the memory of one page; audited before the first byte leaves.

use super::error::DeskError;
use crate::audit::{self, Event};
use crate::desk::session::DeskSession;
use crate::domain::queue::{Cursor, QueueFilter, QueueParams, Sort};
use crate::domain::{now_ms, rfc3339_ms, validation, Role, State};
use crate::state::AppState;
use crate::store::processes::{self as rows, QueueRow};
use actix_web::{web, HttpResponse};

/// Rows read per query while streaming.
const BATCH: i64 = 1000;

const HEADER: [&str; 19] = [
    "scanId",
    "state",
    "stateLabel",
    "integrator",
    "country",
    "docType",
    "name",
    "surname",
    "documentNumber",
    "failingValidations",
    "facialMatchingScore",
    "createdAt",
    "overdue",
    "claimedBy",
    "agent",
    "verificationResult",
    "rejectionReason",
    "comment",
    "verificationTime",
];

/// A spreadsheet reads a cell starting with `=`, `+`, `-`, `@` (or a tab or
/// carriage return that hides one) as a formula: such a cell is prefixed
/// with `'`, which spreadsheets show as text (OWASP's CSV injection advice).
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

fn line(r: &QueueRow, now: i64) -> Result<Vec<u8>, anyhow::Error> {
    let doc = r.document()?;
    let state: State = r
        .state
        .parse()
        .map_err(|e| anyhow::anyhow!("process {}: {e}", r.scan_id))?;
    let failing: Vec<&str> = r
        .failing_validations
        .split(',')
        .filter(|s| !s.is_empty())
        .map(validation::static_label)
        .collect();
    let overdue = r.overdue(state, now);
    let cells: [String; 19] = [
        r.scan_id.clone(),
        r.state.clone(),
        state.label().into(),
        r.integrator_name.clone(),
        r.country_id.clone().unwrap_or_default(),
        r.doc_type.clone().unwrap_or_default(),
        doc.name.clone().unwrap_or_default(),
        doc.surname.clone().unwrap_or_default(),
        doc.document_number.clone().unwrap_or_default(),
        failing.join("; "),
        r.facial_matching_score
            .map(|s| format!("{s:.2}"))
            .unwrap_or_default(),
        rfc3339_ms(r.created_at),
        if overdue { "yes".into() } else { String::new() },
        r.claimed_by.clone().unwrap_or_default(),
        r.agent.clone().unwrap_or_default(),
        r.verification_result.clone().unwrap_or_default(),
        r.rejection_reason.clone().unwrap_or_default(),
        r.comment.clone().unwrap_or_default(),
        r.verification_time.map(rfc3339_ms).unwrap_or_default(),
    ];
    record(cells.iter().map(|c| neutralise(c).into_owned()))
}

pub fn record<I, S>(cells: I) -> Result<Vec<u8>, anyhow::Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(cells)?;
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// `GET /desk/queue.csv?<the queue's own query>`.
#[tracing::instrument(skip_all)]
pub async fn queue_csv(
    state: web::Data<AppState>,
    session: DeskSession,
    params: web::Query<QueueParams>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Supervisor)?;
    let mut p = params.into_inner();
    p.after = None;
    let filter = QueueFilter::parse(&p).map_err(DeskError::BadRequest)?;
    let query = p.with(None, None);
    audit::record_now(
        &state.db,
        Event {
            actor: &session.email,
            action: "queue.export",
            scan_id: None,
            client_addr: &session.client_addr,
            detail: serde_json::json!({"query": query, "format": "csv"}),
        },
    )
    .await?;
    let now = now_ms();
    let cutoff = now - crate::domain::ms(state.settings.claim_idle);
    let name = format!(
        "kycdesk-{}-{}.csv",
        filter.state.as_str().to_lowercase(),
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    );
    let by_score = filter.sort == Sort::LowestScore && filter.search.is_none();
    let db = state.db.clone();
    let batches = futures_util::stream::try_unfold(Some(filter), move |next| {
        let db = db.clone();
        async move {
            let Some(mut filter) = next else {
                return Ok(None);
            };
            let batch = rows::queue(db.read(), &filter, now, cutoff, BATCH).await?;
            let mut chunk = Vec::new();
            for r in &batch {
                chunk.extend_from_slice(&line(r, now)?);
            }
            // A short batch is the last one; otherwise the next starts
            // after this one's last row (the queue's own keyset).
            let next = match (batch.last(), batch.len() as i64 == BATCH) {
                (Some(last), true) => {
                    filter.after = Some(Cursor {
                        score: by_score.then(|| last.facial_matching_score.unwrap_or(-1.0)),
                        created_at: last.created_at,
                        scan_id: last.scan_id.clone(),
                    });
                    Some(filter)
                }
                _ => None,
            };
            Ok(Some((chunk, next)))
        }
    });
    csv_download(&name, &HEADER, batches)
}

/// A CSV download: the header, then each chunk the batches yield. The body
/// is pulled as the client reads it, so memory stays at a batch whatever
/// the size. A failing batch cuts the download off (and is logged) rather
/// than ending it like a complete file.
pub fn csv_download<St>(name: &str, header: &[&str], batches: St) -> Result<HttpResponse, DeskError>
where
    St: futures_util::Stream<Item = Result<Vec<u8>, anyhow::Error>> + 'static,
{
    use futures_util::StreamExt;
    let header = record(header).map_err(DeskError::Internal)?;
    let body = futures_util::stream::once(async move { Ok(header) })
        .chain(batches)
        .map(|chunk| {
            chunk.map(web::Bytes::from).map_err(|e| {
                tracing::error!(error = ?e, "CSV export stopped");
                std::io::Error::other("the export stopped; see the server log")
            })
        });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "private, no-store"))
        .streaming(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in ["=1+1", "+1", "-2", "@SUM(A1)", "\t=x", "\r=x"] {
            assert!(neutralise(bad).starts_with('\''), "{bad}");
        }
        for ok in ["García", "1.5", "", "a=b"] {
            assert_eq!(neutralise(ok), ok);
        }
    }
}
