//! Signed tokens: `v1.<base64url(JSON claims)>.<base64url(HMAC-SHA256)>`.
//!
//! Access tokens are short-lived and bound to a login session (`sid`) that is also
//! checked per request, so logout revokes them at once. Invite tokens are bound to one
//! invite row (single use is enforced in the database) and one work order. Refresh tokens
//! are opaque random strings; only their SHA-256 is stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Role;
use crate::ids::{AuthSessionId, CustomerId, InviteId, UserId, WorkOrderId};

type HmacSha256 = Hmac<Sha256>;

/// Longest token accepted; anything longer is rejected before any parsing.
pub const MAX_TOKEN_LEN: usize = 4096;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "typ", rename_all = "snake_case", deny_unknown_fields)]
pub enum Claims {
    Access {
        sid: AuthSessionId,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        uid: Option<UserId>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        iid: Option<InviteId>,
        role: Role,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        cid: Option<CustomerId>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        wo: Option<WorkOrderId>,
        /// Expiry, Unix seconds.
        exp: i64,
    },
    Invite {
        iid: InviteId,
        wo: WorkOrderId,
        exp: i64,
    },
    /// A satisfaction-survey link: answers one survey of one work order, nothing else.
    Survey {
        sid: String,
        wo: WorkOrderId,
        exp: i64,
    },
}

impl Claims {
    fn exp(&self) -> i64 {
        match self {
            Claims::Access { exp, .. } | Claims::Invite { exp, .. } | Claims::Survey { exp, .. } => *exp,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
}

/// The HMAC key. Never logged (Debug is redacted).
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

impl TokenKey {
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        TokenKey(k)
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(TokenKey)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Loads the key from `path`, creating it (mode 0600) on first start.
    pub fn load_or_create(path: &std::path::Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => TokenKey::from_bytes(&bytes).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is not a 32-byte key", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = TokenKey::random();
                let tmp = path.with_extension("tmp");
                {
                    use std::io::Write;
                    let mut opts = std::fs::OpenOptions::new();
                    opts.write(true).create(true).truncate(true);
                    #[cfg(unix)]
                    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                    let mut f = opts.open(&tmp)?;
                    f.write_all(&key.0)?;
                    f.sync_all()?;
                }
                std::fs::rename(&tmp, path)?;
                Ok(key)
            }
            Err(e) => Err(e),
        }
    }

    fn mac(&self, data: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(data);
        mac
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let json = serde_json::to_vec(claims).expect("claims serialize");
        let body = format!("v1.{}", B64.encode(json));
        let sig = self.mac(body.as_bytes()).finalize().into_bytes();
        format!("{body}.{}", B64.encode(sig))
    }

    /// Verifies signature, then expiry against `now_secs`.
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (body, sig) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let payload = body.strip_prefix("v1.").ok_or(TokenError::Malformed)?;
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        self.mac(body.as_bytes()).verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
        let json = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.exp() <= now_secs {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// A new opaque refresh token (256 random bits).
pub fn new_refresh_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("rt_{}", B64.encode(b))
}

/// What is stored for a refresh token.
pub fn refresh_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(exp: i64) -> Claims {
        Claims::Access { sid: AuthSessionId::new(), uid: Some(UserId::new()), iid: None, role: Role::Expert, cid: None, wo: None, exp }
    }

    #[test]
    fn signed_token_round_trips() {
        let k = TokenKey::random();
        let c = access(2_000);
        assert_eq!(k.verify(&k.sign(&c), 1_000).unwrap(), c);
    }

    #[test]
    fn tampered_expired_or_foreign_tokens_are_rejected() {
        let k = TokenKey::random();
        let t = k.sign(&access(2_000));
        assert_eq!(k.verify(&t, 2_000), Err(TokenError::Expired));
        assert_eq!(TokenKey::random().verify(&t, 1_000), Err(TokenError::BadSignature));
        // A signature from another message does not verify this body.
        let other = k.sign(&access(3_000));
        let (_, forged_sig) = other.rsplit_once('.').unwrap();
        let (body, _) = t.rsplit_once('.').unwrap();
        assert_eq!(k.verify(&format!("{body}.{forged_sig}"), 1_000), Err(TokenError::BadSignature));
        assert_eq!(k.verify("garbage", 0), Err(TokenError::Malformed));
        assert_eq!(k.verify(&"a".repeat(MAX_TOKEN_LEN + 1), 0), Err(TokenError::Malformed));
    }
}
