//! The capture-engine API: for integrators whose own SDK does the capture.
//! Authenticated with the integrator token, it attaches images, recordings,
//! document fields, the MRZ text and face scores to one of the integrator's
//! processes, then submits it, with the same checks as the hosted page.

use super::owned;
use crate::api::openapi::{Binary, CaptureRefusals, StatusBody};
use crate::api::problem::Problem;
use crate::api::token::ApiClient;
use crate::domain::Document;
use crate::evidence::intake::Kind;
use crate::evidence::upload;
use crate::review::{self, Extracted};
use crate::state::AppState;
use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// What was stored for an uploaded image or recording.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceStored {
    pub scan_id: String,
    pub kind: String,
    #[serde(rename = "type")]
    pub evidence_type: String,
    /// Decided from the bytes, not from the request's Content-Type.
    pub media_type: String,
    pub size: i64,
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

async fn receive(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: ApiClient,
    path: (String, String),
    payload: web::Payload,
    kind: Kind,
) -> Result<HttpResponse, Problem> {
    let (id, evidence_type) = path;
    let p = owned(&state, &client, &id).await?;
    let stored = upload::receive(
        payload,
        upload::declared_len(&req),
        kind,
        &state.settings.evidence,
        &state.blobs,
    )
    .await?;
    let answer = EvidenceStored {
        scan_id: p.scan_id.clone(),
        kind: kind.as_str().into(),
        evidence_type: evidence_type.clone(),
        media_type: stored.accepted.media_type.into(),
        size: stored.size,
        sha256: stored.sha256.clone(),
        width: stored.accepted.dimensions.map(|d| d.0),
        height: stored.accepted.dimensions.map(|d| d.1),
    };
    review::attach_evidence(
        &state.db,
        &state.blobs,
        &p.scan_id,
        &evidence_type,
        stored,
        &client.actor(),
    )
    .await?;
    Ok(HttpResponse::Created().json(answer))
}

#[utoipa::path(
    tag = "capture",
    operation_id = "captureImage",
    security(("bearer" = [])),
    params(
        ("verificationId" = String, Path, description = "The scanId"),
        ("imageType" = String, Path, description = "front, back, selfie, …"),
    ),
    request_body(content = Binary, content_type = "image/jpeg", description = "The image as captured (JPEG or PNG; the type is read from the bytes)"),
    responses(
        (status = 201, description = "Stored (replacing an earlier image of that type)", body = EvidenceStored),
        CaptureRefusals,
        (status = 409, description = "The process was already submitted", body = StatusBody),
        (status = 413, description = "Larger than the image size limit", body = StatusBody),
        (status = 415, description = "Not a JPEG or PNG image", body = StatusBody),
        (status = 422, description = "Empty, truncated, undecodable, too many pixels, too small, or a polyglot", body = StatusBody),
    )
)]
#[post("/api/capture/{verificationId}/image/{imageType}")]
#[tracing::instrument(skip_all)]
pub async fn image(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: ApiClient,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    receive(req, state, client, path.into_inner(), payload, Kind::Image).await
}

#[utoipa::path(
    tag = "capture",
    operation_id = "captureRecording",
    security(("bearer" = [])),
    params(
        ("verificationId" = String, Path, description = "The scanId"),
        ("recordingType" = String, Path, description = "e.g. video"),
    ),
    request_body(content = Binary, content_type = "application/octet-stream", description = "A WebM or MP4 recording (the container is checked; the type is read from the bytes, whatever Content-Type says)"),
    responses(
        (status = 201, description = "Stored; the VIDEO_AVAILABLE webhook is sent", body = EvidenceStored),
        CaptureRefusals,
        (status = 409, description = "The process was already submitted", body = StatusBody),
        (status = 413, description = "Larger than the recording size limit", body = StatusBody),
        (status = 415, description = "Not WebM or MP4", body = StatusBody),
        (status = 422, description = "Empty, or a damaged / truncated container", body = StatusBody),
    )
)]
#[post("/api/capture/{verificationId}/recording/{recordingType}")]
#[tracing::instrument(skip_all)]
pub async fn recording(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: ApiClient,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    receive(
        req,
        state,
        client,
        path.into_inner(),
        payload,
        Kind::Recording,
    )
    .await
}

/// Extracted data from the capture engine.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DocumentCapture {
    /// Document fields by their process-JSON names (name, surname,
    /// documentNumber, dateOfBirth, dateOfExpiry, nationality, …).
    #[serde(default)]
    #[schema(value_type = crate::api::openapi::CaptureFields)]
    pub document: BTreeMap<String, String>,
    /// The MRZ text as read (lines separated by newlines). kycdesk parses
    /// and checks it, and fills the fields it repeats that are missing.
    #[schema(max_length = 200)]
    pub mrz: Option<String>,
    /// 0 to 1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub facial_matching_score: Option<f64>,
    /// 0 to 1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub facial_liveness_score: Option<f64>,
}

#[utoipa::path(
    tag = "capture",
    security(("bearer" = [])),
    params(("verificationId" = String, Path, description = "The scanId")),
    request_body = DocumentCapture,
    responses(
        (status = 200, description = "The document as stored, with MRZ-derived fields filled", body = Document),
        (status = 400, description = "Unknown field, bad score or malformed body", body = StatusBody),
        CaptureRefusals,
        (status = 409, description = "The process was already submitted", body = StatusBody),
    )
)]
#[post("/api/capture/{verificationId}/document")]
#[tracing::instrument(skip_all)]
pub async fn document(
    state: web::Data<AppState>,
    client: ApiClient,
    path: web::Path<String>,
    body: web::Json<DocumentCapture>,
) -> Result<HttpResponse, Problem> {
    let p = owned(&state, &client, &path.into_inner()).await?;
    let b = body.into_inner();
    let doc = review::set_extracted(
        &state.db,
        &state.settings,
        &p.scan_id,
        &Extracted {
            fields: b.document,
            mrz: b.mrz,
            facial_matching_score: b.facial_matching_score,
            facial_liveness_score: b.facial_liveness_score,
        },
        &client.actor(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(doc))
}

#[utoipa::path(
    tag = "capture",
    security(("bearer" = [])),
    params(("verificationId" = String, Path, description = "The scanId")),
    responses(
        (status = 200, description = "Submitted: validations computed, report PDF issued, state set to the integrator's submit state, webhook sent", body = StatusBody),
        CaptureRefusals,
        (status = 409, description = "Already submitted", body = StatusBody),
    )
)]
#[post("/api/capture/{verificationId}/submit")]
#[tracing::instrument(skip_all)]
pub async fn submit(
    state: web::Data<AppState>,
    client: ApiClient,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let p = owned(&state, &client, &path.into_inner()).await?;
    let to = review::submit(
        &state.db,
        &state.settings,
        &state.blobs,
        &p.scan_id,
        &client.actor(),
        None,
    )
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": to.as_str(),
        "description": format!("Verification with id={} submitted", p.scan_id),
    })))
}
