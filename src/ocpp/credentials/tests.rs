use super::*;

const CONFIG_PASSWORD: &str = "config-plaintext-01";
const HASHED_PASSWORD: &str = "config-hashed-pass-02";
const FILE_PASSWORD: &str = "file-password-number-03";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ocpp809-cred-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn config(phc: &str) -> Config {
    let text = format!(
        r#"
[[charger]]
id = "PLAIN"
ioa_base = 1000
password = "{CONFIG_PASSWORD}"

[[charger]]
id = "BOTH"
ioa_base = 1100
password = "{CONFIG_PASSWORD}"
password_hash = "{phc}"

[[charger]]
id = "OPEN"
ioa_base = 1200
"#
    );
    match Config::from_toml_str(&text, "test.toml") {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    }
}

fn hash(password: &str) -> String {
    crate::password::hash(password).unwrap_or_default()
}

fn write(path: &Path, entries: &[(&str, &str)]) {
    let entries: file::Entries = entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(file::write(path, &entries).is_ok());
}

fn verdict(
    credentials: &Credentials,
    charger: &str,
    password: &str,
    now: Instant,
) -> Option<Verification> {
    let credential = credentials.for_charger(charger, now)?;
    Some(credentials.verify(charger, &credential, password.as_bytes()))
}

#[test]
fn the_file_beats_password_hash_which_beats_password() {
    let dir = temp_dir("precedence");
    let path = file_path(&dir);
    let config = config(&hash(HASHED_PASSWORD));
    let credentials = Credentials::from_config(&config);
    let now = Instant::now();
    use Verification::*;
    assert_eq!(
        verdict(&credentials, "PLAIN", CONFIG_PASSWORD, now),
        Some(Accepted)
    );
    assert_eq!(
        verdict(&credentials, "PLAIN", "config-plaintext-0X", now),
        Some(Refused)
    );
    assert_eq!(
        verdict(&credentials, "BOTH", HASHED_PASSWORD, now),
        Some(Accepted)
    );
    assert_eq!(
        verdict(&credentials, "BOTH", CONFIG_PASSWORD, now),
        Some(Refused)
    );
    assert_eq!(credentials.for_charger("OPEN", now), None);

    write(
        &path,
        &[
            ("BOTH", &hash(FILE_PASSWORD)),
            ("OPEN", &hash(FILE_PASSWORD)),
        ],
    );
    let credentials = Credentials::with_file(&config, path.clone()).unwrap_or_default();
    assert_eq!(
        verdict(&credentials, "BOTH", FILE_PASSWORD, now),
        Some(Accepted)
    );
    assert_eq!(
        verdict(&credentials, "BOTH", HASHED_PASSWORD, now),
        Some(Refused)
    );
    assert_eq!(
        verdict(&credentials, "OPEN", FILE_PASSWORD, now),
        Some(Accepted)
    );
    assert_eq!(
        verdict(&credentials, "PLAIN", CONFIG_PASSWORD, now),
        Some(Accepted)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_changed_file_applies_after_the_recheck_interval_and_drops_cached_successes() {
    let dir = temp_dir("reload");
    let path = file_path(&dir);
    write(&path, &[("CP001", &hash(FILE_PASSWORD))]);
    let credentials = Credentials::with_file(&Config::default(), path.clone()).unwrap_or_default();
    let start = Instant::now();
    use Verification::*;
    assert_eq!(
        verdict(&credentials, "CP001", FILE_PASSWORD, start),
        Some(Accepted)
    );
    assert_eq!(credentials.cached(), 1);
    assert_eq!(
        verdict(&credentials, "CP001", FILE_PASSWORD, start),
        Some(Accepted)
    );
    assert_eq!(
        credentials.argon2_runs(),
        1,
        "the second check hit the cache"
    );

    write(&path, &[("CP001", &hash("a-brand-new-password"))]);
    // Within the interval the file is not looked at: the cached success still counts.
    assert_eq!(
        verdict(&credentials, "CP001", FILE_PASSWORD, start),
        Some(Accepted)
    );
    let later = start + RECHECK;
    assert_eq!(
        verdict(&credentials, "CP001", FILE_PASSWORD, later),
        Some(Refused)
    );
    assert_eq!(
        credentials.cached(),
        0,
        "the old hash's success is forgotten"
    );
    assert_eq!(
        verdict(&credentials, "CP001", "a-brand-new-password", later),
        Some(Accepted)
    );

    write(&path, &[]);
    assert_eq!(credentials.for_charger("CP001", later + RECHECK), None);
    assert_eq!(credentials.cached(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_file_keeps_the_previous_passwords_and_a_corrupt_start_is_an_error() {
    let dir = temp_dir("corrupt");
    let path = file_path(&dir);
    write(&path, &[("CP001", &hash(FILE_PASSWORD))]);
    let credentials = Credentials::with_file(&Config::default(), path.clone()).unwrap_or_default();
    let start = Instant::now();
    assert!(std::fs::write(&path, "\"CP001\" = \"not a hash\"\n").is_ok());
    assert_eq!(
        verdict(&credentials, "CP001", FILE_PASSWORD, start + RECHECK),
        Some(Verification::Accepted)
    );
    match Credentials::with_file(&Config::default(), path.clone()) {
        Err(file::FileError::Invalid {
            line: 1,
            path: named,
            ..
        }) => {
            assert_eq!(named, path.display().to_string())
        }
        other => panic!("expected an error on line 1, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_basic_auth_password_needs_the_charge_point_id_as_user() {
    use base64::Engine as _;
    let header = |s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    };
    let password = |value: &str| basic_auth_password(Some(value), "CP001");
    assert_eq!(
        password(&header("CP001:0123456789abcdef")),
        Some(b"0123456789abcdef".to_vec())
    );
    assert_eq!(password(&header("CP001:a:b")), Some(b"a:b".to_vec()));
    assert_eq!(password(&header("CP002:0123456789abcdef")), None);
    assert_eq!(password(&header("CP0012:0123456789abcdef")), None);
    assert_eq!(password(&header("CP001")), None);
    assert_eq!(password("Basic !!!"), None);
    assert_eq!(password("Bearer abc"), None);
    assert_eq!(basic_auth_password(None, "CP001"), None);
}

#[test]
fn verification_runs_inline_on_a_current_thread_runtime_and_aside_on_a_multi_thread_one() {
    let phc = hash(FILE_PASSWORD);
    let check = move || crate::password::verify(&phc, FILE_PASSWORD.as_bytes());
    let current = tokio::runtime::Builder::new_current_thread().build();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build();
    let (Ok(current), Ok(multi)) = (current, multi) else {
        panic!("no runtime");
    };
    let inline = check.clone();
    assert!(current.block_on(async move { run_blocking(inline) }));
    let aside = multi.spawn(async move { run_blocking(check) });
    assert_eq!(multi.block_on(aside).ok(), Some(true));
}

#[test]
fn charge_point_ids_follow_the_url_rules() {
    assert!(check_charger_id("CP001").is_ok());
    assert!(check_charger_id(&"x".repeat(48)).is_ok());
    assert!(check_charger_id(&"x".repeat(49)).is_err());
    assert!(check_charger_id("").is_err());
    assert!(check_charger_id("a/b").is_err());
    assert!(check_charger_id("a+b").is_err());
    assert!(check_charger_id("a\nb").is_err());
}
