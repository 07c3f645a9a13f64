//! The onboarding process (the "case"): its states and the data it carries,
//! named exactly as the MobbScan API Gateway names them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Process states. The four MobbScan names are verbatim; `CREATED` and
/// `IN_PROGRESS` are kycdesk's pre-review states (the applicant has not
/// submitted yet) and are kept out of review queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum State {
    #[serde(rename = "CREATED")]
    Created,
    #[serde(rename = "IN_PROGRESS")]
    InProgress,
    #[serde(rename = "PENDING_VALIDATION")]
    PendingValidation,
    #[serde(rename = "PENDING_VERIFICATION")]
    PendingVerification,
    #[serde(rename = "VERIFIED")]
    Verified,
    #[serde(rename = "NOT_VERIFIED")]
    NotVerified,
}

impl State {
    pub const ALL: [State; 6] = [
        State::PendingVerification,
        State::PendingValidation,
        State::InProgress,
        State::Created,
        State::Verified,
        State::NotVerified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "CREATED",
            State::InProgress => "IN_PROGRESS",
            State::PendingValidation => "PENDING_VALIDATION",
            State::PendingVerification => "PENDING_VERIFICATION",
            State::Verified => "VERIFIED",
            State::NotVerified => "NOT_VERIFIED",
        }
    }

    /// A human label for the desk tabs.
    pub fn label(self) -> &'static str {
        match self {
            State::Created => "Created",
            State::InProgress => "In progress",
            State::PendingValidation => "Pending validation",
            State::PendingVerification => "Review",
            State::Verified => "Verified",
            State::NotVerified => "Not verified",
        }
    }

    /// The label with the code beside it, for messages read by people
    /// and by integrators alike: "Not verified (NOT_VERIFIED)".
    pub fn named(self) -> String {
        format!("{} ({})", self.label(), self.as_str())
    }

    pub fn is_final(self) -> bool {
        matches!(self, State::Verified | State::NotVerified)
    }

    /// States from which a reviewer or the integrator may accept or reject.
    pub fn is_decidable(self) -> bool {
        matches!(self, State::PendingValidation | State::PendingVerification)
    }

    /// The state a decision moves a case to from this one: the process
    /// state machine. Refused (with why) when the decision does not apply.
    pub fn after(self, decision: Decision) -> Result<State, String> {
        match decision {
            Decision::Accept | Decision::Reject if self.is_final() => Err(format!(
                "the case is already {}; final cases cannot be changed",
                self.named()
            )),
            Decision::Accept | Decision::Reject if !self.is_decidable() => Err(format!(
                "a case that is {} cannot be decided yet",
                self.named()
            )),
            Decision::Pending if self != State::PendingValidation => Err(format!(
                "only a case that is {} can be sent to review; this one is {}",
                State::PendingValidation.named(),
                self.named()
            )),
            Decision::Accept => Ok(State::Verified),
            Decision::Reject => Ok(State::NotVerified),
            Decision::Pending => Ok(State::PendingVerification),
        }
    }

    /// Work queues are served oldest first; archives newest first.
    pub fn oldest_first(self) -> bool {
        !self.is_final()
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown process state '{0}'")]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// Document types accepted by `POST /onboarding` (`docType`).
pub const DOC_TYPES: [&str; 3] = ["IDCard", "Passport", "DrivingLicense"];

/// The desk's word for a document type code (the code itself for one it
/// does not know, so nothing is hidden).
pub fn doc_type_label(code: &str) -> &str {
    match code {
        "IDCard" => "ID card",
        "Passport" => "Passport",
        "DrivingLicense" => "Driving licence",
        other => other,
    }
}

/// Fields extracted from the identity document (`document` in the process
/// JSON). The last five exist only in `personalData` and are kept here so an
/// edit never loses them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub document_type: Option<String>,
    pub personal_number: Option<String>,
    pub document_number: Option<String>,
    pub name: Option<String>,
    pub surname: Option<String>,
    pub first_surname: Option<String>,
    pub second_surname: Option<String>,
    pub gender: Option<String>,
    pub nationality: Option<String>,
    pub issuing_state: Option<String>,
    pub date_of_issuing: Option<String>,
    pub date_of_birth: Option<String>,
    pub date_of_expiry: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub city_of_birth: Option<String>,
    pub region_of_birth: Option<String>,
    pub state_of_birth_name: Option<String>,
    pub state_of_birth_iso_code: Option<String>,
    pub facial_matching_score: Option<String>,
    pub facial_liveness_score: Option<String>,
    pub mrz: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_document_type: Option<String>,
}

/// The `personalData` fields, in the order the desk shows them, with the
/// document field each one edits. `stateOfBirth` maps to `stateOfBirthName`.
pub const PERSONAL_DATA_FIELDS: [(&str, &str); 20] = [
    ("name", "Name"),
    ("surname", "Surname"),
    ("firstSurname", "First surname"),
    ("secondSurname", "Second surname"),
    ("documentNumber", "Document number"),
    ("personalNumber", "Personal number"),
    ("dateOfBirth", "Date of birth"),
    ("dateOfExpiry", "Date of expiry"),
    ("gender", "Gender"),
    ("country", "Country"),
    ("countryDocumentType", "Country document type"),
    ("address", "Address"),
    ("city", "City"),
    ("region", "Region"),
    ("postCode", "Post code"),
    ("cityOfBirth", "City of birth"),
    ("regionOfBirth", "Region of birth"),
    ("stateOfBirth", "State of birth"),
    ("curp", "CURP"),
    ("mrz", "MRZ"),
];

/// The label a reviewer reads for a `personalData` field.
pub fn field_label(field: &str) -> &str {
    PERSONAL_DATA_FIELDS
        .iter()
        .find(|(k, _)| *k == field)
        .map_or(field, |(_, label)| label)
}

/// Checks a new value of a `personalData` field, as the desk and the API
/// both write it: real calendar dates, ICAO 9303 / ISO 3166-1 alpha-3
/// countries, the MRZ's sex codes, a document number of letters and
/// digits. Values already stored are never re-judged, only changes.
pub fn check_personal_value(field: &str, value: &str) -> Result<(), String> {
    let label = field_label(field);
    let refused = match field {
        "dateOfBirth" | "dateOfExpiry"
            if crate::domain::validation::parse_date(value).is_none() =>
        {
            format!(
                "{label}: '{value}' is not a real date; write it as YYYY-MM-DD, e.g. 1985-06-15"
            )
        }
        "country" if !crate::domain::mrz::is_state_code(value) => {
            format!("{label}: '{value}' is not an ISO 3166-1 alpha-3 country code such as ESP")
        }
        "gender" if !matches!(value, "M" | "F" | "X") => {
            format!("{label}: use M, F or X (unspecified), not '{value}'")
        }
        "documentNumber"
            if !(1..=30).contains(&value.chars().count())
                || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            format!("{label}: use 1 to 30 letters, digits or hyphens, not '{value}'")
        }
        _ => return Ok(()),
    };
    Err(refused)
}

impl Document {
    /// The document slot a `personalData` field edits, if the name is one.
    pub fn personal_field_mut(&mut self, field: &str) -> Option<&mut Option<String>> {
        Some(match field {
            "address" => &mut self.address,
            "city" => &mut self.city,
            "cityOfBirth" => &mut self.city_of_birth,
            "country" => &mut self.country,
            "countryDocumentType" => &mut self.country_document_type,
            "curp" => &mut self.curp,
            "dateOfBirth" => &mut self.date_of_birth,
            "dateOfExpiry" => &mut self.date_of_expiry,
            "documentNumber" => &mut self.document_number,
            "gender" => &mut self.gender,
            "mrz" => &mut self.mrz,
            "name" => &mut self.name,
            "personalNumber" => &mut self.personal_number,
            "postCode" => &mut self.post_code,
            "region" => &mut self.region,
            "regionOfBirth" => &mut self.region_of_birth,
            "firstSurname" => &mut self.first_surname,
            "secondSurname" => &mut self.second_surname,
            "stateOfBirth" => &mut self.state_of_birth_name,
            "surname" => &mut self.surname,
            _ => return None,
        })
    }

    pub fn personal_field(&self, field: &str) -> Option<&str> {
        match field {
            "address" => self.address.as_deref(),
            "city" => self.city.as_deref(),
            "cityOfBirth" => self.city_of_birth.as_deref(),
            "country" => self.country.as_deref(),
            "countryDocumentType" => self.country_document_type.as_deref(),
            "curp" => self.curp.as_deref(),
            "dateOfBirth" => self.date_of_birth.as_deref(),
            "dateOfExpiry" => self.date_of_expiry.as_deref(),
            "documentNumber" => self.document_number.as_deref(),
            "gender" => self.gender.as_deref(),
            "mrz" => self.mrz.as_deref(),
            "name" => self.name.as_deref(),
            "personalNumber" => self.personal_number.as_deref(),
            "postCode" => self.post_code.as_deref(),
            "region" => self.region.as_deref(),
            "regionOfBirth" => self.region_of_birth.as_deref(),
            "firstSurname" => self.first_surname.as_deref(),
            "secondSurname" => self.second_surname.as_deref(),
            "stateOfBirth" => self.state_of_birth_name.as_deref(),
            "surname" => self.surname.as_deref(),
            _ => None,
        }
    }

    /// Lower-cased, accent-folded keys the queue search matches by prefix.
    pub fn search_keys(&self) -> (String, String, String) {
        let name = fold(self.name.as_deref().unwrap_or(""));
        let surname = fold(
            self.surname
                .as_deref()
                .or(self.first_surname.as_deref())
                .unwrap_or(""),
        );
        let number = self
            .document_number
            .as_deref()
            .unwrap_or("")
            .trim()
            .to_uppercase();
        (name, surname, number)
    }

    /// The words the desk search finds this document by: every word of
    /// its folded given names and surnames (see [`search_words`]).
    pub fn search_words(&self) -> Vec<String> {
        let (name, surname, _) = self.search_keys();
        indexed_words(&format!("{name} {surname}"))
    }

    pub fn display_name(&self) -> String {
        let parts: Vec<&str> = [self.name.as_deref(), self.surname.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
        if parts.is_empty() {
            "(no name extracted)".to_string()
        } else {
            parts.join(" ")
        }
    }
}

/// Lower-case and strip the common Latin accents so "Pérez" is found by "perez".
pub fn fold(s: &str) -> String {
    s.trim()
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            other => other,
        })
        .collect()
}

/// The longest word the search index keeps, in characters: longer words
/// (of a name or of a query) are cut to it, so both sides still meet, and
/// an index entry stays far below PostgreSQL's b-tree row limit.
pub const SEARCH_WORD_MAX: usize = 40;

/// Folded words of a name or a search query, split at spaces and hyphens
/// ("Jean-Luc" is found by "luc"), each cut to [`SEARCH_WORD_MAX`]
/// characters, without repeats, in their order.
pub fn search_words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in fold(s).split(|c: char| c.is_whitespace() || c == '-') {
        let w: String = w.chars().take(SEARCH_WORD_MAX).collect();
        if !w.is_empty() && !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// The most bytes of a case's words the search index holds (each word
/// counted with the space before it): names of 500 characters each are
/// accepted, but a PostgreSQL b-tree entry must stay under ~2.7 kB, and
/// the index entry carries all of a case's words. Words past the budget
/// are not searchable.
pub const SEARCH_WORDS_BUDGET: usize = 1000;

/// The words of a case's names the search index keeps: [`search_words`]
/// up to [`SEARCH_WORDS_BUDGET`].
pub fn indexed_words(names: &str) -> Vec<String> {
    let mut used = 0;
    search_words(names)
        .into_iter()
        .take_while(|w| {
            used += w.len() + 1;
            used <= SEARCH_WORDS_BUDGET
        })
        .collect()
}

/// One validation's outcome, as shown in `validations` of the process JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Unknown,
}

impl Outcome {
    /// What a reviewer reads on the badge.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "Passes",
            Outcome::Fail => "Fails",
            Outcome::Unknown => "Not known",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Validation {
    pub result: Outcome,
    pub reason: String,
}

/// What a reviewer (or integrator) decides about a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept,
    Reject,
    /// `PENDING_VALIDATION` → `PENDING_VERIFICATION` (to the review queue).
    Pending,
}

impl Decision {
    pub fn parse(s: &str) -> Result<Decision, String> {
        match s {
            "accept" => Ok(Decision::Accept),
            "reject" => Ok(Decision::Reject),
            "pending" => Ok(Decision::Pending),
            other => Err(format!("unknown decision '{other}'")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accept => "accept",
            Decision::Reject => "reject",
            Decision::Pending => "pending",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_split_fold_and_stay_within_the_budget() {
        assert_eq!(
            search_words("  María-José  GARCÍA maria "),
            vec!["maria", "jose", "garcia"]
        );
        let long = "x".repeat(60);
        assert_eq!(search_words(&long), vec!["x".repeat(SEARCH_WORD_MAX)]);
        // 4-byte letters: 35 bytes a word with its space, so 28 fit 1,000.
        let names: Vec<String> = (0..45)
            .map(|i| format!("{}{i:02}", "𝔘".repeat(8)))
            .collect();
        let kept = indexed_words(&names.join(" "));
        assert_eq!(kept, names[..28].to_vec());
        assert!(kept.iter().map(|w| w.len() + 1).sum::<usize>() <= SEARCH_WORDS_BUDGET);
    }

    #[test]
    fn state_names_round_trip() {
        for s in State::ALL {
            assert_eq!(s.as_str().parse::<State>().ok(), Some(s));
            assert_eq!(serde_json::to_string(&s).ok(), Some(format!("\"{s}\"")));
        }
        assert!("verified".parse::<State>().is_err());
    }

    #[test]
    fn every_personal_field_maps_to_a_slot() {
        let mut d = Document::default();
        for (f, _) in PERSONAL_DATA_FIELDS {
            *d.personal_field_mut(f).expect(f) = Some(format!("v-{f}"));
            assert_eq!(d.personal_field(f), Some(format!("v-{f}").as_str()));
        }
        assert!(d.personal_field_mut("nationality").is_none());
    }

    #[test]
    fn fold_strips_accents() {
        assert_eq!(fold(" José PÉREZ "), "jose perez");
    }
}

#[cfg(test)]
mod personal_value_tests {
    use super::check_personal_value;

    #[test]
    fn changed_values_are_checked_like_the_reference_writes_them() {
        for (f, v) in [
            ("dateOfBirth", "1985-06-15"),
            ("dateOfExpiry", "2031-01-31"),
            ("country", "ESP"),
            ("country", "D"),
            ("gender", "X"),
            ("documentNumber", "BAB-123456"),
            ("surname", "31/02/1990"),
        ] {
            assert_eq!(check_personal_value(f, v), Ok(()), "{f}={v}");
        }
        for (f, v, says) in [
            ("dateOfBirth", "31/02/1990", "Date of birth"),
            ("dateOfBirth", "1990-13-01", "real date"),
            ("country", "Spain", "alpha-3"),
            ("country", "esp", "alpha-3"),
            ("gender", "male", "M, F or X"),
            ("documentNumber", "AB 12", "letters, digits"),
            ("documentNumber", "ÄB12", "letters, digits"),
        ] {
            let e = check_personal_value(f, v).err().unwrap_or_default();
            assert!(e.contains(says), "{f}={v}: {e}");
        }
    }
}
