//! `serve --demo`: a realistic desk to try — users, integrators and a few
//! hundred onboardings in every state with generated evidence. Seeded once,
//! when the database is empty, from a fixed seed so every demo looks alike.

mod draw;
pub mod mrz;

use crate::accounts;
use crate::accounts::integrators::Credentials;
use crate::assets::DemoAssets;
use crate::audit::{self, Event};
use crate::certify::report::{self, Report, ReportImage};
use crate::domain::process::DOC_TYPES;
use crate::domain::validation::{self, failing_key};
use crate::domain::{fmt_ms, now_ms, Document, Role, State};
use crate::evidence::BlobStore;
use crate::state::AppState;
use crate::store::processes::{self as rows, DecisionRow, EvidenceRow, NewProcess};
use crate::store::users as user_rows;
use image::Rgb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub struct DemoLogin {
    pub role: Role,
    pub email: &'static str,
    pub password: &'static str,
}

pub const LOGINS: [DemoLogin; 3] = [
    DemoLogin {
        role: Role::Agent,
        email: "agent@kycdesk.demo",
        password: "agent-demo-password",
    },
    DemoLogin {
        role: Role::Supervisor,
        email: "supervisor@kycdesk.demo",
        password: "supervisor-demo-password",
    },
    DemoLogin {
        role: Role::Admin,
        email: "admin@kycdesk.demo",
        password: "admin-demo-password",
    },
];

pub const DEFAULT_PROCESSES: usize = 300;

const GIVEN_F: [&str; 12] = [
    "María", "Lucía", "Ana", "Sofía", "Inês", "Camille", "Léa", "Giulia", "Emma", "Hanna", "Zoë",
    "Carmen",
];
const GIVEN_M: [&str; 12] = [
    "José", "Javier", "Hugo", "Mateo", "João", "Lucas", "Théo", "Luca", "Noah", "Jonas", "Oliver",
    "Andrés",
];
const SURNAMES: [&str; 16] = [
    "García",
    "Pérez",
    "López",
    "Martínez",
    "Fernández",
    "Silva",
    "Santos",
    "Dubois",
    "Moreau",
    "Rossi",
    "Bianchi",
    "Müller",
    "Schmidt",
    "Smith",
    "Núñez",
    "O'Brien",
];
const CITIES: [(&str, &str); 7] = [
    ("ESP", "Madrid"),
    ("PRT", "Lisboa"),
    ("FRA", "Lyon"),
    ("ITA", "Milano"),
    ("DEU", "Berlin"),
    ("MEX", "Guadalajara"),
    ("GBR", "Leeds"),
];
const STREETS: [&str; 6] = [
    "Calle Mayor 12",
    "Rua Augusta 45",
    "Rue de la Paix 3",
    "Via Roma 27",
    "Hauptstraße 8",
    "High Street 101",
];

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[rng.gen_range(0..xs.len())]
}

fn country_name(c: &str) -> &'static str {
    match c {
        "ESP" => "KINGDOM OF SPAIN",
        "PRT" => "REPUBLICA PORTUGUESA",
        "FRA" => "REPUBLIQUE FRANCAISE",
        "ITA" => "REPUBBLICA ITALIANA",
        "DEU" => "BUNDESREPUBLIK DEUTSCHLAND",
        "MEX" => "ESTADOS UNIDOS MEXICANOS",
        _ => "UNITED KINGDOM",
    }
}

fn state_for(i: usize) -> State {
    // Roughly: 40% review, 15% validation, 10% in progress, 5% created,
    // 18% verified, 12% not verified.
    match i % 20 {
        0..=7 => State::PendingVerification,
        8..=10 => State::PendingValidation,
        11 | 12 => State::InProgress,
        13 => State::Created,
        14..=17 => State::Verified,
        _ => State::NotVerified,
    }
}

fn jpeg(img: &image::RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82).encode_image(img)?;
    Ok(out)
}

/// Collects a case's evidence rows while writing their blobs.
struct EvidenceSink<'a> {
    blobs: &'a BlobStore,
    scan_id: &'a str,
    created_at: i64,
    rows: Vec<EvidenceRow>,
}

impl EvidenceSink<'_> {
    fn add(&mut self, kind: &str, t: &str, bytes: &[u8], media: &str) -> anyhow::Result<String> {
        let sha = self.blobs.put(bytes)?;
        let dims = if kind == "image" {
            image::ImageReader::new(std::io::Cursor::new(bytes))
                .with_guessed_format()?
                .into_dimensions()
                .ok()
        } else {
            None
        };
        self.rows.push(EvidenceRow {
            id: uuid::Uuid::new_v4().to_string(),
            scan_id: self.scan_id.to_string(),
            kind: kind.into(),
            evidence_type: t.into(),
            sha256: sha.clone(),
            size: bytes.len() as i64,
            media_type: media.into(),
            created_at: self.created_at,
            width: dims.map(|d| d.0 as i64),
            height: dims.map(|d| d.1 as i64),
        });
        Ok(sha)
    }
}

struct Prepared {
    process: NewProcess,
    evidence: Vec<EvidenceRow>,
    decision: Option<DecisionRow>,
}

/// Generates one case and writes its evidence blobs (blocking work).
fn prepare(
    i: usize,
    rng: &mut StdRng,
    integrators: &[(String, String)],
    blobs: &BlobStore,
    now: i64,
) -> anyhow::Result<Prepared> {
    let scan_id = uuid::Builder::from_random_bytes(rng.gen())
        .into_uuid()
        .to_string();
    let female = rng.gen_bool(0.5);
    let given = if female {
        *pick(rng, &GIVEN_F)
    } else {
        *pick(rng, &GIVEN_M)
    };
    let s1 = *pick(rng, &SURNAMES);
    let s2 = *pick(rng, &SURNAMES);
    let (country, city) = *pick(rng, &CITIES);
    let doc_type = DOC_TYPES[i % 7 % 3];
    let state = state_for(i);
    let created_at = now - rng.gen_range(3_600_000..30 * 86_400_000i64);
    let today = chrono::Utc::now().date_naive();
    let minor = i % 37 == 5;
    let age_years = if minor {
        rng.gen_range(14..17)
    } else {
        rng.gen_range(19..80)
    };
    let birth = today - chrono::Days::new(age_years * 365 + rng.gen_range(0..360));
    let expired = i % 23 == 4;
    let expiry = if expired {
        today - chrono::Days::new(rng.gen_range(10..400))
    } else {
        today + chrono::Days::new(rng.gen_range(200..3600))
    };
    let issued = expiry - chrono::Days::new(3650);
    let number = format!(
        "{}{:07}{}",
        (b'A' + rng.gen_range(0..26u8)) as char,
        rng.gen_range(0..10_000_000u32),
        (b'A' + rng.gen_range(0..26u8)) as char
    );
    let surname = format!("{s1} {s2}");
    let sex = if female { "F" } else { "M" };
    let holder = mrz::Holder {
        issuer: country,
        number: &number,
        birth,
        sex,
        expiry,
        nationality: country,
        surnames: &[s1, s2],
        given,
    };
    let mut mrz = match doc_type {
        "IDCard" => Some(mrz::td1(&holder)),
        "Passport" => Some(mrz::td3(&holder)),
        _ => None,
    };
    if i % 11 == 3 {
        // A misprinted check digit, for the mrzCheckDigits validation.
        mrz = mrz.map(|m| mrz::corrupt_birth_digit(&m));
    }
    let low_score = i % 9 == 2;
    let fm: f64 = if low_score {
        rng.gen_range(0.30..0.65)
    } else {
        rng.gen_range(0.78..0.99)
    };
    let fl: f64 = if i % 13 == 6 {
        rng.gen_range(0.20..0.60)
    } else {
        rng.gen_range(0.80..0.99)
    };
    let submitted = !matches!(state, State::Created);
    let document = Document {
        document_type: Some(doc_type.to_string()),
        personal_number: Some(format!("{:08}", rng.gen_range(0..100_000_000u32))),
        document_number: Some(number.clone()),
        name: Some(given.to_string()),
        surname: Some(surname.clone()),
        first_surname: Some(s1.to_string()),
        second_surname: Some(s2.to_string()),
        gender: Some(sex.to_string()),
        nationality: Some(country.to_string()),
        issuing_state: Some(country.to_string()),
        date_of_issuing: Some(issued.to_string()),
        date_of_birth: Some(birth.to_string()),
        date_of_expiry: Some(expiry.to_string()),
        address: Some(pick(rng, &STREETS).to_string()),
        city: Some(city.to_string()),
        region: Some(city.to_string()),
        city_of_birth: Some(city.to_string()),
        region_of_birth: Some(city.to_string()),
        state_of_birth_name: None,
        state_of_birth_iso_code: None,
        facial_matching_score: submitted.then(|| format!("{fm:.2}")),
        facial_liveness_score: submitted.then(|| format!("{fl:.2}")),
        mrz: mrz.clone(),
        ..Default::default()
    };

    let mut evidence = EvidenceSink {
        blobs,
        scan_id: &scan_id,
        created_at,
        rows: Vec::new(),
    };
    let skin = *pick(
        rng,
        &[
            Rgb([241, 205, 178]),
            Rgb([224, 172, 140]),
            Rgb([198, 134, 99]),
            Rgb([141, 85, 54]),
            Rgb([255, 219, 190]),
        ],
    );
    let hair = *pick(
        rng,
        &[
            Rgb([40, 30, 25]),
            Rgb([90, 60, 30]),
            Rgb([200, 170, 100]),
            Rgb([20, 20, 20]),
            Rgb([150, 80, 40]),
        ],
    );
    let shirt = Rgb([
        rng.gen_range(30..200),
        rng.gen_range(30..200),
        rng.gen_range(30..200),
    ]);
    let tint = [
        rng.gen_range(170..230),
        rng.gen_range(190..235),
        rng.gen_range(200..245),
    ];
    let mut report_images = Vec::new();
    if submitted {
        let title = match doc_type {
            "Passport" => "PASSPORT / PASAPORTE",
            "DrivingLicense" => "DRIVING LICENCE / PERMISO DE CONDUCCION",
            _ => "IDENTITY CARD / DOCUMENTO NACIONAL DE IDENTIDAD",
        };
        let fields = [
            ("SURNAME / APELLIDOS", surname.to_uppercase()),
            ("GIVEN NAMES / NOMBRE", given.to_uppercase()),
            ("SEX / SEXO", sex.to_string()),
            ("NATIONALITY / NACIONALIDAD", country.to_string()),
            (
                "DATE OF BIRTH / NACIMIENTO",
                birth.format("%d %m %Y").to_string(),
            ),
            ("DOCUMENT No / NUM SOPORTE", number.clone()),
            ("EXPIRY / VALIDEZ", expiry.format("%d %m %Y").to_string()),
        ];
        let front_mrz = if doc_type == "Passport" {
            mrz.as_deref()
        } else {
            None
        };
        let front = draw::card(
            &draw::CardText {
                header: country_name(country),
                subtitle: title,
                fields: &fields,
                mrz: front_mrz,
            },
            tint,
            skin,
            hair,
        );
        let front_jpeg = jpeg(&front)?;
        evidence.add("image", "front", &front_jpeg, "image/jpeg")?;
        report_images.push(ReportImage {
            label: "Document front".into(),
            jpeg: front_jpeg,
            width: 856,
            height: 540,
        });
        if doc_type != "Passport" {
            let back_fields = [
                (
                    "ADDRESS / DOMICILIO",
                    document.address.clone().unwrap_or_default().to_uppercase(),
                ),
                ("CITY / LOCALIDAD", city.to_uppercase()),
                ("PLACE OF BIRTH / LUGAR DE NACIMIENTO", city.to_uppercase()),
                ("ISSUED / EXPEDICION", issued.format("%d %m %Y").to_string()),
            ];
            let back = draw::card(
                &draw::CardText {
                    header: country_name(country),
                    subtitle: title,
                    fields: &back_fields,
                    mrz: mrz.as_deref(),
                },
                tint,
                skin,
                hair,
            );
            evidence.add("image", "back", &jpeg(&back)?, "image/jpeg")?;
        }
    }
    if submitted && state != State::InProgress {
        let selfie_jpeg = jpeg(&draw::selfie(
            skin,
            hair,
            shirt,
            [rng.gen_range(120..220), 200, 220],
        ))?;
        evidence.add("image", "selfie", &selfie_jpeg, "image/jpeg")?;
        report_images.push(ReportImage {
            label: "Selfie".into(),
            jpeg: selfie_jpeg,
            width: 480,
            height: 640,
        });
        if i % 8 == 0 {
            if let Some(rec) = DemoAssets::get("recording.webm") {
                evidence.add("recording", "video", &rec.data, "video/webm")?;
            }
        }
    }
    let checks = validation::validate(
        &document,
        &crate::review::images_of(&evidence.rows),
        today,
        &validation::Thresholds::default(),
    );
    let agent = LOGINS[0].email;
    let (reason, comment) = match state {
        State::NotVerified => {
            let r = crate::config::DEFAULT_REJECT_REASONS
                [i % crate::config::DEFAULT_REJECT_REASONS.len()];
            (
                Some(r.to_string()),
                Some("Checked against the document images.".to_string()),
            )
        }
        State::Verified => (None, Some("All checks consistent.".to_string())),
        _ => (None, None),
    };
    let verification_time = state
        .is_final()
        .then(|| created_at + rng.gen_range(600_000..86_400_000i64).min(now - created_at));
    let mut pdf_checksum = None;
    if state.is_final() {
        let mut lines = vec![
            ("scanId".to_string(), scan_id.clone()),
            ("State".to_string(), state.to_string()),
            ("Name".to_string(), given.to_string()),
            ("Surname".to_string(), surname.clone()),
            ("Document type".to_string(), doc_type.to_string()),
            ("Document number".to_string(), number.clone()),
            ("Date of birth".to_string(), birth.to_string()),
            ("Date of expiry".to_string(), expiry.to_string()),
            ("Nationality".to_string(), country.to_string()),
            ("MRZ".to_string(), mrz.clone().unwrap_or_default()),
        ];
        for (k, v) in &checks {
            lines.push((
                format!("Validation {k}"),
                format!("{:?}: {}", v.result, v.reason),
            ));
        }
        lines.push((
            "Decision".to_string(),
            format!(
                "{state} by {agent} at {}",
                fmt_ms(verification_time.unwrap_or(now))
            ),
        ));
        if let Some(r) = &reason {
            lines.push(("Rejection reason".to_string(), r.clone()));
        }
        let pdf = report::render(&Report {
            title: format!("kycdesk process report - {given} {surname}"),
            lines,
            images: report_images,
        });
        pdf_checksum = Some(evidence.add("pdf", "report", &pdf, "application/pdf")?);
    }
    let decision = state.is_final().then(|| DecisionRow {
        id: uuid::Builder::from_random_bytes(rng.gen())
            .into_uuid()
            .to_string(),
        scan_id: scan_id.clone(),
        decision: if state == State::Verified {
            "accept"
        } else {
            "reject"
        }
        .into(),
        from_state: State::PendingVerification.as_str().into(),
        to_state: state.as_str().into(),
        actor: agent.into(),
        reason: reason.clone(),
        comment: comment.clone(),
        at: verification_time.unwrap_or(now),
    });
    let (integrator_id, _) = &integrators[i % integrators.len()];
    let evidence = evidence.rows;
    Ok(Prepared {
        process: NewProcess {
            scan_id,
            integrator_id: integrator_id.clone(),
            state,
            country_id: Some(country.to_string()),
            doc_type: Some(doc_type.to_string()),
            doc_specific_type: None,
            redirect_url: Some("https://integrator.example/onboarding/done".into()),
            validations: serde_json::to_string(&checks)?,
            failing_validations: failing_key(&checks),
            document,
            agent: state.is_final().then(|| agent.to_string()),
            verification_result: match state {
                State::Verified => Some("OK".into()),
                State::NotVerified => Some("KO".into()),
                _ => None,
            },
            rejection_reason: reason,
            comment,
            client_info: Some(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148".into(),
            ),
            pdf_checksum,
            created_at,
            verification_time,
        },
        evidence,
        decision,
    })
}

pub const INTEGRATORS: [&str; 3] = ["Acme Bank", "Nordic Pay", "Fintech Iberia"];

/// The demo's review target for Nordic Pay, in hours.
pub const DEMO_SLA_HOURS: i64 = 14 * 24;

/// Seeds the demo when the database has no users and returns the demo
/// integrator's credentials; `None` when the database already had data.
pub async fn seed_if_empty(
    state: &AppState,
    processes: usize,
) -> anyhow::Result<Option<Credentials>> {
    if user_rows::count_users(state.db.read()).await? > 0 {
        return Ok(None);
    }
    for l in &LOGINS {
        accounts::create_user(
            &state.db, l.email, l.role, l.password, false, "demo", "local",
        )
        .await?;
    }
    let now = now_ms();
    // The first demo integrator gets API credentials, printed once.
    let creds = crate::accounts::integrators::create(
        &state.db,
        INTEGRATORS[0],
        None,
        &[],
        false,
        "demo",
        "local",
    )
    .await?;
    let mut integrators = vec![(creds.integrator_id.clone(), INTEGRATORS[0].to_string())];
    let mut tx = state.db.begin().await?;
    for name in &INTEGRATORS[1..] {
        let id = uuid::Uuid::new_v4().to_string();
        rows::insert_integrator(&mut tx, &id, name, now).await?;
        integrators.push((id, name.to_string()));
    }
    // Nordic Pay promises a review within two weeks: its older demo cases
    // show as overdue in the queue.
    crate::store::integrators::set_sla_hours(&mut tx, &integrators[1].0, Some(DEMO_SLA_HOURS))
        .await?;
    tx.commit().await?;

    let blobs = state.blobs.clone();
    let prepared = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Prepared>> {
        let mut rng = StdRng::seed_from_u64(20_261_122);
        (0..processes)
            .map(|i| prepare(i, &mut rng, &integrators, &blobs, now))
            .collect()
    })
    .await??;

    let mut work = audit::Work::begin(&state.db).await?;
    for chunk in prepared.chunks(100) {
        let ps: Vec<NewProcess> = chunk.iter().map(|p| p.process.clone()).collect();
        rows::insert_many(&mut work.tx, &ps, 0).await?;
        for p in chunk {
            for e in &p.evidence {
                rows::insert_evidence(&mut work.tx, e).await?;
            }
            if let Some(d) = &p.decision {
                rows::insert_decision(&mut work.tx, d).await?;
            }
        }
    }
    work.commit(Event {
        actor: "demo",
        action: "demo.seed",
        scan_id: None,
        client_addr: "local",
        detail: serde_json::json!({"processes": processes}),
    })
    .await?;
    Ok(Some(creds))
}
