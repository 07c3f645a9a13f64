//! Contact confirmation on the hosted page: which points (phone, e-mail) an
//! integrator wants the applicant to confirm by one-time code before the
//! document steps, and how a typed phone or e-mail becomes the value
//! compared and stored.

use super::contact::valid_email;

/// A point the applicant confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactKind {
    Phone,
    Email,
}

impl ContactKind {
    pub fn parse(s: &str) -> Option<ContactKind> {
        match s {
            "phone" => Some(ContactKind::Phone),
            "email" => Some(ContactKind::Email),
            _ => None,
        }
    }

    /// As stored in `verifications.kind` and `contact_points.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::Phone => "phone",
            ContactKind::Email => "email",
        }
    }
}

/// What an integrator asks for (`integrators.confirm_contact`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Confirmation {
    #[default]
    None,
    Phone,
    Email,
    Both,
}

impl Confirmation {
    pub const ALL: [Confirmation; 4] = [
        Confirmation::None,
        Confirmation::Phone,
        Confirmation::Email,
        Confirmation::Both,
    ];

    pub fn parse(s: &str) -> Result<Confirmation, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!("contact confirmation '{s}' is not one of none, phone, email, both")
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Confirmation::None => "none",
            Confirmation::Phone => "phone",
            Confirmation::Email => "email",
            Confirmation::Both => "both",
        }
    }

    /// The desk's words for it.
    pub fn label(self) -> &'static str {
        match self {
            Confirmation::None => "No confirmation",
            Confirmation::Phone => "Phone by SMS code",
            Confirmation::Email => "E-mail by code",
            Confirmation::Both => "Phone and e-mail",
        }
    }

    /// The points to confirm, phone first (the page's order).
    pub fn kinds(self) -> Vec<ContactKind> {
        match self {
            Confirmation::None => vec![],
            Confirmation::Phone => vec![ContactKind::Phone],
            Confirmation::Email => vec![ContactKind::Email],
            Confirmation::Both => vec![ContactKind::Phone, ContactKind::Email],
        }
    }

    pub fn requires(self, k: ContactKind) -> bool {
        self.kinds().contains(&k)
    }
}

/// A phone or e-mail the applicant confirmed by code, as stored on the
/// process (`processes.confirmed_contacts`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Confirmed {
    /// `phone` or `email`.
    #[serde(rename = "type")]
    pub kind: String,
    /// E.164 phone or lower-cased e-mail.
    pub value: String,
    /// When the code was accepted (ms since the epoch).
    pub at: i64,
}

/// A calling code as configured: 1 to 3 digits, no `+`.
pub fn calling_code(s: &str) -> Result<String, String> {
    let c = s.trim().trim_start_matches('+');
    if (1..=3).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()) && !c.starts_with('0') {
        Ok(c.to_string())
    } else {
        Err(format!(
            "the phone country '{s}' must be a calling code of 1 to 3 digits, e.g. 34 or 1"
        ))
    }
}

/// Why a typed value cannot be confirmed (the page shows `code` translated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue {
    pub code: &'static str,
    pub message: String,
}

/// The E.164 form of a typed phone: `+` and the digits when the applicant
/// typed the calling code (`+34…` or `0034…`), otherwise `country` (the
/// page's selector, else the integrator's default) before the digits.
/// Spaces, dashes, dots and brackets are ignored; anything else is refused.
pub fn phone_target(typed: &str, country: Option<&str>) -> Result<String, BadValue> {
    let t = typed.trim();
    let bad = |m: String| BadValue {
        code: "invalid_phone",
        message: m,
    };
    if t.chars()
        .any(|c| !(c.is_ascii_digit() || " -.()+".contains(c)))
        || t.chars().skip(1).any(|c| c == '+')
    {
        return Err(bad(format!(
            "'{t}' is not a phone number: use digits, optionally starting with + and the country code"
        )));
    }
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    let full = if let Some(rest) = t.strip_prefix('+').map(|_| digits.clone()) {
        rest
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else {
        let cc = country
            .map(calling_code)
            .transpose()
            .map_err(bad)?
            .ok_or_else(|| {
                bad("the number needs its country code, e.g. +34 600 000 000".to_string())
            })?;
        // A national trunk 0 (e.g. UK 07…) is not dialled after the code.
        format!("{cc}{}", digits.trim_start_matches('0'))
    };
    // E.164: at most 15 digits; 8 is the shortest real mobile number with
    // its country code.
    if !(8..=15).contains(&full.len()) || full.starts_with('0') {
        return Err(bad(format!(
            "'{t}' is not a complete phone number: 8 to 15 digits with the country code"
        )));
    }
    Ok(format!("+{full}"))
}

/// The compared form of a typed e-mail (trimmed, lower-cased).
pub fn email_target(typed: &str) -> Result<String, BadValue> {
    let e = typed.trim().to_lowercase();
    if valid_email(&e) {
        Ok(e)
    } else {
        Err(BadValue {
            code: "invalid_email",
            message: format!("'{}' is not an e-mail address", typed.trim()),
        })
    }
}

pub fn target(kind: ContactKind, typed: &str, country: Option<&str>) -> Result<String, BadValue> {
    match kind {
        ContactKind::Phone => phone_target(typed, country),
        ContactKind::Email => email_target(typed),
    }
}

/// Where a code went, as shown back to whoever holds the link: enough to
/// recognise one's own number or address, not to learn someone else's.
pub fn masked(kind: ContactKind, value: &str) -> String {
    match kind {
        ContactKind::Phone => {
            let n = value.chars().count();
            value
                .chars()
                .enumerate()
                .map(|(i, c)| if i < 3 || i + 3 >= n { c } else { '•' })
                .collect()
        }
        ContactKind::Email => match value.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}•••@{domain}")
            }
            None => "•••".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_become_e164() {
        assert_eq!(
            phone_target("600 11-22.33", Some("34")).as_deref(),
            Ok("+34600112233")
        );
        assert_eq!(
            phone_target("+44 7700 900123", Some("34")).as_deref(),
            Ok("+447700900123")
        );
        assert_eq!(
            phone_target("0044 7700 900123", None).as_deref(),
            Ok("+447700900123")
        );
        assert_eq!(
            phone_target("07700 900123", Some("44")).as_deref(),
            Ok("+447700900123")
        );
        for bad in [
            "600112233",
            "12",
            "+1 (555) 0100 0000 0000 0",
            "6001a2233",
            "+34+600",
            "",
        ] {
            let country = if bad == "600112233" { None } else { Some("34") };
            assert_eq!(
                phone_target(bad, country).map_err(|e| e.code),
                Err("invalid_phone"),
                "{bad}"
            );
        }
        assert!(phone_target("600\u{0}112233", Some("34")).is_err());
    }

    #[test]
    fn confirmation_settings_round_trip() {
        for c in Confirmation::ALL {
            assert_eq!(Confirmation::parse(c.as_str()), Ok(c));
        }
        assert!(Confirmation::parse("sms").is_err());
        assert!(Confirmation::Both.requires(ContactKind::Email));
        assert!(!Confirmation::Phone.requires(ContactKind::Email));
        assert_eq!(calling_code("+34").as_deref(), Ok("34"));
        assert!(calling_code("0034").is_err() && calling_code("x").is_err());
    }

    #[test]
    fn masks_keep_only_a_hint() {
        assert_eq!(masked(ContactKind::Phone, "+34600112233"), "+34••••••233");
        assert_eq!(
            masked(ContactKind::Email, "ana@example.com"),
            "a•••@example.com"
        );
        assert_eq!(
            email_target(" Ana@Example.COM ").as_deref(),
            Ok("ana@example.com")
        );
        assert!(email_target("ana\u{0}@example.com").is_err());
    }
}
