//! TURN REST credentials (draft-uberti-behave-turn-rest, as coturn's `use-auth-secret`
//! implements it): the username is `<expiry unix time>:<id>` and the password is
//! base64(HMAC-SHA1(secret, username)). The TURN server checks both with the same
//! secret, so credentials are per participant, expire on their own, and the secret never
//! leaves the servers.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::Sha1;

/// One entry of the W3C `RTCIceServer` list handed to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub credential: Option<String>,
}

/// The password for a TURN REST username.
pub fn credential(secret: &str, username: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The ICE servers for one participant, with TURN credentials valid until `now + ttl`.
pub fn ice_servers(stun: &[String], turn: &[String], secret: &str, ttl_secs: u64, id: &str, now_secs: i64) -> Vec<IceServer> {
    let mut out = Vec::new();
    if !stun.is_empty() {
        out.push(IceServer { urls: stun.to_vec(), username: None, credential: None });
    }
    if !turn.is_empty() {
        let username = format!("{}:{id}", now_secs + ttl_secs as i64);
        let credential = credential(secret, &username);
        out.push(IceServer { urls: turn.to_vec(), username: Some(username), credential: Some(credential) });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_match_the_turn_rest_scheme() {
        // HMAC-SHA1("secret", "1700000000:alice") computed independently.
        let c = super::credential("secret", "1700000000:alice");
        assert_eq!(c, "d8soP47RbdIKLDUOpnJPVQyq5Ts=");
        assert_ne!(c, super::credential("other", "1700000000:alice"));
        let s = super::ice_servers(&["stun:s:3478".into()], &["turn:t:3478".into()], "0123456789abcdef", 600, "peer-7", 1_000);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].username.as_deref(), Some("1600:peer-7"));
    }
}
