//! The applicant as a contact: personally identifiable information in the
//! Apiture `identity` shape, and how names, phones and e-mails are compared.

use serde::{Deserialize, Serialize};

/// Personally identifiable information, in the Apiture `identity` shape.
/// Every field is optional here; each operation says what it needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pii {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

fn check_len(errors: &mut Vec<String>, name: &str, v: &Option<String>, min: usize, max: usize) {
    if let Some(s) = v {
        let n = s.chars().count();
        if n < min || n > max {
            errors.push(format!("{name} must be {min} to {max} characters"));
        }
    }
}

/// `YYYY-MM-DD`, a real date, not in the future.
pub fn parse_birthdate(s: &str) -> Option<chrono::NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    (d <= chrono::Utc::now().date_naive() && chrono::Datelike::year(&d) >= 1000).then_some(d)
}

pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && s.len() <= 256
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Digits of a phone number, with a leading + kept: what is compared.
pub fn normalize_phone(s: &str) -> String {
    let plus = s.trim_start().starts_with('+');
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    if plus {
        format!("+{digits}")
    } else {
        digits
    }
}

impl Pii {
    /// Trims every field, turns blanks into absent, and checks the lengths
    /// and formats of the Apiture identity schema.
    pub fn validated(mut self) -> Result<Pii, String> {
        for f in [
            &mut self.tax_id,
            &mut self.first_name,
            &mut self.last_name,
            &mut self.address1,
            &mut self.address2,
            &mut self.city,
            &mut self.region,
            &mut self.postal_code,
            &mut self.phone,
            &mut self.birthdate,
            &mut self.email,
            &mut self.ip_address,
        ] {
            *f = f
                .take()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
        }
        let mut errors = vec![];
        check_len(&mut errors, "taxId", &self.tax_id, 1, 128);
        check_len(&mut errors, "firstName", &self.first_name, 1, 128);
        check_len(&mut errors, "lastName", &self.last_name, 1, 128);
        check_len(&mut errors, "address1", &self.address1, 1, 512);
        check_len(&mut errors, "address2", &self.address2, 1, 512);
        check_len(&mut errors, "city", &self.city, 1, 64);
        check_len(&mut errors, "region", &self.region, 1, 128);
        check_len(&mut errors, "postalCode", &self.postal_code, 1, 32);
        check_len(&mut errors, "phone", &self.phone, 1, 32);
        if let Some(b) = &self.birthdate {
            if parse_birthdate(b).is_none() {
                errors.push(format!(
                    "birthdate '{b}' must be a past date in yyyy-mm-dd format"
                ));
            }
        }
        if let Some(e) = &self.email {
            if !valid_email(e) {
                errors.push(format!("email '{e}' is not an e-mail address"));
            } else {
                self.email = Some(e.to_lowercase());
            }
        }
        if let Some(ip) = &self.ip_address {
            if ip.parse::<std::net::Ipv4Addr>().is_err() {
                errors.push(format!("ipAddress '{ip}' must be an IPv4 address"));
            }
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors.join("; "))
        }
    }

    /// Fields given here win; the rest come from `base`.
    pub fn over(&self, base: &Pii) -> Pii {
        fn pick(a: &Option<String>, b: &Option<String>) -> Option<String> {
            a.clone().or_else(|| b.clone())
        }
        Pii {
            tax_id: pick(&self.tax_id, &base.tax_id),
            first_name: pick(&self.first_name, &base.first_name),
            last_name: pick(&self.last_name, &base.last_name),
            address1: pick(&self.address1, &base.address1),
            address2: pick(&self.address2, &base.address2),
            city: pick(&self.city, &base.city),
            region: pick(&self.region, &base.region),
            postal_code: pick(&self.postal_code, &base.postal_code),
            phone: pick(&self.phone, &base.phone),
            birthdate: pick(&self.birthdate, &base.birthdate),
            email: pick(&self.email, &base.email),
            ip_address: pick(&self.ip_address, &base.ip_address),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Pii::default()
    }

    /// Lower-case words for the `q` search of collections.
    pub fn search_text(&self) -> String {
        let s = [
            &self.first_name,
            &self.last_name,
            &self.email,
            &self.phone,
            &self.city,
        ]
        .iter()
        .filter_map(|v| v.as_deref())
        .collect::<Vec<_>>()
        .join(" ");
        fold(&s)
    }
}

/// Lower case, accents removed (é → e, ñ → n, ü → u), punctuation a space,
/// words single-spaced: how names and addresses are compared.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let m = match c {
            'À'..='Å' | 'à'..='å' => 'a',
            'Ç' | 'ç' => 'c',
            'È'..='Ë' | 'è'..='ë' => 'e',
            'Ì'..='Ï' | 'ì'..='ï' => 'i',
            'Ñ' | 'ñ' => 'n',
            'Ò'..='Ö' | 'ò'..='ö' | 'Ø' | 'ø' => 'o',
            'Ù'..='Ü' | 'ù'..='ü' => 'u',
            'Ý' | 'ý' | 'ÿ' => 'y',
            'ß' => {
                out.push_str("ss");
                continue;
            }
            'Æ' | 'æ' => {
                out.push_str("ae");
                continue;
            }
            c if c.is_alphanumeric() => {
                for l in c.to_lowercase() {
                    out.push(l);
                }
                continue;
            }
            _ => ' ',
        };
        out.push(m);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A name as a set of words in a fixed order, so "PEREZ JOSE" and
/// "José Pérez" give the same key.
pub fn name_key(s: &str) -> String {
    let f = fold(s);
    let mut words: Vec<&str> = f.split(' ').filter(|w| !w.is_empty()).collect();
    words.sort_unstable();
    words.dedup();
    words.join(" ")
}

/// The keys a name can match under: plain folding, and the German/Nordic
/// transliteration (ü → ue) that passports print.
pub fn name_keys(s: &str) -> Vec<String> {
    let a = name_key(s);
    let b = name_key(&super::validation::mrz_form(s));
    if a == b {
        vec![a]
    } else {
        vec![a, b]
    }
}

pub fn new_contact_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The URI the Apiture API names a contact by.
pub fn contact_uri(id: &str) -> String {
    format!("/contacts/contacts/{id}")
}

/// The id in a contact URI (absolute or relative), if it is well formed.
pub fn parse_contact_uri(uri: &str) -> Option<String> {
    let path = if uri.starts_with('/') {
        uri.to_string()
    } else {
        url::Url::parse(uri).ok()?.path().to_string()
    };
    let id = path.strip_prefix("/contacts/contacts/")?;
    uuid::Uuid::parse_str(id).ok().map(|u| u.to_string())
}

/// Street, city, region and postal code as one line (a past address kept).
pub fn address_line(p: &Pii) -> Option<String> {
    let a = p.address1.as_deref()?;
    let rest: Vec<&str> = [&p.city, &p.region, &p.postal_code]
        .iter()
        .filter_map(|v| v.as_deref())
        .collect();
    Some(if rest.is_empty() {
        a.to_string()
    } else {
        format!("{a}, {}", rest.join(" "))
    })
}

/// Document dates come as `YYYY-MM-DD` or `DD/MM/YYYY`.
pub fn document_date(s: &str) -> Option<String> {
    let s = s.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d.format("%Y-%m-%d").to_string());
    }
    chrono::NaiveDate::parse_from_str(s, "%d/%m/%Y")
        .ok()
        .map(|d| d.format("%Y-%m-%d").to_string())
}
