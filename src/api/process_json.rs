//! The process as `getVerificationProcessData` returns it (SPEC section 2).

use crate::domain::rfc3339_ms;
use crate::store::processes::{EvidenceRow, ProcessRow};
use serde_json::{json, Value};

pub fn render(p: &ProcessRow, evidence: &[EvidenceRow], base: &str) -> Value {
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
    json!({
        "scanId": id,
        "status": p.state,
        "verificationResult": p.verification_result,
        "licenseId": p.license_id,
        "agent": p.agent,
        "document": serde_json::to_value(p.document()).unwrap_or(Value::Null),
        "images": urls("image", "image"),
        "recordings": urls("recording", "recording"),
        "extraParameters": serde_json::from_str::<Value>(&p.extra_parameters).unwrap_or(json!([])),
        "extraImages": urls("extraImage", "image"),
        "validations": serde_json::from_str::<Value>(&p.validations).unwrap_or(json!({})),
        "pdfUrl": has_pdf.then(|| format!("{base}/mobbscan-agent/api/pdf/{id}")),
        "pdfChecksum": p.pdf_checksum,
        "rejectionReason": p.rejection_reason,
        "comment": p.comment,
        "creationTime": rfc3339_ms(p.created_at),
        "verificationTime": p.verification_time.map(rfc3339_ms),
        "clientInfo": p.client_info,
        "certificatedZipUrl": is_final.then(|| format!("{base}/api/zip/{id}")),
        "countryId": p.country_id,
        "docType": p.doc_type,
        "docSpecificType": p.doc_specific_type,
        "redirectUrl": p.redirect_url,
        "verificationExtraData": serde_json::from_str::<Value>(&p.verification_extra_data).unwrap_or(json!({})),
    })
}
