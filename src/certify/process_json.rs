//! The process as `getVerificationProcessData` returns it (SPEC section 2),
//! and as `process.json` of the certified zip: one renderer, so the archive
//! says exactly what the API says.
//! A typed struct, so the OpenAPI document describes exactly what is sent.

use crate::domain::{rfc3339_ms, Document, Validation};
use crate::store::processes::{EvidenceName, EvidenceRow, ProcessRow};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessData {
    pub scan_id: String,
    /// CREATED, IN_PROGRESS, PENDING_VALIDATION, PENDING_VERIFICATION, VERIFIED or NOT_VERIFIED.
    pub status: String,
    /// `OK` (accepted) or `KO` (rejected) once final.
    pub verification_result: Option<String>,
    pub license_id: Option<String>,
    /// Who decided: a desk user's e-mail or `integrator:<name>`.
    pub agent: Option<String>,
    pub document: Document,
    /// URLs of the images (`/mobbscan-agent/{id}/image/{imageType}`).
    pub images: Vec<String>,
    /// URLs of the recordings (`/mobbscan-agent/{id}/recording/{recordingType}`).
    pub recordings: Vec<String>,
    pub extra_parameters: Vec<Value>,
    pub extra_images: Vec<String>,
    /// Checks computed by kycdesk: name → pass / fail / unknown with a reason.
    pub validations: BTreeMap<String, Validation>,
    pub pdf_url: Option<String>,
    /// SHA-256 (hex) of the report PDF.
    pub pdf_checksum: Option<String>,
    pub rejection_reason: Option<String>,
    pub comment: Option<String>,
    /// RFC 3339.
    pub creation_time: String,
    /// RFC 3339, once final.
    pub verification_time: Option<String>,
    pub client_info: Option<String>,
    /// `/api/zip/{id}`, once final.
    pub certificated_zip_url: Option<String>,
    pub country_id: Option<String>,
    pub doc_type: Option<String>,
    pub doc_specific_type: Option<String>,
    pub redirect_url: Option<String>,
    #[schema(value_type = Object)]
    pub verification_extra_data: Value,
    /// The phone and e-mail the applicant confirmed by one-time code on the
    /// hosted page (when the integrator asks for it; kycdesk's addition to
    /// the reference).
    pub confirmed_contacts: Vec<ConfirmedContact>,
}

/// One phone or e-mail confirmed by code.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmedContact {
    /// `phone` or `email`.
    #[serde(rename = "type")]
    pub kind: String,
    /// E.164 phone (`+34600112233`) or lower-cased e-mail.
    pub value: String,
    /// RFC 3339.
    pub confirmed_at: String,
}

pub fn build(
    p: &ProcessRow,
    evidence: &[EvidenceName],
    base: &str,
) -> Result<ProcessData, crate::store::processes::CorruptRow> {
    let id = &p.scan_id;
    let urls = |kind: &str, seg: &str| -> Vec<String> {
        evidence
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| format!("{base}/mobbscan-agent/{id}/{seg}/{}", e.evidence_type))
            .collect()
    };
    let has_pdf = evidence.iter().any(|e| e.kind == "pdf");
    let is_final = p.state().is_ok_and(|s| s.is_final());
    Ok(ProcessData {
        scan_id: id.clone(),
        status: p.state.clone(),
        verification_result: p.verification_result.clone(),
        license_id: p.license_id.clone(),
        agent: p.agent.clone(),
        document: p.document()?,
        images: urls("image", "image"),
        recordings: urls("recording", "recording"),
        extra_parameters: p.extra_parameters()?,
        extra_images: urls("extraImage", "image"),
        validations: p.validations()?,
        pdf_url: has_pdf.then(|| format!("{base}/mobbscan-agent/api/pdf/{id}")),
        pdf_checksum: p.pdf_checksum.clone(),
        rejection_reason: p.rejection_reason.clone(),
        comment: p.comment.clone(),
        creation_time: rfc3339_ms(p.created_at),
        verification_time: p.verification_time.map(rfc3339_ms),
        client_info: p.client_info.clone(),
        certificated_zip_url: is_final.then(|| format!("{base}/api/zip/{id}")),
        country_id: p.country_id.clone(),
        doc_type: p.doc_type.clone(),
        doc_specific_type: p.doc_specific_type.clone(),
        redirect_url: p.redirect_url.clone(),
        verification_extra_data: p.verification_extra_data()?,
        confirmed_contacts: p
            .confirmed_contacts()?
            .into_iter()
            .map(|c| ConfirmedContact {
                kind: c.kind,
                value: c.value,
                confirmed_at: rfc3339_ms(c.at),
            })
            .collect(),
    })
}

/// The process JSON; a corrupt stored column is an error, not a blank field.
pub fn render(p: &ProcessRow, evidence: &[EvidenceRow], base: &str) -> anyhow::Result<Value> {
    let names: Vec<EvidenceName> = evidence.iter().map(EvidenceName::from).collect();
    Ok(serde_json::to_value(build(p, &names, base)?)?)
}
