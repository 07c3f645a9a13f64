//! What the audit-log explorer filters by, and the actions in words.

/// Which actions to show: one action, or a family ("every case action").
/// A family is the list of its known codes, matched with `IN`: exact
/// matches use the `(action, seq)` index under any collation, where a
/// prefix range or LIKE would not on a PostgreSQL locale collation.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionFilter {
    pub code: &'static str,
    pub codes: Vec<&'static str>,
}

impl ActionFilter {
    /// A family (`case.`, `login`) or a known action code.
    pub fn parse(raw: &str) -> Result<ActionFilter, String> {
        if let Some((family, _)) = FAMILIES.iter().find(|(code, _)| *code == raw) {
            let codes = ACTIONS
                .iter()
                .map(|(c, _)| *c)
                .filter(|c| c.starts_with(family))
                .collect();
            return Ok(ActionFilter {
                code: family,
                codes,
            });
        }
        if let Some((code, _)) = ACTIONS.iter().find(|(code, _)| *code == raw) {
            return Ok(ActionFilter {
                code,
                codes: vec![code],
            });
        }
        Err(format!(
            "Action: '{raw}' is not an action the desk records; pick one from the list"
        ))
    }
}

/// The explorer's filters, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<ActionFilter>,
    pub scan_id: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// Families of actions offered as "all … actions".
pub const FAMILIES: [(&str, &str); 6] = [
    ("case.", "Any case action"),
    ("user.", "Any user-admin action"),
    ("integrator.", "Any integrator action"),
    ("login", "Logins (ok, failed, locked)"),
    ("contact.", "Any applicant-contact action"),
    ("webhook.", "Any webhook action"),
];

/// Every action kycdesk records, in words. An entry whose action is not
/// here still shows (with its code).
pub const ACTIONS: [(&str, &str); 43] = [
    ("api.token.failed", "API token refused"),
    ("audit.export", "Audit log exported"),
    ("case.claim", "Case claimed"),
    ("case.decide", "Decision"),
    ("case.delete", "Case deleted"),
    ("case.edit", "Case data corrected"),
    ("case.note", "Note added"),
    ("case.propose", "Decision proposed (four eyes)"),
    ("case.qa", "QA verdict"),
    ("case.release", "Case released"),
    ("case.retake", "Retake requested"),
    ("case.retake_expired", "Retake expired; case back in review"),
    ("case.submit", "Onboarding submitted"),
    ("case.view", "Case viewed"),
    ("case.zip.download", "Certified zip downloaded"),
    ("case.assign", "Case assigned"),
    ("contact.approved", "Applicant approved manually"),
    ("contact.tokens_revoked", "Applicant signed out of the app"),
    ("demo.seed", "Demo data loaded"),
    ("evidence.add", "Evidence added"),
    ("evidence.download", "Evidence downloaded"),
    ("integrator.create", "Integrator created"),
    ("integrator.disable", "Integrator disabled"),
    ("integrator.enable", "Integrator enabled"),
    ("integrator.rotate_secret", "Integrator secret rotated"),
    ("integrator.update", "Integrator settings changed"),
    ("integrator.user_payload_key", "Integrator payload key set"),
    (
        "integrator.verification_settings",
        "Integrator verification settings changed",
    ),
    ("login", "Logged in"),
    ("login.failed", "Login failed"),
    ("login.locked", "Login locked out"),
    ("logout", "Logged out"),
    (
        "onboarding.contact_confirm",
        "Applicant confirmed a phone or e-mail",
    ),
    ("onboarding.create", "Onboarding link created"),
    ("policy.four_eyes", "Four-eyes policy changed"),
    ("queue.export", "Queue exported"),
    ("user.create", "User created"),
    ("user.disable", "User disabled"),
    ("user.enable", "User enabled"),
    ("user.password_change", "Password changed"),
    ("user.password_reset", "Password reset by an admin"),
    ("user.role", "Role changed"),
    ("webhook.redeliver", "Webhook redelivered"),
];

/// An action in words; an unknown code shows as itself.
pub fn action_label(code: &str) -> &str {
    ACTIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, l)| *l)
        .unwrap_or(code)
}

/// A stored detail key in words: `proposed_by` and `proposedBy` both read
/// "Proposed by".
pub fn key_label(key: &str) -> String {
    let mut out = String::new();
    for (i, ch) in key.chars().enumerate() {
        if ch == '_' || ch == '-' {
            out.push(' ');
        } else if ch.is_uppercase() && i > 0 {
            out.push(' ');
            out.extend(ch.to_lowercase());
        } else if i == 0 {
            out.extend(ch.to_uppercase());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_list_their_codes_and_unknown_actions_are_refused() {
        let f = ActionFilter::parse("case.").expect("family");
        assert!(f.codes.contains(&"case.decide") && f.codes.contains(&"case.zip.download"));
        assert!(f.codes.iter().all(|c| c.starts_with("case.")));
        let login = ActionFilter::parse("login").expect("family");
        assert_eq!(login.codes, vec!["login", "login.failed", "login.locked"]);
        let e = ActionFilter::parse("case.decide").expect("exact");
        assert_eq!(e.codes, vec!["case.decide"]);
        assert!(ActionFilter::parse("drop table").is_err());
        assert!(ActionFilter::parse("").is_err());
    }

    /// Every action string the code records has a label (a new action
    /// without one would be unfilterable).
    #[test]
    fn every_recorded_action_is_listed() {
        let mut missing = Vec::new();
        for dir in ["src"] {
            for entry in walk(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)) {
                let text = std::fs::read_to_string(&entry).unwrap_or_default();
                for (i, _) in text.match_indices("action: \"") {
                    let rest = &text[i + 9..];
                    let code = &rest[..rest.find('"').unwrap_or(0)];
                    if !ACTIONS.iter().any(|(c, _)| *c == code) {
                        missing.push(format!("{code} ({})", entry.display()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "actions without a label: {missing:?}");
    }

    fn walk(dir: std::path::PathBuf) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(p));
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn labels_are_words() {
        assert_eq!(action_label("case.decide"), "Decision");
        assert_eq!(action_label("user.role"), "Role changed");
        assert_eq!(action_label("something.new"), "something.new");
        assert_eq!(key_label("proposed_by"), "Proposed by");
        assert_eq!(key_label("proposedBy"), "Proposed by");
        assert_eq!(key_label("user_id"), "User id");
    }
}
