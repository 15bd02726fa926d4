//! Integration tests of the persistent state store (`ocpp809::store`).
//!
//! Role: proves CONTRACT §1 (state persisted across restarts: energy counters, IOA
//! assignments, limits in force, transaction ids) and §7 "Persistence" (a change is durable
//! once `apply` returns, and a batch is atomic): round trip of every `Change`, reopen after
//! drop, a corrupt file is an error naming its path, and `kill -9` in the middle of a write
//! loop loses no committed transaction and never tears one. The crash test re-executes this
//! test binary with `STORE_CRASH_CHILD=<dir>`, which turns `crash_child_writer` into the
//! writer process.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ocpp809::store::{Batch, Change, Snapshot, Store, StoreError, FILE_NAME};

const CHILD_ENV: &str = "STORE_CRASH_CHILD";

/// A fresh, empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d =
            std::env::temp_dir().join(format!("ocpp809-store-it-{}-{}", name, std::process::id()));
        let _ = fs::remove_dir_all(&d);
        TempDir(d)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn every_change() -> Vec<Change> {
    vec![
        Change::IoaBlock {
            charger: "CP001".into(),
            ioa_base: 10_000,
        },
        Change::IoaBlock {
            charger: "CP002".into(),
            ioa_base: 10_100,
        },
        Change::Counter {
            key: "CP001/1/energy".into(),
            wh: 123_456_789,
        },
        Change::Counter {
            key: "CP001/2/energy".into(),
            wh: u64::MAX,
        },
        Change::ChargerLimit {
            charger: "CP001".into(),
            kw: Some(11.5),
        },
        Change::ChargerLimit {
            charger: "CP002".into(),
            kw: Some(0.0),
        },
        Change::SiteLimit { kw: Some(250.25) },
        Change::NextTransactionId(i32::MAX),
    ]
}

fn expected_snapshot() -> Snapshot {
    let mut s = Snapshot::default();
    s.ioa_blocks.insert("CP001".into(), 10_000);
    s.ioa_blocks.insert("CP002".into(), 10_100);
    s.counters.insert("CP001/1/energy".into(), 123_456_789);
    s.counters.insert("CP001/2/energy".into(), u64::MAX);
    s.charger_limits.insert("CP001".into(), 11.5);
    s.charger_limits.insert("CP002".into(), 0.0);
    s.site_limit = Some(250.25);
    s.next_transaction_id = Some(i32::MAX);
    s
}

#[test]
fn round_trip_of_every_change_and_reopen_after_drop() {
    let dir = TempDir::new("roundtrip");
    {
        let store = Store::open(dir.path()).expect("open new store");
        assert!(dir.path().join(FILE_NAME).is_file());
        assert_eq!(store.load().expect("load"), Snapshot::default());
        store.apply(&every_change()).expect("apply");
        assert_eq!(store.load().expect("load"), expected_snapshot());
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(
        store.load().expect("load after reopen"),
        expected_snapshot()
    );

    // Overwrites, removals of limits, a counter that legitimately goes backwards.
    store
        .apply(&[
            Change::Counter {
                key: "CP001/1/energy".into(),
                wh: 5,
            },
            Change::ChargerLimit {
                charger: "CP001".into(),
                kw: None,
            },
            Change::SiteLimit { kw: None },
            Change::NextTransactionId(-1),
            Change::IoaBlock {
                charger: "CP001".into(),
                ioa_base: 20_000,
            },
        ])
        .expect("apply overwrites");
    store.apply(&[]).expect("empty apply is a no-op");
    drop(store);

    let mut want = expected_snapshot();
    want.counters.insert("CP001/1/energy".into(), 5);
    want.charger_limits.remove("CP001");
    want.site_limit = None;
    want.next_transaction_id = Some(-1);
    want.ioa_blocks.insert("CP001".into(), 20_000);
    let store = Store::open(dir.path()).expect("reopen 2");
    assert_eq!(store.load().expect("load"), want);
}

#[test]
fn batch_coalesces_then_applies() {
    let dir = TempDir::new("batch");
    let store = Store::open(dir.path()).expect("open");
    let mut batch = Batch::new();
    for wh in 0..=1000u64 {
        batch.push(Change::Counter {
            key: "CP001/1/energy".into(),
            wh,
        });
        batch.push(Change::NextTransactionId(wh as i32));
    }
    batch.push(Change::SiteLimit { kw: Some(40.0) });
    batch.push(Change::SiteLimit { kw: None });
    assert_eq!(batch.len(), 3);
    let changes = batch.take();
    assert!(batch.is_empty());
    assert_eq!(
        changes,
        vec![
            Change::Counter {
                key: "CP001/1/energy".into(),
                wh: 1000
            },
            Change::NextTransactionId(1000),
            Change::SiteLimit { kw: None },
        ]
    );
    store.apply(&changes).expect("apply");
    let snap = store.load().expect("load");
    assert_eq!(snap.counters.get("CP001/1/energy"), Some(&1000));
    assert_eq!(snap.next_transaction_id, Some(1000));
    assert_eq!(snap.site_limit, None);
}

#[test]
fn corrupt_file_is_an_error_naming_the_path() {
    let dir = TempDir::new("corrupt");
    fs::create_dir_all(dir.path()).expect("mkdir");
    let file = dir.path().join(FILE_NAME);

    // Not a database at all.
    fs::write(&file, b"this is not a redb file\n".repeat(200)).expect("write garbage");
    let err = Store::open(dir.path()).expect_err("garbage must not open");

    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
    // The file is left alone for the operator.
    assert_eq!(
        fs::read(&file).expect("read back"),
        b"this is not a redb file\n".repeat(200)
    );

    // An empty file never silently becomes an empty store.
    fs::write(&file, b"").expect("truncate");
    let err = Store::open(dir.path()).expect_err("empty file must not open");

    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );

    // A real store cut short.
    fs::remove_file(&file).expect("rm");
    {
        let store = Store::open(dir.path()).expect("open");
        store.apply(&every_change()).expect("apply");
    }
    let bytes = fs::read(&file).expect("read store");
    fs::write(&file, &bytes[..bytes.len().min(4096)]).expect("truncate store");
    let err = Store::open(dir.path()).expect_err("truncated store must not open");

    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );

    // Header overwritten.
    let mut bad = bytes.clone();
    for b in bad.iter_mut().take(512) {
        *b ^= 0x5a;
    }
    fs::write(&file, &bad).expect("write bad header");
    let err = Store::open(dir.path()).expect_err("bad header must not open");

    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
}

#[test]
fn unusable_state_dir_is_an_error_naming_the_path() {
    let dir = TempDir::new("notadir");
    fs::create_dir_all(dir.path()).expect("mkdir");
    let blocker = dir.path().join("file");
    fs::write(&blocker, b"x").expect("write");
    let err = Store::open(&blocker).expect_err("a file is not a state dir");
    assert!(
        err.to_string().contains(&blocker.display().to_string()),
        "{err}"
    );
}

/// Child side of [`kill_9_loses_no_commit_and_tears_no_transaction`]: a no-op unless
/// `STORE_CRASH_CHILD` is set. Writes `{c, next tx id, limit}` transactions and prints
/// `committed N` after each commit returned, until killed (bounded to 120 s).
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = Store::open(Path::new(&dir)).expect("child open");
    let start = store
        .load()
        .expect("child load")
        .counters
        .get("c")
        .copied()
        .unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(120);
    let stdout = std::io::stdout();
    let mut i = start;
    while Instant::now() < deadline {
        i += 1;
        store
            .apply(&[
                Change::Counter {
                    key: "c".into(),
                    wh: i,
                },
                Change::NextTransactionId(i as i32),
                Change::ChargerLimit {
                    charger: "CP001".into(),
                    kw: Some(i as f64 / 2.0),
                },
            ])
            .expect("child apply");
        let mut out = stdout.lock();
        if writeln!(out, "committed {i}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return; // parent went away
        }
    }
}

#[test]
fn kill_9_loses_no_commit_and_tears_no_transaction() {
    const COMMITS_BEFORE_KILL: usize = 200;
    let dir = TempDir::new("crash");
    let exe = std::env::current_exe().expect("current_exe");
    let mut last_seen = 0u64;
    for round in 0..5 {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel::<u64>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("committed ") {
                    if let Ok(n) = n.trim().parse::<u64>() {
                        if tx.send(n).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = 0usize;
        while seen < COMMITS_BEFORE_KILL {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(n) => {
                    assert!(n > last_seen, "round {round}: commits must increase");
                    last_seen = n;
                    seen += 1;
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("round {round}: child stopped reporting after {seen} commits: {e}");
                }
            }
        }
        child.kill().expect("SIGKILL child"); // SIGKILL on Unix: mid-transaction
        let _ = child.wait();
        // Commits reported between our last recv and the kill count too: the reader ends
        // at EOF of the dead child's stdout, then everything it forwarded is drained.
        let _ = reader.join();
        if let Some(n) = rx.try_iter().last() {
            last_seen = n;
        }

        let store = Store::open(dir.path()).expect("store opens after kill -9");
        let snap = store.load().expect("load after kill -9");
        let c = snap.counters.get("c").copied().expect("counter c present");
        assert!(
            c >= last_seen,
            "round {round}: counter {c} behind reported commit {last_seen}"
        );
        assert_eq!(
            snap.next_transaction_id,
            Some(c as i32),
            "round {round}: transaction torn"
        );
        assert_eq!(
            snap.charger_limits.get("CP001"),
            Some(&(c as f64 / 2.0)),
            "round {round}: transaction torn"
        );
        last_seen = c;
    }
}
