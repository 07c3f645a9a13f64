//! Operator-loaded risk lists. Each list is a CSV file with a header row;
//! loading a list replaces it whole, in one transaction.
//!
//! | list | columns |
//! |---|---|
//! | `watchlist`, `alertlist` | `name,birthdate,source` (birthdate `YYYY-MM-DD` or empty: name alone matches) |
//! | `high_risk_address`, `non_approved_address` | `address,postal_code,note` (postal code may be empty) |
//! | `restricted_ip` | `cidr,note` (`203.0.113.0/24`, or one address) |
//! | `restricted_email_domain` | `domain,note` (subdomains match too) |

use super::{fold, name_keys, VerifyError};
use crate::domain::now_ms;
use crate::store::Db;

pub const LISTS: [(&str, &str); 6] = [
    ("watchlist", "name,birthdate,source"),
    ("alertlist", "name,birthdate,source"),
    ("high_risk_address", "address,postal_code,note"),
    ("non_approved_address", "address,postal_code,note"),
    ("restricted_ip", "cidr,note"),
    ("restricted_email_domain", "domain,note"),
];

/// Street words written one way, so "1741 Tiburon Drive" is "1741 tiburon dr".
pub fn address_key(s: &str) -> String {
    fold(s)
        .split(' ')
        .map(|w| match w {
            "street" => "st",
            "avenue" => "ave",
            "av" => "ave",
            "drive" => "dr",
            "road" => "rd",
            "boulevard" => "blvd",
            "lane" => "ln",
            "court" => "ct",
            "place" => "pl",
            "suite" => "ste",
            "apartment" => "apt",
            "north" => "n",
            "south" => "s",
            "east" => "e",
            "west" => "w",
            "calle" => "c",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn postal_key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase()
}

/// One parsed line: (match key, extra, label).
use crate::store::risk_lists::Entry;

fn parse_entries(list: &str, data: &[u8]) -> Result<Vec<Entry>, VerifyError> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let mut out = vec![];
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| VerifyError::Invalid(format!("line {line}: {e}")))?;
        let col = |n: usize| rec.get(n).unwrap_or("").trim().to_string();
        let first = col(0);
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        match list {
            "watchlist" | "alertlist" => {
                let birthdate = col(1);
                if !birthdate.is_empty() && super::parse_birthdate(&birthdate).is_none() {
                    return Err(VerifyError::Invalid(format!(
                        "line {line}: birthdate '{birthdate}' must be YYYY-MM-DD or empty"
                    )));
                }
                let label = format!(
                    "{first} ({})",
                    if col(2).is_empty() {
                        list.to_string()
                    } else {
                        col(2)
                    }
                );
                for k in name_keys(&first) {
                    out.push((
                        k,
                        Some(birthdate.clone()).filter(|b| !b.is_empty()),
                        label.clone(),
                    ));
                }
            }
            "high_risk_address" | "non_approved_address" => out.push((
                address_key(&first),
                Some(postal_key(&col(1))).filter(|p| !p.is_empty()),
                if col(2).is_empty() {
                    first.clone()
                } else {
                    format!("{first} ({})", col(2))
                },
            )),
            "restricted_ip" => {
                parse_cidr(&first).ok_or_else(|| {
                    VerifyError::Invalid(format!(
                        "line {line}: '{first}' is not an IP address or CIDR range"
                    ))
                })?;
                out.push((first.clone(), None, first));
            }
            "restricted_email_domain" => {
                let d = first.trim_start_matches('@').to_lowercase();
                if !d.contains('.') {
                    return Err(VerifyError::Invalid(format!(
                        "line {line}: '{first}' is not a domain"
                    )));
                }
                out.push((d.clone(), None, d));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Replaces a list with the entries of a CSV file's bytes.
pub async fn load(db: &Db, list: &str, data: &[u8]) -> Result<usize, VerifyError> {
    if !LISTS.iter().any(|(l, _)| *l == list) {
        return Err(VerifyError::Invalid(format!(
            "unknown list '{list}': use one of {}",
            LISTS.iter().map(|(l, _)| *l).collect::<Vec<_>>().join(", ")
        )));
    }
    let entries = parse_entries(list, data)?;
    let now = now_ms();
    crate::store::risk_lists::replace(db, list, &entries, now).await?;
    Ok(entries.len())
}

pub async fn counts(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let mut out = vec![];
    for (l, _) in LISTS {
        let n = crate::store::risk_lists::count(db, l).await?;
        out.push((l.to_string(), n));
    }
    Ok(out)
}

async fn entries(
    db: &Db,
    list: &str,
    key: &str,
) -> Result<Vec<(Option<String>, String)>, sqlx::Error> {
    crate::store::risk_lists::entries(db, list, key).await
}

/// A listed person with this name (any word order, accents, case) and, where
/// the entry has one, this birthdate.
pub async fn person_hit(
    db: &Db,
    list: &str,
    full_name: &str,
    birthdate: Option<&str>,
) -> Result<Option<String>, sqlx::Error> {
    for k in name_keys(full_name) {
        for (b, label) in entries(db, list, &k).await? {
            match (b.as_deref(), birthdate) {
                (None, _) => return Ok(Some(label)),
                (Some(x), Some(y)) if x == y => return Ok(Some(label)),
                _ => {}
            }
        }
    }
    Ok(None)
}

pub async fn address_hit(
    db: &Db,
    list: &str,
    address1: &str,
    postal: Option<&str>,
) -> Result<Option<String>, sqlx::Error> {
    let postal = postal.map(postal_key).unwrap_or_default();
    for (p, label) in entries(db, list, &address_key(address1)).await? {
        match p {
            None => return Ok(Some(label)),
            Some(p) if !postal.is_empty() && postal.starts_with(&p) => return Ok(Some(label)),
            _ => {}
        }
    }
    Ok(None)
}

fn parse_cidr(s: &str) -> Option<(std::net::IpAddr, u8)> {
    let (a, bits) = match s.split_once('/') {
        Some((a, b)) => (a, b.parse::<u8>().ok()?),
        None => (s, 255),
    };
    let ip: std::net::IpAddr = a.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = if bits == 255 { max } else { bits };
    (bits <= max).then_some((ip, bits))
}

fn in_range(ip: std::net::IpAddr, (net, bits): (std::net::IpAddr, u8)) -> bool {
    match (ip, net) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits as u32)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits as u32)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

pub async fn ip_hit(db: &Db, ip: &str) -> Result<Option<String>, sqlx::Error> {
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return Ok(None);
    };
    // Ranges cannot be looked up by key; restricted-IP lists are short.
    let all = crate::store::risk_lists::all(db, "restricted_ip").await?;
    Ok(all
        .into_iter()
        .find(|(k, _)| parse_cidr(k).is_some_and(|r| in_range(ip, r)))
        .map(|(_, l)| l))
}

pub async fn email_domain_hit(db: &Db, email: &str) -> Result<Option<String>, sqlx::Error> {
    let Some((_, domain)) = email.rsplit_once('@') else {
        return Ok(None);
    };
    let domain = domain.to_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    // example.com matches mail.example.com too.
    for i in 0..labels.len().saturating_sub(1) {
        let d = labels[i..].join(".");
        if let Some((_, l)) = entries(db, "restricted_email_domain", &d)
            .await?
            .into_iter()
            .next()
        {
            return Ok(Some(l));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_addresses_compare_as_operators_write_them() {
        let r = parse_cidr("203.0.113.0/24").unwrap_or((std::net::Ipv4Addr::UNSPECIFIED.into(), 0));
        assert!(in_range(
            "203.0.113.77"
                .parse()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
            r
        ));
        assert!(!in_range(
            "203.0.114.1"
                .parse()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
            r
        ));
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert_eq!(
            address_key("1741 Tiburon Drive"),
            address_key("1741 TIBURON DR.")
        );
        assert!(parse_entries("watchlist", b"name,birthdate,source\nX,1990-02-31,\n").is_err());
    }
}
