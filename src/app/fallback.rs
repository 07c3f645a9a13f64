//! Requests no route answers. A documented path asked with a method its
//! document does not list gets 405 with `Allow` (the references' delete path
//! answered a GET with a bare 404); anything else 404. Both in the error
//! shape of the family the path belongs to. The table comes from the served
//! OpenAPI documents, so it cannot disagree with them.

use crate::api::apiture::HalError;
use crate::api::problem::Problem;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

/// Documented path patterns (`{param}` matches one segment) and their methods.
#[derive(Debug, Default, Clone)]
pub struct DocumentedRoutes(Vec<(Vec<String>, Vec<String>)>);

impl DocumentedRoutes {
    /// Reads the `paths` of an OpenAPI document; `prefix` is prepended
    /// (a document whose server URL carries a base path).
    pub fn add_document(&mut self, prefix: &str, doc: &serde_json::Value) {
        let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) else {
            return;
        };
        for (path, ops) in paths {
            let full = format!("{}{}", prefix.trim_end_matches('/'), path);
            let segments = segments(&full);
            let methods: Vec<String> = ops
                .as_object()
                .map(|o| {
                    o.keys()
                        .filter(|k| {
                            matches!(
                                k.as_str(),
                                "get" | "put" | "post" | "delete" | "patch" | "head" | "options"
                            )
                        })
                        .map(|k| k.to_ascii_uppercase())
                        .collect()
                })
                .unwrap_or_default();
            match self.0.iter_mut().find(|(s, _)| *s == segments) {
                Some((_, m)) => m.extend(methods),
                None => self.0.push((segments, methods)),
            }
        }
    }

    /// The methods documented for a path, or None when no pattern matches.
    pub fn allowed(&self, path: &str) -> Option<Vec<String>> {
        let want = segments(path);
        let mut found: Option<Vec<String>> = None;
        for (pattern, methods) in &self.0 {
            let matches = pattern.len() == want.len()
                && pattern
                    .iter()
                    .zip(&want)
                    .all(|(p, w)| (p.starts_with('{') && !w.is_empty()) || p == w);
            if matches {
                let all = found.get_or_insert_with(Vec::new);
                for m in methods {
                    if !all.contains(m) {
                        all.push(m.clone());
                    }
                }
            }
        }
        found
    }
}

fn segments(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .map(str::to_string)
        .collect()
}

/// The app's default service.
#[tracing::instrument(skip_all)]
pub async fn fallback(req: HttpRequest, routes: web::Data<DocumentedRoutes>) -> HttpResponse {
    let path = req.path();
    let allowed = routes.allowed(path).filter(|m| !m.is_empty());
    let hal = path.starts_with("/identity") || path.starts_with("/contacts/");
    let mut resp = match &allowed {
        Some(methods) => {
            let msg = format!(
                "{} is not allowed on {path}; this path answers {}",
                req.method(),
                methods.join(", ")
            );
            if hal {
                HalError(Problem::MethodNotAllowed(msg)).error_response()
            } else {
                Problem::MethodNotAllowed(msg).error_response()
            }
        }
        None => {
            let msg = format!("nothing is served at {path}");
            if path.starts_with("/desk") {
                crate::desk::error::DeskError::NotFound(msg).error_response()
            } else if hal {
                HalError(Problem::NotFound(msg)).error_response()
            } else {
                Problem::NotFound(msg).error_response()
            }
        }
    };
    if let Some(methods) = allowed {
        if let Ok(v) = header::HeaderValue::from_str(&methods.join(", ")) {
            resp.headers_mut().insert(header::ALLOW, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_one_segment_per_parameter() {
        let mut r = DocumentedRoutes::default();
        r.add_document(
            "",
            &serde_json::json!({"paths": {
                "/mobbscan-agent/api/verification/{verificationId}": {"delete": {}},
                "/v1/user": {"get": {}, "post": {}, "put": {}},
            }}),
        );
        r.add_document(
            "/identity",
            &serde_json::json!({"paths": {"/quizzes/{quizId}": {"get": {}}}}),
        );
        assert_eq!(
            r.allowed("/mobbscan-agent/api/verification/abc"),
            Some(vec!["DELETE".to_string()])
        );
        assert_eq!(r.allowed("/mobbscan-agent/api/verification/abc/x"), None);
        assert_eq!(r.allowed("/v1/user").map(|m| m.len()), Some(3));
        assert_eq!(
            r.allowed("/identity/quizzes/q1"),
            Some(vec!["GET".to_string()])
        );
        assert_eq!(r.allowed("/nowhere"), None);
    }
}
