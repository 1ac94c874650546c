//! Patients in PostgreSQL. Every list is scoped to the caller's clinics and bounded.
use sqlx::{PgConnection, Row};

use crate::clock::now_rfc3339;
use crate::patients::domain::{
    bmi, identity_key, search_key, search_words, sort_key_of, Patient, SearchFilters, Sex, Sort,
    StoredPatient, ValidPatient,
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

/// A live patient of the clinic with the same names (compared by [`identity_key`], as stored in
/// `given_norm`/`family_norm`) and date of birth. Inside a unit it first locks that identity, so
/// two creates of the same person cannot both find none.
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
            identity_key(&v.family_name),
            identity_key(&v.given_name),
            v.date_of_birth
        );
        lock_key(conn, &identity).await?;
    }
    sqlx::query_scalar(
        "SELECT id FROM patients WHERE clinic_id = $1 AND family_norm = $2 AND given_norm = $3
           AND date_of_birth = $4 AND deleted_at IS NULL AND merged_into IS NULL AND id <> $5 LIMIT 1",
    )
    .bind(clinic_id)
    .bind(identity_key(&v.family_name))
    .bind(identity_key(&v.given_name))
    .bind(&v.date_of_birth)
    .bind(except)
    .fetch_optional(conn)
    .await
}

fn sort_key(v: &ValidPatient, id: &str) -> String {
    sort_key_of(&search_key(&v.family_name), &search_key(&v.given_name), id)
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
             email, address, height_cm, weight_kg, given_norm, family_norm, sort_key, created_at, updated_at,
             given_key, family_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17, $18)
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
    .bind(identity_key(&v.given_name))
    .bind(identity_key(&v.family_name))
    .bind(sort_key(v, id))
    .bind(now_rfc3339())
    .bind(search_key(&v.given_name))
    .bind(search_key(&v.family_name))
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
             family_norm = $12, sort_key = $13, version = version + 1, updated_at = $14,
             given_key = $17, family_key = $18
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
    .bind(identity_key(&v.given_name))
    .bind(identity_key(&v.family_name))
    .bind(sort_key(v, id))
    .bind(now_rfc3339())
    .bind(id)
    .bind(version)
    .bind(search_key(&v.given_name))
    .bind(search_key(&v.family_name))
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

/// A search as SQL and its binds. Every filter kind is served by a btree (checked by a plan
/// test); a name query is the union of two index ranges on its first word — the family key's
/// (for the name order a range of sort_key itself, which starts with it) and the given key's —
/// each cut at the limit, with every word checked on the rows found.
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
    let words = search_words(f.q.as_deref().unwrap_or(""));
    let mut b = Binds::default();
    // Conditions every branch shares; the keyset bound is added per branch.
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
    // FHIR's `family` and `given`: a range of the sort key (which starts with the family
    // name's search key) and of the given name's search key.
    if let Some(family) = SearchFilters::key_prefix(f.family.as_deref()) {
        let (start, end) = (b.text(&family), b.text(&prefix_end(&family)));
        cond.push_str(&format!(" AND sort_key >= {start} AND sort_key < {end}"));
    }
    if let Some(given) = SearchFilters::key_prefix(f.given.as_deref()) {
        let (start, end) = (b.text(&given), b.text(&prefix_end(&given)));
        cond.push_str(&format!(" AND given_key >= {start} AND given_key < {end}"));
    }
    let mut narrow = false;
    for (col, val) in [
        ("mrn", &f.mrn),
        ("phone", &f.phone),
        ("email", &f.email),
        ("date_of_birth", &f.date_of_birth),
        ("clinic_id", &f.clinic_id),
    ] {
        if let Some(v) = val {
            cond.push_str(&format!(" AND {col} = {}", b.text(v)));
            narrow |= col != "clinic_id";
        }
    }
    if !words.is_empty() {
        let mut prefix = |w: &str| {
            let (start, end) = (b.text(w), b.text(&prefix_end(w)));
            format!(
                "((family_key >= {start} AND family_key < {end}) OR (given_key >= {start} AND given_key < {end}))"
            )
        };
        let each: Vec<String> = words.iter().map(|w| prefix(w)).collect();
        let mut text = format!("({})", each.join(" AND "));
        if words.len() > 1 {
            text.push_str(&format!(" OR {}", prefix(&words.concat())));
        }
        cond.push_str(&format!(" AND ({text})"));
    }
    let lim = b.add(Bind::Int(limit as i64 + 1));
    let (order, mut keyset) = match f.sort {
        Sort::Name => ("sort_key", format!("sort_key > {}", b.text(after))),
        Sort::Created | Sort::BirthDate => {
            let col = if f.sort == Sort::Created {
                "created_at"
            } else {
                "date_of_birth"
            };
            let (v, id) = after.split_once('\u{1f}').unwrap_or(("", ""));
            let (v, id) = (b.text(v), b.text(id));
            (
                if f.sort == Sort::Created {
                    "created_at, id"
                } else {
                    "date_of_birth, id"
                },
                format!("({col}, id) > ({v}, {id})"),
            )
        }
    };
    let select = |keyset: &str, extra: &str| {
        format!(
            "SELECT {COLUMNS}, sort_key FROM patients WHERE {cond} AND {keyset}{extra}
             ORDER BY {order} LIMIT {lim}"
        )
    };
    let sql = match words.first() {
        Some(first) if !narrow => {
            let (start, end) = (b.text(first), b.text(&prefix_end(first)));
            let by_family = if f.sort == Sort::Name {
                // One lower bound: past both the cursor and the prefix. No sort key equals a
                // prefix (keys end in a separator and the id), so `>` is exact.
                let family_after = b.text(after.max(first.as_str()));
                select(
                    &format!("sort_key > {family_after}"),
                    &format!(" AND sort_key < {end}"),
                )
            } else {
                select(
                    &keyset,
                    &format!(" AND family_key >= {start} AND family_key < {end}"),
                )
            };
            let by_given = select(
                &keyset,
                &format!(" AND given_key >= {start} AND given_key < {end}"),
            );
            format!(
                "SELECT * FROM (({by_family}) UNION ({by_given})) AS found ORDER BY {order} LIMIT {lim}"
            )
        }
        _ => select(&std::mem::take(&mut keyset), ""),
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

/// The position of a row in a sort's order, as `search_sql` reads it back from a cursor.
fn page_key(sort: Sort, r: &sqlx::postgres::PgRow) -> String {
    let pair = |col: &str| {
        format!(
            "{}\u{1f}{}",
            r.get::<String, _>(col),
            r.get::<String, _>("id")
        )
    };
    match sort {
        Sort::Name => r.get("sort_key"),
        Sort::Created => pair("created_at"),
        Sort::BirthDate => pair("date_of_birth"),
    }
}

/// Gives rows stored before search keys existed their keys (and the sort key made of them),
/// a thousand per commit; run after migrating, before serving.
pub async fn backfill_search_keys(conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
    use sqlx::Connection;
    let mut done = 0;
    loop {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, given_name, family_name FROM patients WHERE given_key IS NULL LIMIT 1000",
        )
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            return Ok(done);
        }
        let mut tx = conn.begin().await?;
        for (id, given, family) in &rows {
            let (g, f) = (search_key(given), search_key(family));
            sqlx::query(
                "UPDATE patients SET given_key = $1, family_key = $2, sort_key = $3 WHERE id = $4",
            )
            .bind(&g)
            .bind(&f)
            .bind(sort_key_of(&f, &g, id))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        done += rows.len() as u64;
    }
}

/// Gives the rows listed in `patients_rekey` (stored before names were compared by
/// [`identity_key`]; migration 0017) their duplicate keys, a thousand per commit, each taken off
/// the list in the commit that re-keys it; run after migrating, before serving.
pub async fn rekey_identities(conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
    use sqlx::Connection;
    let mut done = 0;
    loop {
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT r.id, p.given_name, p.family_name FROM patients_rekey r
               LEFT JOIN patients p ON p.id = r.id ORDER BY r.id LIMIT 1000",
        )
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            return Ok(done);
        }
        let mut tx = conn.begin().await?;
        for (id, given, family) in &rows {
            if let (Some(given), Some(family)) = (given, family) {
                sqlx::query("UPDATE patients SET given_norm = $1, family_norm = $2 WHERE id = $3")
                    .bind(identity_key(given))
                    .bind(identity_key(family))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM patients_rekey WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        done += rows.len() as u64;
    }
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
        .map(|r| (page_key(f.sort, r), patient_of(r)))
        .collect())
}
