//! The knowledge base in the database: every version of every procedure, which version
//! is current, and full-text search over symptoms, titles, summaries, fault ids and the
//! fault codes of the procedure's product lines.
//!
//! * **Versions.** `(id, version)` rows are immutable. At start-up each procedure of
//!   `models/knowledge/procedures.json` is inserted if its `(id, version)` is new; an
//!   API edit stores `current + 1`. The current version is the highest one, so an edit
//!   made through the API stays current until the file is bumped past it (reviewed data
//!   wins once someone updates it). A work order records the `(id, version)` it
//!   followed in its `procedure_started` event, so the text an expert pushed can always
//!   be shown again.
//! * **Search.** One search document per current version, built by [`search_terms`]:
//!   lower-cased Latin words and digits, and Chinese text as overlapping character
//!   bigrams (Chinese has no spaces; bigrams are the classic index unit for it). The
//!   query goes through the same function and the terms are OR-ed, so "电钻 过热 stops"
//!   matches on every term it can. SQLite ranks with FTS5 `bm25()`, PostgreSQL with
//!   `ts_rank` over a `simple`-configuration tsvector; both indexes are created here
//!   (not in the portable migrations) because their DDL differs.

use std::collections::BTreeSet;

use serde::Serialize;
use sqlx::Row;

use super::procedures::{Library, Procedure};
use crate::store::{Backend, Db, StoreError};
use crate::UnixMillis;

/// Creates the backend-specific full-text index if missing.
pub async fn ensure_index(db: &Db) -> Result<(), StoreError> {
    match db.backend {
        Backend::Sqlite => {
            sqlx::query("CREATE VIRTUAL TABLE IF NOT EXISTS procedure_fts USING fts5(id UNINDEXED, terms, tokenize = 'unicode61')")
                .execute(&db.pool)
                .await?;
        }
        Backend::Postgres => {
            sqlx::query("CREATE INDEX IF NOT EXISTS procedure_heads_terms ON procedure_heads USING GIN (to_tsvector('simple', terms))")
                .execute(&db.pool)
                .await?;
        }
    }
    Ok(())
}

/// Splits text into search terms: Latin words and numbers lower-cased, CJK runs as
/// overlapping bigrams (a single CJK character stays as it is).
pub fn search_terms(text: &str) -> Vec<String> {
    fn cjk(c: char) -> bool {
        matches!(c, '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{f900}'..='\u{faff}')
    }
    let mut out = Vec::new();
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let flush_run = |run: &mut Vec<char>, out: &mut Vec<String>| {
        match run.len() {
            0 => {}
            1 => out.push(run[0].to_string()),
            _ => out.extend(run.windows(2).map(|w| w.iter().collect::<String>())),
        }
        run.clear();
    };
    for c in text.chars() {
        if cjk(c) {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            run.push(c);
        } else if c.is_alphanumeric() && c.is_ascii() {
            flush_run(&mut run, &mut out);
            word.extend(c.to_lowercase());
        } else {
            flush_run(&mut run, &mut out);
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
        }
    }
    flush_run(&mut run, &mut out);
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The text a procedure is found by.
fn document(p: &Procedure, codes: &[(String, String)]) -> String {
    let mut parts = vec![
        p.id.replace(['.', '_'], " "),
        p.title_en.clone(),
        p.title_zh.clone(),
        p.summary_en.clone(),
        p.summary_zh.clone(),
        p.symptoms_en.clone(),
        p.symptoms_zh.clone(),
    ];
    parts.extend(p.fault_ids.iter().map(|f| f.replace(['.', '_'], " ")));
    // Fault codes of the procedure's lines that name one of its faults ("E01", "SP-101").
    for (code, fault) in codes {
        if p.fault_ids.contains(fault) {
            parts.push(code.clone());
        }
    }
    search_terms(&parts.join(" ")).join(" ")
}

/// A stored procedure version.
#[derive(Clone, Debug, Serialize)]
pub struct StoredProcedure {
    #[serde(flatten)]
    pub procedure: Procedure,
    /// `file` (models/knowledge) or `api` (edited by an admin or expert).
    pub source: String,
    pub created_by: Option<String>,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub created_at: UnixMillis,
    /// Total expected minutes of all steps.
    pub expected_minutes: u32,
}

fn stored_from_row(r: &sqlx::any::AnyRow) -> Result<StoredProcedure, StoreError> {
    let body: String = r.try_get("body")?;
    let procedure: Procedure = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("procedure body: {e}")))?;
    Ok(StoredProcedure {
        expected_minutes: procedure.expected_minutes(),
        procedure,
        source: r.try_get("source")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

/// (fault code, fault id) pairs of the product lines, for the search documents.
async fn fault_codes(db: &Db) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as("SELECT code, fault_id FROM fault_codes").fetch_all(&db.pool).await?)
}

/// Stores a new version and makes it current if it is the highest. Returns false when
/// that (id, version) already exists (nothing written).
async fn insert_version(db: &Db, p: &Procedure, source: &str, created_by: Option<&str>, codes: &[(String, String)]) -> Result<bool, StoreError> {
    let now = crate::now_millis();
    let body = serde_json::to_string(p).expect("procedures serialize");
    let mut tx = db.pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO procedures (id, version, body, source, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(&p.id)
    .bind(p.version as i64)
    .bind(&body)
    .bind(source)
    .bind(created_by)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    let terms = document(p, codes);
    let became_current = sqlx::query(
        "INSERT INTO procedure_heads (id, version, terms, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, terms = excluded.terms, updated_at = excluded.updated_at \
         WHERE procedure_heads.version < excluded.version",
    )
    .bind(&p.id)
    .bind(p.version as i64)
    .bind(&terms)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if became_current {
        sqlx::query("DELETE FROM procedure_faults WHERE procedure_id = $1").bind(&p.id).execute(&mut *tx).await?;
        for f in &p.fault_ids {
            for l in &p.product_lines {
                sqlx::query("INSERT INTO procedure_faults (procedure_id, fault_id, product_line) VALUES ($1, $2, $3)")
                    .bind(&p.id)
                    .bind(f)
                    .bind(l)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if db.backend == Backend::Sqlite {
            sqlx::query("DELETE FROM procedure_fts WHERE id = $1").bind(&p.id).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO procedure_fts (id, terms) VALUES ($1, $2)").bind(&p.id).bind(&terms).execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Loads the bundled procedures into the database (new versions only).
pub async fn sync(db: &Db, library: &Library) -> Result<usize, StoreError> {
    ensure_index(db).await?;
    let codes = fault_codes(db).await?;
    let mut n = 0;
    for p in &library.procedures {
        n += insert_version(db, p, "file", None, &codes).await? as usize;
    }
    Ok(n)
}

/// The current version of a procedure, or a given one.
pub async fn get(db: &Db, id: &str, version: Option<u32>) -> Result<Option<StoredProcedure>, StoreError> {
    let r = match version {
        Some(v) => sqlx::query("SELECT * FROM procedures WHERE id = $1 AND version = $2").bind(id).bind(v as i64).fetch_optional(&db.pool).await?,
        None => {
            sqlx::query("SELECT p.* FROM procedures p JOIN procedure_heads h ON h.id = p.id AND h.version = p.version WHERE p.id = $1")
                .bind(id)
                .fetch_optional(&db.pool)
                .await?
        }
    };
    r.as_ref().map(stored_from_row).transpose()
}

/// Every version of a procedure, newest first (without bodies' steps trimmed: they are
/// small).
pub async fn versions(db: &Db, id: &str) -> Result<Vec<StoredProcedure>, StoreError> {
    let rows = sqlx::query("SELECT * FROM procedures WHERE id = $1 ORDER BY version DESC").bind(id).fetch_all(&db.pool).await?;
    rows.iter().map(stored_from_row).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores an edit as the next version of `id` (or version 1 of a new procedure). The
/// body's `version` is ignored: the store assigns it. `expected_version` (the version the
/// editor started from) guards against overwriting a concurrent edit.
pub async fn edit(
    db: &Db,
    library: &Library,
    fault_ids: &BTreeSet<String>,
    product_lines: &BTreeSet<String>,
    mut p: Procedure,
    expected_version: Option<u32>,
    by: &str,
) -> Result<StoredProcedure, EditError> {
    let current = get(db, &p.id, None).await?.map(|s| s.procedure.version);
    if let (Some(e), Some(c)) = (expected_version, current) {
        if e != c {
            return Err(EditError::Conflict(format!("procedure {} is at version {c}, not {e}: reload it and edit again", p.id)));
        }
    }
    p.version = current.unwrap_or(0) + 1;
    let problems = library.check_procedure(&p, fault_ids, product_lines, None);
    if !problems.is_empty() {
        return Err(EditError::Invalid(problems.join("; ")));
    }
    let codes = fault_codes(db).await?;
    if !insert_version(db, &p, "api", Some(by), &codes).await? {
        return Err(EditError::Conflict(format!("procedure {} version {} was just stored by someone else", p.id, p.version)));
    }
    get(db, &p.id, Some(p.version)).await?.ok_or_else(|| EditError::Store(StoreError::Corrupt("stored version vanished".into())))
}

/// One search hit.
#[derive(Clone, Debug, Serialize)]
pub struct Hit {
    pub id: String,
    pub version: u32,
    pub title_en: String,
    pub title_zh: String,
    pub fault_ids: Vec<String>,
    pub product_lines: Vec<String>,
    pub remote_ok: bool,
    pub skill_level: super::procedures::SkillLevel,
    pub expected_minutes: u32,
    /// Higher is better; comparable within one result list only.
    pub score: f64,
}

/// A search hit for a stored procedure (score 0).
pub fn search_hit(s: &StoredProcedure) -> Hit {
    hit(s, 0.0)
}

fn hit(s: &StoredProcedure, score: f64) -> Hit {
    let p = &s.procedure;
    Hit {
        id: p.id.clone(),
        version: p.version,
        title_en: p.title_en.clone(),
        title_zh: p.title_zh.clone(),
        fault_ids: p.fault_ids.clone(),
        product_lines: p.product_lines.clone(),
        remote_ok: p.remote_ok,
        skill_level: p.skill_level,
        expected_minutes: s.expected_minutes,
        score,
    }
}

/// Ranked full-text search, optionally narrowed to a product line and a fault.
pub async fn search(db: &Db, q: &str, product_line: Option<&str>, fault_id: Option<&str>, limit: u32) -> Result<Vec<Hit>, StoreError> {
    let mut terms = search_terms(q);
    terms.sort();
    terms.dedup();
    terms.truncate(64);
    let narrowed = "($2 = '' OR EXISTS (SELECT 1 FROM procedure_faults f WHERE f.procedure_id = h.id AND f.product_line = $2)) \
                    AND ($3 = '' OR EXISTS (SELECT 1 FROM procedure_faults f WHERE f.procedure_id = h.id AND f.fault_id = $3))";
    let rows: Vec<(String, f64)> = if terms.is_empty() {
        sqlx::query_as(&format!("SELECT h.id, CAST(0 AS DOUBLE PRECISION) FROM procedure_heads h WHERE $1 = '' AND {narrowed} ORDER BY h.id LIMIT $4"))
            .bind("")
            .bind(product_line.unwrap_or(""))
            .bind(fault_id.unwrap_or(""))
            .bind(limit as i64)
            .fetch_all(&db.pool)
            .await?
    } else {
        match db.backend {
            Backend::Sqlite => {
                // Each term quoted: FTS5 query syntax never comes from the user.
                let m = terms.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(" OR ");
                sqlx::query_as(&format!(
                    "SELECT h.id, -bm25(procedure_fts) AS score FROM procedure_fts JOIN procedure_heads h ON h.id = procedure_fts.id \
                     WHERE procedure_fts MATCH $1 AND {narrowed} ORDER BY score DESC, h.id LIMIT $4"
                ))
                .bind(m)
                .bind(product_line.unwrap_or(""))
                .bind(fault_id.unwrap_or(""))
                .bind(limit as i64)
                .fetch_all(&db.pool)
                .await?
            }
            Backend::Postgres => {
                // Terms are [a-z0-9] words or CJK characters: nothing tsquery treats as syntax.
                let m = terms.join(" | ");
                sqlx::query_as(&format!(
                    "SELECT h.id, CAST(ts_rank(to_tsvector('simple', h.terms), to_tsquery('simple', $1)) AS DOUBLE PRECISION) AS score \
                     FROM procedure_heads h WHERE to_tsvector('simple', h.terms) @@ to_tsquery('simple', $1) AND {narrowed} \
                     ORDER BY score DESC, h.id LIMIT $4"
                ))
                .bind(m)
                .bind(product_line.unwrap_or(""))
                .bind(fault_id.unwrap_or(""))
                .bind(limit as i64)
                .fetch_all(&db.pool)
                .await?
            }
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for (id, score) in rows {
        if let Some(s) = get(db, &id, None).await? {
            out.push(hit(&s, score));
        }
    }
    Ok(out)
}

/// Procedures for a fault on a product line (current versions), remote-capable first.
pub async fn for_fault(db: &Db, fault_id: &str, product_line: Option<&str>) -> Result<Vec<StoredProcedure>, StoreError> {
    let ids: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT procedure_id FROM procedure_faults WHERE fault_id = $1 AND ($2 = '' OR product_line = $2) ORDER BY procedure_id",
    )
    .bind(fault_id)
    .bind(product_line.unwrap_or(""))
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for (id,) in ids {
        if let Some(s) = get(db, &id, None).await? {
            out.push(s);
        }
    }
    out.sort_by_key(|s| (!s.procedure.remote_ok, s.expected_minutes));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::search_terms;

    #[test]
    fn latin_words_are_lower_cased_and_chinese_becomes_bigrams() {
        assert_eq!(search_terms("Drill E01 sparks!"), ["drill", "e01", "sparks"]);
        assert_eq!(search_terms("碳刷磨损"), ["碳刷", "刷磨", "磨损"]);
        assert_eq!(search_terms("电钻 过热 stops"), ["电钻", "过热", "stops"]);
        assert_eq!(search_terms("主轴SP-101"), ["主轴", "sp", "101"]);
        assert_eq!(search_terms("热"), ["热"]);
        assert!(search_terms("  \"' OR 1=1; --").iter().all(|t| t.chars().all(|c| c.is_ascii_alphanumeric())));
    }
}
