//! The fault taxonomy and the product lines with their fault codes, kept as reviewed
//! data in `models/knowledge/` (faults.json, product_lines.json) and synchronised into
//! the database at start-up: product lines by code, fault codes by (line, code). A
//! fault code must name a fault of the taxonomy; the models' labels are checked against
//! it too. Codes added through the API stay; codes in the files win on conflict.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use super::{FaultCode, Severity};
use crate::store::{Db, StoreError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub id: String,
    pub category: String,
    pub name_en: String,
    pub name_zh: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    faults: Vec<Fault>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineDef {
    pub code: String,
    pub category: String,
    pub name_en: String,
    pub name_zh: String,
    pub fault_codes: Vec<CodeDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeDef {
    pub code: String,
    pub fault_id: String,
    pub severity: Severity,
    pub description_en: String,
    pub description_zh: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Lines {
    product_lines: Vec<LineDef>,
}

#[derive(Debug)]
pub struct Knowledge {
    pub faults: Vec<Fault>,
    pub product_lines: Vec<LineDef>,
}

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, KnowledgeError> {
    let err = |m: String| KnowledgeError::File { path: path.display().to_string(), message: m };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| err(format!("{}: {}", e.path(), e.inner())))
}

impl Knowledge {
    /// Reads and cross-checks the files in `dir`.
    pub fn load(dir: &Path) -> Result<Knowledge, KnowledgeError> {
        let faults: Faults = read(&dir.join("faults.json"))?;
        let lines: Lines = read(&dir.join("product_lines.json"))?;
        let ids: BTreeSet<&str> = faults.faults.iter().map(|f| f.id.as_str()).collect();
        if ids.len() != faults.faults.len() {
            return Err(KnowledgeError::File { path: dir.join("faults.json").display().to_string(), message: "a fault id appears twice".into() });
        }
        let path = dir.join("product_lines.json").display().to_string();
        let mut codes = BTreeSet::new();
        for l in &lines.product_lines {
            if !codes.insert(l.code.as_str()) {
                return Err(KnowledgeError::File { path, message: format!("product line {} appears twice", l.code) });
            }
            for c in &l.fault_codes {
                if !ids.contains(c.fault_id.as_str()) {
                    return Err(KnowledgeError::File { path, message: format!("{} {}: fault `{}` is not in faults.json", l.code, c.code, c.fault_id) });
                }
            }
        }
        Ok(Knowledge { faults: faults.faults, product_lines: lines.product_lines })
    }

    pub fn has_fault(&self, id: &str) -> bool {
        self.faults.iter().any(|f| f.id == id)
    }

    /// Upserts the product lines and their fault codes.
    pub async fn sync(&self, db: &Db) -> Result<(), StoreError> {
        for l in &self.product_lines {
            let id: String = sqlx::query_scalar(
                "INSERT INTO product_lines (id, code, name_en, name_zh, category, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (code) DO UPDATE SET name_en = excluded.name_en, name_zh = excluded.name_zh, category = excluded.category \
                 RETURNING id",
            )
            .bind(crate::ids::ProductLineId::new().to_string())
            .bind(&l.code)
            .bind(&l.name_en)
            .bind(&l.name_zh)
            .bind(&l.category)
            .bind(crate::now_millis())
            .fetch_one(&db.pool)
            .await?;
            let pl = id.parse().map_err(|e| StoreError::Corrupt(format!("product line id: {e}")))?;
            for c in &l.fault_codes {
                let fc = FaultCode {
                    code: c.code.clone(),
                    fault_id: c.fault_id.clone(),
                    description_en: c.description_en.clone(),
                    description_zh: c.description_zh.clone(),
                    severity: c.severity,
                };
                super::repo::upsert_fault_code(db, pl, &fc).await?;
            }
        }
        Ok(())
    }
}
