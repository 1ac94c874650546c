//! Patients in SQLite. Every list is scoped to the caller's clinics and bounded.
use sqlx::{Row, SqliteConnection};

use crate::clock::now_rfc3339;
use crate::patients::domain::{
    bmi, identity_key, search_key, search_words, sort_key_of, Patient, SearchFilters, Sex, Sort,
    StoredPatient, ValidPatient,
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

/// A live patient of the clinic with the same names (compared by [`identity_key`], as stored in
/// `given_norm`/`family_norm`) and date of birth.
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
    .bind(identity_key(&v.family_name))
    .bind(identity_key(&v.given_name))
    .bind(&v.date_of_birth)
    .bind(except)
    .fetch_optional(conn)
    .await?)
}

fn sort_key(v: &ValidPatient, id: &str) -> String {
    sort_key_of(&search_key(&v.family_name), &search_key(&v.given_name), id)
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
             email, address, height_cm, weight_kg, given_norm, family_norm, sort_key, created_at, updated_at,
             given_key, family_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17, $18)",
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

/// A search as SQL: the statement and its text binds (`None` where a limit goes). Each filter
/// kind is served by an index, named with `INDEXED BY` where the planner could otherwise walk
/// the whole table; a name query is the union of two index ranges on its first word — the
/// family key's (ordered as sort_key is, which starts with it) and the given key's — with
/// every word checked on the rows found.
pub fn search_sql(
    member_of: Option<&[String]>,
    f: &SearchFilters,
    after: &str,
) -> (String, Vec<Bind>) {
    let words = search_words(f.q.as_deref().unwrap_or(""));
    let mut cond = String::from("deleted_at IS NULL AND merged_into IS NULL");
    let mut binds: Vec<String> = Vec::new();
    // A member sees their clinics' records, sealed ones left out. One clinic (the usual case) is
    // an equality, so the clinic's indexes yield the order.
    let mut one_clinic = f.clinic_id.is_some();
    let narrower = f.mrn.is_some()
        || f.phone.is_some()
        || f.email.is_some()
        || f.date_of_birth.is_some()
        || !words.is_empty();
    if let Some(clinics) = member_of {
        cond.push_str(" AND sealed_at IS NULL");
        match clinics {
            [one] => {
                cond.push_str(" AND clinic_id = ?");
                binds.push(one.clone());
                one_clinic = true;
            }
            many => {
                // With nothing narrower to search by, walk the list order and keep the caller's
                // clinics (`+` keeps the planner off the clinic index, whose rows would then
                // all need sorting); otherwise the narrower index decides.
                let marks = vec!["?"; many.len()].join(", ");
                let col = if narrower || f.clinic_id.is_some() {
                    "clinic_id"
                } else {
                    "+clinic_id"
                };
                cond.push_str(&format!(" AND {col} IN ({marks})"));
                binds.extend(many.iter().cloned());
            }
        }
    }
    // FHIR's `family` and `given`: a range of the sort key (which starts with the family
    // name's search key) and of the given name's search key.
    if let Some(family) = SearchFilters::key_prefix(f.family.as_deref()) {
        cond.push_str(" AND sort_key >= ? AND sort_key < ?");
        binds.push(family.clone());
        binds.push(prefix_end(&family));
    }
    if let Some(given) = SearchFilters::key_prefix(f.given.as_deref()) {
        cond.push_str(" AND given_key >= ? AND given_key < ?");
        binds.push(given.clone());
        binds.push(prefix_end(&given));
    }
    // The most selective equality present picks the index; the others are checked on its rows.
    let mut index = None;
    for (col, val, idx) in [
        ("mrn", &f.mrn, "patients_mrn_sort"),
        ("phone", &f.phone, "patients_phone_sort"),
        ("email", &f.email, "patients_email_sort"),
        ("date_of_birth", &f.date_of_birth, "patients_dob_sort"),
        ("clinic_id", &f.clinic_id, ""),
    ] {
        if let Some(v) = val {
            cond.push_str(&format!(" AND {col} = ?"));
            binds.push(v.clone());
            if !idx.is_empty() {
                index.get_or_insert(idx);
            }
        }
    }
    if !words.is_empty() {
        let (text, word_binds) = words_cond(&words);
        cond.push_str(&format!(" AND ({text})"));
        binds.extend(word_binds);
    }
    let (order, keyset_cond, mut key_binds) = keyset(f.sort, after);
    let plain_key_binds = key_binds.clone();
    let select = |indexed: Option<&str>,
                  key_binds: &[String],
                  range: &str,
                  range_binds: &[String]| {
        let by = indexed
            .map(|i| format!(" INDEXED BY {i}"))
            .unwrap_or_default();
        let sql = format!(
            "SELECT {COLUMNS}, sort_key FROM patients{by} WHERE {cond} AND {keyset_cond}{range} ORDER BY {order} LIMIT ?"
        );
        let mut all: Vec<Bind> = binds.iter().cloned().map(Some).collect();
        all.extend(key_binds.iter().cloned().map(Some));
        all.extend(range_binds.iter().cloned().map(Some));
        all.push(None);
        (sql, all)
    };
    match (words.first(), index) {
        (Some(first), None) => {
            let end = prefix_end(first);
            let by_family = if f.sort == Sort::Name {
                // One lower bound on sort_key (SQLite uses only one): past both the cursor and
                // the prefix. No sort key equals a prefix (keys end in a separator and the id).
                key_binds[0] = key_binds[0].as_str().max(first.as_str()).to_string();
                select(
                    None,
                    &key_binds,
                    " AND sort_key < ?",
                    std::slice::from_ref(&end),
                )
            } else {
                select(
                    Some("patients_family_key"),
                    &key_binds,
                    " AND family_key >= ? AND family_key < ?",
                    &[first.clone(), end.clone()],
                )
            };
            let by_given = select(
                Some("patients_given_key"),
                &plain_key_binds,
                " AND given_key >= ? AND given_key < ?",
                &[first.clone(), end],
            );
            let sql = format!(
                "SELECT * FROM ({}) UNION SELECT * FROM ({}) ORDER BY {order} LIMIT ?",
                by_family.0, by_given.0
            );
            let mut all = by_family.1;
            all.extend(by_given.1);
            all.push(None);
            (sql, all)
        }
        (_, Some(idx)) => select(Some(idx), &key_binds, "", &[]),
        (None, None) => {
            // Nothing narrower than a clinic: walk the order's own index (the clinic's one).
            let idx = match (f.sort, one_clinic) {
                (Sort::Name, true) => Some("patients_clinic_sort"),
                (Sort::Name, false) => None,
                (Sort::Created, true) => Some("patients_clinic_created"),
                (Sort::Created, false) => Some("patients_created"),
                (Sort::BirthDate, true) => Some("patients_clinic_dob"),
                (Sort::BirthDate, false) => Some("patients_dob_id"),
            };
            select(idx, &key_binds, "", &[])
        }
    }
}

/// The name-query condition on a row and its binds: every word a prefix of the family or the
/// given key, or (several words) all of them run together a prefix of one.
fn words_cond(words: &[String]) -> (String, Vec<String>) {
    let mut binds = Vec::new();
    let mut prefix = |w: &str| {
        binds.extend([w.to_string(), prefix_end(w), w.to_string(), prefix_end(w)]);
        "((family_key >= ? AND family_key < ?) OR (given_key >= ? AND given_key < ?))".to_string()
    };
    let each: Vec<String> = words.iter().map(|w| prefix(w)).collect();
    let mut text = format!("({})", each.join(" AND "));
    if words.len() > 1 {
        text.push_str(&format!(" OR {}", prefix(&words.concat())));
    }
    (text, binds)
}

/// A sort's ORDER BY, the keyset condition past `after`, and its binds.
fn keyset(sort: Sort, after: &str) -> (&'static str, &'static str, Vec<String>) {
    let pair = || {
        let (v, id) = after.split_once('\u{1f}').unwrap_or(("", ""));
        vec![v.to_string(), id.to_string()]
    };
    match sort {
        Sort::Name => ("sort_key", "sort_key > ?", vec![after.to_string()]),
        Sort::Created => ("created_at, id", "(created_at, id) > (?, ?)", pair()),
        Sort::BirthDate => ("date_of_birth, id", "(date_of_birth, id) > (?, ?)", pair()),
    }
}

/// The position of a row in a sort's order, as `search_sql` reads it back from a cursor.
pub fn page_key(sort: Sort, r: &sqlx::sqlite::SqliteRow) -> String {
    match sort {
        Sort::Name => r.get("sort_key"),
        Sort::Created => format!(
            "{}\u{1f}{}",
            r.get::<String, _>("created_at"),
            r.get::<String, _>("id")
        ),
        Sort::BirthDate => format!(
            "{}\u{1f}{}",
            r.get::<String, _>("date_of_birth"),
            r.get::<String, _>("id")
        ),
    }
}

/// A text bind of a search, or `None` where a branch's limit goes.
pub type Bind = Option<String>;

/// Live patients in the filters' order after `after`, at most `limit + 1`, each with its
/// position (for a name order the stored sort key, not one folded afresh, since rows keep the
/// keys they were stored with).
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
    let rows = query.fetch_all(conn).await?;
    Ok(rows
        .iter()
        .map(|r| (page_key(f.sort, r), patient_of(r)))
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

/// Gives rows stored before search keys existed their keys (and the sort key made of them),
/// a thousand per commit; run after migrating, before serving.
pub async fn backfill_search_keys(conn: &mut SqliteConnection) -> Result<u64, sqlx::Error> {
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
pub async fn rekey_identities(conn: &mut SqliteConnection) -> Result<u64, sqlx::Error> {
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
            (
                "two words, any order",
                SearchFilters {
                    q: text("smith, jo"),
                    ..SearchFilters::default()
                },
            ),
            (
                "email",
                SearchFilters {
                    email: text("jo@example.org"),
                    ..SearchFilters::default()
                },
            ),
            (
                "name, by registration",
                SearchFilters {
                    q: text("o'bri"),
                    sort: Sort::Created,
                    ..SearchFilters::default()
                },
            ),
            (
                "name, by birth date",
                SearchFilters {
                    q: text("jo sm"),
                    sort: Sort::BirthDate,
                    ..SearchFilters::default()
                },
            ),
            (
                "clinic, by registration",
                SearchFilters {
                    clinic_id: text("cln_1"),
                    sort: Sort::Created,
                    ..SearchFilters::default()
                },
            ),
            ("nothing", SearchFilters::default()),
            (
                "nothing, by registration",
                SearchFilters {
                    sort: Sort::Created,
                    ..SearchFilters::default()
                },
            ),
            (
                "nothing, by birth date",
                SearchFilters {
                    sort: Sort::BirthDate,
                    ..SearchFilters::default()
                },
            ),
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
                    .fetch_all(&db.read)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.3)
                    .collect();
                // A filter must be an index search; walking a whole index in order (what an
                // unfiltered list page does, stopping at the limit) is a scan too.
                let walks = plan.iter().any(|step| step.starts_with("SCAN patients"));
                let unfiltered = name.starts_with("nothing");
                assert!(
                    !walks || unfiltered,
                    "{name} ({member:?}) walks the table or an index: {plan:#?}"
                );
                if unfiltered || *name == "clinic, by registration" {
                    // A list page with no filter walks its order's index and stops at the limit.
                    assert!(
                        plan.iter().all(|s| !s.contains("TEMP B-TREE")),
                        "{name} ({member:?}): {plan:#?}"
                    );
                }
                assert!(
                    plan.iter().any(|s| s.starts_with("SEARCH patients")),
                    "{name} ({member:?}): {plan:#?}"
                );
            }
        }
    }
}
