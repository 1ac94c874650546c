//! The command line: `serve`, `migrate`, `user`, `clinic`, `audit`, `status`. One file per
//! command.
pub mod audit;
pub mod backup;
pub mod clinic;
pub mod migrate;
pub mod migrate_data;
pub mod serve;
pub mod status;
pub mod user;

use clap::{Parser, Subcommand};

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
    /// The database (`sqlite://PATH` or `postgres://USER@HOST/DB`).
    #[arg(
        long,
        env = "CAREQ_DATABASE_URL",
        default_value = "sqlite://careq.db",
        global = true
    )]
    pub database_url: String,
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
    BenchSeed(crate::store::sqlite::seed::Args),
}

/// Runs the parsed command; the return value is the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(config) => serve::run(*config).await.map(|_| 0),
        Command::Backup(args) => backup::run(args).await.map(|_| 0),
        Command::Migrate { db } => migrate::run(&db.database_url).await.map(|_| 0),
        Command::MigrateData(args) => migrate_data::run(args).await.map(|_| 0),
        Command::User { db, command } => user::run(&db.database_url, command).await.map(|_| 0),
        Command::Clinic { db, command } => clinic::run(&db.database_url, command).await.map(|_| 0),
        Command::Audit { db, command } => audit::run(&db.database_url, command).await.map(|_| 0),
        Command::BenchSeed(args) => crate::store::sqlite::seed::run(args).await.map(|_| 0),
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
