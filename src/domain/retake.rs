//! Asking the applicant to retake evidence: which steps of the hosted page
//! reopen, and why (a fixed list the page can translate; the agent may add
//! words of their own).

use std::fmt;

/// A step of the hosted page that can be asked for again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    Front,
    Back,
    Selfie,
    Video,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Front, Step::Back, Step::Selfie, Step::Video];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Front => "front",
            Step::Back => "back",
            Step::Selfie => "selfie",
            Step::Video => "video",
        }
    }

    /// The evidence kind the step uploads.
    pub fn kind(self) -> &'static str {
        match self {
            Step::Video => "recording",
            _ => "image",
        }
    }

    /// `kind/type`, as the page names its slots.
    pub fn slot(self) -> String {
        format!("{}/{}", self.kind(), self.as_str())
    }

    /// What a reviewer reads.
    pub fn label(self) -> &'static str {
        match self {
            Step::Front => "Document front",
            Step::Back => "Document back",
            Step::Selfie => "Selfie",
            Step::Video => "Video",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The step that uploads evidence of this kind and type, if any.
    pub fn of_evidence(kind: &str, evidence_type: &str) -> Option<Step> {
        Step::parse(evidence_type).filter(|s| s.kind() == kind)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the applicant is asked again. The codes are stored; the page shows
/// each in the applicant's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Blurry,
    Glare,
    Cropped,
    WrongDocument,
    ExpiredDocument,
    FaceNotVisible,
    Other,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::Blurry,
        Reason::Glare,
        Reason::Cropped,
        Reason::WrongDocument,
        Reason::ExpiredDocument,
        Reason::FaceNotVisible,
        Reason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Blurry => "blurry",
            Reason::Glare => "glare",
            Reason::Cropped => "cropped",
            Reason::WrongDocument => "wrong_document",
            Reason::ExpiredDocument => "expired_document",
            Reason::FaceNotVisible => "face_not_visible",
            Reason::Other => "other",
        }
    }

    /// What a reviewer reads.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Blurry => "Blurred or out of focus",
            Reason::Glare => "Glare or reflections hide data",
            Reason::Cropped => "Part of the document is cut off",
            Reason::WrongDocument => "Not the document asked for",
            Reason::ExpiredDocument => "The document has expired",
            Reason::FaceNotVisible => "Face not clearly visible",
            Reason::Other => "Other (explain in the message)",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A checked retake request: at least one step, each once, only steps the
/// document type has, and words for the applicant when the reason is
/// "other".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub steps: Vec<Step>,
    pub reason: Reason,
    pub message: Option<String>,
}

/// The longest message shown to the applicant.
pub const MAX_MESSAGE: usize = 500;

impl Request {
    pub fn new(
        steps: &[String],
        reason: &str,
        message: Option<&str>,
        has_back: bool,
    ) -> Result<Request, String> {
        let mut parsed = Vec::new();
        for s in steps {
            let step = Step::parse(s.trim()).ok_or_else(|| {
                format!("'{s}' is not a step to retake (front, back, selfie or video)")
            })?;
            if step == Step::Back && !has_back {
                return Err("a passport has no back side to retake".into());
            }
            if !parsed.contains(&step) {
                parsed.push(step);
            }
        }
        if parsed.is_empty() {
            return Err("tick at least one piece of evidence for the applicant to retake".into());
        }
        parsed.sort();
        let reason = Reason::parse(reason.trim())
            .ok_or_else(|| "choose why the applicant should retake it".to_string())?;
        let message = message.map(str::trim).filter(|m| !m.is_empty());
        if let Some(m) = message {
            if m.chars().count() > MAX_MESSAGE {
                return Err(format!(
                    "the message to the applicant is limited to {MAX_MESSAGE} characters"
                ));
            }
            if m.chars().any(|c| c.is_control() && c != '\n') {
                return Err("the message to the applicant contains control characters".into());
            }
        }
        if reason == Reason::Other && message.is_none() {
            return Err(
                "with the reason \"Other\", write a message telling the applicant what to fix"
                    .into(),
            );
        }
        Ok(Request {
            steps: parsed,
            reason,
            message: message.map(str::to_string),
        })
    }

    /// The stored form of the steps: `front,selfie`.
    pub fn steps_text(&self) -> String {
        join(&self.steps)
    }
}

pub fn join(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads stored steps; an unknown step is a corrupt row.
pub fn parse_steps(text: &str) -> Result<Vec<Step>, String> {
    text.split(',')
        .map(|s| Step::parse(s).ok_or_else(|| format!("unknown retake step '{s}'")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn requests_are_checked() {
        let r = Request::new(&v(&["selfie", "front", "front"]), "blurry", None, true).unwrap();
        assert_eq!(r.steps, vec![Step::Front, Step::Selfie]);
        assert_eq!(r.steps_text(), "front,selfie");
        assert!(Request::new(&v(&[]), "blurry", None, true)
            .unwrap_err()
            .contains("at least one"));
        assert!(Request::new(&v(&["back"]), "blurry", None, false)
            .unwrap_err()
            .contains("passport"));
        assert!(Request::new(&v(&["ear"]), "blurry", None, true)
            .unwrap_err()
            .contains("'ear'"));
        assert!(Request::new(&v(&["front"]), "nope", None, true)
            .unwrap_err()
            .contains("choose why"));
        assert!(Request::new(&v(&["front"]), "other", Some("  "), true)
            .unwrap_err()
            .contains("Other"));
        assert!(Request::new(&v(&["front"]), "other", Some("use the new card"), true).is_ok());
        assert!(
            Request::new(&v(&["front"]), "glare", Some(&"x".repeat(501)), true)
                .unwrap_err()
                .contains("500")
        );
        assert_eq!(
            parse_steps("front,video").unwrap(),
            vec![Step::Front, Step::Video]
        );
        assert!(parse_steps("front,ear").is_err());
        assert_eq!(Step::of_evidence("recording", "video"), Some(Step::Video));
        assert_eq!(Step::of_evidence("image", "video"), None);
    }
}
