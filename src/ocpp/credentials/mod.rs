//! Charger credentials of OCPP security profile 1 (OCPP 1.6 Security whitepaper §2, OCPP
//! 2.0.1 Part 2 A00 "Basic authentication"): which password a charger must present in
//! `Authorization: Basic base64(id:password)`, and whether the one presented is right.
//!
//! Sources, first match wins: the password file `{state_dir}/charger-passwords.toml`
//! written by `ocpp809 charger set-password` ([`file`]), then `password_hash` (argon2id PHC)
//! and then `password` (plaintext) of the charger's `[[charger]]` table. The file is
//! stat'ed at most once a second, at handshakes, and reread when it changed, so a new
//! password applies without a restart; a file that no longer parses is logged and the
//! previous good set stays in force.
//!
//! An argon2 verification takes tens of milliseconds, so it runs off the async workers
//! ([`run_blocking`](crate::net::run_blocking)), a bounded number at a time ([`gate`]), and a success is remembered
//! ([`cache`]) so a reconnect costs microseconds. Callers apply the failure throttle
//! before [`Credentials::verify`], so a throttled attempt costs no argon2 run.

pub mod cache;
pub mod file;
mod gate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use crate::config::{Config, Secret};
use crate::net::run_blocking;
use cache::VerifiedCache;
use gate::Gate;

/// How often the password file is stat'ed at most.
pub const RECHECK: Duration = Duration::from_secs(1);
/// How long a handshake waits for a verification slot before it is told to come back.
const GATE_PATIENCE: Duration = Duration::from_secs(5);

/// What a charger must present.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// An argon2id PHC string (password file or `password_hash`).
    Hash(String),
    /// A plaintext `password` from the configuration.
    Plain(Secret),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Hash(_) => "Hash(..)",
            Credential::Plain(_) => "Plain(***)",
        })
    }
}

/// The outcome of [`Credentials::verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    Accepted,
    Refused,
    /// No verification slot came free in time; the attempt was not judged.
    Busy,
}

/// What a file stat says about the password file; a replaced file has a new inode even
/// when its size and (coarse) modification time are unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl Stamp {
    fn of(path: &Path) -> std::io::Result<Option<Stamp>> {
        use std::os::unix::fs::MetadataExt as _;
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some(Stamp {
                dev: m.dev(),
                ino: m.ino(),
                size: m.size(),
                mtime: (m.mtime(), m.mtime_nsec()),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The password file as last read.
struct Watched {
    path: PathBuf,
    checked: Option<Instant>,
    /// The file last looked at, whether it parsed or not (`None`: there was none), so a bad
    /// file is reported once, not every second.
    seen: Option<Stamp>,
    entries: file::Entries,
}

pub struct Credentials {
    configured: HashMap<String, Credential>,
    watched: Option<Mutex<Watched>>,
    cache: VerifiedCache,
    gate: Gate,
    /// argon2 verifications run, for tests and diagnostics.
    argon2_runs: AtomicU64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("configured", &self.configured.len())
            .field(
                "file",
                &self.watched.as_ref().map(|w| self.lock(w).path.clone()),
            )
            .field("cache", &self.cache)
            .finish()
    }
}

impl Default for Credentials {
    /// No charger needs a password.
    fn default() -> Self {
        Credentials {
            configured: HashMap::new(),
            watched: None,
            cache: VerifiedCache::new(),
            gate: Gate::per_core(),
            argon2_runs: AtomicU64::new(0),
        }
    }
}

/// `{state_dir}/charger-passwords.toml`.
pub fn file_path(state_dir: &Path) -> PathBuf {
    state_dir.join(file::FILE_NAME)
}

impl Credentials {
    /// The credentials of the configuration alone (`password_hash` before `password`).
    pub fn from_config(config: &Config) -> Self {
        let configured = config
            .charger
            .iter()
            .filter_map(|c| {
                let credential = match (&c.password_hash, &c.password) {
                    (Some(phc), _) => Credential::Hash(phc.clone()),
                    (None, Some(password)) => Credential::Plain(Secret(password.clone())),
                    (None, None) => return None,
                };
                Some((c.id.clone(), credential))
            })
            .collect();
        Credentials {
            configured,
            ..Credentials::default()
        }
    }

    /// The configuration's credentials under those of the password file at `path`, read
    /// now: a file that exists but cannot be used stops the start, naming file and line.
    pub fn with_file(config: &Config, path: PathBuf) -> Result<Self, file::FileError> {
        let seen = Stamp::of(&path).map_err(|source| file::FileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let entries = file::read(&path)?;
        if !entries.is_empty() {
            info!(file = %path.display(), chargers = entries.len(), "charger passwords loaded");
        }
        Ok(Credentials {
            watched: Some(Mutex::new(Watched {
                path,
                checked: Some(Instant::now()),
                seen,
                entries,
            })),
            ..Self::from_config(config)
        })
    }

    fn lock<'a>(&self, watched: &'a Mutex<Watched>) -> MutexGuard<'a, Watched> {
        watched
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What `charger` must present at `now`; `None`: no password (security profile 0).
    pub fn for_charger(&self, charger: &str, now: Instant) -> Option<Credential> {
        if let Some(watched) = &self.watched {
            let mut watched = self.lock(watched);
            self.refresh(&mut watched, now);
            if let Some(phc) = watched.entries.get(charger) {
                return Some(Credential::Hash(phc.clone()));
            }
        }
        self.configured.get(charger).cloned()
    }

    fn refresh(&self, watched: &mut Watched, now: Instant) {
        if watched
            .checked
            .is_some_and(|t| now.saturating_duration_since(t) < RECHECK)
        {
            return;
        }
        watched.checked = Some(now);
        let stamp = match Stamp::of(&watched.path) {
            Ok(stamp) => stamp,
            Err(error) => {
                warn!(file = %watched.path.display(), %error, "cannot check the charger password file; the passwords read before stay in force");
                return;
            }
        };
        if stamp == watched.seen {
            return;
        }
        watched.seen = stamp;
        match file::read(&watched.path) {
            Ok(entries) => {
                info!(file = %watched.path.display(), chargers = entries.len(), "charger passwords reloaded");
                watched.entries = entries;
                let entries = &watched.entries;
                self.cache.retain_current(|charger| {
                    entries.get(charger).map(String::as_str).or_else(|| {
                        match self.configured.get(charger) {
                            Some(Credential::Hash(phc)) => Some(phc.as_str()),
                            _ => None,
                        }
                    })
                });
            }
            Err(error) => error!(
                %error, kept = watched.entries.len(),
                "charger password file not reloaded; the passwords read before stay in force"
            ),
        }
    }

    /// Whether `password` is right for `charger`. Hash checks not in the cache run argon2,
    /// off the async workers; the caller applies the failure throttle first.
    pub fn verify(&self, charger: &str, credential: &Credential, password: &[u8]) -> Verification {
        let phc = match credential {
            Credential::Plain(expected) => {
                return if constant_time_eq(password, expected.expose().as_bytes()) {
                    Verification::Accepted
                } else {
                    Verification::Refused
                };
            }
            Credential::Hash(phc) => phc,
        };
        if self.cache.contains(charger, phc, password) {
            return Verification::Accepted;
        }
        run_blocking(|| {
            let Some(_slot) = self.gate.enter(GATE_PATIENCE) else {
                return Verification::Busy;
            };
            self.argon2_runs.fetch_add(1, Ordering::Relaxed);
            if crate::password::verify(phc, password) {
                self.cache.insert(charger, phc, password);
                Verification::Accepted
            } else {
                Verification::Refused
            }
        })
    }

    /// argon2 verifications run so far (cache hits and plaintext checks run none).
    pub fn argon2_runs(&self) -> u64 {
        self.argon2_runs.load(Ordering::Relaxed)
    }

    /// Chargers with a verified password in the cache.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }
}

/// The password of `Authorization: Basic base64(id:password)` (RFC 7617) when the user
/// name is `charger`; `None` for anything else.
pub fn basic_auth_password(authorization: Option<&str>, charger: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let value = authorization?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    // The id is no secret: an early exit on it reveals nothing.
    let rest = decoded.strip_prefix(charger.as_bytes())?;
    rest.strip_prefix(b":").map(<[u8]>::to_vec)
}

/// Compared without early exit so timing reveals nothing of the expected password.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A charge point id as the server takes it from the URL: 1–48 bytes, no control
/// characters, no `/`, `+` or `#` (an MQTT topic level).
pub fn check_charger_id(id: &str) -> Result<(), &'static str> {
    let fits = !id.is_empty() && id.len() <= 48;
    let clean = id
        .chars()
        .all(|c| !c.is_control() && !matches!(c, '/' | '+' | '#'));
    if fits && clean {
        Ok(())
    } else {
        Err("a charge point id has 1 to 48 bytes, without control characters, '/', '+' or '#'")
    }
}

#[cfg(test)]
mod tests;
