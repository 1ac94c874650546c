//! `careq bench-seed` (hidden): fills a fresh database for `bench/run.sh` and prints what the
//! load driver needs as JSON. Rows go in through the store's own queries (clinic and patient
//! inserts of `careq-store`, keys computed as the patient create path computes them), in big
//! write units of the [`Store`](crate::store::Store) — thousands of rows per commit — and
//! tickets as the queue's insert writes them, but many per statement.
//!
//! Two clinics: "big" holds the patients and `--tickets` waiting tickets for today; "small"
//! holds a few patients with one waiting ticket each (the queue-view scenario). A `bench` admin
//! signs in with [`PASSWORD`].
use std::path::PathBuf;

use anyhow::{bail, Context};
use careq_store::clinics::{ClinicFields, ClinicRow};
use careq_store::queue::WaitingTicket;
use serde::Serialize;

use crate::auth::Role;
use crate::clinics::domain::{Clinic, ValidClinic};
use crate::clock::now_rfc3339;
use crate::error::ApiError;
use crate::patients::domain::{
    fold, identity_key, search_key, sort_key_of, PatientFields, Sex, ValidPatient,
};
use crate::store::Store;
use crate::users::domain::NewUser;

/// The bench user's password: a throwaway database, so a known value is the point.
pub const PASSWORD: &str = "bench-password-123";
/// Patients per write unit (one commit each).
const BATCH: u64 = 10_000;
/// Tickets per write unit.
const TICKET_BATCH: u64 = 50_000;
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

/// A seeded patient ready to store: its id, MRN and valid fields, with the name keys the
/// patient create path stores beside them (identity keys for duplicate checks, search keys,
/// the name order's key).
struct Prepared {
    id: String,
    mrn: String,
    valid: ValidPatient,
    given_norm: String,
    family_norm: String,
    given_key: String,
    family_key: String,
    sort_key: String,
}

impl Prepared {
    fn new(i: u64, mrn_prefix: char) -> anyhow::Result<Prepared> {
        let valid = ValidPatient::parse(&fields(i, mrn_prefix))
            .map_err(|e| anyhow::anyhow!("patient {i}: {e:?}"))?;
        let id = crate::ids::new_id("pat");
        let mrn = valid
            .mrn
            .clone()
            .context("every seeded patient has an MRN")?;
        let (given_key, family_key) = (
            search_key(&valid.given_name),
            search_key(&valid.family_name),
        );
        Ok(Prepared {
            sort_key: sort_key_of(&family_key, &given_key, &id),
            given_norm: identity_key(&valid.given_name),
            family_norm: identity_key(&valid.family_name),
            given_key,
            family_key,
            id,
            mrn,
            valid,
        })
    }

    fn fields(&self) -> careq_store::patients::PatientFields<'_> {
        let v = &self.valid;
        careq_store::patients::PatientFields {
            mrn: &self.mrn,
            given_name: &v.given_name,
            family_name: &v.family_name,
            date_of_birth: &v.date_of_birth,
            sex: v.sex.as_str(),
            phone: v.phone.as_deref(),
            email: v.email.as_deref(),
            address: v.address.as_deref(),
            height_cm: v.height_cm,
            weight_kg: v.weight_kg,
            given_norm: &self.given_norm,
            family_norm: &self.family_norm,
            given_key: &self.given_key,
            family_key: &self.family_key,
            sort_key: &self.sort_key,
        }
    }
}

/// Patients `start..end` of the series, in order, prepared off the writer's thread: split over
/// the cores the writer leaves (validating and keying a patient costs about what storing it
/// does).
fn prepare(start: u64, end: u64, mrn_prefix: char) -> anyhow::Result<Vec<Prepared>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let part = (end - start)
        .div_ceil(cores.saturating_sub(1).max(1) as u64)
        .max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = (start..end)
            .step_by(part as usize)
            .map(|from| {
                s.spawn(move || {
                    (from..(from + part).min(end))
                        .map(|i| Prepared::new(i, mrn_prefix))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity((end - start) as usize);
        for p in parts {
            all.extend(
                p.join()
                    .map_err(|_| anyhow::anyhow!("preparing patients panicked"))??,
            );
        }
        Ok(all)
    })
}

/// What a failed unit of work says, for the terminal.
fn failed(e: ApiError) -> anyhow::Error {
    anyhow::anyhow!("bench-seed: {e:?}")
}

fn clinic_of(r: ClinicRow) -> Clinic {
    Clinic {
        id: r.id,
        name: r.name,
        timezone: r.timezone,
        ticket_prefix: r.ticket_prefix,
        country: r.country,
        version: r.version,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// Creates the big and the small clinic in one unit, which first makes sure the database
/// holds no clinic yet; `None` when it does.
async fn clinics(db: &Store) -> anyhow::Result<Option<(Clinic, Clinic)>> {
    let parse = |name: &str, prefix: &str| {
        ValidClinic::parse(name, "Europe/Vienna", prefix, Some("AT"))
            .map_err(|e| anyhow::anyhow!("bench clinic: {e:?}"))
    };
    let wanted = [
        (crate::ids::new_id("cln"), parse("Bench General", "B")?),
        (crate::ids::new_id("cln"), parse("Bench Corner", "S")?),
    ];
    let made = db
        .write_data(move |conn| {
            if careq_store::clinics::any(conn)? {
                return Ok(None);
            }
            let now = now_rfc3339();
            let mut made = Vec::with_capacity(wanted.len());
            for (id, c) in &wanted {
                let fields = ClinicFields {
                    name: c.name.as_str(),
                    timezone: c.timezone.as_str(),
                    ticket_prefix: c.ticket_prefix.as_str(),
                    country: c.country.as_ref().map(|c| c.as_str()),
                };
                if !careq_store::clinics::insert(conn, id, &fields, &now)? {
                    return Err(ApiError::internal(format!("the clinic id {id} is taken")));
                }
                let row = careq_store::clinics::find(conn, id)?
                    .ok_or_else(|| ApiError::internal("the clinic just inserted is missing"))?;
                made.push(clinic_of(row));
            }
            let small = made.pop();
            Ok(made.pop().zip(small))
        })
        .await
        .map_err(failed)?;
    Ok(made)
}

/// Stores `count` patients of `clinic_id`, [`BATCH`] per unit (the next batch is prepared
/// while the writer stores one), noting every `count / SAMPLE`-th in `sample`; returns their
/// ids in order.
async fn patients(
    db: &Store,
    clinic_id: &str,
    count: u64,
    mrn_prefix: char,
    mut sample: Option<&mut Vec<Sampled>>,
) -> anyhow::Result<Vec<String>> {
    let every = (count / SAMPLE).max(1);
    let mut ids = Vec::with_capacity(count as usize);
    let prepare_from = |start: u64| {
        tokio::task::spawn_blocking(move || prepare(start, (start + BATCH).min(count), mrn_prefix))
    };
    let mut next = (count > 0).then(|| prepare_from(0));
    let mut start: u64 = 0;
    while let Some(batch) = next.take() {
        let batch = batch.await.context("preparing patients")??;
        for (i, p) in (start..).zip(&batch) {
            if let Some(sample) = sample.as_mut().filter(|_| i.is_multiple_of(every)) {
                sample.push(Sampled {
                    id: p.id.clone(),
                    mrn: p.mrn.clone(),
                    date_of_birth: p.valid.date_of_birth.clone(),
                    prefix: fold(&p.valid.family_name),
                });
            }
            ids.push(p.id.clone());
        }
        start += batch.len() as u64;
        next = (start < count).then(|| prepare_from(start));
        let clinic_id = clinic_id.to_string();
        db.write_data(move |conn| {
            for p in &batch {
                if !careq_store::patients::insert(
                    conn,
                    &p.id,
                    &clinic_id,
                    &p.fields(),
                    &now_rfc3339(),
                )? {
                    return Err(ApiError::internal(format!(
                        "the id or MRN of seeded patient {} ({}) is taken",
                        p.id, p.mrn
                    )));
                }
            }
            Ok(())
        })
        .await
        .map_err(failed)?;
    }
    Ok(ids)
}

/// Issues `count` waiting tickets for today, each naming one of `patients`: numbers come from
/// the day counter `careq_store::queue::next_ticket_seq` bumps (advanced by the whole count in
/// one unit, so the server's next ticket continues the numbering); the rows then go in
/// [`TICKET_BATCH`] per unit.
async fn tickets(
    db: &Store,
    clinic: &Clinic,
    count: u64,
    patients: &[String],
) -> anyhow::Result<()> {
    let day = crate::queue::local_day(clinic);
    let (clinic_id, of_day) = (clinic.id.clone(), day.clone());
    let last = db
        .write_data(move |conn| {
            let last =
                careq_store::queue::take_ticket_seqs(conn, &clinic_id, &of_day, count as i64)?;
            last.ok_or_else(|| ApiError::internal("the bench day is closed"))
        })
        .await
        .map_err(failed)?;
    let first = last - count as i64 + 1;
    let (now_ms, now) = (crate::clock::now_ms(), now_rfc3339());
    for start in (0..count).step_by(TICKET_BATCH as usize) {
        let rows: Vec<WaitingTicket> = (start..(start + TICKET_BATCH).min(count))
            .map(|i| {
                let seq = first + i as i64;
                WaitingTicket {
                    id: crate::ids::new_id("tkt"),
                    seq,
                    number: format!("{}-{seq:03}", clinic.ticket_prefix),
                    patient_id: patients.get(i as usize % patients.len().max(1)).cloned(),
                    // A millisecond apart, so the calling order is the numbering.
                    issued_ms: now_ms - (count - i) as i64,
                }
            })
            .collect();
        let (clinic_id, day, now) = (clinic.id.clone(), day.clone(), now.clone());
        db.write_data(move |conn| {
            Ok(careq_store::queue::insert_waiting(
                conn, &clinic_id, &day, &now, &rows,
            )?)
        })
        .await
        .map_err(failed)?;
    }
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // Opening migrates; every row then goes in through the store's write units, the bench
    // user through the users feature like any account.
    let db = Store::open(crate::store::Options::cli(&args.database_url)).await?;
    let Some((big, small)) = clinics(&db).await? else {
        bail!("bench-seed wants a fresh database; this one already has clinics");
    };
    let mut sample = Vec::new();
    let big_patients = patients(&db, &big.id, args.patients, 'M', Some(&mut sample)).await?;
    let small_patients = patients(&db, &small.id, SMALL_QUEUE, 'S', None).await?;
    tickets(&db, &big, args.tickets, &big_patients).await?;
    tickets(&db, &small, SMALL_QUEUE, &small_patients).await?;
    let user = NewUser {
        username: "bench".into(),
        password: PASSWORD.into(),
        role: Role::Admin,
        clinic_ids: vec![big.id.clone(), small.id.clone()],
    };
    crate::users::create(&db, user, None)
        .await
        .map_err(|e| anyhow::anyhow!("{:?}", e.problem()))?;
    // Every unit was answered once durable; dropping the last handle waits for the engine's
    // threads, so the database is closed before anyone is told it is ready.
    db.close().await;
    drop(db);
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
    use crate::store::ReadExt;

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

    #[test]
    fn patients_are_prepared_in_order_with_the_keys_the_create_path_stores() {
        let batch = prepare(40, 65, 'M').unwrap();
        let mrns: Vec<&str> = batch.iter().map(|p| p.mrn.as_str()).collect();
        let want: Vec<String> = (41..=65).map(|n| format!("M{n:07}")).collect();
        assert_eq!(mrns, want);
        let p = &batch[0];
        let (given, family) = (&p.valid.given_name, &p.valid.family_name);
        assert_eq!((given, family), (&names(40).0, &names(40).1));
        assert_eq!(p.given_norm, identity_key(given));
        assert_eq!(p.family_key, search_key(family));
        let sort = sort_key_of(&search_key(family), &search_key(given), &p.id);
        assert_eq!(p.fields().sort_key, sort);
    }

    #[tokio::test]
    async fn a_small_seed_stores_what_it_reports_and_refuses_a_second_run() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("seed.db").display());
        let out = dir.path().join("seed.json");
        let args = |out: &std::path::Path| Args {
            database_url: url.clone(),
            patients: 3_000,
            tickets: 1_200,
            out: Some(out.to_path_buf()),
        };
        run(args(&out)).await.unwrap();
        let seeded: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(seeded["sample"].as_array().unwrap().len(), 1_000);
        let big = seeded["big_clinic"].as_str().unwrap().to_string();
        let db = Store::open(crate::store::Options::cli(&url)).await.unwrap();
        let counts = db
            .read(move |conn| {
                let one = |conn: &mut dyn crate::store::Read, sql: &str| {
                    conn.int(sql, &[big.as_str().into()])
                        .map(Option::unwrap_or_default)
                };
                Ok([
                    one(conn, "SELECT COUNT(*) FROM patients WHERE clinic_id = $1")?,
                    one(conn, "SELECT COUNT(*) FROM tickets WHERE clinic_id = $1")?,
                    one(conn, "SELECT MAX(seq) FROM tickets WHERE clinic_id = $1")?,
                    one(conn, "SELECT last_seq FROM queue_days WHERE clinic_id = $1")?,
                    one(
                        conn,
                        "SELECT COUNT(*) FROM patients WHERE clinic_id = $1
                           AND sort_key = family_key || char(31) || given_key || char(31) || id",
                    )?,
                    conn.int("SELECT COUNT(*) FROM patients", &[])?
                        .unwrap_or_default(),
                    conn.int("SELECT COUNT(*) FROM users WHERE username = 'bench'", &[])?
                        .unwrap_or_default(),
                ])
            })
            .await
            .unwrap();
        assert_eq!(counts, [3_000, 1_200, 1_200, 1_200, 3_000, 3_020, 1]);
        drop(db);
        let again = run(args(&dir.path().join("again.json"))).await.unwrap_err();
        assert!(again.to_string().contains("fresh database"), "{again}");
    }
}
