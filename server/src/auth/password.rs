//! Argon2id password hashing (RFC 9106 via the `argon2` crate, default parameters:
//! 19 MiB, 2 passes). Hashing is deliberately slow: callers run it on the blocking pool.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest and longest accepted passwords (bytes). The upper bound keeps hashing cost
/// bounded for a client that sends a huge password.
pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 256;

pub fn check_policy(password: &str) -> Result<(), String> {
    if password.len() < MIN_LEN {
        return Err(format!("password must be at least {MIN_LEN} characters"));
    }
    if password.len() > MAX_LEN {
        return Err(format!("password must be at most {MAX_LEN} bytes"));
    }
    Ok(())
}

pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Constant-time verification against a PHC string; a malformed stored hash verifies false.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_LEN {
        return false;
    }
    PasswordHash::new(phc)
        .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A hash of a random password, verified against when the user name does not exist so
/// that a failed login takes the same time either way (no user enumeration by timing).
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash(&generate(24)).unwrap_or_default())
}

/// A random password of `len` characters from an unambiguous alphabet.
pub fn generate(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_password() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong horse battery", &h));
        assert!(!verify("x", "not a phc string"));
    }
}
