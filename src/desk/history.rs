//! A case's history as a reviewer reads it: edits ("Surname: García →
//! Garcia"), decisions, claims, notes and evidence, in words. Page views and
//! downloads stay in the audit log only: they are who looked, not what
//! happened to the case.

use super::error::DeskError;
use super::view::When;
use crate::domain::process::field_label;
use crate::domain::State;
use crate::store::audit::Entry;
use crate::store::processes::FieldEditRow;
use serde::Deserialize;

pub struct HistoryItem {
    pub when: When,
    pub actor: String,
    /// What happened, in words.
    pub what: String,
    /// Why, when the actor said so (an edit's or a rejection's reason).
    pub why: Option<String>,
    /// A class for the line: edit, decision, claim, note, evidence, other.
    pub kind: &'static str,
    ms: i64,
}

#[derive(Deserialize)]
struct DecideDetail {
    decision: String,
    to: String,
    reason: Option<String>,
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    four_eyes: Option<FourEyesDetail>,
}

#[derive(Deserialize)]
struct FourEyesDetail {
    verdict: String,
    proposed_by: String,
}

#[derive(Deserialize)]
struct ProposeDetail {
    decision: String,
    reason: Option<String>,
    rule: String,
}

#[derive(Deserialize)]
struct SubmitDetail {
    to: String,
    #[serde(default)]
    retake: Option<String>,
}

#[derive(Deserialize)]
struct RetakeDetail {
    steps: Vec<String>,
    reason: String,
    message: Option<String>,
}

#[derive(Deserialize)]
struct ConfirmDetail {
    #[serde(rename = "type")]
    kind: String,
    to: String,
}

#[derive(Deserialize)]
struct AssignDetail {
    to: String,
}

#[derive(Deserialize)]
struct EvidenceDetail {
    #[serde(rename = "type")]
    evidence_type: String,
}

fn state_label(code: &str) -> String {
    code.parse::<State>()
        .map(|s| s.label().to_string())
        .unwrap_or_else(|_| code.to_string())
}

/// A stored detail that no longer decodes fails the page rather than
/// showing an empty line (rows are decoded once, never defaulted).
fn detail<T: for<'de> Deserialize<'de>>(e: &Entry) -> Result<T, DeskError> {
    serde_json::from_str(&e.detail).map_err(|err| {
        DeskError::Internal(anyhow::anyhow!(
            "audit entry {} ({}) has a detail that does not decode: {err}",
            e.seq,
            e.action
        ))
    })
}

fn item(e: &Entry, now: i64, kind: &'static str, what: String, why: Option<String>) -> HistoryItem {
    HistoryItem {
        when: When::at(e.at, now),
        actor: e.actor.clone(),
        what,
        why,
        kind,
        ms: e.at,
    }
}

/// One line for an audit entry, or none for views and downloads.
fn from_entry(e: &Entry, now: i64) -> Result<Option<HistoryItem>, DeskError> {
    let line = match e.action.as_str() {
        // Edits come from field_edits, one line per field with its values.
        "case.edit" | "case.view" | "case.zip.download" | "evidence.download" => return Ok(None),
        "case.claim" => item(e, now, "claim", "claimed the case".into(), None),
        "case.release" => item(e, now, "claim", "released the case".into(), None),
        "case.assign" => {
            let d: AssignDetail = detail(e)?;
            item(
                e,
                now,
                "claim",
                format!("assigned the case to {}", d.to),
                None,
            )
        }
        "case.note" => item(e, now, "note", "added a note".into(), None),
        "case.submit" => {
            let d: SubmitDetail = detail(e)?;
            let what = if d.retake.is_some() {
                format!("resubmitted the retaken evidence → {}", state_label(&d.to))
            } else {
                format!("submitted the onboarding → {}", state_label(&d.to))
            };
            item(e, now, "decision", what, None)
        }
        "case.propose" => {
            let d: ProposeDetail = detail(e)?;
            let verb = d.decision.as_str();
            item(
                e,
                now,
                "decision",
                format!(
                    "proposed to {verb}; held for a second reviewer ({})",
                    crate::domain::four_eyes::Rule::label(&d.rule)
                ),
                d.reason,
            )
        }
        "case.retake" => {
            let d: RetakeDetail = detail(e)?;
            let steps = d
                .steps
                .iter()
                .map(|s| {
                    crate::domain::retake::Step::parse(s)
                        .map(|st| st.label().to_lowercase())
                        .ok_or_else(|| {
                            DeskError::Internal(anyhow::anyhow!(
                                "audit entry {} names an unknown retake step '{s}'",
                                e.seq
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let reason = crate::domain::retake::Reason::parse(&d.reason)
                .map_or(d.reason.clone(), |r| r.label().to_string());
            let why = match d.message {
                Some(m) => format!("{reason} — “{m}”"),
                None => reason,
            };
            item(
                e,
                now,
                "decision",
                format!("asked the applicant to retake: {}", steps.join(", ")),
                Some(why),
            )
        }
        "case.retake_expired" => {
            let d: AssignDetail = detail(e)?;
            item(
                e,
                now,
                "decision",
                format!(
                    "the applicant did not retake the evidence in time → back in {}",
                    state_label(&d.to)
                ),
                None,
            )
        }
        "case.decide" => {
            let d: DecideDetail = detail(e)?;
            let verb = match d.decision.as_str() {
                "accept" => "accepted",
                "reject" => "rejected",
                "pending" => "sent to review",
                other => other,
            };
            let mut what = match &d.four_eyes {
                Some(f) => format!(
                    "{} the proposal of {} (second review): {verb} → {}",
                    f.verdict,
                    f.proposed_by,
                    state_label(&d.to)
                ),
                None => format!("{verb} → {}", state_label(&d.to)),
            };
            if !d.fields.is_empty() {
                let names: Vec<&str> = d.fields.iter().map(|f| field_label(f)).collect();
                what.push_str(&format!(" (with corrections: {})", names.join(", ")));
            }
            item(e, now, "decision", what, d.reason)
        }
        "evidence.add" => {
            let d: EvidenceDetail = detail(e)?;
            item(
                e,
                now,
                "evidence",
                format!("added evidence: {}", d.evidence_type),
                None,
            )
        }
        "onboarding.contact_confirm" => {
            let d: ConfirmDetail = detail(e)?;
            let what = if d.kind == "phone" {
                "mobile number"
            } else {
                "e-mail address"
            };
            item(
                e,
                now,
                "evidence",
                format!("confirmed their {what} by code ({})", d.to),
                None,
            )
        }
        "contact.approved" => item(
            e,
            now,
            "decision",
            "approved the applicant manually".into(),
            None,
        ),
        "contact.tokens_revoked" => item(
            e,
            now,
            "other",
            "signed the applicant out of the mobile app".into(),
            None,
        ),
        other => item(e, now, "other", other.replace(['.', '_'], " "), None),
    };
    Ok(Some(line))
}

/// An audit entry in the history's words ("rejected → Not verified —
/// Document expired"), or None for entries the history leaves out.
pub fn describe(e: &Entry, now: i64) -> Result<Option<String>, DeskError> {
    Ok(from_entry(e, now)?
        .filter(|i| i.kind != "other")
        .map(|i| match i.why {
            Some(why) => format!("{} — {why}", i.what),
            None => i.what,
        }))
}

/// The case's history, newest first.
pub fn build(
    edits: &[FieldEditRow],
    trail: &[Entry],
    now: i64,
) -> Result<Vec<HistoryItem>, DeskError> {
    let mut items: Vec<HistoryItem> = edits
        .iter()
        .map(|e| HistoryItem {
            when: When::at(e.at, now),
            actor: e.actor.clone(),
            what: format!(
                "{}: {} → {}",
                field_label(&e.field),
                shown(e.old_value.as_deref()),
                shown(e.new_value.as_deref())
            ),
            why: Some(e.reason.clone()),
            kind: "edit",
            ms: e.at,
        })
        .collect();
    for e in trail {
        if let Some(i) = from_entry(e, now)? {
            items.push(i);
        }
    }
    items.sort_by_key(|h| std::cmp::Reverse(h.ms));
    Ok(items)
}

fn shown(v: Option<&str>) -> String {
    match v {
        None | Some("") => "(empty)".into(),
        Some(s) => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, action: &str, detail: &str) -> Entry {
        Entry {
            seq,
            at: seq * 1000,
            actor: "agent@example.com".into(),
            action: action.into(),
            scan_id: Some("s".into()),
            client_addr: "127.0.0.1".into(),
            detail: detail.into(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn views_and_downloads_stay_out_and_decisions_read_as_words() {
        let trail = vec![
            entry(1, "case.view", "{}"),
            entry(2, "case.claim", "{}"),
            entry(
                3,
                "evidence.download",
                r#"{"kind":"image","type":"front","sha256":"x"}"#,
            ),
            entry(
                4,
                "case.decide",
                r#"{"decision":"reject","from":"PENDING_VERIFICATION","to":"NOT_VERIFIED","reason":"Document expired","fields":["surname"]}"#,
            ),
            entry(5, "case.zip.download", "{}"),
        ];
        let edits = vec![FieldEditRow {
            id: "e".into(),
            scan_id: "s".into(),
            field: "surname".into(),
            original_value: Some("García".into()),
            old_value: Some("García".into()),
            new_value: Some("Garcia".into()),
            actor: "agent@example.com".into(),
            reason: "OCR added an accent".into(),
            at: 3500,
        }];
        let h = build(&edits, &trail, 10_000).expect("decodes");
        let lines: Vec<String> = h
            .iter()
            .map(|i| format!("{}|{}", i.what, i.why.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            lines,
            vec![
                "rejected → Not verified (with corrections: Surname)|Document expired",
                "Surname: García → Garcia|OCR added an accent",
                "claimed the case|",
            ]
        );
    }

    #[test]
    fn a_corrupt_detail_is_an_error_not_an_empty_line() {
        let trail = vec![entry(1, "case.decide", "not json")];
        assert!(build(&[], &trail, 0).is_err());
    }
}
