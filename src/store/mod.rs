//! Persistent state store: `{state_dir}/ocpp809.redb`.
//!
//! Role: keeps what must survive a restart (CONTRACT §1: on shutdown the daemon persists
//! energy counters, IOA assignments, limits in force and transaction ids). Charger password
//! hashes are not here but in their own file (src/ocpp/credentials/file.rs): the daemon holds
//! this file locked, and `ocpp809 charger set-password` must write while it runs. CONTRACT §7 "Persistence": a change of counters, IOA blocks,
//! limits or transaction ids is durable within 1 s, so the owning task collects changes in a
//! [`Batch`] and calls [`Store::apply`] with [`Batch::take`] at least once a second; every
//! `apply` is ONE redb write transaction whose commit fsyncs (`Durability::Immediate`), so a
//! batch is either wholly on disk or not at all, also after `kill -9` or power loss.
//! After a restart, [`Store::load`] returns the restored values; serving them with NT until
//! refreshed is the caller's job.
//!
//! The store never starts empty by accident: a file that exists but cannot be read (bad
//! magic, truncated, corrupt, newer schema) is an error naming the path. A new file is
//! built under a temporary name and renamed into place, so a crash during the very first
//! start cannot leave a half-initialised file behind.
//!
//! Layout (schema version [`SCHEMA_VERSION`], key `schema_version` in table `meta`): one
//! table per kind of value, keyed by charger id or counter key; the site limit and the next
//! transaction id are single rows. A future format change bumps the version and migrates in
//! [`Store::open`].
//!
//! Methods take `&self`; the store is `Send + Sync`. They block (fsync): call them from
//! `spawn_blocking` or a dedicated thread, not from an async task directly.

mod batch;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use redb::{
    Database, DatabaseError, Durability, ReadTransaction, ReadableTable, StorageError,
    TableDefinition, TableError,
};

pub use batch::Batch;

/// File name of the store inside `state_dir`.
pub const FILE_NAME: &str = "ocpp809.redb";
/// Format version written by this build.
pub const SCHEMA_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const IOA_BLOCKS: TableDefinition<&str, u32> = TableDefinition::new("ioa_blocks");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const CHARGER_LIMITS: TableDefinition<&str, f64> = TableDefinition::new("charger_limits");
const SITE_LIMIT: TableDefinition<&str, f64> = TableDefinition::new("site_limit");
const TRANSACTION_IDS: TableDefinition<&str, i32> = TableDefinition::new("transaction_ids");

const SCHEMA_KEY: &str = "schema_version";
const SITE_KEY: &str = "site";
const NEXT_TX_KEY: &str = "next";

/// One persisted fact. Applying it overwrites the previous value of its key.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Auto-assigned IOA block of an unknown charger.
    IoaBlock { charger: String, ioa_base: u32 },
    /// Energy counter, e.g. key `"CP001/1/energy"`. Stored as given (may go backwards).
    Counter { key: String, wh: u64 },
    /// Limit in force for a charger; `None` = no limit in force (row removed).
    ChargerLimit { charger: String, kw: Option<f64> },
    /// Site limit in force; `None` = none.
    SiteLimit { kw: Option<f64> },
    /// Next OCPP transaction id to hand out.
    NextTransactionId(i32),
}

/// Everything in the store, as returned by [`Store::load`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub ioa_blocks: BTreeMap<String, u32>,
    pub counters: BTreeMap<String, u64>,
    pub charger_limits: BTreeMap<String, f64>,
    pub site_limit: Option<f64>,
    pub next_transaction_id: Option<i32>,
}

/// Errors of the state store. Every variant about the file names its path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {}: cannot create directory: {source}", .path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("state store {}: cannot create file: {source}", .path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("state store {}: cannot open: {source}", .path.display())]
    Open {
        path: PathBuf,
        source: DatabaseError,
    },
    #[error(
        "state store {}: file is corrupt or not an ocpp809 store ({detail}); \
         move it away to start with empty state",
        .path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "state store {}: schema version {found} is not supported by this build (supports {supported})",
        .path.display()
    )]
    UnsupportedSchema {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("state store {}: {op}: {source}", .path.display())]
    Db {
        path: PathBuf,
        op: &'static str,
        source: Box<redb::Error>,
    },
    #[error("state store: rejected change {change:?}: {reason}")]
    InvalidChange {
        change: Box<Change>,
        reason: &'static str,
    },
}

/// The open state store. Holds redb's file lock: one `Store` per file at a time.
#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens `{state_dir}/ocpp809.redb`, creating the directory and an empty store if the
    /// file does not exist. An existing file that is unreadable, corrupt or of an unknown
    /// schema is an error naming the path (never silently replaced). Recovers after an
    /// unclean shutdown (redb repair) to the last committed transaction.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(state_dir).map_err(|source| StoreError::CreateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(FILE_NAME);
        let exists = path.try_exists().map_err(|source| StoreError::Create {
            path: path.clone(),
            source,
        })?;
        if !exists {
            create_fresh(state_dir, &path)?;
        }
        let db = open_existing(&path)?;
        let store = Store { db, path };
        store.check_schema()?;
        Ok(store)
    }

    /// Path of the store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads everything in the store.
    pub fn load(&self) -> Result<Snapshot, StoreError> {
        let rtx = self
            .db
            .begin_read()
            .map_err(|e| self.db_err("begin read", e))?;
        let mut snap = Snapshot {
            ioa_blocks: self.read_map(&rtx, IOA_BLOCKS)?,
            counters: self.read_map(&rtx, COUNTERS)?,
            charger_limits: self.read_map(&rtx, CHARGER_LIMITS)?,
            ..Snapshot::default()
        };
        snap.site_limit = self.read_map(&rtx, SITE_LIMIT)?.remove(SITE_KEY);
        snap.next_transaction_id = self.read_map(&rtx, TRANSACTION_IDS)?.remove(NEXT_TX_KEY);
        Ok(snap)
    }

    /// Writes `changes` in ONE transaction; returns after the commit is fsynced. Either all
    /// of them are durable or none. Nothing to do for an empty slice. A limit that is not a
    /// finite number is rejected before anything is written.
    pub fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        for c in changes {
            if let Change::ChargerLimit { kw: Some(kw), .. } | Change::SiteLimit { kw: Some(kw) } =
                c
            {
                if !kw.is_finite() {
                    return Err(StoreError::InvalidChange {
                        change: Box::new(c.clone()),
                        reason: "limit is not a finite number",
                    });
                }
            }
        }
        let mut wtx = self
            .db
            .begin_write()
            .map_err(|e| self.db_err("begin write", e))?;
        wtx.set_durability(Durability::Immediate);
        {
            let op = "write";
            let mut ioa = wtx.open_table(IOA_BLOCKS).map_err(|e| self.db_err(op, e))?;
            let mut counters = wtx.open_table(COUNTERS).map_err(|e| self.db_err(op, e))?;
            let mut limits = wtx
                .open_table(CHARGER_LIMITS)
                .map_err(|e| self.db_err(op, e))?;
            let mut site = wtx.open_table(SITE_LIMIT).map_err(|e| self.db_err(op, e))?;
            let mut tx_ids = wtx
                .open_table(TRANSACTION_IDS)
                .map_err(|e| self.db_err(op, e))?;
            for c in changes {
                let r = match c {
                    Change::IoaBlock { charger, ioa_base } => {
                        ioa.insert(charger.as_str(), *ioa_base).map(drop)
                    }
                    Change::Counter { key, wh } => counters.insert(key.as_str(), *wh).map(drop),
                    Change::ChargerLimit {
                        charger,
                        kw: Some(kw),
                    } => limits.insert(charger.as_str(), *kw).map(drop),
                    Change::ChargerLimit { charger, kw: None } => {
                        limits.remove(charger.as_str()).map(drop)
                    }
                    Change::SiteLimit { kw: Some(kw) } => site.insert(SITE_KEY, *kw).map(drop),
                    Change::SiteLimit { kw: None } => site.remove(SITE_KEY).map(drop),
                    Change::NextTransactionId(id) => tx_ids.insert(NEXT_TX_KEY, *id).map(drop),
                };
                r.map_err(|e| self.db_err(op, e))?;
            }
        }
        wtx.commit().map_err(|e| self.db_err("commit", e))
    }

    fn db_err(&self, op: &'static str, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            op,
            source: Box::new(e.into()),
        }
    }

    /// Opens a table for reading; a table that does not exist yet reads as empty.
    fn open_read<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        rtx: &ReadTransaction,
        def: TableDefinition<K, V>,
    ) -> Result<Option<redb::ReadOnlyTable<K, V>>, StoreError> {
        match rtx.open_table(def) {
            Ok(t) => Ok(Some(t)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.db_err("open table", e)),
        }
    }

    fn read_map<V>(
        &self,
        rtx: &ReadTransaction,
        def: TableDefinition<&'static str, V>,
    ) -> Result<BTreeMap<String, V>, StoreError>
    where
        V: for<'a> redb::Value<SelfType<'a> = V> + 'static,
    {
        let mut out = BTreeMap::new();
        if let Some(table) = self.open_read(rtx, def)? {
            for entry in table.iter().map_err(|e| self.db_err("read", e))? {
                let (k, v) = entry.map_err(|e| self.db_err("read", e))?;
                out.insert(k.value().to_string(), v.value());
            }
        }
        Ok(out)
    }

    /// Verifies the schema version; the place where future migrations go.
    fn check_schema(&self) -> Result<(), StoreError> {
        let rtx = self
            .db
            .begin_read()
            .map_err(|e| self.db_err("begin read", e))?;
        let version = match self.open_read(&rtx, META)? {
            Some(meta) => meta
                .get(SCHEMA_KEY)
                .map_err(|e| self.db_err("read schema version", e))?
                .map(|v| v.value()),
            None => None,
        };
        match version {
            Some(SCHEMA_VERSION) => Ok(()),
            Some(found) => Err(StoreError::UnsupportedSchema {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            }),
            None => Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: "no schema version".to_string(),
            }),
        }
    }
}

/// Builds an empty store at `{path}.tmp`, then renames it to `path` and fsyncs the directory,
/// so `path` either does not exist or is a complete store.
fn create_fresh(dir: &Path, path: &Path) -> Result<(), StoreError> {
    let tmp = path.with_extension("redb.tmp");
    let create_err = |source: io::Error| StoreError::Create {
        path: path.to_path_buf(),
        source,
    };
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(create_err(e)),
    }
    {
        let db = Database::create(&tmp).map_err(|source| StoreError::Open {
            path: tmp.clone(),
            source,
        })?;
        let fresh = Store {
            db,
            path: tmp.clone(),
        };
        let mut wtx = fresh
            .db
            .begin_write()
            .map_err(|e| fresh.db_err("begin write", e))?;
        wtx.set_durability(Durability::Immediate);
        {
            let op = "initialise";
            let mut meta = wtx.open_table(META).map_err(|e| fresh.db_err(op, e))?;
            meta.insert(SCHEMA_KEY, SCHEMA_VERSION)
                .map_err(|e| fresh.db_err(op, e))?;
            wtx.open_table(IOA_BLOCKS)
                .map_err(|e| fresh.db_err(op, e))?;
            wtx.open_table(COUNTERS).map_err(|e| fresh.db_err(op, e))?;
            wtx.open_table(CHARGER_LIMITS)
                .map_err(|e| fresh.db_err(op, e))?;
            wtx.open_table(SITE_LIMIT)
                .map_err(|e| fresh.db_err(op, e))?;
            wtx.open_table(TRANSACTION_IDS)
                .map_err(|e| fresh.db_err(op, e))?;
        }
        wtx.commit().map_err(|e| fresh.db_err("commit", e))?;
    }
    fs::rename(&tmp, path).map_err(create_err)?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(create_err)
}

/// Opens an existing store file. redb asserts on some malformed headers; such a panic is
/// turned into [`StoreError::Corrupt`] rather than taking the daemon down without naming
/// the file.
fn open_existing(path: &Path) -> Result<Database, StoreError> {
    let opened = catch_unwind(AssertUnwindSafe(|| Database::open(path)));
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(DatabaseError::Storage(StorageError::Corrupted(detail)))) => {
            Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail,
            })
        }
        Ok(Err(DatabaseError::Storage(StorageError::Io(e))))
            if e.kind() == io::ErrorKind::InvalidData =>
        {
            Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: "not a redb database file (bad header)".to_string(),
            })
        }
        Ok(Err(source)) => Err(StoreError::Open {
            path: path.to_path_buf(),
            source,
        }),
        Err(panic) => {
            let detail = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "malformed file".to_string());
            Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "ocpp809-store-unit-{}-{}",
            name,
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn fresh_store_is_empty_and_versioned() {
        let dir = tempdir("fresh");
        let store = Store::open(&dir).expect("open");
        assert_eq!(store.path(), dir.join(FILE_NAME));
        assert_eq!(store.load().expect("load"), Snapshot::default());
        assert!(!dir.join("ocpp809.redb.tmp").exists());
        drop(store);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn non_finite_limit_rejected_and_nothing_written() {
        let dir = tempdir("nan");
        let store = Store::open(&dir).expect("open");
        let err = store
            .apply(&[
                Change::NextTransactionId(3),
                Change::SiteLimit { kw: Some(f64::NAN) },
            ])
            .expect_err("NaN must be rejected");
        assert!(matches!(err, StoreError::InvalidChange { .. }), "{err}");
        assert_eq!(store.load().expect("load"), Snapshot::default());
        drop(store);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempdir("schema");
        let store = Store::open(&dir).expect("open");
        let wtx = store.db.begin_write().expect("begin");
        {
            let mut meta = wtx.open_table(META).expect("meta");
            meta.insert(SCHEMA_KEY, SCHEMA_VERSION + 1).expect("insert");
        }
        wtx.commit().expect("commit");
        drop(store);
        let err = Store::open(&dir).expect_err("newer schema");
        assert!(
            matches!(err, StoreError::UnsupportedSchema { found: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains(FILE_NAME), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn stale_tmp_from_crashed_first_start_is_replaced() {
        let dir = tempdir("tmp");
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join("ocpp809.redb.tmp"), b"half written").expect("write");
        let store = Store::open(&dir).expect("open");
        assert_eq!(store.load().expect("load"), Snapshot::default());
        drop(store);
        let _ = fs::remove_dir_all(&dir);
    }
}
