//! The case page and the reviewer's actions on it.

use super::error::DeskError;
use super::history::{self, HistoryItem};
use super::view::When;
use super::{htmx_go, render, Layout};
use crate::audit::{self, Event};
use crate::desk::session::DeskSession;
use crate::domain::{now_ms, Role, State, Validation};
use crate::review::{self, claim_is_live, Decision, DecisionInput};
use crate::state::AppState;
use crate::store::contacts;
use crate::store::processes::{self as rows, ProcessRow};
use crate::store::retakes as retake_rows;
use actix_files::NamedFile;
use actix_web::http::header::{self, ContentDisposition, DispositionType};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Clone)]
pub struct Img {
    /// The evidence type as stored (`front`, `selfie`, …).
    pub code: String,
    /// The evidence type in words, for captions and alt text.
    pub label: String,
    pub url: String,
    pub thumb: String,
}

pub struct Rec {
    pub code: String,
    pub label: String,
    pub url: String,
}

pub struct V {
    pub name: String,
    pub label: String,
    pub result: String,
    pub result_label: &'static str,
    pub reason: String,
}

pub struct EditField {
    pub key: &'static str,
    pub label: &'static str,
    pub value: String,
    pub original: Option<String>,
}

pub struct NoteView {
    pub author: String,
    pub body: String,
    pub when: When,
}

#[derive(Template)]
#[template(path = "desk/case.html")]
struct CasePage {
    layout: Layout,
    p: ProcessRow,
    name: String,
    created: When,
    state_label: &'static str,
    /// The document type in words ("—" when none was given).
    doc_type_label: String,
    /// The cases before and after this one in its queue (keys k / j).
    prev_case: Option<String>,
    next_case: Option<String>,
    /// The portrait cropped from the document front, shown beside the
    /// selfie: the front image's URL and the ICAO zone it sits in.
    portrait: Option<Portrait>,
    selfie: Option<Img>,
    is_final: bool,
    is_pending_validation: bool,
    failing_labels: String,
    claim_holder: Option<String>,
    claimed_by_me: bool,
    can_release: bool,
    images: Vec<Img>,
    recordings: Vec<Rec>,
    pdf_url: Option<String>,
    validations: Vec<V>,
    /// (key, label, value)
    doc_fields: Vec<(String, String, String)>,
    edit_fields: Vec<EditField>,
    reject_reasons: Vec<String>,
    notes: Vec<NoteView>,
    history: Vec<HistoryItem>,
    /// The applicant's every verification, oldest first (issue 5).
    timeline: Vec<TimelineItem>,
    can_approve: bool,
    /// Whether the reviewer may ask for a retake (an undecided, submitted case).
    can_retake: bool,
    /// (code, label) of the steps this document type has.
    retake_steps: Vec<(&'static str, &'static str)>,
    retake_reasons: Vec<(&'static str, &'static str)>,
    /// The open retake request, while the applicant has not answered it.
    awaiting: Option<AwaitingRetake>,
    /// Evidence retakes replaced, kept for the record.
    replaced: Vec<ReplacedView>,
    /// A first decision waiting for a second reviewer (four eyes).
    proposal: Option<ProposalView>,
    /// Closed four-eyes reviews, in words: who proposed, who checked.
    four_eyes: Vec<String>,
    /// The QA verdict on a final case, in words, if given.
    qa: Option<String>,
    /// The viewer may give a QA verdict (a supervisor, on a final case
    /// without one, not decided by them).
    can_qa: bool,
}

pub struct ProposalView {
    pub decision: &'static str,
    /// "accept" or "reject": what overturning it turns into.
    pub code: String,
    pub reason: Option<String>,
    pub comment: Option<String>,
    pub rule: &'static str,
    pub by: String,
    pub when: When,
    /// The viewer may confirm or overturn: a supervisor or admin who did
    /// not propose it.
    pub can_review: bool,
}

pub struct AwaitingRetake {
    pub steps: String,
    pub reason: &'static str,
    pub message: Option<String>,
    pub by: String,
    pub asked: When,
    pub expires: When,
    pub expired: bool,
}

pub struct ReplacedView {
    pub label: String,
    pub url: String,
    /// Images have a thumbnail; recordings and PDFs a link only.
    pub thumb: Option<String>,
    pub replaced: When,
}

/// Where the portrait sits on a document front, as percentages of the image
/// (ICAO 9303 zone V): a crop window the page shows beside the selfie.
pub struct Portrait {
    pub url: String,
    /// "x y width height" as fractions; app.js draws the window (the CSP
    /// allows no inline style).
    pub crop: &'static str,
    pub layout: &'static str,
}

pub struct TimelineItem {
    pub when: When,
    /// In words; `code` is the stored kind, shown as secondary text.
    pub kind: String,
    pub code: String,
    pub state: String,
    pub detail: String,
}

/// A verification's kind in words (`otp:phone:onboarding` → "Mobile
/// number code (hosted page)"); an unknown one shows as itself.
fn timeline_label(kind: &str) -> String {
    let mut parts = kind.split(':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("otp"), Some(what), Some(channel)) => {
            let what = match what {
                "phone" => "Mobile number code",
                "email" => "E-mail code",
                "birthdate" => "Birthdate check",
                other => other,
            };
            let channel = match channel {
                "onboarding" => "hosted page",
                "mobile" => "mobile API",
                "otp" => "Verification API",
                "link" => "magic link",
                other => other,
            };
            format!("{what} ({channel})")
        }
        (Some("fraudRiskReport"), None, _) => "Fraud-risk report".into(),
        (Some("quiz"), None, _) => "Identity quiz".into(),
        (Some("adminApproval"), None, _) => "Manual approval".into(),
        (Some("onboarding"), None, _) => "Onboarding".into(),
        _ => kind.to_string(),
    }
}

/// Who may record a manual approval: supervisors and admins, and agents
/// where the operator allowed it.
fn may_approve(state: &AppState, session: &DeskSession) -> bool {
    session.role >= Role::Supervisor || state.settings.agents_can_approve
}

/// Document fields in the order of the MobbScan reference.
const DOC_FIELDS: [&str; 23] = [
    "documentType",
    "personalNumber",
    "documentNumber",
    "name",
    "surname",
    "firstSurname",
    "secondSurname",
    "gender",
    "nationality",
    "issuingState",
    "dateOfIssuing",
    "dateOfBirth",
    "dateOfExpiry",
    "address",
    "city",
    "region",
    "cityOfBirth",
    "regionOfBirth",
    "stateOfBirthName",
    "stateOfBirthIsoCode",
    "facialMatchingScore",
    "facialLivenessScore",
    "mrz",
];

/// The portrait to show beside the selfie: a captured portrait image as it
/// is, else a crop of the document front where ICAO 9303 puts zone V (the
/// left of the card or data page), else the whole front.
fn portrait_of(images: &[Img], doc_type: Option<&str>) -> Option<Portrait> {
    if let Some(p) = images.iter().find(|i| i.code == "portrait") {
        return Some(Portrait {
            url: p.url.clone(),
            crop: "0 0 1 1",
            layout: "captured portrait",
        });
    }
    let front = images.iter().find(|i| i.code == "front")?;
    // x, y, width, height as fractions of the image, a little wider than
    // the nominal zone so a slightly off-centre photo keeps its face.
    let (crop, layout) = match doc_type {
        // ID-1 cards (TD1 identity cards, EU driving licences): 85.6 x 54 mm,
        // portrait on the left between the header and the bottom edge.
        Some("IDCard") | Some("DrivingLicense") => ("0.02 0.17 0.33 0.75", "TD1 zone V"),
        // TD3 passport data page: 125 x 88 mm, portrait on the left above
        // the machine-readable zone.
        Some("Passport") => ("0.03 0.12 0.34 0.62", "TD3 zone V"),
        _ => ("0 0 1 1", "whole front"),
    };
    Some(Portrait {
        url: front.url.clone(),
        crop,
        layout,
    })
}

/// A document field's name in words: the personalData label where there is
/// one, else the camelCase key spelled out ("dateOfIssuing" → "Date of
/// issuing").
fn doc_field_label(key: &str) -> String {
    let known = crate::domain::process::field_label(key);
    if known != key {
        return known.to_string();
    }
    let mut out = String::new();
    for (i, c) in key.chars().enumerate() {
        if i == 0 {
            out.extend(c.to_uppercase());
        } else if c.is_uppercase() {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out.replace("Iso code", "ISO code")
}

fn image_rank(t: &str) -> u8 {
    match t {
        "front" => 0,
        "back" => 1,
        "portrait" => 2,
        "selfie" => 3,
        _ => 4,
    }
}

/// A piece of evidence in words: the retake steps' names for what an
/// applicant captures, the engine's portrait and the report by name, any
/// other type as sent.
fn evidence_label(kind: &str, evidence_type: &str) -> String {
    match crate::domain::retake::Step::of_evidence(kind, evidence_type) {
        Some(step) => step.label().to_string(),
        None if kind == "pdf" => "Report PDF".to_string(),
        None if evidence_type == "portrait" => "Portrait (from the document)".to_string(),
        None => evidence_type.to_string(),
    }
}

async fn load(state: &AppState, scan_id: &str) -> Result<ProcessRow, DeskError> {
    rows::get(state.db.read(), scan_id)
        .await?
        .ok_or_else(|| DeskError::NotFound("no such case".into()))
}

#[tracing::instrument(skip_all)]
pub async fn page(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
) -> Result<HttpResponse, DeskError> {
    let scan_id = path.into_inner();
    let file = crate::store::case_file::load(&state.db, &scan_id)
        .await?
        .ok_or_else(|| DeskError::NotFound("no such case".into()))?;
    let st: State = file
        .process
        .state()
        .map_err(|e| DeskError::Internal(e.into()))?;
    let prev_case = file.previous(st).map(str::to_string);
    let next_case = file.next(st).map(str::to_string);
    let p = file.process;

    let base = format!("/desk/cases/{scan_id}/evidence");
    let mut imgs: Vec<_> = file.evidence.iter().filter(|e| e.kind == "image").collect();
    imgs.sort_by_key(|e| image_rank(&e.evidence_type));
    let images: Vec<Img> = imgs
        .into_iter()
        .map(|e| Img {
            code: e.evidence_type.clone(),
            label: evidence_label(&e.kind, &e.evidence_type),
            url: format!("{base}/{}", e.id),
            thumb: format!("{base}/{}/thumb", e.id),
        })
        .collect();
    let selfie = images.iter().find(|i| i.code == "selfie").cloned();
    let portrait = portrait_of(&images, p.doc_type.as_deref());
    let recordings = file
        .evidence
        .iter()
        .filter(|e| e.kind == "recording")
        .map(|e| Rec {
            code: e.evidence_type.clone(),
            label: evidence_label(&e.kind, &e.evidence_type),
            url: format!("{base}/{}", e.id),
        })
        .collect();
    let pdf_url = file
        .evidence
        .iter()
        .find(|e| e.kind == "pdf")
        .map(|e| format!("{base}/{}", e.id));
    let now = now_ms();
    let replaced = file
        .replaced
        .into_iter()
        .map(|r| {
            let e = &r.evidence;
            ReplacedView {
                label: evidence_label(&e.kind, &e.evidence_type),
                url: format!("{base}/{}", e.id),
                thumb: (e.kind == "image").then(|| format!("{base}/{}/thumb", e.id)),
                replaced: When::at(r.replaced_at, now),
            }
        })
        .collect();
    let awaiting = file.open_retake.map(|r| AwaitingRetake {
        steps: review::retake::labels(&r.steps),
        reason: crate::domain::retake::Reason::parse(&r.reason).map_or("Other", |x| x.label()),
        message: r.message.clone(),
        by: r.requested_by.clone(),
        asked: When::at(r.requested_at, now),
        expires: When::at(r.expires_at, now),
        expired: now > r.expires_at,
    });
    // The case's proposals: the open one (if any) and the
    // closed ones, in words.
    let (open, closed): (Vec<_>, Vec<_>) = file
        .proposals
        .into_iter()
        .partition(|o| o.outcome.is_none());
    let proposal = open.into_iter().next().map(|o| ProposalView {
        decision: super::second::decision_label(&o.decision),
        can_review: session.role >= Role::Supervisor && o.proposed_by != session.email,
        code: o.decision,
        reason: o.reason,
        comment: o.comment,
        rule: crate::domain::four_eyes::Rule::label(&o.rule),
        by: o.proposed_by,
        when: When::at(o.proposed_at, now),
    });
    let four_eyes = closed
        .into_iter()
        .filter_map(|o| {
            let (outcome, by) = (o.outcome?, o.reviewed_by?);
            Some(format!(
                "{} proposed {}; {by} {outcome} it{}",
                o.proposed_by,
                super::second::decision_label(&o.decision).to_lowercase(),
                o.review_reason
                    .map(|r| format!(" — “{r}”"))
                    .unwrap_or_default()
            ))
        })
        .collect();
    let can_qa = st.is_final()
        && file.qa.is_none()
        && session.role >= Role::Supervisor
        && p.agent.as_deref() != Some(session.email.as_str());
    let qa = file.qa.map(|q| {
        format!(
            "{} {} ({}){}",
            q.reviewer,
            if q.verdict == "agree" {
                "agreed with the decision"
            } else {
                "disagreed with the decision"
            },
            q.correct_state
                .parse::<State>()
                .map_or(q.correct_state.clone(), |s| format!(
                    "correct outcome: {}",
                    s.label()
                )),
            q.comment.map(|c| format!(" — “{c}”")).unwrap_or_default()
        )
    });
    let has_back = p.doc_type.as_deref() != Some("Passport");
    let retake_steps = crate::domain::retake::Step::ALL
        .into_iter()
        .filter(|s| has_back || *s != crate::domain::retake::Step::Back)
        .map(|s| (s.as_str(), s.label()))
        .collect();

    let parsed: BTreeMap<String, Validation> =
        p.validations().map_err(|e| DeskError::Internal(e.into()))?;
    let validations = parsed
        .into_iter()
        .map(|(name, v)| V {
            label: crate::domain::validation::label(&name).to_string(),
            name,
            result: serde_json::to_value(v.result)
                .ok()
                .and_then(|x| x.as_str().map(str::to_string))
                .unwrap_or_default(),
            result_label: v.result.label(),
            reason: v.reason,
        })
        .collect::<Vec<V>>();
    // Accepting a case that fails checks asks first, naming them.
    let failing_labels = validations
        .iter()
        .filter(|v| v.result == "fail")
        .map(|v| v.label.as_str())
        .collect::<Vec<_>>()
        .join(", ");

    let doc = p.document().map_err(|e| DeskError::Internal(e.into()))?;
    let doc_json = serde_json::to_value(&doc).unwrap_or_default();
    let doc_fields = DOC_FIELDS
        .iter()
        .map(|k| {
            let v = doc_json
                .get(*k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            (k.to_string(), doc_field_label(k), v)
        })
        .collect();
    let edit_fields = crate::domain::process::PERSONAL_DATA_FIELDS
        .iter()
        .map(|(key, label)| EditField {
            key,
            label,
            value: doc.personal_field(key).unwrap_or("").to_string(),
            original: file
                .edits
                .iter()
                .find(|e| e.field == *key)
                .map(|e| e.original_value.clone().unwrap_or_else(|| "(empty)".into())),
        })
        .collect();

    let history = history::build(&file.edits, &file.trail, now)?;
    let live = claim_is_live(
        p.claimed_by.as_deref(),
        p.claimed_at,
        now,
        crate::domain::ms(state.settings.claim_idle),
    );
    let claim_holder = if live { p.claimed_by.clone() } else { None };
    let claimed_by_me = claim_holder.as_deref() == Some(session.email.as_str());

    // Viewing creates nothing: a case without a contact has no timeline yet.
    let timeline = file
        .timeline
        .into_iter()
        .map(|t| {
            Ok(TimelineItem {
                when: When::at(t.at, now),
                // A process's state in words; verification states
                // (pending, passed, failed, expired) are words already.
                state: match t.state.parse::<State>() {
                    Ok(st) if t.kind == "onboarding" => st.label().to_string(),
                    _ => t.state,
                },
                detail: if t.kind == "fraudRiskReport" {
                    // Stored as the API's category objects; the desk
                    // shows their types. A row that no longer decodes
                    // fails the page rather than showing no risk.
                    serde_json::from_str::<Vec<serde_json::Value>>(&t.detail)
                        .map_err(|e| {
                            DeskError::Internal(anyhow::anyhow!(
                                "a fraud report of case {scan_id} does not decode: {e}"
                            ))
                        })?
                        .iter()
                        .filter_map(|c| c["type"].as_str().map(str::to_string))
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    t.detail
                },
                kind: timeline_label(&t.kind),
                code: t.kind,
            })
        })
        .collect::<Result<Vec<_>, DeskError>>()?;

    audit::record_now(
        &state.db,
        Event {
            actor: &session.email,
            action: "case.view",
            scan_id: Some(&scan_id),
            client_addr: &session.client_addr,
            detail: serde_json::json!({}),
        },
    )
    .await?;

    render(&CasePage {
        doc_type_label: p
            .doc_type
            .as_deref()
            .map_or("—", crate::domain::process::doc_type_label)
            .to_string(),
        name: doc.display_name(),
        created: When::at(p.created_at, now),
        state_label: st.label(),
        prev_case,
        next_case,
        portrait,
        selfie,
        is_final: st.is_final(),
        is_pending_validation: st == State::PendingValidation,
        failing_labels,
        claim_holder,
        claimed_by_me,
        can_release: session.role >= Role::Supervisor,
        images,
        recordings,
        pdf_url,
        validations,
        doc_fields,
        edit_fields,
        reject_reasons: state.settings.reject_reasons.clone(),
        notes: file
            .notes
            .into_iter()
            .map(|n| NoteView {
                author: n.author,
                body: n.body,
                when: When::at(n.at, now),
            })
            .collect(),
        history,
        timeline,
        // A rejected case is never approved alongside: the two would
        // contradict each other (a QA verdict is the way to disagree).
        can_approve: may_approve(&state, &session) && st != State::NotVerified,
        retake_steps,
        retake_reasons: crate::domain::retake::Reason::ALL
            .into_iter()
            .map(|r| (r.as_str(), r.label()))
            .collect(),
        awaiting,
        replaced,
        can_retake: st.is_decidable() && proposal.is_none(),
        proposal,
        four_eyes,
        qa,
        can_qa,
        layout: Layout::new(&session),
        p,
    })
}

#[tracing::instrument(skip_all)]
pub async fn claim(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
) -> Result<HttpResponse, DeskError> {
    let scan_id = path.into_inner();
    review::claim(&state.db, &state.settings, &scan_id, &session.actor()).await?;
    Ok(htmx_go(&format!("/desk/cases/{scan_id}")))
}

/// Supervisors release anyone's claim; an agent only their own.
#[tracing::instrument(skip_all)]
pub async fn release(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
) -> Result<HttpResponse, DeskError> {
    let scan_id = path.into_inner();
    let p = load(&state, &scan_id).await?;
    let own = p.claimed_by.as_deref() == Some(session.email.as_str());
    if !own {
        session.require(Role::Supervisor)?;
    }
    review::release(&state.db, &scan_id, &session.actor()).await?;
    Ok(htmx_go(&format!("/desk/cases/{scan_id}")))
}

/// Personal-data fields arrive as `pd_<field>`; everything else is ignored.
#[tracing::instrument(skip_all)]
pub async fn edit(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, DeskError> {
    let scan_id = path.into_inner();
    let f = CaseForm::parse(form.into_inner())?;
    let input = review::EditInput {
        expected_version: f.version,
        changes: f.changes,
        reason: f.edit_reason.or(f.reason).unwrap_or_default(),
    };
    review::edit(
        &state.db,
        &state.settings,
        &scan_id,
        &input,
        &session.actor(),
        review::Channel::Desk,
    )
    .await?;
    Ok(htmx_go(&format!("/desk/cases/{scan_id}")))
}

/// The decision form, plus the edit form's fields (`hx-include`): typed
/// but unsaved corrections travel with the decision, so pressing Accept
/// never silently drops them.
#[tracing::instrument(skip_all)]
pub async fn decide(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, DeskError> {
    let scan_id = path.into_inner();
    let f = CaseForm::parse(form.into_inner())?;
    let input = DecisionInput {
        decision: Decision::parse(f.action.as_deref().unwrap_or(""))
            .map_err(DeskError::BadRequest)?,
        expected_version: f.version,
        reason: f.reason,
        comment: f.comment,
        changes: f.changes,
        edit_reason: f.edit_reason,
    };
    let case = review::load_for_decision(&state.db, &scan_id).await?;
    review::decide(
        &state.db,
        &state.settings,
        &state.blobs,
        case,
        &input,
        &session.actor(),
        review::Channel::Desk,
    )
    .await?;
    Ok(htmx_go(&format!("/desk/cases/{scan_id}")))
}

/// Ask the applicant to retake the ticked evidence (`step` repeated).
#[tracing::instrument(skip_all)]
pub async fn retake(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, DeskError> {
    let scan_id = path.into_inner();
    let mut input = review::retake::RetakeInput::default();
    for (k, v) in form.into_inner() {
        match k.as_str() {
            "step" => input.steps.push(v),
            "reason" => input.reason = v,
            "message" => input.message = Some(form_text(v)),
            "version" => input.expected_version = Some(parse_version(&v)?),
            _ => {}
        }
    }
    review::retake::request(
        &state.db,
        &state.settings,
        &scan_id,
        &input,
        &session.actor(),
    )
    .await?;
    Ok(htmx_go(&format!("/desk/cases/{scan_id}")))
}

/// A browser submits a textarea's line breaks as CRLF; the document keeps
/// LF, so an untouched MRZ compares equal.
fn form_text(v: String) -> String {
    v.replace("\r\n", "\n")
}

/// The case page's edit and decision forms as posted. The decision form
/// `hx-include`s the edit form, so both carry the same names: personal-data
/// fields as `pd_<field>`, the edit's reason as `edit_reason` (the edit
/// route also takes it as `reason`, as API-style clients send it); other
/// names are ignored.
#[derive(Default)]
struct CaseForm {
    action: Option<String>,
    version: Option<i64>,
    reason: Option<String>,
    comment: Option<String>,
    edit_reason: Option<String>,
    changes: std::collections::BTreeMap<String, String>,
}

impl CaseForm {
    fn parse(pairs: Vec<(String, String)>) -> Result<CaseForm, DeskError> {
        let mut f = CaseForm::default();
        for (k, v) in pairs {
            if let Some(field) = k.strip_prefix("pd_") {
                f.changes.insert(field.to_string(), form_text(v));
                continue;
            }
            match k.as_str() {
                "action" => f.action = Some(v),
                "version" => f.version = Some(parse_version(&v)?),
                "reason" => f.reason = Some(v),
                "comment" => f.comment = Some(v),
                "edit_reason" => f.edit_reason = Some(v),
                _ => {}
            }
        }
        Ok(f)
    }
}

fn parse_version(v: &str) -> Result<i64, DeskError> {
    v.parse::<i64>()
        .map_err(|_| DeskError::BadRequest("bad version: reload the case".into()))
}

#[derive(Deserialize)]
pub struct ApprovalForm {
    reason: String,
}

/// A manual `adminApproval` of the case's applicant, with a required reason.
#[tracing::instrument(skip_all)]
pub async fn approve(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
    form: web::Form<ApprovalForm>,
) -> Result<HttpResponse, DeskError> {
    if !may_approve(&state, &session) {
        return Err(DeskError::Forbidden(
            "only supervisors may approve an applicant manually".into(),
        ));
    }
    let scan_id = path.into_inner();
    let p = load(&state, &scan_id).await?;
    if p.state().map_err(|e| DeskError::Internal(e.into()))? == State::NotVerified {
        return Err(DeskError::Conflict(
            "this case was rejected (Not verified): a manual approval would contradict the \
             decision. A supervisor who disagrees records a QA verdict instead."
                .into(),
        ));
    }
    if form.reason.trim().is_empty() {
        return Err(DeskError::BadRequest(
            "a manual approval needs a reason".into(),
        ));
    }
    let cid = crate::verification::contact_for_process(&state.db, &scan_id)
        .await?
        .ok_or_else(|| DeskError::NotFound("no such case".into()))?;
    let contact = contacts::get_any(state.db.read(), &cid)
        .await?
        .ok_or_else(|| DeskError::NotFound("no such contact".into()))?;
    crate::verification::records::create_approval(
        &state.db,
        &contact,
        &form.reason,
        &session.email,
        &session.client_addr,
    )
    .await?;
    Ok(htmx_go(&format!("/desk/cases/{scan_id}")))
}

/// Ends the applicant's mobile-app sessions (every user token).
#[tracing::instrument(skip_all)]
pub async fn revoke_tokens(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
) -> Result<HttpResponse, DeskError> {
    session.require(Role::Supervisor)?;
    let scan_id = path.into_inner();
    load(&state, &scan_id).await?;
    let cid = contacts::of_process(state.db.read(), &scan_id)
        .await?
        .ok_or_else(|| DeskError::Conflict("this applicant has no mobile users".into()))?;
    crate::verification::users::revoke_contact_tokens(
        &state.db,
        &cid,
        Some(&scan_id),
        &session.email,
        &session.client_addr,
    )
    .await?;
    Ok(htmx_go(&format!("/desk/cases/{scan_id}")))
}

#[derive(Deserialize)]
pub struct NoteForm {
    body: String,
}

#[tracing::instrument(skip_all)]
pub async fn note(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
    form: web::Form<NoteForm>,
) -> Result<HttpResponse, DeskError> {
    let scan_id = path.into_inner();
    review::add_note(&state.db, &scan_id, &form.body, &session.actor()).await?;
    Ok(htmx_go(&format!("/desk/cases/{scan_id}")))
}

async fn evidence_row(
    state: &AppState,
    scan_id: &str,
    id: &str,
) -> Result<rows::EvidenceRow, DeskError> {
    if let Some(e) = rows::evidence_for(state.db.read(), scan_id)
        .await?
        .into_iter()
        .find(|e| e.id == id)
    {
        return Ok(e);
    }
    // Evidence a retake replaced stays viewable.
    retake_rows::replaced_for(state.db.read(), scan_id)
        .await?
        .into_iter()
        .map(|r| r.evidence)
        .find(|e| e.id == id)
        .ok_or_else(|| DeskError::NotFound("no such evidence".into()))
}

/// The original bytes, with Range support so recordings seek and the PDF
/// viewer can fetch pages. Each download (not each range) is audited.
#[tracing::instrument(skip_all)]
pub async fn evidence(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, DeskError> {
    let (scan_id, id) = path.into_inner();
    let e = evidence_row(&state, &scan_id, &id).await?;
    let file = state
        .blobs
        .path_of(&e.sha256)
        .ok_or_else(|| DeskError::Internal(anyhow::anyhow!("bad blob name {}", e.sha256)))?;
    crate::evidence::audit_download(&state.db, &session.email, &session.client_addr, &e, &req)
        .await?;
    let mime: mime::Mime = e
        .media_type
        .parse()
        .unwrap_or(mime::APPLICATION_OCTET_STREAM);
    let named = NamedFile::open_async(&file)
        .await
        .map_err(|err| {
            DeskError::Internal(anyhow::anyhow!(
                "evidence blob {} unreadable: {err}",
                e.sha256
            ))
        })?
        .set_content_type(mime)
        .set_content_disposition(ContentDisposition {
            disposition: DispositionType::Inline,
            parameters: vec![],
        });
    let mut resp = named.into_response(&req);
    if e.kind == "pdf" {
        // The case page shows the PDF in an iframe of its own origin.
        resp.headers_mut().insert(
            header::X_FRAME_OPTIONS,
            header::HeaderValue::from_static("SAMEORIGIN"),
        );
        resp.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static("frame-ancestors 'self'"),
        );
    }
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, no-store"),
    );
    Ok(resp)
}

#[tracing::instrument(skip_all)]
pub async fn thumb(
    req: HttpRequest,
    state: web::Data<AppState>,
    _session: DeskSession,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, DeskError> {
    let (scan_id, id) = path.into_inner();
    let e = evidence_row(&state, &scan_id, &id).await?;
    if e.kind != "image" {
        return Err(DeskError::NotFound("only images have thumbnails".into()));
    }
    let thumbs = state.thumbs.clone();
    let sha = e.sha256.clone();
    let file = tokio::task::spawn_blocking(move || thumbs.ensure(&sha))
        .await
        .map_err(|err| DeskError::Internal(err.into()))?
        .map_err(DeskError::Internal)?;
    let named = NamedFile::open_async(&file)
        .await
        .map_err(|err| DeskError::Internal(err.into()))?
        .set_content_type(mime::IMAGE_JPEG);
    let mut resp = named.into_response(&req);
    // ID images must not outlive the session in the browser's cache.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// The certified zip of a final case, streamed (the same archive as
/// `GET /api/zip/{id}`).
#[tracing::instrument(skip_all)]
pub async fn certified_zip(
    state: web::Data<AppState>,
    session: DeskSession,
    path: web::Path<String>,
) -> Result<HttpResponse, DeskError> {
    let scan_id = path.into_inner();
    let p = rows::get(state.db.read(), &scan_id)
        .await?
        .ok_or_else(|| DeskError::NotFound("no such case".into()))?;
    let pkg = crate::certify::zip::issue(
        &state.zip_issuer(),
        &p,
        &session.email,
        &session.client_addr,
    )
    .await
    .map_err(|e| match e {
        crate::certify::zip::IssueError::NotFinal(st) => DeskError::Conflict(format!(
            "the certified zip is issued once the case is final; it is {st}"
        )),
        crate::certify::zip::IssueError::Internal(e) => DeskError::Internal(e),
    })?;
    Ok(pkg.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_case_form_reads_decision_edit_and_personal_data_fields() {
        let f = CaseForm::parse(pairs(&[
            ("action", "reject"),
            ("version", "7"),
            ("reason", "Document expired"),
            ("comment", "line one\r\nline two"),
            ("edit_reason", "OCR misread"),
            ("pd_surname", "Ruiz\r\nGil"),
            ("csrf", "ignored"),
        ]))
        .expect("a well-formed form");
        assert_eq!(f.action.as_deref(), Some("reject"));
        assert_eq!(f.version, Some(7));
        assert_eq!(f.reason.as_deref(), Some("Document expired"));
        assert_eq!(f.edit_reason.as_deref(), Some("OCR misread"));
        // Comments keep the browser's line ends; personal data is normalised.
        assert_eq!(f.comment.as_deref(), Some("line one\r\nline two"));
        assert_eq!(f.changes.len(), 1);
        assert_eq!(
            f.changes.get("surname").map(String::as_str),
            Some("Ruiz\nGil")
        );
    }

    #[test]
    fn a_version_that_is_not_a_number_is_refused_with_what_to_do() {
        let err = CaseForm::parse(pairs(&[("version", "seven")]))
            .err()
            .expect("refused");
        assert_eq!(err.to_string(), "bad version: reload the case");
    }
}
