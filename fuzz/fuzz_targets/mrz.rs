//! `cargo +nightly fuzz run mrz`: the MRZ parser must never panic, whatever
//! bytes it is given.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default();
    if let Ok(m) = kycdesk::domain::mrz::parse(&text, today) {
        let _ = m.all_checks_pass();
    }
});
