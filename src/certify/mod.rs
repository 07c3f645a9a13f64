//! Documents kycdesk issues about a case: the report PDF, the certified zip
//! and the instance key that signs it.

pub mod process_json;
pub mod report;
pub mod signing;
pub mod zip;

use crate::domain::{fmt_ms, Document, State, Validation};
use crate::evidence::BlobStore;
use crate::store::processes::{EvidenceRow, ProcessRow};
use report::{Report, ReportImage};
use std::collections::BTreeMap;

/// The decision printed on a report issued at a final decision.
#[derive(Debug, Clone)]
pub struct DecisionLine {
    pub state: State,
    pub actor: String,
    pub at: i64,
    pub reason: Option<String>,
    pub comment: Option<String>,
}

/// The report PDF for a process: its fields, validations, decision (when
/// final) and the document and selfie images.
pub fn report_for(
    p: &ProcessRow,
    doc: &Document,
    validations: &BTreeMap<String, Validation>,
    evidence: &[EvidenceRow],
    blobs: &BlobStore,
    decision: Option<&DecisionLine>,
) -> Vec<u8> {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let mut lines = vec![
        ("scanId".to_string(), p.scan_id.clone()),
        ("Integrator".to_string(), p.integrator_name.clone()),
        (
            "State".to_string(),
            decision
                .map(|d| d.state.to_string())
                .unwrap_or_else(|| p.state.clone()),
        ),
        ("Created".to_string(), fmt_ms(p.created_at)),
        ("Name".to_string(), v(&doc.name)),
        ("Surname".to_string(), v(&doc.surname)),
        ("Document type".to_string(), v(&doc.document_type)),
        ("Document number".to_string(), v(&doc.document_number)),
        ("Personal number".to_string(), v(&doc.personal_number)),
        ("Nationality".to_string(), v(&doc.nationality)),
        ("Issuing state".to_string(), v(&doc.issuing_state)),
        ("Date of birth".to_string(), v(&doc.date_of_birth)),
        ("Date of expiry".to_string(), v(&doc.date_of_expiry)),
        ("Gender".to_string(), v(&doc.gender)),
        ("Address".to_string(), v(&doc.address)),
        (
            "Face match score".to_string(),
            v(&doc.facial_matching_score),
        ),
        ("Liveness score".to_string(), v(&doc.facial_liveness_score)),
        ("MRZ".to_string(), v(&doc.mrz)),
    ];
    for (k, val) in validations {
        lines.push((
            format!("Check {k}"),
            format!("{:?}: {}", val.result, val.reason),
        ));
    }
    if let Some(d) = decision {
        lines.push((
            "Decision".to_string(),
            format!("{} by {} at {}", d.state, d.actor, fmt_ms(d.at)),
        ));
        if let Some(r) = &d.reason {
            lines.push(("Rejection reason".to_string(), r.clone()));
        }
        if let Some(c) = d.comment.as_ref().filter(|c| d.reason.as_ref() != Some(*c)) {
            lines.push(("Comment".to_string(), c.clone()));
        }
    }
    let mut images = Vec::new();
    for (t, label) in [
        ("front", "Document front"),
        ("back", "Document back"),
        ("selfie", "Selfie"),
    ] {
        let Some(e) = evidence
            .iter()
            .find(|e| e.kind == "image" && e.evidence_type == t)
        else {
            continue;
        };
        match report_image(blobs, e, label) {
            Ok(img) => images.push(img),
            Err(err) => {
                tracing::warn!(scan_id = %p.scan_id, evidence = t, error = %err, "image left out of the report");
                lines.push((label.to_string(), format!("not shown: {err}")));
            }
        }
    }
    report::render(&Report {
        title: format!(
            "kycdesk process report - {} {}",
            v(&doc.name),
            v(&doc.surname)
        ),
        lines,
        images,
    })
}

/// Evidence images go into the PDF upright, without metadata, at most
/// 1200 pixels on a side (the original stays in the certified zip).
fn report_image(blobs: &BlobStore, e: &EvidenceRow, label: &str) -> anyhow::Result<ReportImage> {
    let bytes = blobs.get(&e.sha256)?;
    let (jpeg, width, height) = crate::evidence::intake::derived_jpeg(&bytes, 1200, 40_000_000)?;
    Ok(ReportImage {
        label: label.into(),
        jpeg,
        width,
        height,
    })
}

/// Renders a process's report and stages it in the blob store (off the
/// async threads: images are decoded and re-encoded). Returns the staged
/// PDF and its size; the caller places it in the transaction that records
/// it, so a transaction that fails leaves no file behind.
pub async fn stage_report(
    blobs: &BlobStore,
    p: &ProcessRow,
    doc: &Document,
    validations: &BTreeMap<String, Validation>,
    evidence: &[EvidenceRow],
    decision: Option<DecisionLine>,
) -> anyhow::Result<(crate::evidence::StagedBlob, i64)> {
    let (blobs, p, doc, validations, evidence) = (
        blobs.clone(),
        p.clone(),
        doc.clone(),
        validations.clone(),
        evidence.to_vec(),
    );
    tokio::task::spawn_blocking(move || {
        let pdf = report_for(&p, &doc, &validations, &evidence, &blobs, decision.as_ref());
        let staged = blobs.stage(&pdf)?;
        Ok((staged, pdf.len() as i64))
    })
    .await?
}
