//! `careq backup PATH`: an online, consistent copy of the database while careq serves. Restore
//! by stopping careq and putting the copy where `CAREQ_DATABASE_URL` points (see the README).
use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::store::{Options, Store};

#[derive(clap::Args)]
pub struct Args {
    /// The file to write; it must not exist yet.
    pub path: PathBuf,
    #[command(flatten)]
    pub db: super::Database,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.path.exists() {
        bail!("{} exists already; choose a new file", args.path.display());
    }
    let db = Store::open(Options::cli(&args.db.url()?)).await?;
    crate::startup::backfill(&db).await?;
    db.backup(&args.path)
        .await
        .with_context(|| format!("writing the backup to {}", args.path.display()))?;
    db.close().await;
    let bytes = std::fs::metadata(&args.path).map(|m| m.len()).unwrap_or(0);
    println!("backed up to {} ({bytes} bytes)", args.path.display());
    Ok(())
}
