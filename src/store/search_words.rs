//! The desk search's word index: one row per (case, word of its folded
//! names), ordered by (word, created_at, scan_id) so that the newest cases
//! holding a word are one index range, read newest first and cut at a page.

use super::{Bind, Binds, Tx};
use crate::domain::process::indexed_words;
use sqlx::AnyPool;

/// Words per statement when many cases are written at once (four binds
/// each: SQLite looks `$N` up linearly, so statements stay near a thousand).
const CHUNK: usize = 250;

/// `all_words` of a case: every word, each after a space, so that
/// "% maria%" matches exactly the cases with a word starting "maria".
fn all_words(words: &[String]) -> String {
    words.iter().map(|w| format!(" {w}")).collect()
}

/// Adds the words of new cases: (scan_id, created_at, words).
pub async fn insert(tx: &mut Tx, cases: &[(&str, i64, Vec<String>)]) -> Result<(), sqlx::Error> {
    let rows: Vec<(&str, i64, &str, String)> = cases
        .iter()
        .flat_map(|(id, at, words)| {
            let all = all_words(words);
            words
                .iter()
                .map(move |w| (*id, *at, w.as_str(), all.clone()))
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        let mut b = Binds::default();
        let values: Vec<String> = chunk
            .iter()
            .map(|(id, at, w, all)| {
                format!(
                    "({}, {}, {}, {})",
                    b.push(Bind::Text((*w).into())),
                    b.push(Bind::Int(*at)),
                    b.push(Bind::Text((*id).into())),
                    b.push(Bind::Text(all.clone()))
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO process_words (word, created_at, scan_id, all_words) VALUES {} \
             ON CONFLICT (scan_id, word) DO NOTHING",
            values.join(", ")
        );
        b.apply(sqlx::query(&sql)).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Replaces one case's words after its document was edited (in the edit's
/// transaction, so a search never sees the old and new names mixed).
pub async fn replace(tx: &mut Tx, scan_id: &str, words: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM process_words WHERE scan_id = $1")
        .bind(scan_id)
        .execute(&mut **tx)
        .await?;
    let all = all_words(words);
    for w in words {
        sqlx::query(
            "INSERT INTO process_words (word, created_at, scan_id, all_words) \
             SELECT $2, created_at, scan_id, $3 FROM processes WHERE scan_id = $1",
        )
        .bind(scan_id)
        .bind(w)
        .bind(&all)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// For each prefix, the distinct indexed words starting with it, in
/// order, at most `cap` of them: one index seek per word (a loose index
/// scan), however many cases hold each. More than `cap` answers tell the
/// caller that the prefix is too short to search word by word. One
/// statement for all the prefixes of a search: each round trip to the
/// database is a hand-off to its worker and back, which under load cost
/// more than the seeks.
pub async fn starting_with(
    pool: &AnyPool,
    prefixes: &[String],
    cap: usize,
) -> Result<Vec<Vec<String>>, sqlx::Error> {
    let mut out = vec![Vec::new(); prefixes.len()];
    if prefixes.is_empty() {
        return Ok(out);
    }
    let mut b = Binds::default();
    let cap = b.push(Bind::Int(i64::try_from(cap).unwrap_or(i64::MAX)));
    let mut ctes = Vec::with_capacity(prefixes.len());
    let mut selects = Vec::with_capacity(prefixes.len());
    for (k, prefix) in prefixes.iter().enumerate() {
        let lo = b.push(Bind::Text(prefix.clone()));
        // The upper bound is above every string with this prefix under the
        // byte-wise ("C") order both backends use for `word`.
        let hi = b.push(Bind::Text(format!("{prefix}\u{10FFFF}")));
        ctes.push(format!(
            "d{k}(word, n) AS ( \
               SELECT (SELECT word FROM process_words WHERE word >= {lo} AND word < {hi} ORDER BY word LIMIT 1), 1 \
               UNION ALL \
               SELECT (SELECT w.word FROM process_words w WHERE w.word > d{k}.word AND w.word < {hi} ORDER BY w.word LIMIT 1), d{k}.n + 1 \
               FROM d{k} WHERE d{k}.word IS NOT NULL AND d{k}.n < {cap})"
        ));
        selects.push(format!(
            "SELECT CAST({k} AS BIGINT) AS k, n, word FROM d{k} WHERE word IS NOT NULL"
        ));
    }
    let sql = format!(
        "WITH RECURSIVE {} SELECT k, word FROM ({}) u ORDER BY k, n",
        ctes.join(", "),
        selects.join(" UNION ALL ")
    );
    let rows: Vec<(i64, String)> = b
        .apply_as(sqlx::query_as::<_, (i64, String)>(&sql))
        .fetch_all(pool)
        .await?;
    for (k, word) in rows {
        match usize::try_from(k).ok().and_then(|k| out.get_mut(k)) {
            Some(list) => list.push(word),
            None => {
                return Err(sqlx::Error::Protocol(format!(
                    "word completion answered for prefix {k} of {}",
                    prefixes.len()
                )))
            }
        }
    }
    Ok(out)
}

/// Whether the word index still has to be filled from existing cases
/// (a database created before it existed).
pub async fn rebuild_pending(pool: &AnyPool) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT name FROM pending_rebuilds WHERE name = 'process_words'",
    )
    .fetch_optional(pool)
    .await?
    .is_some())
}

/// Fills the index from the existing cases, in batches of one
/// transaction each, and marks it done with the last. The stored search
/// keys are already folded, so no document is decoded. Safe to repeat
/// (another server starting at once, a crash midway): rows already there
/// are kept. Returns the number of cases read.
pub async fn rebuild(pool: &AnyPool) -> Result<u64, sqlx::Error> {
    const BATCH: i64 = 5_000;
    let mut after = String::new();
    let mut seen = 0u64;
    loop {
        let rows = sqlx::query_as::<_, (String, i64, String, String)>(
            "SELECT scan_id, created_at, search_name, search_surname FROM processes \
             WHERE scan_id > $1 ORDER BY scan_id LIMIT $2",
        )
        .bind(&after)
        .bind(BATCH)
        .fetch_all(pool)
        .await?;
        let cases: Vec<(&str, i64, Vec<String>)> = rows
            .iter()
            .map(|(id, at, name, surname)| {
                (
                    id.as_str(),
                    *at,
                    indexed_words(&format!("{name} {surname}")),
                )
            })
            .collect();
        let mut tx = pool.begin().await?;
        insert(&mut tx, &cases).await?;
        let last = rows.len() < BATCH as usize;
        if last {
            sqlx::query("DELETE FROM pending_rebuilds WHERE name = 'process_words'")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        seen += rows.len() as u64;
        match rows.last() {
            Some((id, ..)) if !last => after.clone_from(id),
            _ => return Ok(seen),
        }
        if seen % 100_000 == 0 {
            tracing::info!(cases = seen, "building the search word index");
        }
    }
}

/// Planner statistics for a freshly filled index (and, on PostgreSQL, the
/// visibility map its index-only walks need): without them PostgreSQL
/// read a word's every row from the table to sort them (170 ms instead of
/// 0.3 ms at 1M cases) until autovacuum came by.
pub async fn refresh_statistics(
    pool: &AnyPool,
    backend: super::Backend,
) -> Result<(), sqlx::Error> {
    let sql = match backend {
        super::Backend::Postgres => "VACUUM ANALYZE process_words",
        super::Backend::Sqlite => "ANALYZE process_words",
    };
    sqlx::query(sql).execute(pool).await?;
    Ok(())
}
