//! The charger password file, `{state_dir}/charger-passwords.toml`: one line per charger,
//! `"CP001" = "$argon2id$v=19$…"`, written only by `ocpp809 charger set-password` /
//! `remove-password` and read by the daemon. Writes replace the file atomically (temporary
//! file in the same directory, fsync, rename, fsync of the directory), so the daemon never
//! reads half a file; mode 0600, owned by the owner of the state directory (the service user
//! under systemd) even when root runs the command.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// File name inside `station.state_dir`.
pub const FILE_NAME: &str = "charger-passwords.toml";

const HEADER: &str = "\
# Charger passwords (OCPP security profile 1), argon2id PHC strings by charge point id.
# Written by `ocpp809 charger set-password` / `remove-password`; the daemon rereads it
# within a second of a change. Entries here take precedence over password_hash and
# password in the configuration.
";

/// Charge point id → argon2id PHC string.
pub type Entries = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: String,
        /// 1-based; 0 when unknown.
        line: usize,
        message: String,
    },
}

/// Parses the file's text; `path` names it in errors, which carry the line.
pub fn parse(text: &str, path: &Path) -> Result<Entries, FileError> {
    let invalid = |offset: Option<usize>, message: String| FileError::Invalid {
        path: path.display().to_string(),
        line: offset.map_or(0, |o| line_of(text, o)),
        message,
    };
    let table: BTreeMap<String, toml::Spanned<toml::Value>> = toml::from_str(text)
        .map_err(|e| invalid(e.span().map(|s| s.start), e.message().to_string()))?;
    let mut entries = Entries::new();
    for (charger, value) in table {
        let at = Some(value.span().start);
        let Some(phc) = value.get_ref().as_str() else {
            return Err(invalid(
                at,
                format!("{charger}: expected a string (an argon2id PHC hash)"),
            ));
        };
        if let Err(why) = super::check_charger_id(&charger) {
            return Err(invalid(at, format!("{charger:?}: {why}")));
        }
        crate::password::check_phc(phc).map_err(|why| invalid(at, format!("{charger}: {why}")))?;
        entries.insert(charger, phc.to_string());
    }
    Ok(entries)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.matches('\n').count() + 1)
}

/// The file's text for `entries`.
pub fn render(entries: &Entries) -> String {
    let mut out = String::from(HEADER);
    for (charger, phc) in entries {
        // Basic strings escape what a charge point id may hold (quotes, backslashes).
        let key = toml::Value::String(charger.clone()).to_string();
        let value = toml::Value::String(phc.clone()).to_string();
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}

/// Reads the file; a missing file holds no entries.
pub fn read(path: &Path) -> Result<Entries, FileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Entries::new()),
        Err(source) => Err(io(path, source)),
    }
}

fn io(path: &Path, source: std::io::Error) -> FileError {
    FileError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn directory(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Reads the entries, lets `change` edit them and writes them back, holding an exclusive
/// lock on the directory throughout, so two commands run at once cannot lose an update.
pub fn update<R>(path: &Path, change: impl FnOnce(&mut Entries) -> R) -> Result<R, FileError> {
    let dir = directory(path);
    let lock = File::open(dir).map_err(|e| io(dir, e))?;
    lock.lock().map_err(|e| io(dir, e))?;
    let mut entries = read(path)?;
    let result = change(&mut entries);
    write(path, &entries)?;
    Ok(result)
}

/// Replaces the file at `path` with `entries`, atomically and durably, mode 0600. When the
/// caller is root and the directory belongs to someone else (the service user), the file is
/// given to the directory's owner so that the daemon can read it.
pub fn write(path: &Path, entries: &Entries) -> Result<(), FileError> {
    let dir = directory(path);
    let owner = std::fs::metadata(dir).map_err(|e| io(dir, e))?;
    let temp = temp_path(path);
    // A temporary file left by a crashed run; `create_new` below never follows a link.
    let _ = std::fs::remove_file(&temp);
    let result = write_temp(&temp, &render(entries), &owner)
        .and_then(|()| std::fs::rename(&temp, path).map_err(|e| io(path, e)))
        .and_then(|()| {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io(dir, e))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

fn write_temp(temp: &Path, text: &str, dir: &std::fs::Metadata) -> Result<(), FileError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .map_err(|e| io(temp, e))?;
    let mine = file.metadata().map_err(|e| io(temp, e))?;
    if mine.uid() == 0 && (dir.uid() != 0 || dir.gid() != 0) {
        std::os::unix::fs::fchown(&file, Some(dir.uid()), Some(dir.gid()))
            .map_err(|e| io(temp, e))?;
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io(temp, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    fn error_line(text: &str) -> (usize, String) {
        match parse(text, Path::new("/s/charger-passwords.toml")) {
            Err(FileError::Invalid { line, message, .. }) => (line, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn rendered_entries_parse_back() {
        let mut entries = Entries::new();
        entries.insert("CP001".into(), PHC.into());
        entries.insert("odd \"id\" \\ x".into(), PHC.into());
        let text = render(&entries);
        assert_eq!(
            parse(&text, Path::new("f")).ok().as_ref(),
            Some(&entries),
            "{text}"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let good = format!("# comment\n\"CP001\" = \"{PHC}\"\n");
        let (line, message) = error_line(&format!("{good}\"CP002\" = \"plaintext\"\n"));
        assert_eq!(line, 3);
        assert!(message.contains("CP002"), "{message}");
        let (line, _) = error_line(&format!("{good}CP003 = 42\n"));
        assert_eq!(line, 3);
        let (line, _) = error_line(&format!("{good}\n\"CP004\" = \"unterminated\n"));
        assert_eq!(line, 4);
        let (line, message) = error_line(&format!("\"a/b\" = \"{PHC}\"\n"));
        assert_eq!(line, 1);
        assert!(message.contains("a/b"), "{message}");
    }

    #[test]
    fn writes_replace_the_file_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("ocpp809-pwfile-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(FILE_NAME);
        assert_eq!(read(&path).ok(), Some(Entries::new()));
        let mut entries = Entries::new();
        entries.insert("CP001".into(), PHC.into());
        assert!(write(&path, &entries).is_ok());
        let added = update(&path, |e| e.insert("CP002".into(), PHC.into()));
        assert_eq!(added.ok(), Some(None));
        entries.insert("CP002".into(), PHC.into());
        assert_eq!(read(&path).ok(), Some(entries));
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(left, vec![std::ffi::OsString::from(FILE_NAME)]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
