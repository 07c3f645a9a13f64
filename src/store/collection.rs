//! Pages of the Identity API's collections (fraud-risk reports, quizzes):
//! the `filter` language (`eq(state,passed)`, `and(…)`, …) turned into SQL
//! over whitelisted columns, `q` search, sorting, `start`/`limit`.

use super::{Bind, Binds, Db};

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// A filter value that is not of its column's type (400-class).
    #[error("{0}")]
    BadFilter(String),
    #[error(transparent)]
    Db(sqlx::Error),
}

/// A page request of a collection: `start`, `limit`, `sortBy`, `filter`, `q`.
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    pub start: i64,
    pub limit: i64,
    /// (column, descending)
    pub sort: Vec<(&'static str, bool)>,
    pub filter: Option<Filter>,
    pub q: Option<String>,
}

/// The filter language of Apiture collections: `eq(state,passed)`,
/// `ne`, `lt`, `le`, `gt`, `ge`, `in(state,passed|failed)`, `and(…,…)`,
/// `or(…,…)`, `not(…)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Cmp(&'static str, &'static str, String),
    In(&'static str, Vec<String>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

/// Collection fields that can be filtered and sorted, and their columns.
pub fn column(field: &str, quizzes: bool) -> Option<&'static str> {
    match field {
        "state" => Some("state"),
        "createdAt" => Some("created_at"),
        "contactId" => Some("contact_id"),
        "expiresAt" if quizzes => Some("expires_at"),
        _ => None,
    }
}

fn split_args(s: &str) -> Result<Vec<&str>, String> {
    let mut depth = 0i32;
    let mut out = vec![];
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return Err("unbalanced parentheses".into());
        }
    }
    if depth != 0 {
        return Err("unbalanced parentheses".into());
    }
    out.push(s[start..].trim());
    Ok(out)
}

pub fn parse_filter(s: &str, quizzes: bool) -> Result<Filter, String> {
    let s = s.trim();
    let open = s
        .find('(')
        .ok_or_else(|| format!("'{s}' is not op(field,value)"))?;
    if !s.ends_with(')') {
        return Err(format!("'{s}' must end with ')'"));
    }
    let op = &s[..open];
    let args = split_args(&s[open + 1..s.len() - 1])?;
    let field = |f: &str| {
        column(f, quizzes).ok_or_else(|| {
            format!(
                "'{f}' cannot be filtered: use state, createdAt, contactId{}",
                if quizzes { ", expiresAt" } else { "" }
            )
        })
    };
    let unquote = |v: &str| v.trim_matches(|c| c == '\'' || c == '"').to_string();
    match op {
        "and" | "or" => {
            let parts = args
                .iter()
                .map(|a| parse_filter(a, quizzes))
                .collect::<Result<Vec<_>, _>>()?;
            if parts.len() < 2 {
                return Err(format!("{op}() needs two or more terms"));
            }
            Ok(if op == "and" {
                Filter::And(parts)
            } else {
                Filter::Or(parts)
            })
        }
        "not" if args.len() == 1 => Ok(Filter::Not(Box::new(parse_filter(args[0], quizzes)?))),
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" if args.len() == 2 => {
            let sql = match op {
                "eq" => "=",
                "ne" => "<>",
                "lt" => "<",
                "le" => "<=",
                "gt" => ">",
                _ => ">=",
            };
            Ok(Filter::Cmp(field(args[0])?, sql, unquote(args[1])))
        }
        "in" if args.len() == 2 => Ok(Filter::In(
            field(args[0])?,
            args[1].split('|').map(unquote).collect(),
        )),
        _ => Err(format!(
            "unknown filter operation '{op}' (or wrong number of arguments)"
        )),
    }
}

fn bind_value(col: &str, v: &str, b: &mut Binds) -> Result<String, String> {
    if col.ends_with("_at") {
        let ms = chrono::DateTime::parse_from_rfc3339(v)
            .map(|d| d.timestamp_millis())
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map(|d| {
                    d.and_hms_opt(0, 0, 0)
                        .map(|t| t.and_utc().timestamp_millis())
                        .unwrap_or(0)
                })
            })
            .map_err(|_| format!("'{v}' is not a date-time (RFC 3339) or date"))?;
        Ok(b.push(Bind::Int(ms)))
    } else {
        Ok(b.push(Bind::Text(v.to_string())))
    }
}

fn filter_sql(f: &Filter, b: &mut Binds) -> Result<String, String> {
    Ok(match f {
        Filter::Cmp(col, op, v) => format!("{col} {op} {}", bind_value(col, v, b)?),
        Filter::In(col, vs) => {
            let ps = vs
                .iter()
                .map(|v| bind_value(col, v, b))
                .collect::<Result<Vec<_>, _>>()?;
            format!("{col} IN ({})", ps.join(", "))
        }
        Filter::And(fs) => format!(
            "({})",
            fs.iter()
                .map(|f| filter_sql(f, b))
                .collect::<Result<Vec<_>, _>>()?
                .join(" AND ")
        ),
        Filter::Or(fs) => format!(
            "({})",
            fs.iter()
                .map(|f| filter_sql(f, b))
                .collect::<Result<Vec<_>, _>>()?
                .join(" OR ")
        ),
        Filter::Not(f) => format!("NOT ({})", filter_sql(f, b)?),
    })
}

/// One page of a collection, plus whether more follow.
pub async fn page<T>(
    db: &Db,
    table: &str,
    cols: &str,
    integrator_id: &str,
    p: &PageQuery,
) -> Result<(Vec<T>, bool), PageError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut b = Binds::default();
    let mut wh = vec![format!(
        "integrator_id = {}",
        b.push(Bind::Text(integrator_id.into()))
    )];
    if let Some(f) = &p.filter {
        wh.push(filter_sql(f, &mut b).map_err(PageError::BadFilter)?);
    }
    if let Some(q) = &p.q {
        let q = crate::domain::contact::fold(q);
        if !q.is_empty() {
            let esc = q
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            wh.push(format!(
                "search LIKE {} ESCAPE '\\'",
                b.push(Bind::Text(format!("%{esc}%")))
            ));
        }
    }
    let mut order: Vec<String> = p
        .sort
        .iter()
        .map(|(c, desc)| format!("{c} {}", if *desc { "DESC" } else { "ASC" }))
        .collect();
    if order.is_empty() {
        order.push("created_at DESC".into());
    }
    order.push("id".into());
    let sql = format!(
        "SELECT {cols} FROM {table} WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
        wh.join(" AND "),
        order.join(", "),
        b.push(Bind::Int(p.limit + 1)),
        b.push(Bind::Int(p.start)),
    );
    let mut rows: Vec<T> = b
        .apply_as(sqlx::query_as::<_, T>(&sql))
        .fetch_all(db.read())
        .await
        .map_err(PageError::Db)?;
    let more = rows.len() as i64 > p.limit;
    rows.truncate(p.limit as usize);
    Ok((rows, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_into_whitelisted_columns() {
        let f = parse_filter(
            "and(eq(state,passed),ge(createdAt,2018-01-01T00:00:00Z))",
            false,
        );
        assert!(matches!(f, Ok(Filter::And(ref v)) if v.len() == 2));
        assert!(parse_filter("eq(inputs,x)", false).is_err());
        assert!(parse_filter("eq(expiresAt,2018-01-01)", false).is_err());
        assert!(parse_filter("eq(expiresAt,2018-01-01)", true).is_ok());
        assert!(parse_filter("eq(state,passed", false).is_err());
        assert_eq!(
            parse_filter("in(state,passed|failed)", false),
            Ok(Filter::In("state", vec!["passed".into(), "failed".into()]))
        );
        let mut b = Binds::default();
        let sql = parse_filter("or(eq(state,'passed'),not(eq(state,failed)))", false)
            .and_then(|f| filter_sql(&f, &mut b))
            .unwrap_or_default();
        assert_eq!(sql, "(state = $1 OR NOT (state = $2))");
    }
}
