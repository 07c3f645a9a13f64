//! Desk users and their roles.

use std::fmt;
use std::str::FromStr;

/// Desk roles, each including everything the one before it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Agent,
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// The role in words, for pages.
    pub fn label(self) -> &'static str {
        match self {
            Role::Agent => "Agent",
            Role::Supervisor => "Supervisor",
            Role::Admin => "Admin",
        }
    }

    pub const ALL: [Role; 3] = [Role::Agent, Role::Supervisor, Role::Admin];
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Role::Agent),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role '{other}' (expected agent, supervisor or admin)"
            )),
        }
    }
}

/// A normalised (trimmed, lower-cased) e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        let s = raw.trim().to_lowercase();
        let valid = s.len() <= 254
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Email(s))
        } else {
            Err(format!("'{}' is not a valid e-mail address", raw.trim()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the minimum policy (NIST 800-63B: length, not
/// composition rules).
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<NewPassword, String> {
        let n = raw.chars().count();
        if n < 12 {
            return Err("the password must have at least 12 characters".into());
        }
        if n > 256 {
            return Err("the password must have at most 256 characters".into());
        }
        Ok(NewPassword(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Admin > Role::Supervisor && Role::Supervisor > Role::Agent);
        assert_eq!("supervisor".parse::<Role>(), Ok(Role::Supervisor));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse(" Ana@Bank.ES ").map(|e| e.0),
            Ok("ana@bank.es".into())
        );
        for bad in ["", "ana", "@bank.es", "ana@bank", "a na@bank.es", "ana@.es"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse("long enough pass").is_ok());
    }
}
