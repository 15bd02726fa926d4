//! Charger passwords of OCPP security profile 1 (OCPP 1.6 Security whitepaper §2 "Basic
//! authentication", OCPP 2.0.1 Part 2 A00 and the BasicAuthPassword variable): the rules a
//! password must meet (16–40 printable ASCII characters) and how one is kept at rest, as an
//! argon2id PHC string (RFC 9106) with the OWASP password-storage parameters (19 MiB, 2
//! passes, 1 lane) and a random salt from the operating system. A leaf: the configuration
//! check, the daemon and the command line all use it.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};

/// Shortest and longest password the OCPP security whitepaper allows.
pub const LENGTH: std::ops::RangeInclusive<usize> = 16..=40;
/// Length of a password made by [`generate`]: 24 of 62 symbols is about 143 bits.
pub const GENERATED_LENGTH: usize = 24;
/// OWASP Password Storage Cheat Sheet, argon2id: m = 19 MiB, t = 2, p = 1.
pub const M_COST_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;
/// The weakest OWASP argon2id line is m = 7 MiB with t = 5; every line spends at least this
/// much memory × passes.
const MIN_M_TIMES_T: u64 = 7 * 1024 * 5;
/// Above this one verification holds too much memory for a small gateway.
const MAX_M_COST_KIB: u32 = 256 * 1024;
/// Above this one verification takes seconds, and each handshake waits for it.
const MAX_T_COST: u32 = 10;
const MAX_P_COST: u32 = 8;
/// Symbols of generated passwords: letters and digits, so nothing needs quoting anywhere.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password has 16 to 40 printable ASCII characters (no spaces), this one has {length} characters{}", if *.printable { "" } else { " and others" })]
    Rules { length: usize, printable: bool },
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// Checks the OCPP rules: 16–40 characters, each printable ASCII (no space, no control).
pub fn check(password: &str) -> Result<(), PasswordError> {
    let printable = password.bytes().all(|b| b.is_ascii_graphic());
    let length = password.chars().count();
    if printable && LENGTH.contains(&length) {
        Ok(())
    } else {
        Err(PasswordError::Rules { length, printable })
    }
}

fn hasher() -> Argon2<'static> {
    // The constants are valid argon2 parameters; a unit test builds them.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of `password`.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `phc`, with the parameters the string names.
/// Takes tens of milliseconds by design. A string that does not parse matches nothing.
pub fn verify(phc: &str, password: &[u8]) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|parsed| Argon2::default().verify_password(password, &parsed).is_ok())
}

/// Checks that `phc` is an argon2id PHC string with parameters neither weaker than the
/// OWASP lines nor heavier than a gateway can afford per handshake; the message says why not.
pub fn check_phc(phc: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(phc)
        .map_err(|e| format!("not a PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash): {e}"))?;
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return Err(format!(
            "algorithm {} is not argon2id (hash with: ocpp809 charger hash-password)",
            parsed.algorithm
        ));
    }
    if parsed
        .version
        .is_some_and(|v| v != u32::from(Version::V0x13))
    {
        return Err("argon2 version must be 19 (0x13)".into());
    }
    let params = Params::try_from(&parsed).map_err(|e| format!("argon2 parameters: {e}"))?;
    if parsed.salt.is_none() || parsed.hash.is_none_or(|h| h.len() < 16) {
        return Err("a salt and a hash of at least 16 bytes are required".into());
    }
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    if u64::from(m) * u64::from(t) < MIN_M_TIMES_T {
        return Err(format!(
            "m={m},t={t} is weaker than the OWASP minimum (m × t ≥ {MIN_M_TIMES_T} KiB, e.g. m=19456,t=2)"
        ));
    }
    if m > MAX_M_COST_KIB || t > MAX_T_COST || p > MAX_P_COST {
        return Err(format!(
            "m={m},t={t},p={p} is too costly to verify at every handshake (at most m={MAX_M_COST_KIB}, t={MAX_T_COST}, p={MAX_P_COST})"
        ));
    }
    Ok(())
}

/// A random password of [`GENERATED_LENGTH`] letters and digits from the OS generator.
pub fn generate() -> Result<String, PasswordError> {
    let random = SystemRandom::new();
    let mut out = String::with_capacity(GENERATED_LENGTH);
    // Rejection sampling: bytes past the largest multiple of the alphabet would bias it.
    let limit = 256 - 256 % ALPHABET.len();
    while out.len() < GENERATED_LENGTH {
        let mut bytes = [0u8; 32];
        random.fill(&mut bytes).map_err(|_| PasswordError::Random)?;
        out.extend(
            bytes
                .iter()
                .map(|&b| usize::from(b))
                .filter(|&b| b < limit)
                .map(|b| char::from(ALPHABET[b % ALPHABET.len()]))
                .take(GENERATED_LENGTH - out.len()),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owasp_parameters_are_valid_argon2_parameters() {
        let params = Params::new(M_COST_KIB, T_COST, P_COST, None);
        assert_eq!(params.map(|p| p.m_cost()).ok(), Some(19_456));
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse battery").unwrap_or_default();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(check_phc(&phc), Ok(()));
        assert!(verify(&phc, b"correct horse battery"));
        assert!(!verify(&phc, b"correct horse batterY"));
        assert!(!verify("not a hash", b"correct horse battery"));
        // A fresh salt each time.
        assert_ne!(hash("correct horse battery").unwrap_or_default(), phc);
    }

    #[test]
    fn the_password_rules_are_those_of_ocpp() {
        assert!(check("0123456789abcdef").is_ok());
        assert!(check(&"x".repeat(40)).is_ok());
        assert!(check("0123456789abcde").is_err());
        assert!(check(&"x".repeat(41)).is_err());
        assert!(check("0123456789 abcdef").is_err());
        assert!(check("0123456789abcdeé").is_err());
        assert!(check("0123456789abcdef\t").is_err());
    }

    #[test]
    fn generated_passwords_follow_the_rules_and_differ() {
        let a = generate().unwrap_or_default();
        let b = generate().unwrap_or_default();
        assert_eq!(a.len(), GENERATED_LENGTH);
        assert!(check(&a).is_ok());
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn weak_heavy_or_foreign_hashes_are_refused() {
        let salt = "c29tZXNhbHRzb21lc2FsdA";
        let out = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let with = |alg: &str, params: &str| format!("${alg}$v=19${params}${salt}${out}");
        assert_eq!(check_phc(&with("argon2id", "m=19456,t=2,p=1")), Ok(()));
        assert_eq!(check_phc(&with("argon2id", "m=47104,t=1,p=1")), Ok(()));
        assert!(check_phc(&with("argon2id", "m=4096,t=3,p=1")).is_err());
        assert!(check_phc(&with("argon2id", "m=1048576,t=2,p=1")).is_err());
        assert!(check_phc(&with("argon2id", "m=19456,t=20,p=1")).is_err());
        assert!(check_phc(&with("argon2i", "m=19456,t=2,p=1")).is_err());
        assert!(check_phc("$2b$12$abcdefghijklmnopqrstuv").is_err());
        assert!(check_phc("plaintext-password").is_err());
    }
}
