//! The `ocpp809` command line (CONTRACT §1): run the daemon, check a configuration, print
//! the embedded default configuration or the IEC 104 point list, manage charger passwords.

mod charger_cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio::sync::watch;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use ocpp809::config::Config;
use ocpp809::mapping::PointList;

const SYSTEM_CONFIG: &str = "/etc/ocpp809/ocpp809.toml";
/// CONTRACT §1: graceful shutdown within 5 s.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(4500);

#[derive(Parser)]
#[command(
    name = "ocpp809",
    version,
    about = "IEC 60870-5-104/101 controlled station for OCPP chargers"
)]
struct Cli {
    /// Log level or filter (overrides RUST_LOG), e.g. `debug` or `ocpp809=trace`.
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run {
        /// Configuration file; default /etc/ocpp809/ocpp809.toml if it exists, else the embedded default.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file: exit 0 with a summary, or 2 naming file, line and key.
    CheckConfig { file: PathBuf },
    /// Print the embedded, commented default configuration.
    DefaultConfig,
    /// Print the IEC 104 point list the configuration produces.
    Points {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
    },
    /// Charger passwords (OCPP security profile 1): set-password, remove-password, hash-password.
    Charger {
        #[command(subcommand)]
        action: charger_cli::Action,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Md,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_level.as_deref());
    let result = match cli.command.unwrap_or(Command::Run { config: None }) {
        Command::Run { config } => run(config.as_deref()),
        Command::CheckConfig { file } => return check_config(&file),
        Command::DefaultConfig => {
            print!("{}", Config::DEFAULT_TOML);
            Ok(())
        }
        Command::Points { config, format } => points(config.as_deref(), format),
        Command::Charger { action } => return charger_cli::run(action, load_config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error!("{error:#}");
            eprintln!("ocpp809: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(level: Option<&str>) {
    let filter = match level {
        Some(level) => EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info")),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// `--config`, else the system file if present, else the embedded default.
fn load_config(explicit: Option<&Path>) -> anyhow::Result<Config> {
    let system = Path::new(SYSTEM_CONFIG);
    let path = match explicit {
        Some(path) => path,
        None if system.exists() => system,
        None => return Ok(Config::embedded_default()),
    };
    let config = Config::load(path)?;
    if let Some(warning) = config.exposure_warning(path) {
        warn!("{warning}");
    }
    if let Some(warning) = config.plaintext_password_warning() {
        warn!("{warning}");
    }
    Ok(config)
}

fn check_config(file: &Path) -> ExitCode {
    match Config::load(file) {
        Ok(config) => {
            if let Some(warning) = config.exposure_warning(file) {
                eprintln!("warning: {warning}");
            }
            if let Some(warning) = config.plaintext_password_warning() {
                eprintln!("warning: {warning}");
            }
            println!("{}: valid", file.display());
            println!("{}", config.summary());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(2)
        }
    }
}

fn points(config: Option<&Path>, format: Format) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let mut list = PointList::from_config(&config);
    // Blocks given to unknown chargers live in the state store (CONTRACT §7).
    let state_dir = Path::new(&config.station.state_dir);
    if state_dir.join(ocpp809::store::FILE_NAME).exists() {
        match ocpp809::store::Store::open(state_dir).and_then(|store| store.load()) {
            Ok(snapshot) => {
                list.add_assigned_blocks(&snapshot.ioa_blocks, config.ocpp.default_connectors)
            }
            Err(error) => eprintln!(
                "ocpp809: blocks of unknown chargers not listed ({error}); is the daemon running?"
            ),
        }
    }
    match format {
        Format::Csv => print!("{}", list.to_csv()),
        Format::Md => print!("{}", list.to_markdown()),
    }
    Ok(())
}

fn run(config: Option<&Path>) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut daemon = tokio::spawn(ocpp809::runtime::run(config, shutdown_rx));
        tokio::select! {
            finished = &mut daemon => return finished.context("daemon task failed")?.map_err(anyhow::Error::from),
            signal = shutdown_signal() => {
                signal?;
                info!("shutdown requested");
            }
        }
        let _ = shutdown_tx.send(true);
        match tokio::time::timeout(SHUTDOWN_GRACE, daemon).await {
            Ok(finished) => finished.context("daemon task failed")?.map_err(anyhow::Error::from),
            Err(_) => {
                error!("tasks did not stop within the grace period; exiting anyway");
                Ok(())
            }
        }
    })
}

/// SIGTERM (systemd) or SIGINT (console).
async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate =
        signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}
