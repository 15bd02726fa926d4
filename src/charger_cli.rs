//! `ocpp809 charger …` (CONTRACT §1 command line, binary side): sets and removes the
//! password a charger must present under OCPP security profile 1, in the password file of
//! the state directory that the running daemon rereads (src/ocpp/credentials), and hashes a
//! password for `password_hash` or a factory image. Passwords come from standard input,
//! never from the command line (which other users see in `ps`).

use std::io::{BufRead as _, IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use ocpp809::config::{Config, ConfigError};
use ocpp809::ocpp::credentials::{self, file};
use ocpp809::password;

// The variant names are the subcommands (`set-password`, …): the suffix is the command line's.
#[allow(clippy::enum_variant_names)]
#[derive(Subcommand)]
pub enum Action {
    /// Set the password charger ID must send (HTTP Basic auth); read from standard input
    /// (one line), asked twice without echo on a terminal. The daemon applies it within a
    /// second, no restart.
    SetPassword {
        /// Charge point id (last segment of the charger's WebSocket URL).
        id: String,
        /// Configuration file, to find station.state_dir; default as for `run`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Make a random 24-character password and print it once, instead of reading one.
        #[arg(long)]
        generate: bool,
    },
    /// Remove the password set with set-password; the configuration's password_hash or
    /// password applies again, else the charger connects without one.
    RemovePassword {
        id: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Read a password from standard input and print its argon2id hash (PHC string), for
    /// `password_hash` in the configuration.
    HashPassword,
}

/// Why a command failed: bad input (exit 2) or anything else (exit 1).
enum Failure {
    Input(String),
    Other(String),
}

impl From<file::FileError> for Failure {
    fn from(error: file::FileError) -> Self {
        Failure::Other(error.to_string())
    }
}

impl From<password::PasswordError> for Failure {
    fn from(error: password::PasswordError) -> Self {
        match error {
            password::PasswordError::Rules { .. } => Failure::Input(error.to_string()),
            _ => Failure::Other(error.to_string()),
        }
    }
}

pub fn run(
    action: Action,
    load_config: impl Fn(Option<&Path>) -> anyhow::Result<Config>,
) -> ExitCode {
    let result = match action {
        Action::SetPassword {
            id,
            config,
            generate,
        } => config_for(&id, config.as_deref(), &load_config)
            .and_then(|config| set_password(&id, &config, generate)),
        Action::RemovePassword { id, config } => config_for(&id, config.as_deref(), &load_config)
            .and_then(|config| remove_password(&id, &config)),
        Action::HashPassword => hash_password(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(message)) => {
            eprintln!("ocpp809: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Other(message)) => {
            eprintln!("ocpp809: {message}");
            ExitCode::FAILURE
        }
    }
}

fn config_for(
    id: &str,
    path: Option<&Path>,
    load_config: impl Fn(Option<&Path>) -> anyhow::Result<Config>,
) -> Result<Config, Failure> {
    credentials::check_charger_id(id).map_err(|why| Failure::Input(format!("{id:?}: {why}")))?;
    load_config(path).map_err(|error| match error.downcast_ref::<ConfigError>() {
        Some(ConfigError::Invalid { .. }) => Failure::Input(format!("{error:#}")),
        _ => Failure::Other(format!("{error:#}")),
    })
}

/// The password file of the daemon that `config` configures; its directory must exist.
fn password_file(config: &Config) -> Result<PathBuf, Failure> {
    let state_dir = &config.station.state_dir;
    let shown = std::path::absolute(state_dir).unwrap_or_else(|_| state_dir.clone());
    if state_dir.is_relative() {
        eprintln!(
            "note: station.state_dir {} is relative: using {} (under systemd the daemon runs in /var/lib/ocpp809)",
            state_dir.display(),
            shown.display()
        );
    }
    if !state_dir.is_dir() {
        return Err(Failure::Other(format!(
            "state directory {} does not exist: start the daemon once, or pass the daemon's --config",
            shown.display()
        )));
    }
    Ok(credentials::file_path(&shown))
}

fn set_password(id: &str, config: &Config, generate: bool) -> Result<(), Failure> {
    let path = password_file(config)?;
    let secret = if generate {
        password::generate()?
    } else {
        read_password()?
    };
    password::check(&secret)?;
    let phc = password::hash(&secret)?;
    file::update(&path, |entries| entries.insert(id.to_string(), phc))?;
    if generate {
        // Only the password on standard output, so a script can take it.
        println!("{secret}");
    }
    eprintln!(
        "{id}: password set in {}; the daemon applies it within a second",
        path.display()
    );
    if !config.ocpp.accept_unknown && !config.charger.iter().any(|c| c.id == id) {
        eprintln!("warning: {id} is no [[charger]] of the configuration and ocpp.accept_unknown is false: it cannot connect");
    }
    Ok(())
}

fn remove_password(id: &str, config: &Config) -> Result<(), Failure> {
    let path = password_file(config)?;
    let removed = file::update(&path, |entries| entries.remove(id))?;
    if removed.is_none() {
        eprintln!(
            "{id}: no password set in {}; nothing removed",
            path.display()
        );
        return Ok(());
    }
    let configured = config.charger.iter().find(|c| c.id == id);
    let fallback = match configured {
        Some(c) if c.password_hash.is_some() => "the configuration's password_hash applies",
        Some(c) if c.password.is_some() => "the configuration's password applies",
        _ => "it connects without a password (security profile 0)",
    };
    eprintln!("{id}: password removed from {}; {fallback}", path.display());
    Ok(())
}

fn hash_password() -> Result<(), Failure> {
    let secret = read_password()?;
    password::check(&secret)?;
    println!("{}", password::hash(&secret)?);
    Ok(())
}

/// A password from the terminal (asked twice, no echo) or one line of standard input.
fn read_password() -> Result<String, Failure> {
    if std::io::stdin().is_terminal() {
        let prompt = |text: &str| {
            rpassword::prompt_password(text)
                .map_err(|e| Failure::Other(format!("cannot read the password: {e}")))
        };
        let first = prompt("New password (16-40 printable ASCII): ")?;
        password::check(&first)?;
        if prompt("Again: ")? != first {
            return Err(Failure::Input("the two passwords differ".into()));
        }
        return Ok(first);
    }
    // One line of at most a few hundred bytes: a password has at most 40.
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(512)
        .read_line(&mut line)
        .map_err(|e| Failure::Other(format!("cannot read standard input: {e}")))?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(Failure::Input(
            "no password on standard input (one line expected)".into(),
        ));
    }
    Ok(line.to_string())
}
