//! Query-string values as the desk's filter forms send them: an empty field
//! means "any", dates are whole UTC days (YYYY-MM-DD).

use super::error::DeskError;

pub const DAY_MS: i64 = 86_400_000;

/// A filter field's value, or None when it was left empty.
pub fn set(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The first millisecond of a UTC day; `field` names the control in the
/// message when the value is no date.
pub fn day_ms(field: &str, v: &str) -> Result<i64, DeskError> {
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| {
            DeskError::BadRequest(format!("{field}: '{v}' is not a date; use YYYY-MM-DD"))
        })
}

/// A from–to pair of days as a half-open range of milliseconds: "to" is the
/// last day included. A range that ends before it starts is refused.
pub fn day_range(
    from: &Option<String>,
    to: &Option<String>,
) -> Result<(Option<i64>, Option<i64>), DeskError> {
    let from_ms = set(from).map(|v| day_ms("From", &v)).transpose()?;
    let to_ms = set(to)
        .map(|v| day_ms("To", &v).map(|t| t + DAY_MS))
        .transpose()?;
    if let (Some(f), Some(t)) = (from_ms, to_ms) {
        if t <= f {
            return Err(DeskError::BadRequest(
                "To: the last day comes before the first; swap the dates".into(),
            ));
        }
    }
    Ok((from_ms, to_ms))
}
