//! A fixed-window limiter for login attempts, keyed by client address and by user name,
//! so neither one address nor a distributed guess at one account gets unlimited tries.
//! Memory is bounded: the table is cleared when its window rolls over.

use std::collections::HashMap;
use std::sync::Mutex;

pub struct LoginLimiter {
    per_minute: u32,
    inner: Mutex<Window>,
}

struct Window {
    started_secs: i64,
    counts: HashMap<String, u32>,
}

/// Upper bound on distinct keys in one window; past it every new key is refused,
/// which only happens under a flood of distinct names.
const MAX_KEYS: usize = 100_000;

impl LoginLimiter {
    pub fn new(per_minute: u32) -> Self {
        LoginLimiter { per_minute, inner: Mutex::new(Window { started_secs: 0, counts: HashMap::new() }) }
    }

    /// Counts one attempt for each key; false when any key is over the limit.
    pub fn allow(&self, keys: &[&str], now_secs: i64) -> bool {
        let mut w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if now_secs - w.started_secs >= 60 {
            w.started_secs = now_secs;
            w.counts.clear();
        }
        let mut ok = true;
        for k in keys {
            if !w.counts.contains_key(*k) && w.counts.len() >= MAX_KEYS {
                ok = false;
                continue;
            }
            let c = w.counts.entry((*k).to_owned()).or_insert(0);
            *c += 1;
            if *c > self.per_minute {
                ok = false;
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_and_resets_next_window() {
        let l = LoginLimiter::new(2);
        assert!(l.allow(&["ip:a", "user:x"], 100));
        assert!(l.allow(&["ip:a", "user:x"], 101));
        assert!(!l.allow(&["ip:b", "user:x"], 102));
        assert!(l.allow(&["ip:b", "user:y"], 102));
        assert!(l.allow(&["ip:a", "user:x"], 161));
    }
}
