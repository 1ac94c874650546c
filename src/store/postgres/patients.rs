//! Patients in PostgreSQL. Every list is scoped to the caller's clinics and bounded.
use sqlx::{PgConnection, Row};

use crate::clock::now_rfc3339;
use crate::patients::domain::{
    bmi, fold, Patient, SearchFilters, Sex, StoredPatient, ValidPatient,
};
use crate::store::PatientMark;

const COLUMNS: &str =
    "id, clinic_id, mrn, given_name, family_name, date_of_birth, sex, phone, email, address,
    height_cm, weight_kg, version, created_at, updated_at, deleted_at, merged_into, sealed_at";

fn patient_of(r: &sqlx::postgres::PgRow) -> Patient {
    let height: Option<f64> = r.get("height_cm");
    let weight: Option<f64> = r.get("weight_kg");
    let sex: String = r.get("sex");
    Patient {
        id: r.get("id"),
        clinic_id: r.get("clinic_id"),
        mrn: r.get("mrn"),
        given_name: r.get("given_name"),
        family_name: r.get("family_name"),
        date_of_birth: r.get("date_of_birth"),
        sex: Sex::parse(&sex).unwrap_or(Sex::Unknown),
        phone: r.get("phone"),
        email: r.get("email"),
        address: r.get("address"),
        height_cm: height,
        weight_kg: weight,
        bmi: bmi(height, weight),
        version: r.get("version"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

fn stored_of(r: &sqlx::postgres::PgRow) -> StoredPatient {
    StoredPatient {
        patient: patient_of(r),
        deleted: r.get::<Option<String>, _>("deleted_at").is_some(),
        merged_into: r.get("merged_into"),
        sealed: r.get::<Option<String>, _>("sealed_at").is_some(),
    }
}

pub async fn find(conn: &mut PgConnection, id: &str) -> Result<Option<StoredPatient>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM patients WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(stored_of))
}

/// The next free assigned MRN for a clinic (`PREFIX-000042`), from a per-clinic counter.
pub async fn next_mrn(
    conn: &mut PgConnection,
    clinic_id: &str,
    prefix: &str,
) -> Result<String, sqlx::Error> {
    loop {
        let n: i64 = sqlx::query_scalar(
            "INSERT INTO clinic_counters (clinic_id, name, value) VALUES ($1, 'mrn', 1)
             ON CONFLICT (clinic_id, name) DO UPDATE SET value = clinic_counters.value + 1
             RETURNING value",
        )
        .bind(clinic_id)
        .fetch_one(&mut *conn)
        .await?;
        let mrn = format!("{prefix}-{n:06}");
        if id_by_mrn(conn, clinic_id, &mrn).await?.is_none() {
            return Ok(mrn);
        }
    }
}

pub async fn id_by_mrn(
    conn: &mut PgConnection,
    clinic_id: &str,
    mrn: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM patients WHERE clinic_id = $1 AND mrn = $2")
        .bind(clinic_id)
        .bind(mrn)
        .fetch_optional(conn)
        .await
}

/// Takes a transaction-scoped advisory lock named by `key` (released at commit or rollback):
/// for checks no unique index can make, so that concurrent units checking the same thing run
/// one after the other.
pub async fn lock_key(conn: &mut PgConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// A live patient of the clinic with the same names (folded) and date of birth. Inside a unit
/// it first locks that identity, so two creates of the same person cannot both find none.
pub async fn same_person(
    conn: &mut PgConnection,
    clinic_id: &str,
    v: &ValidPatient,
    except: &str,
    lock: bool,
) -> Result<Option<String>, sqlx::Error> {
    if lock {
        let identity = format!(
            "person\u{1f}{clinic_id}\u{1f}{}\u{1f}{}\u{1f}{}",
            fold(&v.family_name),
            fold(&v.given_name),
            v.date_of_birth
        );
        lock_key(conn, &identity).await?;
    }
    sqlx::query_scalar(
        "SELECT id FROM patients WHERE clinic_id = $1 AND family_norm = $2 AND given_norm = $3
           AND date_of_birth = $4 AND deleted_at IS NULL AND merged_into IS NULL AND id <> $5 LIMIT 1",
    )
    .bind(clinic_id)
    .bind(fold(&v.family_name))
    .bind(fold(&v.given_name))
    .bind(&v.date_of_birth)
    .bind(except)
    .fetch_optional(conn)
    .await
}

fn sort_key(v: &ValidPatient, id: &str) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        fold(&v.family_name),
        fold(&v.given_name),
        id
    )
}

pub async fn insert(
    conn: &mut PgConnection,
    id: &str,
    clinic_id: &str,
    mrn: &str,
    v: &ValidPatient,
) -> Result<bool, sqlx::Error> {
    // A taken MRN stores nothing and leaves the transaction usable (the caller then looks the
    // holder up), as a refused insert does on SQLite.
    let done = sqlx::query(
        "INSERT INTO patients (id, clinic_id, mrn, given_name, family_name, date_of_birth, sex, phone,
             email, address, height_cm, weight_kg, given_norm, family_norm, sort_key, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(clinic_id)
    .bind(mrn)
    .bind(&v.given_name)
    .bind(&v.family_name)
    .bind(&v.date_of_birth)
    .bind(v.sex.as_str())
    .bind(&v.phone)
    .bind(&v.email)
    .bind(&v.address)
    .bind(v.height_cm)
    .bind(v.weight_kg)
    .bind(fold(&v.given_name))
    .bind(fold(&v.family_name))
    .bind(sort_key(v, id))
    .bind(now_rfc3339())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the fields if the patient is still at `version`; false when it moved on meanwhile.
pub async fn update(
    conn: &mut PgConnection,
    id: &str,
    version: i64,
    mrn: &str,
    v: &ValidPatient,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE patients SET mrn = $1, given_name = $2, family_name = $3, date_of_birth = $4, sex = $5,
             phone = $6, email = $7, address = $8, height_cm = $9, weight_kg = $10, given_norm = $11,
             family_norm = $12, sort_key = $13, version = version + 1, updated_at = $14
         WHERE id = $15 AND version = $16 AND deleted_at IS NULL AND merged_into IS NULL",
    )
    .bind(mrn)
    .bind(&v.given_name)
    .bind(&v.family_name)
    .bind(&v.date_of_birth)
    .bind(v.sex.as_str())
    .bind(&v.phone)
    .bind(&v.email)
    .bind(&v.address)
    .bind(v.height_cm)
    .bind(v.weight_kg)
    .bind(fold(&v.given_name))
    .bind(fold(&v.family_name))
    .bind(sort_key(v, id))
    .bind(now_rfc3339())
    .bind(id)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets one lifecycle column (`deleted_at`, `merged_into`, `sealed_at`…) and bumps the version.
pub async fn mark(
    conn: &mut PgConnection,
    id: &str,
    mark: PatientMark,
    value: Option<&str>,
) -> Result<(), sqlx::Error> {
    let sql = match mark {
        PatientMark::Deleted => "UPDATE patients SET deleted_at = $1, version = version + 1, updated_at = $2 WHERE id = $3",
        PatientMark::Merged => "UPDATE patients SET merged_into = $1, version = version + 1, updated_at = $2 WHERE id = $3",
        PatientMark::Sealed => "UPDATE patients SET sealed_at = $2, sealed_reason = $1, version = version + 1, updated_at = $2 WHERE id = $3",
        PatientMark::Unsealed => "UPDATE patients SET sealed_at = NULL, sealed_reason = $1, version = version + 1, updated_at = $2 WHERE id = $3",
    };
    sqlx::query(sql)
        .bind(value)
        .bind(now_rfc3339())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The upper bound of a prefix range: every string that starts with `prefix` sorts below it
/// (text columns compare by code point, COLLATE "C").
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10ffff}")
}

/// A value bound to a search.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(String),
    Texts(Vec<String>),
    Int(i64),
}

/// Numbers the binds of a statement as it is written.
#[derive(Default)]
struct Binds(Vec<Bind>);

impl Binds {
    fn add(&mut self, b: Bind) -> String {
        self.0.push(b);
        format!("${}", self.0.len())
    }
    fn text(&mut self, s: &str) -> String {
        self.add(Bind::Text(s.to_string()))
    }
}

/// A search as SQL and its binds. Every filter kind is served by a btree that also yields the
/// sort_key order (checked by a plan test); a name prefix is the union of a family-name range
/// (a range of sort_key itself, which starts with the folded family name) and a given-name
/// range, each already in order and cut at the limit.
pub fn search_sql(
    member_of: Option<&[String]>,
    f: &SearchFilters,
    after: &str,
    limit: u32,
) -> (String, Vec<Bind>) {
    // A cursor is any position (a forged one included), but PostgreSQL text cannot hold NUL:
    // U+0001 sorts right after it, and no stored key holds either.
    let after = after.replace('\0', "\u{1}");
    let after = after.as_str();
    let mut b = Binds::default();
    // Conditions every branch shares; the lower bound on sort_key is added per branch.
    let mut cond = String::from("deleted_at IS NULL AND merged_into IS NULL");
    if let Some(clinics) = member_of {
        // A member sees their clinics' records, sealed ones left out.
        cond.push_str(" AND sealed_at IS NULL");
        match clinics {
            [one] => cond.push_str(&format!(" AND clinic_id = {}", b.text(one))),
            many => cond.push_str(&format!(
                " AND clinic_id = ANY({})",
                b.add(Bind::Texts(many.to_vec()))
            )),
        }
    }
    // FHIR's `family` and `given`: a range of the sort key (which starts with the folded
    // family name) and of the folded given name.
    if let Some(family) = SearchFilters::folded(f.family.as_deref()) {
        let (start, end) = (b.text(&family), b.text(&prefix_end(&family)));
        cond.push_str(&format!(" AND sort_key >= {start} AND sort_key < {end}"));
    }
    if let Some(given) = SearchFilters::folded(f.given.as_deref()) {
        let (start, end) = (b.text(&given), b.text(&prefix_end(&given)));
        cond.push_str(&format!(
            " AND given_norm >= {start} AND given_norm < {end}"
        ));
    }
    let mut narrow = false;
    for (col, val) in [
        ("mrn", &f.mrn),
        ("phone", &f.phone),
        ("date_of_birth", &f.date_of_birth),
        ("clinic_id", &f.clinic_id),
    ] {
        if let Some(v) = val {
            cond.push_str(&format!(" AND {col} = {}", b.text(v)));
            narrow |= col != "clinic_id";
        }
    }
    let q =
        f.q.as_deref()
            .map(|q| {
                fold(q)
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect::<String>()
            })
            .filter(|q| !q.is_empty());
    let lim = b.add(Bind::Int(limit as i64 + 1));
    let select = |lower: &str, extra: &str| {
        format!(
            "SELECT {COLUMNS}, sort_key FROM patients WHERE {cond} AND sort_key > {lower}{extra}
             ORDER BY sort_key LIMIT {lim}"
        )
    };
    let sql = match q {
        Some(q) if !narrow => {
            // The family range gets one lower bound: past both the cursor and the prefix. No
            // sort key equals a prefix (keys hold separators a query cannot), so `>` is exact.
            let family_after = b.text(after.max(q.as_str()));
            let after = b.text(after);
            let (start, end) = (b.text(&q), b.text(&prefix_end(&q)));
            let by_family = select(&family_after, &format!(" AND sort_key < {end}"));
            let by_given = select(
                &after,
                &format!(" AND given_norm >= {start} AND given_norm < {end}"),
            );
            format!(
                "SELECT * FROM (({by_family}) UNION ({by_given})) AS found ORDER BY sort_key LIMIT {lim}"
            )
        }
        Some(q) => {
            let after = b.text(after);
            let (start, end) = (b.text(&q), b.text(&prefix_end(&q)));
            select(
                &after,
                &format!(
                    " AND ((sort_key >= {start} AND sort_key < {end})
                       OR (given_norm >= {start} AND given_norm < {end}))"
                ),
            )
        }
        None => {
            let after = b.text(after);
            select(&after, "")
        }
    };
    (sql, b.0)
}

/// How many live patients match (at most `cap`: the count reads no more rows than that).
pub async fn count(
    conn: &mut PgConnection,
    member_of: Option<&[String]>,
    f: &SearchFilters,
    cap: u32,
) -> Result<i64, sqlx::Error> {
    let (sql, binds) = search_sql(member_of, f, "", cap.saturating_sub(1));
    let sql = format!("SELECT COUNT(*) FROM ({sql}) AS counted");
    let mut query = sqlx::query_scalar::<_, i64>(&sql);
    for b in binds {
        query = match b {
            Bind::Text(t) => query.bind(t),
            Bind::Texts(t) => query.bind(t),
            Bind::Int(n) => query.bind(n),
        };
    }
    query.fetch_one(conn).await
}

/// Live patients in name order after `after`, at most `limit + 1`, each with its stored sort
/// key: the position a cursor names (the stored key, not one folded afresh, since rows keep the
/// folding they were stored with).
pub async fn search(
    conn: &mut PgConnection,
    member_of: Option<&[String]>,
    f: &SearchFilters,
    after: &str,
    limit: u32,
) -> Result<Vec<(String, Patient)>, sqlx::Error> {
    let (sql, binds) = search_sql(member_of, f, after, limit);
    let mut query = sqlx::query(&sql);
    for b in binds {
        query = match b {
            Bind::Text(t) => query.bind(t),
            Bind::Texts(t) => query.bind(t),
            Bind::Int(n) => query.bind(n),
        };
    }
    let rows = query.fetch_all(conn).await?;
    Ok(rows
        .iter()
        .map(|r| (r.get("sort_key"), patient_of(r)))
        .collect())
}
