//! `careq migrate-data --from sqlite://… --to postgres://…`: moves a clinic from SQLite to
//! PostgreSQL. Stop careq first (the copy is of one moment of the source; writes made during
//! it would not be moved), then point `CAREQ_DATABASE_URL` at the target.
use anyhow::bail;

use crate::store::{copy, Options, Store};

#[derive(clap::Args)]
pub struct Args {
    /// The SQLite database to copy from (`sqlite://PATH`); it must exist.
    #[arg(long)]
    pub from: String,
    /// The PostgreSQL database to copy into (`postgres://…`); it must hold no careq data.
    #[arg(long)]
    pub to: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let Some(path) = args
        .from
        .strip_prefix("sqlite://")
        .or_else(|| args.from.strip_prefix("sqlite:"))
    else {
        bail!("--from must be a sqlite:// URL (the move is from SQLite to PostgreSQL)");
    };
    if !(args.to.starts_with("postgres://") || args.to.starts_with("postgresql://")) {
        bail!("--to must be a postgres:// URL");
    }
    let path = path.split('?').next().unwrap_or(path);
    if !std::path::Path::new(path).is_file() {
        bail!("--from: there is no database file at {path}");
    }
    // Both brought to this version's schema first (the source as `careq migrate` would).
    for url in [&args.from, &args.to] {
        let db = Store::open(Options::cli(url)).await?;
        crate::startup::backfill(&db).await?;
        db.close().await;
    }
    let report = copy::sqlite_to_postgres(&args.from, &args.to).await?;
    let total: u64 = report.tables.iter().map(|(_, n)| n).sum();
    for (table, rows) in &report.tables {
        println!("{table:<20} {rows:>10} rows");
    }
    println!(
        "copied {total} rows in {} tables; counts verified",
        report.tables.len()
    );
    Ok(())
}
