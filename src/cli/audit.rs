//! `careq audit archive --before DAY --out FILE`: the one way entries leave the append-only
//! access log. Every entry before the start of DAY (UTC) is written to FILE as JSON lines (one
//! entry per line, oldest first; a request that returned several patients names them in its
//! line's `patients`), the file is flushed to disk, and only then are exactly those entries
//! removed, with those patients' pairs, in one transaction. Only whole past days can be
//! archived.
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;

use crate::access::records;
use crate::store::{LogFilter, Options, Store};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Move the entries before a day to a JSON-lines file.
    Archive {
        /// The first day to keep (`YYYY-MM-DD`, UTC); it must not be after today.
        #[arg(long)]
        before: String,
        /// The file to write; it must not exist yet.
        #[arg(long)]
        out: PathBuf,
    },
}

pub async fn run(database_url: &str, cmd: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::Archive { before, out } = cmd;
    let day = before
        .parse::<jiff::civil::Date>()
        .ok()
        .filter(|_| before.len() == 10)
        .with_context(|| format!("--before: {before} is not a day as YYYY-MM-DD"))?;
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    if day > today {
        bail!("--before: {before} is in the future; only past days can be archived");
    }
    let before = format!("{day}T00:00:00.000Z");
    let db = Store::open(Options::cli(database_url)).await?;
    crate::startup::backfill(&db).await?;
    let mut file = crate::private_files::create_new(&out).with_context(|| {
        format!(
            "--out: cannot create {} (it must not exist yet)",
            out.display()
        )
    })?;
    let filter = LogFilter {
        before: Some(before.clone()),
        ..LogFilter::default()
    };
    let (mut after, mut written) = (0i64, 0u64);
    loop {
        let filter = filter.clone();
        // A failed query is reported in the store's own words, not as an API error.
        let page = db
            .read(move |conn| Ok(records::access_log(conn, &filter, after, 1000)))
            .await
            .map_err(super::plain)??;
        for entry in page.iter().take(1000) {
            serde_json::to_writer(&mut file, entry)?;
            file.write_all(b"\n")?;
            written += 1;
            after = entry.seq;
        }
        if page.len() <= 1000 {
            break;
        }
    }
    file.sync_all()
        .with_context(|| format!("flushing {}", out.display()))?;
    let removed = if written == 0 {
        0
    } else {
        let through = after;
        db.write(move |conn| Ok(records::purge_access_log(conn, &before, through)?))
            .await
            .map_err(super::plain)?
    };
    db.close().await;
    println!(
        "archived {written} entries before {day} to {}; removed {removed} from the log",
        out.display()
    );
    Ok(())
}
