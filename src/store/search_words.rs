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

/// Adds the words and word pairs of new cases: (scan_id, created_at, words).
pub async fn insert(tx: &mut Tx, cases: &[(&str, i64, Vec<String>)]) -> Result<(), sqlx::Error> {
    let words: Vec<[Bind; 4]> = cases
        .iter()
        .flat_map(|(id, at, words)| {
            let all = all_words(words);
            words.iter().map(move |w| {
                [
                    Bind::Text(w.clone()),
                    Bind::Int(*at),
                    Bind::Text((*id).into()),
                    Bind::Text(all.clone()),
                ]
            })
        })
        .collect();
    insert_rows(
        tx,
        "process_words (word, created_at, scan_id, all_words)",
        &words,
    )
    .await?;
    let pairs: Vec<[Bind; 4]> = cases
        .iter()
        .flat_map(|(id, at, words)| {
            pairs(words).into_iter().map(move |(first, second)| {
                [
                    Bind::Text(first.into()),
                    Bind::Text(second.into()),
                    Bind::Int(*at),
                    Bind::Text((*id).into()),
                ]
            })
        })
        .collect();
    insert_rows(
        tx,
        "process_word_pairs (first, second, created_at, scan_id)",
        &pairs,
    )
    .await
}

/// Inserts rows into `into` (a table and its four columns), [`CHUNK`]
/// rows a statement, keeping rows already there (a repeated rebuild).
async fn insert_rows(tx: &mut Tx, into: &str, rows: &[[Bind; 4]]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(CHUNK) {
        let mut b = Binds::default();
        let values: Vec<String> = chunk
            .iter()
            .map(|row| {
                let row: Vec<String> = row.iter().map(|v| b.push(v.clone())).collect();
                format!("({})", row.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {into} VALUES {} ON CONFLICT DO NOTHING",
            values.join(", ")
        );
        b.apply(sqlx::query(&sql)).execute(&mut **tx).await?;
    }
    Ok(())
}

/// A case of more words than this holds the overflow pair ("", "")
/// instead of its pairs, which grow with the square of the words (8 words:
/// 28 pairs). A given name, two surnames and a few particles fit.
const PAIRED_WORDS: usize = 8;

/// The pair table's rows of a case's words: every pair of two distinct
/// words, the smaller (byte-wise, the order both backends keep `word` in)
/// first; or the single overflow row for more than [`PAIRED_WORDS`].
fn pairs(words: &[String]) -> Vec<(&str, &str)> {
    if words.len() > PAIRED_WORDS {
        return vec![("", "")];
    }
    let mut out = Vec::with_capacity(words.len() * words.len().saturating_sub(1) / 2);
    for (i, a) in words.iter().enumerate() {
        for b in &words[i + 1..] {
            match a.cmp(b) {
                std::cmp::Ordering::Less => out.push((a.as_str(), b.as_str())),
                std::cmp::Ordering::Greater => out.push((b.as_str(), a.as_str())),
                std::cmp::Ordering::Equal => {}
            }
        }
    }
    out
}

/// Replaces one case's words after its document was edited (in the edit's
/// transaction, so a search never sees the old and new names mixed).
pub async fn replace(tx: &mut Tx, scan_id: &str, words: &[String]) -> Result<(), sqlx::Error> {
    remove(tx, scan_id).await?;
    let created_at: i64 = sqlx::query_scalar("SELECT created_at FROM processes WHERE scan_id = $1")
        .bind(scan_id)
        .fetch_one(&mut **tx)
        .await?;
    insert(tx, &[(scan_id, created_at, words.to_vec())]).await
}

/// Removes one case's words and word pairs (its names change, or it is
/// deleted). The pair table has no index by case: the pairs are found
/// from the case's words, one key range per first word.
pub async fn remove(tx: &mut Tx, scan_id: &str) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT word, created_at FROM process_words WHERE scan_id = $1")
            .bind(scan_id)
            .fetch_all(&mut **tx)
            .await?;
    let Some(created_at) = rows.first().map(|(_, at)| *at) else {
        return Ok(());
    };
    let words: Vec<String> = rows.into_iter().map(|(w, _)| w).collect();
    let mut by_first: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (first, second) in pairs(&words) {
        by_first.entry(first).or_default().push(second);
    }
    for (first, seconds) in by_first {
        let mut b = Binds::default();
        let f = b.push(Bind::Text(first.into()));
        let at = b.push(Bind::Int(created_at));
        let id = b.push(Bind::Text(scan_id.into()));
        let s: Vec<String> = seconds
            .iter()
            .map(|s| b.push(Bind::Text((*s).into())))
            .collect();
        let sql = format!(
            "DELETE FROM process_word_pairs WHERE first = {f} AND second IN ({}) \
             AND created_at = {at} AND scan_id = {id}",
            s.join(", ")
        );
        b.apply(sqlx::query(&sql)).execute(&mut **tx).await?;
    }
    sqlx::query("DELETE FROM process_words WHERE scan_id = $1")
        .bind(scan_id)
        .execute(&mut **tx)
        .await?;
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
pub async fn rebuild_pending(pool: &super::Writer) -> Result<bool, sqlx::Error> {
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
pub async fn rebuild(pool: &super::Writer) -> Result<u64, sqlx::Error> {
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
        let mut tx = Tx::begin(pool).await?;
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
    pool: &super::Writer,
    backend: super::Backend,
) -> Result<(), sqlx::Error> {
    for table in ["process_words", "process_word_pairs"] {
        let sql = match backend {
            super::Backend::Postgres => format!("VACUUM ANALYZE {table}"),
            super::Backend::Sqlite => format!("ANALYZE {table}"),
        };
        sqlx::query(&sql).execute(pool).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{pairs, PAIRED_WORDS};

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn pairs_are_each_two_distinct_words_once_the_smaller_first() {
        assert_eq!(
            pairs(&words("maria garcia lopez")),
            vec![("garcia", "maria"), ("lopez", "maria"), ("garcia", "lopez")]
        );
        assert!(pairs(&words("ana")).is_empty());
        assert!(pairs(&[]).is_empty());
        // Byte order, as both backends keep `word`: "z" < "á".
        assert_eq!(pairs(&words("á z")), vec![("z", "á")]);
    }

    #[test]
    fn too_many_words_make_the_one_overflow_row() {
        let eight: Vec<String> = (0..PAIRED_WORDS).map(|i| format!("w{i}")).collect();
        assert_eq!(pairs(&eight).len(), PAIRED_WORDS * (PAIRED_WORDS - 1) / 2);
        let nine: Vec<String> = (0..=PAIRED_WORDS).map(|i| format!("w{i}")).collect();
        assert_eq!(pairs(&nine), vec![("", "")]);
    }
}
