//! Patients in SQLite. Every list is scoped to the caller's clinics and bounded.
use sqlx::{Row, SqliteConnection};

use crate::clock::now_rfc3339;
use crate::patients::domain::{
    bmi, fold, Patient, SearchFilters, Sex, StoredPatient, ValidPatient,
};
use crate::store::{PatientMark, StoreError};

const COLUMNS: &str =
    "id, clinic_id, mrn, given_name, family_name, date_of_birth, sex, phone, email, address,
    height_cm, weight_kg, version, created_at, updated_at, deleted_at, merged_into, sealed_at";

fn patient_of(r: &sqlx::sqlite::SqliteRow) -> Patient {
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

fn stored_of(r: &sqlx::sqlite::SqliteRow) -> StoredPatient {
    StoredPatient {
        patient: patient_of(r),
        deleted: r.get::<Option<String>, _>("deleted_at").is_some(),
        merged_into: r.get("merged_into"),
        sealed: r.get::<Option<String>, _>("sealed_at").is_some(),
    }
}

pub async fn find(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<StoredPatient>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM patients WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(stored_of))
}

/// The next free assigned MRN for a clinic (`PREFIX-000042`), from a per-clinic counter.
pub async fn next_mrn(
    conn: &mut SqliteConnection,
    clinic_id: &str,
    prefix: &str,
) -> Result<String, StoreError> {
    loop {
        let n: i64 = sqlx::query_scalar(
            "INSERT INTO clinic_counters (clinic_id, name, value) VALUES ($1, 'mrn', 1)
             ON CONFLICT (clinic_id, name) DO UPDATE SET value = value + 1 RETURNING value",
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
    conn: &mut SqliteConnection,
    clinic_id: &str,
    mrn: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM patients WHERE clinic_id = $1 AND mrn = $2")
            .bind(clinic_id)
            .bind(mrn)
            .fetch_optional(conn)
            .await?,
    )
}

/// A live patient of the clinic with the same names (folded) and date of birth.
pub async fn same_person(
    conn: &mut SqliteConnection,
    clinic_id: &str,
    v: &ValidPatient,
    except: &str,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM patients WHERE clinic_id = $1 AND family_norm = $2 AND given_norm = $3
           AND date_of_birth = $4 AND deleted_at IS NULL AND merged_into IS NULL AND id <> $5 LIMIT 1",
    )
    .bind(clinic_id)
    .bind(fold(&v.family_name))
    .bind(fold(&v.given_name))
    .bind(&v.date_of_birth)
    .bind(except)
    .fetch_optional(conn)
    .await?)
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
    conn: &mut SqliteConnection,
    id: &str,
    clinic_id: &str,
    mrn: &str,
    v: &ValidPatient,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO patients (id, clinic_id, mrn, given_name, family_name, date_of_birth, sex, phone,
             email, address, height_cm, weight_kg, given_norm, family_norm, sort_key, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
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
    Ok(())
}

/// Replaces the fields if the patient is still at `version`; false when it moved on meanwhile.
pub async fn update(
    conn: &mut SqliteConnection,
    id: &str,
    version: i64,
    mrn: &str,
    v: &ValidPatient,
) -> Result<bool, StoreError> {
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
    conn: &mut SqliteConnection,
    id: &str,
    mark: PatientMark,
    value: Option<&str>,
) -> Result<(), StoreError> {
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

/// The upper bound of a prefix range: every string that starts with `prefix` sorts below it.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10ffff}")
}

/// A search as SQL: the statement and its text binds (the limit is bound last). Each filter
/// kind is served by an index that also yields the sort_key order, named with `INDEXED BY` so
/// the plan cannot silently fall back to walking the whole table; a name prefix is the union of
/// a family-name range (a range of sort_key itself, which starts with the folded family name)
/// and a given-name range.
pub fn search_sql(
    member_of: Option<&[String]>,
    f: &SearchFilters,
    after: &str,
) -> (String, Vec<Bind>) {
    let mut cond = String::from("deleted_at IS NULL AND merged_into IS NULL AND sort_key > ?");
    let mut binds: Vec<String> = vec![after.to_string()];
    // A member sees their clinics' records, sealed ones left out. One clinic (the usual case) is
    // an equality, so the clinic index yields the order.
    let mut clinic_index = f.clinic_id.is_some();
    if let Some(clinics) = member_of {
        cond.push_str(" AND sealed_at IS NULL");
        match clinics {
            [one] => {
                cond.push_str(" AND clinic_id = ?");
                binds.push(one.clone());
                clinic_index = true;
            }
            many => {
                // With nothing narrower to search by, walk the sort order and keep the caller's
                // clinics (`+` keeps the planner off the clinic index, whose rows would then
                // all need sorting); otherwise the narrower index decides.
                let narrower = f.clinic_id.is_some()
                    || f.mrn.is_some()
                    || f.phone.is_some()
                    || f.date_of_birth.is_some()
                    || f.q.as_deref().is_some_and(|q| !q.trim().is_empty());
                let marks = vec!["?"; many.len()].join(", ");
                let col = if narrower { "clinic_id" } else { "+clinic_id" };
                cond.push_str(&format!(" AND {col} IN ({marks})"));
                binds.extend(many.iter().cloned());
            }
        }
    }
    // FHIR's `family` and `given`: a range of the sort key (which starts with the folded
    // family name) and of the folded given name.
    if let Some(family) = SearchFilters::folded(f.family.as_deref()) {
        cond.push_str(" AND sort_key >= ? AND sort_key < ?");
        binds.push(family.clone());
        binds.push(prefix_end(&family));
    }
    if let Some(given) = SearchFilters::folded(f.given.as_deref()) {
        cond.push_str(" AND given_norm >= ? AND given_norm < ?");
        binds.push(given.clone());
        binds.push(prefix_end(&given));
    }
    // The most selective filter present picks the index; the others are checked on its rows.
    let mut index = None;
    for (col, val, idx) in [
        ("mrn", &f.mrn, "patients_mrn_sort"),
        ("phone", &f.phone, "patients_phone_sort"),
        ("date_of_birth", &f.date_of_birth, "patients_dob_sort"),
        ("clinic_id", &f.clinic_id, "patients_clinic_sort"),
    ] {
        if let Some(v) = val {
            cond.push_str(&format!(" AND {col} = ?"));
            binds.push(v.clone());
            if col != "clinic_id" {
                index.get_or_insert(idx);
            }
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
    let select = |indexed: Option<&str>, extra: &str| {
        let by = indexed
            .map(|i| format!(" INDEXED BY {i}"))
            .unwrap_or_default();
        format!("SELECT {COLUMNS}, sort_key FROM patients{by} WHERE {cond}{extra} ORDER BY sort_key LIMIT ?")
    };
    // A name prefix narrows more than a clinic does; without either, the clinic's own order.
    if index.is_none() && q.is_none() && clinic_index {
        index = Some("patients_clinic_sort");
    }
    match (q, index) {
        (Some(q), None) => {
            // Two index ranges, each already in order, merged. The family range gets one lower
            // bound (SQLite uses only one): past both the cursor and the prefix. No sort key
            // equals a prefix (keys hold separators a query cannot), so `>` is exact.
            let by_family = select(None, " AND sort_key < ?");
            let by_given = select(
                Some("patients_given"),
                " AND given_norm >= ? AND given_norm < ?",
            );
            let sql = format!(
                "SELECT * FROM ({by_family}) UNION SELECT * FROM ({by_given}) ORDER BY sort_key LIMIT ?"
            );
            let binds: Vec<Bind> = binds.into_iter().map(Some).collect();
            let mut all = binds.clone();
            all[0] = Some(after.max(q.as_str()).to_string());
            all.push(Some(prefix_end(&q)));
            all.push(None);
            all.extend(binds);
            all.extend([q.clone(), prefix_end(&q)].map(Some));
            all.push(None);
            (sql, all)
        }
        (Some(q), Some(idx)) => {
            let mut binds: Vec<Bind> = binds.into_iter().map(Some).collect();
            binds.extend([q.clone(), prefix_end(&q), q.clone(), prefix_end(&q)].map(Some));
            let sql = select(
                Some(idx),
                " AND ((sort_key >= ? AND sort_key < ?) OR (given_norm >= ? AND given_norm < ?))",
            );
            (sql, binds)
        }
        (None, idx) => (select(idx, ""), binds.into_iter().map(Some).collect()),
    }
}

/// A text bind of a search, or `None` where a branch's limit goes.
pub type Bind = Option<String>;

/// Live patients in name order after `after`, at most `limit + 1`, each with its stored sort
/// key: the position a cursor names (the stored key, not one folded afresh, since rows keep the
/// folding they were stored with).
pub async fn search(
    conn: &mut SqliteConnection,
    member_of: Option<&[String]>,
    f: &SearchFilters,
    after: &str,
    limit: u32,
) -> Result<Vec<(String, Patient)>, StoreError> {
    let (sql, binds) = search_sql(member_of, f, after);
    let mut query = sqlx::query(&sql);
    for b in binds {
        query = match b {
            Some(text) => query.bind(text),
            None => query.bind(limit as i64 + 1),
        };
    }
    let rows = query.bind(limit as i64 + 1).fetch_all(conn).await?;
    Ok(rows
        .iter()
        .map(|r| (r.get("sort_key"), patient_of(r)))
        .collect())
}

/// How many live patients match (at most `cap`: the count reads no more rows than that).
pub async fn count(
    conn: &mut SqliteConnection,
    member_of: Option<&[String]>,
    f: &SearchFilters,
    cap: u32,
) -> Result<i64, StoreError> {
    let (sql, binds) = search_sql(member_of, f, "");
    let sql = format!("SELECT COUNT(*) FROM ({sql})");
    let mut query = sqlx::query_scalar::<_, i64>(&sql);
    for b in binds {
        query = match b {
            Some(text) => query.bind(text),
            None => query.bind(cap as i64),
        };
    }
    Ok(query.bind(cap as i64).fetch_one(conn).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan of each search shape: every filter kind must be an index search, never a walk
    /// of the whole table (`SCAN patients`), for admins and for clinic members alike.
    #[tokio::test]
    async fn every_search_filter_is_served_by_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = super::super::SqliteEngine::open(crate::store::Options::cli(&format!(
            "sqlite://{}",
            dir.path().join("plan.db").display()
        )))
        .await
        .unwrap();
        let text = |v: &str| Some(v.to_string());
        let shapes = [
            (
                "name prefix",
                SearchFilters {
                    q: text("lovel"),
                    ..SearchFilters::default()
                },
            ),
            (
                "mrn",
                SearchFilters {
                    mrn: text("M0500000"),
                    ..SearchFilters::default()
                },
            ),
            (
                "phone",
                SearchFilters {
                    phone: text("+436641234567"),
                    ..SearchFilters::default()
                },
            ),
            (
                "date of birth",
                SearchFilters {
                    date_of_birth: text("1980-01-01"),
                    ..SearchFilters::default()
                },
            ),
            (
                "clinic",
                SearchFilters {
                    clinic_id: text("cln_1"),
                    ..SearchFilters::default()
                },
            ),
            (
                "name and clinic",
                SearchFilters {
                    q: text("lovel"),
                    clinic_id: text("cln_1"),
                    ..SearchFilters::default()
                },
            ),
            ("nothing", SearchFilters::default()),
        ];
        let one = ["cln_1".to_string()];
        let two = ["cln_1".to_string(), "cln_2".to_string()];
        for member in [None, Some(&one[..]), Some(&two[..])] {
            for (name, f) in &shapes {
                let (sql, binds) = search_sql(member, f, "");
                let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(Box::leak(
                    format!("EXPLAIN QUERY PLAN {sql}").into_boxed_str(),
                ));
                for b in binds {
                    q = match b {
                        Some(t) => q.bind(t),
                        None => q.bind(51i64),
                    };
                }
                let plan: Vec<String> = q
                    .bind(51i64)
                    .fetch_all(&db.read)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.3)
                    .collect();
                // A filter must be an index search; walking a whole index in order (what an
                // unfiltered list page does, stopping at the limit) is a scan too.
                let walks = plan.iter().any(|step| step.starts_with("SCAN patients"));
                assert!(
                    !walks || *name == "nothing",
                    "{name} ({member:?}) walks the table or an index: {plan:#?}"
                );
                if *name == "nothing" {
                    assert!(plan.iter().all(|s| !s.contains("TEMP B-TREE")), "{plan:#?}");
                }
                assert!(
                    plan.iter().any(|s| s.starts_with("SEARCH patients")),
                    "{name} ({member:?}): {plan:#?}"
                );
            }
        }
    }
}
