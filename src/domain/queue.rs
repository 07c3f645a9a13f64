//! Review-queue filters, parsed from the query string once so that every
//! filtered view is a bookmarkable URL and the store only sees valid values.

use super::process::{search_words, State, DOC_TYPES};
use super::validation;
use chrono::NaiveDate;
use serde::Deserialize;

/// The raw query string of `/desk/queue`. Empty strings mean "not set" because
/// an HTML form sends every input.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct QueueParams {
    pub state: Option<String>,
    pub integrator: Option<String>,
    pub country: Option<String>,
    pub doc_type: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub assignee: Option<String>,
    pub failing: Option<String>,
    pub score_min: Option<String>,
    pub score_max: Option<String>,
    pub q: Option<String>,
    /// oldest (open queues' default), newest (final queues' default), score.
    pub sort: Option<String>,
    /// "1": only cases past their integrator's review target.
    pub overdue: Option<String>,
    pub after: Option<String>,
}

/// The order of a queue view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sort {
    Oldest,
    Newest,
    /// Lowest face-matching score first (cases without one first of all):
    /// the likeliest mismatches on top.
    LowestScore,
}

impl Sort {
    pub const CHOICES: [(&'static str, &'static str); 3] = [
        ("oldest", "Oldest first"),
        ("newest", "Newest first"),
        ("score", "Lowest face score first"),
    ];
}

#[derive(Debug, Clone, PartialEq)]
pub enum Assignee {
    Unassigned,
    User(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Search {
    ScanId(String),
    /// Folded prefix for names, upper-cased text for document numbers.
    Text {
        folded: String,
        upper: String,
    },
    /// Several words, any order: each must start a word of the given names
    /// or surnames (folded: accents and case do not matter).
    Words(Vec<String>),
    /// The start of a scanId (at least 8 characters), or a document number
    /// made of the same characters.
    ScanIdPrefix {
        prefix: String,
        upper: String,
    },
}

/// The most words a search uses (more narrow nothing real).
pub const MAX_SEARCH_WORDS: usize = 4;

fn search_of(q: &str) -> Search {
    if let Ok(id) = uuid::Uuid::parse_str(q) {
        return Search::ScanId(id.to_string());
    }
    let lower = q.to_lowercase();
    if (8..36).contains(&lower.len())
        && lower.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        && lower.bytes().next().is_some_and(|b| b.is_ascii_hexdigit())
    {
        return Search::ScanIdPrefix {
            prefix: lower.trim_end_matches('-').to_string(),
            upper: q.to_uppercase(),
        };
    }
    let mut words = search_words(q);
    words.truncate(MAX_SEARCH_WORDS);
    if words.len() > 1 {
        return Search::Words(words);
    }
    // One word (or none, e.g. "-": then only a document number can match).
    Search::Text {
        folded: words.pop().unwrap_or_default(),
        upper: q.to_uppercase(),
    }
}

/// Keyset position: the last row of the previous page (with its face
/// score when the view is sorted by score; -1 stands for none).
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub score: Option<f64>,
    pub created_at: i64,
    pub scan_id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        match self.score {
            None => format!("{}_{}", self.created_at, self.scan_id),
            Some(s) => format!("s{s}_{}_{}", self.created_at, self.scan_id),
        }
    }
    fn decode(s: &str) -> Option<Cursor> {
        let (score, rest) = match s.strip_prefix('s') {
            Some(r) => {
                let (sc, rest) = r.split_once('_')?;
                let v: f64 = sc.parse().ok()?;
                (Some(v).filter(|v| v.is_finite()), rest)
            }
            None => (None, s),
        };
        if s.starts_with('s') && score.is_none() {
            return None;
        }
        let (ms, id) = rest.split_once('_')?;
        let id = uuid::Uuid::parse_str(id).ok()?;
        Some(Cursor {
            score,
            created_at: ms.parse().ok()?,
            scan_id: id.to_string(),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueFilter {
    pub state: State,
    pub integrator: Option<String>,
    pub country: Option<String>,
    pub doc_type: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub assignee: Option<Assignee>,
    pub failing: Option<String>,
    pub score_min: Option<f64>,
    pub score_max: Option<f64>,
    pub search: Option<Search>,
    pub sort: Sort,
    pub overdue: bool,
    pub after: Option<Cursor>,
}

fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn day_start_ms(s: &str, what: &str) -> Result<i64, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis())
        .ok_or_else(|| format!("the {what} date must be YYYY-MM-DD"))
}

fn score(s: Option<&str>, what: &str) -> Result<Option<f64>, String> {
    s.map(|v| {
        v.parse::<f64>()
            .ok()
            .filter(|f| (0.0..=1.0).contains(f))
            .ok_or_else(|| format!("the {what} score must be a number between 0 and 1"))
    })
    .transpose()
}

impl QueueFilter {
    pub fn parse(p: &QueueParams) -> Result<QueueFilter, String> {
        let state = match set(&p.state) {
            None => State::PendingVerification,
            Some(s) => s
                .parse()
                .map_err(|e: super::process::UnknownState| e.to_string())?,
        };
        let country = set(&p.country)
            .map(|c| {
                let c = c.to_uppercase();
                if c.len() == 3 && c.chars().all(|x| x.is_ascii_uppercase()) {
                    Ok(c)
                } else {
                    Err("the country must be an ISO 3166-1 alpha-3 code such as ESP".to_string())
                }
            })
            .transpose()?;
        let doc_type = set(&p.doc_type)
            .map(|d| {
                DOC_TYPES
                    .iter()
                    .find(|t| **t == d)
                    .map(|t| t.to_string())
                    .ok_or_else(|| format!("unknown document type '{d}'"))
            })
            .transpose()?;
        let from_ms = set(&p.from).map(|s| day_start_ms(s, "from")).transpose()?;
        // "to" is inclusive: the whole day counts.
        let to_ms = set(&p.to)
            .map(|s| day_start_ms(s, "to").map(|ms| ms + 86_400_000))
            .transpose()?;
        if let (Some(f), Some(t)) = (from_ms, to_ms) {
            if f >= t {
                return Err("the from date must not be after the to date".into());
            }
        }
        let assignee = set(&p.assignee).map(|a| {
            if a == "none" {
                Assignee::Unassigned
            } else {
                Assignee::User(a.to_lowercase())
            }
        });
        let failing = set(&p.failing)
            .map(|f| {
                validation::NAMES
                    .iter()
                    .find(|n| **n == f)
                    .map(|n| n.to_string())
                    .ok_or_else(|| format!("unknown validation '{f}'"))
            })
            .transpose()?;
        let score_min = score(set(&p.score_min), "minimum")?;
        let score_max = score(set(&p.score_max), "maximum")?;
        let search = set(&p.q).map(search_of);
        let sort = match set(&p.sort) {
            None if state.oldest_first() => Sort::Oldest,
            None => Sort::Newest,
            Some("oldest") => Sort::Oldest,
            Some("newest") => Sort::Newest,
            Some("score") => Sort::LowestScore,
            Some(o) => return Err(format!("unknown sort '{o}' (oldest, newest or score)")),
        };
        let overdue = match set(&p.overdue) {
            None | Some("0") => false,
            Some("1") => true,
            Some(o) => return Err(format!("overdue must be 1 or empty, not '{o}'")),
        };
        let after = set(&p.after)
            .map(|a| Cursor::decode(a).ok_or_else(|| "the page cursor is malformed".to_string()))
            .transpose()?;
        if after
            .as_ref()
            .is_some_and(|c| c.score.is_some() != (sort == Sort::LowestScore))
        {
            return Err("the page cursor does not belong to this sort order".into());
        }
        Ok(QueueFilter {
            state,
            integrator: set(&p.integrator).map(str::to_string),
            country,
            doc_type,
            from_ms,
            to_ms,
            assignee,
            failing,
            score_min,
            score_max,
            search,
            sort,
            overdue,
            after,
        })
    }
}

impl QueueParams {
    /// The query string for this view with another state or cursor, keeping
    /// every other filter, so links and pushed URLs stay bookmarkable.
    pub fn with(&self, state: Option<&str>, after: Option<&str>) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        let fields = [
            ("integrator", &self.integrator),
            ("country", &self.country),
            ("doc_type", &self.doc_type),
            ("from", &self.from),
            ("to", &self.to),
            ("assignee", &self.assignee),
            ("failing", &self.failing),
            ("score_min", &self.score_min),
            ("score_max", &self.score_max),
            ("q", &self.q),
            ("sort", &self.sort),
            ("overdue", &self.overdue),
        ];
        let st = state.or(set(&self.state));
        if let Some(s) = st {
            pairs.push(("state", s));
        }
        for (k, v) in fields.iter() {
            if let Some(v) = set(v) {
                pairs.push((k, v));
            }
        }
        if let Some(a) = after {
            pairs.push(("after", a));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_params_mean_the_review_queue() {
        let f = QueueFilter::parse(&QueueParams::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.state, State::PendingVerification);
        assert!(f.search.is_none() && f.after.is_none());
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let cases = [
            QueueParams {
                state: Some("DONE".into()),
                ..Default::default()
            },
            QueueParams {
                country: Some("Spain".into()),
                ..Default::default()
            },
            QueueParams {
                from: Some("2024-13-01".into()),
                ..Default::default()
            },
            QueueParams {
                score_min: Some("7".into()),
                ..Default::default()
            },
            QueueParams {
                failing: Some("nope".into()),
                ..Default::default()
            },
            QueueParams {
                after: Some("x".into()),
                ..Default::default()
            },
            QueueParams {
                sort: Some("name".into()),
                ..Default::default()
            },
            QueueParams {
                overdue: Some("yes".into()),
                ..Default::default()
            },
            QueueParams {
                sort: Some("score".into()),
                after: Some("17_4a1f0b0e-8a4d-4c1b-9d43-7a3e0f1a2b3c".into()),
                ..Default::default()
            },
        ];
        for c in cases {
            assert!(QueueFilter::parse(&c).is_err(), "{c:?}");
        }
    }

    #[test]
    fn search_recognises_scan_ids_and_folds_text() {
        let id = "4a1f0b0e-8a4d-4c1b-9d43-7a3e0f1a2b3c";
        let f = QueueFilter::parse(&QueueParams {
            q: Some(id.into()),
            ..Default::default()
        });
        assert_eq!(f.map(|f| f.search), Ok(Some(Search::ScanId(id.into()))));
        let f = QueueFilter::parse(&QueueParams {
            q: Some("Pérez".into()),
            ..Default::default()
        });
        assert_eq!(
            f.map(|f| f.search),
            Ok(Some(Search::Text {
                folded: "perez".into(),
                upper: "PÉREZ".into()
            }))
        );
    }

    #[test]
    fn several_words_and_scan_id_prefixes_are_told_apart() {
        assert_eq!(
            search_of("Sofía  SCHMIDT"),
            Search::Words(vec!["sofia".into(), "schmidt".into()])
        );
        assert_eq!(
            search_of("0C874B59-b3"),
            Search::ScanIdPrefix {
                prefix: "0c874b59-b3".into(),
                upper: "0C874B59-B3".into()
            }
        );
        // Too short for a scanId prefix: a name or document-number search.
        assert!(matches!(search_of("0c874b5"), Search::Text { .. }));
        assert!(matches!(search_of("schmidt"), Search::Text { .. }));
        // Hyphens split words as they do in the index; repeats count once.
        assert_eq!(
            search_of("Jean-Luc jean"),
            Search::Words(vec!["jean".into(), "luc".into()])
        );
        assert_eq!(
            search_of("-"),
            Search::Text {
                folded: String::new(),
                upper: "-".into()
            }
        );
        assert_eq!(
            search_of("a b c d e f"),
            Search::Words(vec!["a".into(), "b".into(), "c".into(), "d".into()])
        );
    }

    #[test]
    fn links_keep_filters_and_cursor_round_trips() {
        let p = QueueParams {
            country: Some("ESP".into()),
            q: Some("ana".into()),
            ..Default::default()
        };
        assert_eq!(
            p.with(Some("VERIFIED"), None),
            "state=VERIFIED&country=ESP&q=ana"
        );
        let c = Cursor {
            score: None,
            created_at: 17,
            scan_id: "4a1f0b0e-8a4d-4c1b-9d43-7a3e0f1a2b3c".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c.clone()));
        let scored = Cursor {
            score: Some(0.42),
            ..c
        };
        assert_eq!(scored.encode(), format!("s0.42_17_{}", scored.scan_id));
        assert_eq!(Cursor::decode(&scored.encode()), Some(scored));
        assert_eq!(
            Cursor::decode("sNaN_17_4a1f0b0e-8a4d-4c1b-9d43-7a3e0f1a2b3c"),
            None
        );
    }
}
