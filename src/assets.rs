//! Static assets compiled into the binary (the desk works offline), served
//! with an ETag and, when the URL carries the content hash, cached forever.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Static;

#[derive(RustEmbed)]
#[folder = "assets/demo/"]
pub struct DemoAssets;

fn hash_of(name: &str) -> Option<String> {
    Static::get(name).map(|f| hex::encode(&f.metadata.sha256_hash()[..8]))
}

/// `/static/NAME?v=HASH`: a new build with a changed file gets a new URL.
pub fn url(name: &str) -> String {
    match hash_of(name) {
        Some(h) => format!("/static/{name}?v={h}"),
        None => format!("/static/{name}"),
    }
}

#[derive(serde::Deserialize)]
pub struct Version {
    v: Option<String>,
}

pub async fn serve(
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<Version>,
) -> HttpResponse {
    let name = path.into_inner();
    let Some(file) = Static::get(&name) else {
        return HttpResponse::NotFound().body("no such asset");
    };
    let hash = hex::encode(file.metadata.sha256_hash());
    let etag = format!("\"{}\"", &hash[..32]);
    let immutable =
        q.v.as_deref()
            .is_some_and(|v| hash.starts_with(v) && v.len() >= 16);
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if matches {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache))
            .finish();
    }
    let mime = mime_for(&name);
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, mime))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache))
        .body(file.data.into_owned())
}

/// The media type by extension; text types say their charset (the embedded
/// files are UTF-8).
fn mime_for(name: &str) -> String {
    let m = mime_guess::from_path(name).first_or_octet_stream();
    if m.type_() == mime_guess::mime::TEXT {
        format!("{m}; charset=utf-8")
    } else {
        m.to_string()
    }
}
