//! Evidence over the API in the reference's three forms, chosen by `Accept`:
//! JSON with base64, the raw bytes (with `Range`), or base64 text.

use crate::api::openapi::{Binary, ImageJson, PdfJson, StatusBody};
use crate::api::problem::Problem;
use crate::api::token::ApiClient;
use crate::state::AppState;
use crate::store::processes::{self as rows, EvidenceRow};
use actix_files::NamedFile;
use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use base64::Engine;

/// The JSON form's fields, as the reference documents them: images and
/// recordings alike carry `imageType` and `image`; the PDF `pdfDocument`.
#[derive(Clone, Copy)]
enum JsonForm {
    Media,
    Pdf,
}

enum Form {
    Json,
    Binary,
    Base64Text,
}

/// Picks the first acceptable form in the client's order; `*/*` or no
/// `Accept` at all means JSON, the reference's first form.
fn negotiate(req: &HttpRequest, media_type: &str) -> Result<Form, Problem> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    let top = media_type.split('/').next().unwrap_or("");
    for item in accept.split(',') {
        let m = item
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match m.as_str() {
            "application/json" | "*/*" => return Ok(Form::Json),
            "text/plain" => return Ok(Form::Base64Text),
            "application/octet-stream" => return Ok(Form::Binary),
            _ if m == media_type || m == format!("{top}/*") => return Ok(Form::Binary),
            _ => {}
        }
    }
    Err(Problem::NotAcceptable(media_type.to_string()))
}

async fn serve(
    req: &HttpRequest,
    state: &AppState,
    client: &ApiClient,
    scan_id: &str,
    e: &EvidenceRow,
    json: JsonForm,
) -> Result<HttpResponse, Problem> {
    let form = negotiate(req, &e.media_type)?;
    let path = state
        .blobs
        .path_of(&e.sha256)
        .ok_or_else(|| Problem::Internal(anyhow::anyhow!("bad blob name {}", e.sha256)))?;
    crate::evidence::audit_download(&state.db, &client.actor().name, &client.client_addr, e, req)
        .await?;
    match form {
        Form::Binary => {
            let mime: mime::Mime = e
                .media_type
                .parse()
                .unwrap_or(mime::APPLICATION_OCTET_STREAM);
            let f = NamedFile::open_async(&path)
                .await
                .map_err(|err| Problem::Internal(err.into()))?
                .set_content_type(mime);
            Ok(f.into_response(req))
        }
        Form::Json | Form::Base64Text => {
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|err| Problem::Internal(err.into()))?;
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            Ok(match form {
                Form::Json => {
                    let mut v = serde_json::json!({
                        "timestamp": crate::domain::rfc3339_ms(e.created_at),
                        "scanId": scan_id,
                    });
                    match json {
                        JsonForm::Media => {
                            v["imageType"] = e.evidence_type.clone().into();
                            v["image"] = b64.into();
                        }
                        JsonForm::Pdf => v["pdfDocument"] = b64.into(),
                    }
                    HttpResponse::Ok().json(v)
                }
                _ => HttpResponse::Ok()
                    .content_type("text/plain; charset=utf-8")
                    .body(b64),
            })
        }
    }
}

async fn find(
    state: &AppState,
    client: &ApiClient,
    id: &str,
    kind: &str,
    t: Option<&str>,
) -> Result<(String, EvidenceRow), Problem> {
    let p = super::owned(state, client, id).await?;
    let e = rows::evidence_for(state.db.read(), &p.scan_id)
        .await?
        .into_iter()
        .find(|e| e.kind == kind && t.is_none_or(|t| e.evidence_type == t))
        .ok_or_else(|| {
            Problem::NotFound(format!(
                "this process has no {kind}{}",
                t.map(|t| format!(" of type {t}")).unwrap_or_default()
            ))
        })?;
    Ok((p.scan_id, e))
}

#[utoipa::path(
    tag = "evidence",
    operation_id = "getImage",
    security(("bearer" = [])),
    params(
        ("verificationId" = String, Path, description = "The scanId"),
        ("imageType" = String, Path, description = "e.g. front, back, selfie"),
    ),
    responses(
        (status = 200, description = "The image in the form the Accept header asks for", content(
            (ImageJson = "application/json"),
            (Binary = "image/jpeg"),
            (String = "text/plain"),
        )),
        (status = 401, description = "No, expired or invalid token", body = StatusBody),
        (status = 404, description = "No such process or image", body = StatusBody),
        (status = 406, description = "Accept names none of the three forms", body = StatusBody),
    )
)]
#[get("/mobbscan-agent/{verificationId}/image/{imageType}")]
#[tracing::instrument(skip_all)]
pub async fn image(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: ApiClient,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (id, t) = path.into_inner();
    let (scan_id, e) = find(&state, &client, &id, "image", Some(&t)).await?;
    serve(&req, &state, &client, &scan_id, &e, JsonForm::Media).await
}

#[utoipa::path(
    tag = "evidence",
    operation_id = "getRecording",
    security(("bearer" = [])),
    params(
        ("verificationId" = String, Path, description = "The scanId"),
        ("recordingType" = String, Path, description = "e.g. video"),
    ),
    responses(
        (status = 200, description = "The recording in the form the Accept header asks for; binary answers carry the real media type and honour Range", content(
            (ImageJson = "application/json"),
            (Binary = "video/webm"),
            (Binary = "video/mp4"),
            (String = "text/plain"),
        )),
        (status = 206, description = "Partial content (Range)", body = Binary, content_type = "video/webm"),
        (status = 401, description = "No, expired or invalid token", body = StatusBody),
        (status = 404, description = "No such process or recording", body = StatusBody),
        (status = 406, description = "Accept names none of the three forms", body = StatusBody),
    )
)]
#[get("/mobbscan-agent/{verificationId}/recording/{recordingType}")]
#[tracing::instrument(skip_all)]
pub async fn recording(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: ApiClient,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (id, t) = path.into_inner();
    let (scan_id, e) = find(&state, &client, &id, "recording", Some(&t)).await?;
    serve(&req, &state, &client, &scan_id, &e, JsonForm::Media).await
}

#[utoipa::path(
    tag = "evidence",
    security(("bearer" = [])),
    params(("verificationId" = String, Path, description = "The scanId")),
    responses(
        (status = 200, description = "The process report PDF; pdfChecksum is its SHA-256", content(
            (PdfJson = "application/json"),
            (Binary = "application/pdf"),
            (String = "text/plain"),
        )),
        (status = 401, description = "No, expired or invalid token", body = StatusBody),
        (status = 404, description = "No such process, or no report yet", body = StatusBody),
        (status = 406, description = "Accept names none of the three forms", body = StatusBody),
    )
)]
#[get("/mobbscan-agent/api/pdf/{verificationId}")]
#[tracing::instrument(skip_all)]
pub async fn pdf(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: ApiClient,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let (scan_id, e) = find(&state, &client, &path.into_inner(), "pdf", None).await?;
    serve(&req, &state, &client, &scan_id, &e, JsonForm::Pdf).await
}
