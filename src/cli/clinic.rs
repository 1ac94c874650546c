//! `careq clinic add|list`: set up clinics from the server's own shell, before anyone can sign in.
use clap::Subcommand;

use crate::clinics::domain::ValidClinic;
use crate::clinics::records;
use crate::store::{Options, Store};

#[derive(Subcommand)]
pub enum ClinicCommand {
    /// Create a clinic.
    Add {
        name: String,
        /// An IANA time zone, e.g. Europe/Vienna.
        #[arg(long)]
        timezone: String,
        /// The ticket number prefix: 1–3 capital letters.
        #[arg(long)]
        prefix: String,
        /// ISO 3166 country (AT, GB…): national phone numbers are read in it.
        #[arg(long)]
        country: Option<String>,
    },
    /// List clinics.
    List,
}

pub async fn run(database_url: &str, cmd: ClinicCommand) -> anyhow::Result<()> {
    let db = Store::open(Options::cli(database_url)).await?;
    crate::startup::backfill(&db).await?;
    match cmd {
        ClinicCommand::Add {
            name,
            timezone,
            prefix,
            country,
        } => {
            let valid = ValidClinic::parse(&name, &timezone, &prefix, country.as_deref())
                .map_err(|errors| super::plain(crate::error::ApiError::invalid(errors)))?;
            let id = crate::ids::new_id("cln");
            let clinic = db
                .write_data(move |conn| {
                    records::insert_clinic(conn, &id, &valid)?;
                    records::find_clinic(conn, &id)?.ok_or_else(|| {
                        crate::error::ApiError::internal("the clinic just stored is missing")
                    })
                })
                .await
                .map_err(super::plain)?;
            println!(
                "created clinic {} ({}) {}",
                clinic.name, clinic.timezone, clinic.id
            );
        }
        ClinicCommand::List => {
            println!("ID\tNAME\tTIMEZONE\tPREFIX");
            let mut after = String::new();
            loop {
                let page = crate::clinics::list(&db, None, &after, 200)
                    .await
                    .map_err(super::plain)?;
                for c in page.iter().take(200) {
                    println!("{}\t{}\t{}\t{}", c.id, c.name, c.timezone, c.ticket_prefix);
                }
                if page.len() <= 200 {
                    break;
                }
                after = page[199].id.clone();
            }
        }
    }
    db.close().await;
    Ok(())
}
