//! Evidence attachments: photos, telemetry files and snapshots of a work order.
//!
//! Files are stored content-addressed under `<data_dir>/evidence/<sha[0..2]>/<sha>`: a
//! body (size-checked while it was read) is hashed, written to a temporary file, fsynced
//! and renamed into place, so a crash never leaves a half-written blob under a real name.
//! The evidence row and its `evidence_attached` event are written in one transaction
//! after the file is durable. Type checks look at the bytes, not only the declared type.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::io::AsyncWriteExt;

use crate::auth::repo::parse;
use crate::ids::{EvidenceId, WorkOrderId};
use crate::store::{Db, StoreError};
use crate::string_enum;
use crate::UnixMillis;

string_enum!(/// What an attachment is.
    EvidenceKind { Photo => "photo", Telemetry => "telemetry", Snapshot => "snapshot" });

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Evidence {
    pub id: EvidenceId,
    pub work_order_id: WorkOrderId,
    pub kind: EvidenceKind,
    pub content_type: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub filename: Option<String>,
    pub uploaded_by: String,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub created_at: UnixMillis,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EvidenceError {
    #[error("content type `{content_type}` is not accepted for {kind}; use one of: {allowed}")]
    TypeNotAllowed { kind: EvidenceKind, content_type: String, allowed: String },
    #[error("the body does not look like {0}")]
    ContentMismatch(String),
    #[error("the body is empty")]
    Empty,
    #[error("the body is larger than the limit of {0} bytes")]
    TooLarge(usize),
}

/// Declared content types accepted per kind.
pub fn allowed_types(kind: EvidenceKind) -> &'static [&'static str] {
    match kind {
        EvidenceKind::Photo | EvidenceKind::Snapshot => &["image/jpeg", "image/png"],
        EvidenceKind::Telemetry => &["text/csv", "application/json", "application/octet-stream"],
    }
}

/// Checks the declared type against the kind, before any byte is read.
pub fn check_declared_type(kind: EvidenceKind, content_type: &str) -> Result<String, EvidenceError> {
    let ct = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if !allowed_types(kind).contains(&ct.as_str()) {
        return Err(EvidenceError::TypeNotAllowed { kind, content_type: ct, allowed: allowed_types(kind).join(", ") });
    }
    Ok(ct)
}

/// Checks the declared type against the kind and the first bytes of the body.
pub fn check_type(kind: EvidenceKind, content_type: &str, head: &[u8]) -> Result<(), EvidenceError> {
    let ct = check_declared_type(kind, content_type)?;
    let ok = match ct.as_str() {
        "image/jpeg" => head.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => head.starts_with(b"\x89PNG\r\n\x1a\n"),
        "application/json" => head.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b == b'{' || *b == b'['),
        // A UTF-8 sequence cut at the end of the sniffed head is fine.
        "text/csv" => std::str::from_utf8(head).map(|_| true).unwrap_or_else(|e| e.error_len().is_none()),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(EvidenceError::ContentMismatch(ct))
    }
}

/// Where blobs live.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

/// A blob written and fsynced under its content address.
#[derive(Debug)]
pub struct StoredBlob {
    pub sha256: String,
    pub size: u64,
}

impl BlobStore {
    pub fn new(data_dir: &Path) -> std::io::Result<Self> {
        let root = data_dir.join("evidence");
        std::fs::create_dir_all(root.join("tmp"))?;
        Ok(BlobStore { root })
    }

    pub fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        // Only a well-formed hash names a file: no path tricks from stored data.
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(self.root.join(&sha256[..2]).join(sha256))
    }

    /// Writes a body already in memory (hash, temp file, fsync, rename).
    pub async fn write_bytes(&self, bytes: &[u8]) -> std::io::Result<StoredBlob> {
        let tmp = self.root.join("tmp").join(uuid::Uuid::now_v7().to_string());
        let sha256 = hex::encode(Sha256::digest(bytes));
        let mut file = tokio::fs::File::create(&tmp).await?;
        let res = async {
            file.write_all(bytes).await?;
            file.sync_all().await
        }
        .await;
        if let Err(e) = res {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        let dest = self.path_of(&sha256).expect("a computed sha256 is well-formed");
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(&tmp, &dest).await?;
        Ok(StoredBlob { sha256, size: bytes.len() as u64 })
    }
}

/// Records an evidence row and its event in one transaction.
pub async fn record(
    db: &Db,
    work_order: WorkOrderId,
    kind: EvidenceKind,
    content_type: &str,
    blob: &StoredBlob,
    filename: Option<String>,
    actor: &crate::work_orders::events::Actor,
    sla: &crate::work_orders::sla::SlaPolicy,
    verdict: Option<crate::diagnosis::ModelVerdict>,
) -> Result<Evidence, crate::work_orders::repo::AppendError> {
    use crate::work_orders::events::{Command, EvidenceRef};
    let ev = Evidence {
        id: EvidenceId::new(),
        work_order_id: work_order,
        kind,
        content_type: content_type.to_owned(),
        sha256: blob.sha256.clone(),
        size_bytes: blob.size as i64,
        filename,
        uploaded_by: actor.who.to_string(),
        created_at: crate::now_millis(),
    };
    let mut tx = db.pool.begin().await?;
    let cmd = Command::AttachEvidence(EvidenceRef {
        evidence_id: ev.id,
        evidence_kind: kind.as_str().to_owned(),
        content_type: ev.content_type.clone(),
        sha256: ev.sha256.clone(),
        size_bytes: ev.size_bytes,
        filename: ev.filename.clone(),
    });
    // The append comes first: it takes the work order's lock and refuses closed ones.
    crate::work_orders::repo::append_in(&mut tx, work_order, cmd, actor, sla, ev.created_at).await?;
    sqlx::query(
        "INSERT INTO evidence (id, work_order_id, kind, content_type, sha256, size_bytes, filename, uploaded_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(ev.id.to_string())
    .bind(work_order.to_string())
    .bind(kind.as_str())
    .bind(&ev.content_type)
    .bind(&ev.sha256)
    .bind(ev.size_bytes)
    .bind(ev.filename.clone())
    .bind(&ev.uploaded_by)
    .bind(ev.created_at)
    .execute(&mut *tx)
    .await?;
    if let Some(verdict) = verdict {
        let cmd = Command::RecordDiagnosis { evidence_id: Some(ev.id), source: kind.as_str().to_owned(), verdict };
        crate::work_orders::repo::append_in(&mut tx, work_order, cmd, actor, sla, ev.created_at).await?;
    }
    tx.commit().await?;
    Ok(ev)
}

fn evidence_from_row(r: &sqlx::any::AnyRow) -> Result<Evidence, StoreError> {
    Ok(Evidence {
        id: parse(r, "id")?,
        work_order_id: parse(r, "work_order_id")?,
        kind: parse(r, "kind")?,
        content_type: r.try_get("content_type")?,
        sha256: r.try_get("sha256")?,
        size_bytes: r.try_get("size_bytes")?,
        filename: r.try_get("filename")?,
        uploaded_by: r.try_get("uploaded_by")?,
        created_at: r.try_get("created_at")?,
    })
}

pub async fn list(db: &Db, work_order: WorkOrderId) -> Result<Vec<Evidence>, StoreError> {
    let rows = sqlx::query("SELECT * FROM evidence WHERE work_order_id = $1 ORDER BY created_at, id")
        .bind(work_order.to_string())
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(evidence_from_row).collect()
}

pub async fn get(db: &Db, id: EvidenceId) -> Result<Option<Evidence>, StoreError> {
    let r = sqlx::query("SELECT * FROM evidence WHERE id = $1").bind(id.to_string()).fetch_optional(&db.pool).await?;
    r.as_ref().map(evidence_from_row).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_type_must_match_kind_and_bytes() {
        assert!(check_type(EvidenceKind::Photo, "image/png", b"\x89PNG\r\n\x1a\n....").is_ok());
        assert!(check_type(EvidenceKind::Photo, "image/jpeg; q=1", &[0xFF, 0xD8, 0xFF, 0xE0]).is_ok());
        assert!(matches!(check_type(EvidenceKind::Photo, "image/png", b"GIF89a"), Err(EvidenceError::ContentMismatch(_))));
        assert!(matches!(check_type(EvidenceKind::Photo, "text/csv", b"a,b"), Err(EvidenceError::TypeNotAllowed { .. })));
        assert!(check_type(EvidenceKind::Telemetry, "application/json", b"  {\"a\":1}").is_ok());
        assert!(check_type(EvidenceKind::Telemetry, "application/json", b"<html>").is_err());
    }
}
