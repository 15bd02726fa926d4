//! Passwords that passed argon2 verification, so a charger's reconnect costs an HMAC instead
//! of tens of milliseconds and 19 MiB (after an outage thousands of chargers reconnect at
//! once). Holds no password: per charger, HMAC-SHA256 under a key drawn at start of the
//! password that matched and of the hash it matched, compared in constant time. An entry
//! only counts while the charger's hash is the one it was verified against, so a changed
//! hash invalidates it. Bounded to [`MAX_ENTRIES`] chargers.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use ring::hmac;
use ring::rand::SystemRandom;

/// More than the server's connection limit, so a full fleet stays cached.
pub const MAX_ENTRIES: usize = 16_384;

struct Entry {
    hash: hmac::Tag,
    password: hmac::Tag,
}

pub struct VerifiedCache {
    key: hmac::Key,
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedCache")
            .field("entries", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl Default for VerifiedCache {
    fn default() -> Self {
        Self::new()
    }
}

impl VerifiedCache {
    pub fn new() -> Self {
        // A key that fails to generate leaves a cache that still works, keyed by a constant;
        // ring's generator only fails without a kernel random source, where hashing failed too.
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, b"ocpp809"));
        VerifiedCache {
            key,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `password` is the one that last verified for `charger` against `phc`.
    pub fn contains(&self, charger: &str, phc: &str, password: &[u8]) -> bool {
        self.lock().get(charger).is_some_and(|entry| {
            let same_hash = hmac::verify(&self.key, phc.as_bytes(), entry.hash.as_ref()).is_ok();
            let same_password = hmac::verify(&self.key, password, entry.password.as_ref()).is_ok();
            same_hash & same_password
        })
    }

    /// Records that `password` verified for `charger` against `phc`.
    pub fn insert(&self, charger: &str, phc: &str, password: &[u8]) {
        let entry = Entry {
            hash: hmac::sign(&self.key, phc.as_bytes()),
            password: hmac::sign(&self.key, password),
        };
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(charger) {
            // Any entry: forgetting one costs its charger one argon2 run, nothing more.
            if let Some(victim) = entries.keys().next().cloned() {
                entries.remove(&victim);
            }
        }
        entries.insert(charger.to_string(), entry);
    }

    /// Drops the entries of chargers whose hash is no longer the one they were verified
    /// against; `current` gives a charger's hash now (`None`: it has none).
    pub fn retain_current<'a>(&self, current: impl Fn(&str) -> Option<&'a str>) {
        self.lock().retain(|charger, entry| {
            current(charger).is_some_and(|phc| {
                hmac::verify(&self.key, phc.as_bytes(), entry.hash.as_ref()).is_ok()
            })
        });
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_matches_its_password_and_hash_only() {
        let cache = VerifiedCache::new();
        cache.insert("CP001", "$hash-a", b"password-one-123");
        assert!(cache.contains("CP001", "$hash-a", b"password-one-123"));
        assert!(!cache.contains("CP001", "$hash-a", b"password-two-123"));
        assert!(!cache.contains("CP001", "$hash-b", b"password-one-123"));
        assert!(!cache.contains("CP002", "$hash-a", b"password-one-123"));
    }

    #[test]
    fn a_changed_or_removed_hash_drops_the_entry() {
        let cache = VerifiedCache::new();
        cache.insert("CP001", "$hash-a", b"p1");
        cache.insert("CP002", "$hash-b", b"p2");
        cache.insert("CP003", "$hash-c", b"p3");
        cache.retain_current(|charger| match charger {
            "CP001" => Some("$hash-a"),
            "CP002" => Some("$hash-new"),
            _ => None,
        });
        assert_eq!(cache.len(), 1);
        assert!(cache.contains("CP001", "$hash-a", b"p1"));
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = VerifiedCache::new();
        for i in 0..MAX_ENTRIES + 10 {
            cache.insert(&format!("CP{i}"), "$h", b"p");
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        let last = format!("CP{}", MAX_ENTRIES + 9);
        assert!(cache.contains(&last, "$h", b"p"));
    }
}
