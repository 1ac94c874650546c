//! The command line: `serve`, `migrate`, `user`, `clinic`, `audit`, `status`. One file per
//! command.
pub mod audit;
pub mod backup;
pub mod clinic;
pub mod migrate;
pub mod migrate_data;
pub mod seed;
pub mod serve;
pub mod status;
pub mod user;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "careq",
    version,
    about = "Patient records and clinic queues over HTTP"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The database a command works on (every command but `serve`, which has its own settings).
#[derive(clap::Args)]
pub struct Database {
    /// The database (`sqlite://PATH` or `postgres://USER@HOST/DB`) [default: sqlite://careq.db]
    #[arg(
        long,
        env = "CAREQ_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// A file whose content is the database URL (one with a password in it), instead of
    /// `CAREQ_DATABASE_URL`.
    #[arg(long, env = "CAREQ_DATABASE_URL_FILE", global = true)]
    database_url_file: Option<std::path::PathBuf>,
}

impl Database {
    /// The URL given, read from the file given, or the default.
    pub fn url(&self) -> anyhow::Result<String> {
        match (&self.database_url, &self.database_url_file) {
            (Some(_), Some(_)) => anyhow::bail!(
                "CAREQ_DATABASE_URL (--database-url) and CAREQ_DATABASE_URL_FILE \
                 (--database-url-file) are both set; give the URL one way only"
            ),
            (None, Some(file)) => {
                crate::config::secrets::read_secret_file(file, "database_url_file")
            }
            (Some(url), None) => Ok(url.clone()),
            (None, None) => Ok("sqlite://careq.db".into()),
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(Box<Config>),
    /// Copy the database to a new file while careq serves (online, consistent).
    Backup(backup::Args),
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        db: Database,
    },
    /// Copy every record of a SQLite database into an empty PostgreSQL one.
    MigrateData(migrate_data::Args),
    /// Manage staff accounts.
    User {
        #[command(flatten)]
        db: Database,
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// Manage clinics.
    Clinic {
        #[command(flatten)]
        db: Database,
        #[command(subcommand)]
        command: clinic::ClinicCommand,
    },
    /// Archive old access-log entries (the retention policy).
    Audit {
        #[command(flatten)]
        db: Database,
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Show catalogue entries: a code (`404`), a class (`4xx`), or all.
    Status {
        /// A status code or class; omit for the whole catalogue.
        query: Option<String>,
    },
    #[command(hide = true)]
    BenchSeed(crate::cli::seed::Args),
}

/// Parses the command line and the `CAREQ_*` variables. What clap cannot parse ends the process
/// (exit 2) with clap's message, naming the variable beside the flag (a value may have come
/// from either); `serve` then reads its secret files and notes secrets given as flags.
pub fn parse() -> anyhow::Result<Cli> {
    let mut command = Cli::command();
    let matches = match command.try_get_matches_from_mut(std::env::args_os()) {
        Ok(m) => m,
        Err(e) => name_the_variable(e, &command).exit(),
    };
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit());
    let Some((name, sub)) = matches.subcommand() else {
        return Ok(cli);
    };
    if let Command::Serve(config) = &mut cli.command {
        config.from_command_line(sub)?;
        return Ok(cli);
    }
    let takes_url = command
        .find_subcommand(name)
        .is_some_and(|c| c.get_arguments().any(|a| a.get_id() == "database_url"));
    if takes_url && sub.value_source("database_url") == Some(ValueSource::CommandLine) {
        let url = sub
            .get_one::<String>("database_url")
            .map_or("", |s| s.as_str());
        if crate::config::secrets::url_has_password(url) {
            eprintln!("careq: warning: {}", secret_flag_warning("--database-url"));
        }
    }
    Ok(cli)
}

/// What careq says when a secret came as the flag `flag` (its name, never its value).
pub fn secret_flag_warning(flag: &str) -> String {
    let var = format!(
        "CAREQ_{}",
        flag.trim_start_matches('-')
            .to_uppercase()
            .replace('-', "_")
    );
    format!(
        "{flag} carries a secret on the command line, where any user of this machine can read \
         it (ps, /proc); give it in a file named by {var}_FILE, or in {var}, instead"
    )
}

/// Adds the environment variable to a clap error that names an argument by its flag only.
fn name_the_variable(mut e: clap::Error, command: &clap::Command) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg).cloned() else {
        return e;
    };
    let Some(long) = arg
        .strip_prefix("--")
        .and_then(|a| a.split([' ', '=']).next())
    else {
        return e;
    };
    let Some(env) = env_of(command, long) else {
        return e;
    };
    e.insert(
        ContextKind::InvalidArg,
        ContextValue::String(format!("{arg}' or '{env}")),
    );
    e
}

/// The variable of the argument with flag `--long`, in `command` or any subcommand.
fn env_of(command: &clap::Command, long: &str) -> Option<String> {
    command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .or_else(|| command.get_subcommands().find_map(|sub| env_of(sub, long)))
}

/// Runs the parsed command; the return value is the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(config) => serve::run(*config).await.map(|_| 0),
        Command::Backup(args) => backup::run(args).await.map(|_| 0),
        Command::Migrate { db } => migrate::run(&db.url()?).await.map(|_| 0),
        Command::MigrateData(args) => migrate_data::run(args).await.map(|_| 0),
        Command::User { db, command } => user::run(&db.url()?, command).await.map(|_| 0),
        Command::Clinic { db, command } => clinic::run(&db.url()?, command).await.map(|_| 0),
        Command::Audit { db, command } => audit::run(&db.url()?, command).await.map(|_| 0),
        Command::BenchSeed(args) => crate::cli::seed::run(args).await.map(|_| 0),
        Command::Status { query } => Ok(status::run(query.as_deref(), &mut std::io::stdout())),
    }
}

/// An API error in plain words for a terminal: what went wrong and, for each field, the field's
/// name and its problem (`username: …`) — no HTTP status names.
pub fn plain(e: crate::error::ApiError) -> anyhow::Error {
    let p = e.problem();
    if p.errors.is_empty() {
        return anyhow::anyhow!("{}", p.detail);
    }
    let fields: Vec<String> = p
        .errors
        .iter()
        .map(|f| {
            let name = f.pointer.trim_start_matches('/').replace('/', ".");
            let name = if name.is_empty() { "input" } else { &name };
            format!("{name}: {}", f.message)
        })
        .collect();
    anyhow::anyhow!("{}", fields.join("\n"))
}
