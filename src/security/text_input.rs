//! U+0000 never enters the application. PostgreSQL cannot store it in text
//! (SQLite can), so a NUL that reached a query answered 500 on one backend
//! and was stored on the other. Checking here, before any extractor, covers
//! every route: the path, the query string and the text bodies (JSON, forms,
//! signed JWT payloads). Binary uploads are not text and are not looked at.

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::HttpMessage;
use futures_util::StreamExt;

/// Text bodies larger than this are not buffered for the check: every text
/// extractor refuses them anyway (JSON 256 KiB, forms 16 KiB).
pub const MAX_CHECKED_BODY: usize = 1 << 20;

/// Where in the request a NUL was found, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Path,
    Query,
    Body,
}

impl Place {
    pub fn message(self) -> String {
        let place = match self {
            Place::Path => "the URL path",
            Place::Query => "the query string",
            Place::Body => "the request body",
        };
        format!(
            "{place} contains a NUL character (U+0000), which no text field accepts; remove it and send the request again"
        )
    }
}

/// What the check decided about a request.
pub enum Verdict {
    Clean,
    Refused(Place),
    /// A text body over `MAX_CHECKED_BODY`.
    TooLarge,
}

fn decoded_has_nul(raw: &str) -> bool {
    percent_encoding::percent_decode_str(raw).any(|b| b == 0)
}

fn form_has_nul(raw: &[u8]) -> bool {
    raw.contains(&0)
        || url::form_urlencoded::parse(raw).any(|(k, v)| k.contains('\0') || v.contains('\0'))
}

fn json_has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(json_has_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        _ => false,
    }
}

/// A NUL escape (backslash, u, four zeros) in raw JSON text, found without
/// parsing (this runs on every JSON request). The escape's backslash must
/// follow an even run of backslashes; otherwise it is itself escaped and
/// the text is a literal backslash followed by "u0000".
fn json_escapes_nul(bytes: &[u8]) -> bool {
    bytes.windows(6).enumerate().any(|(i, w)| {
        w == b"\\u0000" && bytes[..i].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 0
    })
}

#[derive(Clone, Copy)]
enum TextBody {
    Json,
    Form,
    /// A compact JWS: base64url parts; the payload is JSON.
    Jwt,
}

fn text_body(content_type: &str) -> Option<TextBody> {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if ct == "application/json" || ct.ends_with("+json") {
        Some(TextBody::Json)
    } else if ct == "application/x-www-form-urlencoded" {
        Some(TextBody::Form)
    } else if ct == "application/jwt" {
        Some(TextBody::Jwt)
    } else {
        None
    }
}

/// True when a body of that kind carries a NUL in any of its strings. A body
/// that does not parse is left to the extractor, which says what is wrong.
fn body_has_nul(kind: TextBody, bytes: &[u8]) -> bool {
    use base64::Engine;
    match kind {
        TextBody::Form => form_has_nul(bytes),
        TextBody::Json => bytes.contains(&0) || json_escapes_nul(bytes),
        TextBody::Jwt => {
            bytes.contains(&0)
                || bytes.split(|b| *b == b'.').nth(1).is_some_and(|p| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(p.trim_ascii())
                        .ok()
                        .and_then(|j| serde_json::from_slice::<serde_json::Value>(&j).ok())
                        .is_some_and(|v| json_has_nul(&v))
                })
        }
    }
}

/// Checks the path, the query and a text body; the body is read and put
/// back, so the handler sees exactly what was sent.
pub async fn check(req: &mut ServiceRequest) -> Verdict {
    if decoded_has_nul(req.uri().path()) {
        return Verdict::Refused(Place::Path);
    }
    if req
        .uri()
        .query()
        .is_some_and(|q| form_has_nul(q.as_bytes()))
    {
        return Verdict::Refused(Place::Query);
    }
    let Some(kind) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(text_body)
    else {
        return Verdict::Clean;
    };
    let declared: Option<usize> = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > MAX_CHECKED_BODY) {
        return Verdict::TooLarge;
    }
    let mut payload = req.take_payload();
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            // A broken body: hand the handler an empty one, it says why.
            break;
        };
        if body.len() + chunk.len() > MAX_CHECKED_BODY {
            return Verdict::TooLarge;
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let refused = body_has_nul(kind, &body);
    req.set_payload(actix_web::dev::Payload::from(body));
    if refused {
        Verdict::Refused(Place::Body)
    } else {
        Verdict::Clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_in_every_text_form() {
        assert!(decoded_has_nul("/desk/cases/a%00b"));
        assert!(!decoded_has_nul("/desk/cases/a%2500b"));
        assert!(form_has_nul(b"q=a%00b"));
        assert!(form_has_nul(b"a%00=b"));
        assert!(!form_has_nul(b"q=caf%C3%A9"));
        assert!(body_has_nul(TextBody::Json, br#"{"a":{"b":["x\u0000"]}}"#));
        assert!(body_has_nul(TextBody::Json, br#"{"a\u0000":1}"#));
        assert!(!body_has_nul(TextBody::Json, br#"{"a":"\\u0000"}"#));
        assert!(!body_has_nul(TextBody::Json, b"not json"));
        // {"sub":"a\u0000"}
        assert!(body_has_nul(
            TextBody::Jwt,
            b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhXHUwMDAwIn0.sig"
        ));
        assert!(!body_has_nul(
            TextBody::Jwt,
            b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig"
        ));
    }

    #[test]
    fn text_bodies_are_recognised_by_media_type() {
        assert!(matches!(
            text_body("application/json; charset=utf-8"),
            Some(TextBody::Json)
        ));
        assert!(matches!(
            text_body("application/hal+json"),
            Some(TextBody::Json)
        ));
        assert!(text_body("image/jpeg").is_none());
    }
}
