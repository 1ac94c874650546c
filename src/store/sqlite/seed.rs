//! `careq bench-seed` (hidden): fills a fresh database for `bench/run.sh` — patients through
//! the engine's own patient insert, tickets as its store writes them but many per statement —
//! in big transactions with `synchronous=OFF` (this connection, the seed only), and prints what
//! the load driver needs as JSON.
//!
//! Two clinics: "big" holds the patients and `--tickets` waiting tickets for today; "small"
//! holds a few patients with one waiting ticket each (the queue-view scenario). A `bench` admin
//! signs in with [`PASSWORD`].
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde::Serialize;
use sqlx::SqliteConnection;

use crate::auth::Role;
use crate::clinics::domain::{Clinic, ValidClinic};
use crate::clock::now_rfc3339;
use crate::patients::domain::{fold, PatientFields, Sex, ValidPatient};
use crate::users::domain::NewUser;

/// The bench user's password: a throwaway database, so a known value is the point.
pub const PASSWORD: &str = "bench-password-123";
const BATCH: u64 = 10_000;
const SAMPLE: u64 = 1_000;
const SMALL_QUEUE: u64 = 20;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, env = "CAREQ_DATABASE_URL")]
    database_url: String,
    /// Patients of the big clinic.
    #[arg(long, default_value_t = 100_000)]
    patients: u64,
    /// Waiting tickets of the big clinic for today.
    #[arg(long, default_value_t = 300_000)]
    tickets: u64,
    /// Write the JSON here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Seeded {
    username: &'static str,
    password: &'static str,
    big_clinic: String,
    small_clinic: String,
    patients: u64,
    tickets: u64,
    /// Evenly spread over all patients.
    sample: Vec<Sampled>,
}

#[derive(Serialize)]
struct Sampled {
    id: String,
    mrn: String,
    date_of_birth: String,
    /// The folded family name: a prefix few other patients share.
    prefix: String,
}

// Syllables for names; a few carry accents so folding is exercised. Family names take three
// (32^3 = 32768 of them), given names two (40^2 = 1600): a full family name is a rare prefix.
const FAMILY: [&str; 32] = [
    "Bar", "Cor", "Dal", "Fen", "Gar", "Hol", "Jur", "Kas", "Lin", "Mör", "Nav", "Ost", "Pra",
    "Quin", "Ros", "Sel", "Tam", "Ulm", "Ver", "Wes", "Yar", "Zan", "Bré", "Cas", "Dun", "Ell",
    "Fal", "Grü", "Hen", "Isk", "Lom", "Mar",
];
const GIVEN: [&str; 40] = [
    "A", "Be", "Ca", "Da", "E", "Fe", "Gi", "Ha", "I", "Jo", "Ka", "Le", "Mi", "No", "O", "Pa",
    "Ra", "Se", "Ti", "U", "Va", "Wil", "Xa", "Yo", "Zé", "Lu", "Mo", "Ni", "Ro", "Sa", "la", "na",
    "ra", "ta", "lo", "mi", "nie", "sa", "ël", "ko",
];
const NAME_SPACE: u64 = 32 * 32 * 32 * 1600;

/// A bijection on `0..NAME_SPACE` (2^21 * 25; the multiplier is odd and not a multiple of 5),
/// so every patient gets a distinct name pair and neighbours in insertion order do not share
/// prefixes.
fn scramble(i: u64) -> u64 {
    (i * 2_654_435_761) % NAME_SPACE
}

fn cap(s: String) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn names(i: u64) -> (String, String) {
    let mut n = scramble(i);
    let mut family = String::new();
    for _ in 0..3 {
        family.push_str(&FAMILY[(n % 32) as usize].to_lowercase());
        n /= 32;
    }
    let given = format!(
        "{}{}",
        GIVEN[(n % 40) as usize],
        GIVEN[(n / 40 % 40) as usize].to_lowercase()
    );
    (cap(given), cap(family))
}

/// Fields for patient `i`: realistic, distinct names, MRN, phone, and a spread of birthdays.
fn fields(i: u64, mrn_prefix: char) -> PatientFields {
    let (given_name, family_name) = names(i);
    let dob = jiff::civil::date(1935, 1, 1)
        .checked_add(jiff::Span::new().days((scramble(i) % 31_000) as i64))
        .expect("a date within range");
    PatientFields {
        given_name,
        family_name,
        date_of_birth: dob.to_string(),
        sex: if i.is_multiple_of(2) {
            Sex::Female
        } else {
            Sex::Male
        },
        mrn: Some(format!("{mrn_prefix}{:07}", i + 1)),
        phone: Some(format!("+4366{:09}", i + 1)),
        email: i
            .is_multiple_of(3)
            .then(|| format!("p{}@example.org", i + 1)),
        address: i
            .is_multiple_of(4)
            .then(|| format!("Hauptstraße {}, 1010 Wien", i % 200 + 1)),
        height_cm: i.is_multiple_of(5).then_some(150.0 + (i % 50) as f64),
        weight_kg: i.is_multiple_of(5).then_some(50.0 + (i % 60) as f64),
    }
}

async fn clinic(conn: &mut SqliteConnection, name: &str, prefix: &str) -> anyhow::Result<Clinic> {
    let valid = ValidClinic::parse(name, "Europe/Vienna", prefix, Some("AT"))
        .map_err(|e| anyhow::anyhow!("bench clinic: {e:?}"))?;
    let id = crate::ids::new_id("cln");
    super::clinics::insert(conn, &id, &valid).await?;
    super::clinics::find(conn, &id)
        .await?
        .context("the clinic just inserted")
}

/// Inserts `count` patients of `clinic` with the engine's insert, `BATCH` per commit, noting every
/// `count / SAMPLE`-th in `sample`; returns their ids.
async fn patients(
    conn: &mut SqliteConnection,
    clinic: &Clinic,
    count: u64,
    mrn_prefix: char,
    mut sample: Option<&mut Vec<Sampled>>,
) -> anyhow::Result<Vec<String>> {
    let every = (count / SAMPLE).max(1);
    let mut ids = Vec::with_capacity(count as usize);
    for start in (0..count).step_by(BATCH as usize) {
        sqlx::query("BEGIN").execute(&mut *conn).await?;
        for i in start..(start + BATCH).min(count) {
            let f = fields(i, mrn_prefix);
            let valid =
                ValidPatient::parse(&f).map_err(|e| anyhow::anyhow!("patient {i}: {e:?}"))?;
            let id = crate::ids::new_id("pat");
            let mrn = f.mrn.clone().unwrap_or_default();
            super::patients::insert(conn, &id, &clinic.id, &mrn, &valid).await?;
            if let Some(sample) = sample.as_mut().filter(|_| i.is_multiple_of(every)) {
                sample.push(Sampled {
                    id: id.clone(),
                    mrn,
                    date_of_birth: valid.date_of_birth.clone(),
                    prefix: fold(&valid.family_name),
                });
            }
            ids.push(id);
        }
        sqlx::query("COMMIT").execute(&mut *conn).await?;
    }
    Ok(ids)
}

/// Issues `count` waiting tickets for today, each naming one of `patients`: numbers come from
/// the day counter `queue::store::next_seq` bumps (advanced by the whole count at once, so the
/// server's next ticket continues the numbering); rows go in as `queue::store::insert` writes
/// them, many per statement (one statement per ticket made seeding 300,000 take a minute).
async fn tickets(
    conn: &mut SqliteConnection,
    clinic: &Clinic,
    count: u64,
    patients: &[String],
) -> anyhow::Result<()> {
    const ROWS: u64 = 500;
    let day = crate::queue::local_day(clinic);
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO queue_days (clinic_id, day, last_seq) VALUES ($1, $2, $3)
         ON CONFLICT (clinic_id, day) DO UPDATE SET last_seq = last_seq + $3 RETURNING last_seq",
    )
    .bind(&clinic.id)
    .bind(&day)
    .bind(count as i64)
    .fetch_one(&mut *conn)
    .await?;
    let first = last - count as i64 + 1;
    let (now_ms, now) = (crate::clock::now_ms(), now_rfc3339());
    for start in (0..count).step_by(ROWS as usize) {
        let rows = (start + ROWS).min(count) - start;
        let values = vec!["(?, ?, ?, ?, ?, ?, 'normal', 'waiting', ?, ?, ?)"; rows as usize];
        let sql = format!(
            "INSERT INTO tickets (id, clinic_id, day, seq, number, patient_id, priority, status,
                 issued_ms, created_at, updated_at) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for i in start..start + rows {
            let seq = first + i as i64;
            query = query
                .bind(crate::ids::new_id("tkt"))
                .bind(&clinic.id)
                .bind(&day)
                .bind(seq)
                .bind(format!("{}-{seq:03}", clinic.ticket_prefix))
                .bind(patients.get(i as usize % patients.len().max(1)))
                // A millisecond apart, so the calling order is the numbering.
                .bind(now_ms - (count - i) as i64)
                .bind(&now)
                .bind(&now);
        }
        query.execute(&mut *conn).await?;
    }
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // Opening migrates; the seed then writes through a connection of its own (a bench tool,
    // not a request), and the bench user goes through the writer like any account.
    let db = crate::store::Store::open(crate::store::Options::cli(&args.database_url)).await?;
    let mut conn = <SqliteConnection as sqlx::Connection>::connect(&args.database_url).await?;
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clinics")
        .fetch_one(&mut conn)
        .await?;
    if existing > 0 {
        bail!("bench-seed wants a fresh database; this one already has clinics");
    }
    // Seed speed only: this connection's commits skip fsync, and index pages stay in memory.
    for pragma in ["PRAGMA synchronous = OFF", "PRAGMA cache_size = -262144"] {
        sqlx::query(pragma).execute(&mut conn).await?;
    }
    let big = clinic(&mut conn, "Bench General", "B").await?;
    let small = clinic(&mut conn, "Bench Corner", "S").await?;
    let mut sample = Vec::new();
    let big_patients = patients(&mut conn, &big, args.patients, 'M', Some(&mut sample)).await?;
    let small_patients = patients(&mut conn, &small, SMALL_QUEUE, 'S', None).await?;
    tickets(&mut conn, &big, args.tickets, &big_patients).await?;
    tickets(&mut conn, &small, SMALL_QUEUE, &small_patients).await?;
    // Everything to the main file, durably, before the connection goes back to the pool.
    for pragma in [
        "PRAGMA synchronous = FULL",
        "PRAGMA wal_checkpoint(TRUNCATE)",
    ] {
        sqlx::query(pragma).execute(&mut conn).await?;
    }
    sqlx::Connection::close(conn).await?;
    let user = NewUser {
        username: "bench".into(),
        password: PASSWORD.into(),
        role: Role::Admin,
        clinic_ids: vec![big.id.clone(), small.id.clone()],
    };
    crate::users::create(&db, user, None)
        .await
        .map_err(|e| anyhow::anyhow!("{:?}", e.problem()))?;
    db.close().await;
    let seeded = Seeded {
        username: "bench",
        password: PASSWORD,
        big_clinic: big.id,
        small_clinic: small.id,
        patients: args.patients,
        tickets: args.tickets,
        sample,
    };
    let json = serde_json::to_string_pretty(&seeded)?;
    match &args.out {
        // It holds the bench user's password: owner-only, like every file careq writes.
        Some(path) => {
            use std::io::Write;
            let _ = std::fs::remove_file(path);
            crate::private_files::create_new(path)
                .and_then(|mut f| f.write_all(json.as_bytes()))
                .with_context(|| format!("writing {path:?}"))?
        }
        None => println!("{json}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_names_are_distinct_valid_and_fold_to_rare_prefixes() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            let f = fields(i, 'M');
            assert!(ValidPatient::parse(&f).is_ok(), "patient {i}: {f:?}");
            assert!(seen.insert((fold(&f.given_name), fold(&f.family_name))));
        }
        let prefix = fold(&names(7).1);
        let sharing = (0..20_000)
            .filter(|&i| fold(&names(i).1).starts_with(&prefix))
            .count();
        assert!(sharing < 10, "{prefix} is shared by {sharing}");
    }
}
