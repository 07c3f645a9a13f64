//! Knowledge-based quizzes generated from what kycdesk holds about the
//! contact: birth year, past and present street addresses, cities, phone
//! numbers, the country that issued their document. Decoys are made to
//! look like the real answer and are never another value of the contact.
//! The right answers stay on the server.

use super::{fold, Pii};
use crate::store::contacts as crow;
use crate::store::Db;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Fewer questions than this and the quiz is `failedGetQuestions`.
pub const MIN_QUESTIONS: usize = 3;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Question {
    pub id: String,
    pub question: String,
    pub choices: Vec<String>,
    /// Never serialised to clients (see `public`).
    pub answer: String,
}

impl Question {
    pub fn public(&self) -> serde_json::Value {
        serde_json::json!({"id": self.id, "question": self.question, "choices": self.choices})
    }
}

/// What the questions are drawn from.
#[derive(Debug, Default)]
pub struct Knowledge {
    pub birth_years: Vec<i32>,
    pub streets: Vec<String>,
    pub cities: Vec<String>,
    pub phones: Vec<String>,
    pub issuing_states: Vec<String>,
}

pub async fn knowledge(
    db: &Db,
    contact_id: &str,
    pii: &Pii,
) -> Result<Knowledge, super::VerifyError> {
    let mut k = Knowledge::default();
    let add = |v: &mut Vec<String>, s: Option<&str>| {
        if let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) {
            if !v.iter().any(|x| fold(x) == fold(s)) {
                v.push(s.to_string());
            }
        }
    };
    if let Some(y) = pii
        .birthdate
        .as_deref()
        .and_then(|b| b.get(..4)?.parse().ok())
    {
        k.birth_years.push(y);
    }
    add(&mut k.streets, pii.address1.as_deref());
    add(&mut k.cities, pii.city.as_deref());
    for p in crow::points(db.read(), contact_id).await? {
        match p.kind.as_str() {
            // "street, city region postal" lines: past addresses.
            "address" => {
                let mut parts = p.value.splitn(2, ", ");
                add(&mut k.streets, parts.next());
                let rest = parts.next().unwrap_or("");
                if let Some(c) = &pii.city {
                    if fold(rest).starts_with(&fold(c)) {
                        continue;
                    }
                }
            }
            "phone" => {
                let d: String = p.value.chars().filter(char::is_ascii_digit).collect();
                if d.len() >= 7 {
                    add(&mut k.phones, Some(&d[d.len() - 4..]));
                }
            }
            _ => {}
        }
    }
    if let Some(p) = &pii.phone {
        let d: String = p.chars().filter(char::is_ascii_digit).collect();
        if d.len() >= 7 {
            add(&mut k.phones, Some(&d[d.len() - 4..]));
        }
    }
    for (scan_id, _, doc) in crow::documents(db.read(), contact_id).await? {
        let d = super::stored_document(&scan_id, &doc)?;
        add(
            &mut k.issuing_states,
            d.issuing_state.as_deref().and_then(country_name),
        );
        add(&mut k.cities, d.city.as_deref());
        if let Some(y) = d
            .date_of_birth
            .as_deref()
            .and_then(super::document_date)
            .and_then(|b| b[..4].parse().ok())
        {
            if !k.birth_years.contains(&y) {
                k.birth_years.push(y);
            }
        }
    }
    Ok(k)
}

const COUNTRIES: [(&str, &str); 20] = [
    ("ESP", "Spain"),
    ("USA", "United States"),
    ("FRA", "France"),
    ("DEU", "Germany"),
    ("ITA", "Italy"),
    ("PRT", "Portugal"),
    ("GBR", "United Kingdom"),
    ("MEX", "Mexico"),
    ("ARG", "Argentina"),
    ("COL", "Colombia"),
    ("CHL", "Chile"),
    ("PER", "Peru"),
    ("NLD", "Netherlands"),
    ("BEL", "Belgium"),
    ("IRL", "Ireland"),
    ("CAN", "Canada"),
    ("BRA", "Brazil"),
    ("POL", "Poland"),
    ("SWE", "Sweden"),
    ("UTO", "Utopia"),
];

fn country_name(code: &str) -> Option<&'static str> {
    COUNTRIES
        .iter()
        .find(|(c, _)| *c == code.trim())
        .map(|(_, n)| *n)
}

const CITIES: [&str; 24] = [
    "Springfield",
    "Riverside",
    "Franklin",
    "Greenville",
    "Bristol",
    "Clinton",
    "Fairview",
    "Salem",
    "Madison",
    "Georgetown",
    "Arlington",
    "Ashland",
    "Dover",
    "Oxford",
    "Jackson",
    "Burlington",
    "Manchester",
    "Milton",
    "Newport",
    "Auburn",
    "Dayton",
    "Lexington",
    "Valencia",
    "Sevilla",
];

const STREETS: [&str; 20] = [
    "Oak",
    "Maple",
    "Cedar",
    "Pine",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Walnut",
    "Sunset",
    "Lincoln",
    "Jackson",
    "Highland",
    "Church",
    "Willow",
    "Meadow",
    "Forest",
    "River",
    "Chestnut",
];
const SUFFIXES: [&str; 8] = ["St", "Ave", "Dr", "Rd", "Ln", "Blvd", "Ct", "Way"];

/// Three decoys that differ (folded) from every known value.
fn decoys(known: &[String], mut make: impl FnMut() -> String) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    let mut tries = 0;
    while out.len() < 3 && tries < 200 {
        tries += 1;
        let d = make();
        let f = fold(&d);
        if !known.iter().any(|k| fold(k) == f) && !out.iter().any(|o| fold(o) == f) {
            out.push(d);
        }
    }
    out
}

fn question(id: usize, text: &str, answer: String, decoys: Vec<String>) -> Option<Question> {
    if decoys.len() < 3 {
        return None;
    }
    let mut choices = decoys;
    choices.push(answer.clone());
    choices.shuffle(&mut rand::rngs::OsRng);
    Some(Question {
        id: id.to_string(),
        question: text.into(),
        choices,
        answer,
    })
}

/// The questions, or None when there is not enough data for `MIN_QUESTIONS`.
pub fn generate(k: &Knowledge) -> Option<Vec<Question>> {
    let mut rng = rand::rngs::OsRng;
    let mut qs = vec![];
    if let Some(&y) = k.birth_years.first() {
        let known: Vec<String> = k.birth_years.iter().map(|y| y.to_string()).collect();
        let d = decoys(&known, || (y + rng.gen_range(-6..=6)).to_string());
        qs.extend(question(
            qs.len() + 1,
            "In which year were you born?",
            y.to_string(),
            d,
        ));
    }
    if let Some(s) = k.streets.choose(&mut rng) {
        let number_len = s
            .split(' ')
            .next()
            .map(|n| n.len().clamp(1, 5))
            .unwrap_or(3);
        let d = decoys(&k.streets, || {
            let n = rng.gen_range(10u32.pow(number_len as u32 - 1)..10u32.pow(number_len as u32));
            format!(
                "{n} {} {}",
                STREETS.choose(&mut rng).copied().unwrap_or("Oak"),
                SUFFIXES.choose(&mut rng).copied().unwrap_or("St")
            )
        });
        qs.extend(question(
            qs.len() + 1,
            "Which of these street addresses is or has been yours?",
            s.clone(),
            d,
        ));
    }
    if let Some(c) = k.cities.choose(&mut rng) {
        let d = decoys(&k.cities, || {
            CITIES
                .choose(&mut rng)
                .copied()
                .unwrap_or("Salem")
                .to_string()
        });
        qs.extend(question(
            qs.len() + 1,
            "In which of these cities have you lived?",
            c.clone(),
            d,
        ));
    }
    if let Some(p) = k.phones.choose(&mut rng) {
        let d = decoys(&k.phones, || format!("{:04}", rng.gen_range(0..10_000)));
        qs.extend(question(
            qs.len() + 1,
            "Which are the last four digits of a phone number you have used?",
            p.clone(),
            d,
        ));
    }
    if let Some(s) = k.issuing_states.first() {
        let d = decoys(&k.issuing_states, || {
            COUNTRIES
                .choose(&mut rng)
                .map(|(_, n)| *n)
                .unwrap_or("Utopia")
                .to_string()
        });
        qs.extend(question(
            qs.len() + 1,
            "Which country issued your identity document?",
            s.clone(),
            d,
        ));
    }
    (qs.len() >= MIN_QUESTIONS).then_some(qs)
}

/// Number right; an answer to an unknown question or a second answer to
/// the same one is refused.
pub fn score(questions: &[Question], answers: &[(String, String)]) -> Result<usize, String> {
    let mut seen = std::collections::HashSet::new();
    let mut right = 0;
    for (qid, a) in answers {
        let q = questions
            .iter()
            .find(|q| &q.id == qid)
            .ok_or_else(|| format!("questionId '{qid}' is not a question of this quiz"))?;
        if !seen.insert(qid.clone()) {
            return Err(format!("questionId '{qid}' is answered twice"));
        }
        if fold(a) == fold(&q.answer) {
            right += 1;
        }
    }
    Ok(right)
}

/// At least 80 % right passes (3 of 3, 4 of 4, 4 of 5).
pub fn passes(right: usize, total: usize) -> bool {
    total > 0 && right * 5 >= total * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_hide_their_answers_among_plausible_decoys() {
        let k = Knowledge {
            birth_years: vec![1980],
            streets: vec!["1741 Tiburon Dr".into(), "12 Oak St".into()],
            cities: vec!["Wilmington".into()],
            phones: vec!["5555".into()],
            issuing_states: vec![],
        };
        let qs = generate(&k).unwrap_or_default();
        assert_eq!(qs.len(), 4);
        for q in &qs {
            assert_eq!(q.choices.len(), 4);
            assert!(q.choices.contains(&q.answer));
            assert!(q.public().get("answer").is_none());
        }
        // A decoy is never another of the contact's own streets.
        let street = qs
            .iter()
            .find(|q| q.question.contains("street"))
            .map(|q| q.choices.clone())
            .unwrap_or_default();
        assert_eq!(street.iter().filter(|c| k.streets.contains(c)).count(), 1);
        let answers: Vec<(String, String)> = qs
            .iter()
            .map(|q| (q.id.clone(), q.answer.clone()))
            .collect();
        assert_eq!(score(&qs, &answers), Ok(4));
        assert!(score(&qs, &[("9".into(), "x".into())]).is_err());
        assert!(passes(4, 5) && !passes(3, 4) && passes(3, 3));
        assert!(generate(&Knowledge {
            birth_years: vec![1980],
            ..Knowledge::default()
        })
        .is_none());
    }
}
