//! Queries for patients. Every list is scoped to the caller's clinics and bounded.
use sqlx::{Row, SqliteConnection};

use super::domain::{bmi, fold, Patient, Sex, ValidPatient};
use crate::auth::{Caller, Role};
use crate::db::Pool;
use crate::error::ApiError;
use crate::http::resource::now_rfc3339;

/// A stored patient with the states that decide how a request for it is answered.
pub struct Stored {
    pub patient: Patient,
    pub deleted: bool,
    pub merged_into: Option<String>,
    pub sealed: bool,
}

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

fn stored_of(r: &sqlx::sqlite::SqliteRow) -> Stored {
    Stored {
        patient: patient_of(r),
        deleted: r.get::<Option<String>, _>("deleted_at").is_some(),
        merged_into: r.get("merged_into"),
        sealed: r.get::<Option<String>, _>("sealed_at").is_some(),
    }
}

pub async fn find(conn: &mut SqliteConnection, id: &str) -> Result<Option<Stored>, ApiError> {
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
) -> Result<String, ApiError> {
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
) -> Result<Option<String>, ApiError> {
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
) -> Result<Option<String>, ApiError> {
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
) -> Result<(), sqlx::Error> {
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
    conn: &mut SqliteConnection,
    id: &str,
    set: &str,
    value: Option<&str>,
) -> Result<(), ApiError> {
    let sql = match set {
        "deleted" => "UPDATE patients SET deleted_at = $1, version = version + 1, updated_at = $2 WHERE id = $3",
        "merged" => "UPDATE patients SET merged_into = $1, version = version + 1, updated_at = $2 WHERE id = $3",
        "sealed" => "UPDATE patients SET sealed_at = $2, sealed_reason = $1, version = version + 1, updated_at = $2 WHERE id = $3",
        "unsealed" => "UPDATE patients SET sealed_at = NULL, sealed_reason = $1, version = version + 1, updated_at = $2 WHERE id = $3",
        other => return Err(ApiError::internal(format!("unknown patient mark {other}"))),
    };
    sqlx::query(sql)
        .bind(value)
        .bind(now_rfc3339())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Search filters (all optional, combined with AND).
#[derive(Debug, Default)]
pub struct Filters {
    pub q: Option<String>,
    pub date_of_birth: Option<String>,
    pub mrn: Option<String>,
    pub phone: Option<String>,
    pub clinic_id: Option<String>,
}

/// Live patients the caller may see, in name order after `after`, at most `limit + 1`.
/// Sealed records are left out for everyone but admins.
pub async fn search(
    db: &Pool,
    caller: &Caller,
    f: &Filters,
    after: &str,
    limit: u32,
) -> Result<Vec<Patient>, ApiError> {
    let mut sql = format!("SELECT {COLUMNS} FROM patients WHERE deleted_at IS NULL AND merged_into IS NULL AND sort_key > ?");
    let mut binds: Vec<String> = vec![after.to_string()];
    if caller.role != Role::Admin {
        sql.push_str(" AND sealed_at IS NULL AND clinic_id IN (SELECT clinic_id FROM user_clinics WHERE user_id = ?)");
        binds.push(caller.user_id.clone());
    }
    if let Some(q) = &f.q {
        // A prefix of either name; '\' escapes LIKE's wildcards in what the user typed.
        let pattern = format!(
            "{}%",
            fold(q)
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        sql.push_str(" AND (given_norm LIKE ? ESCAPE '\\' OR family_norm LIKE ? ESCAPE '\\')");
        binds.push(pattern.clone());
        binds.push(pattern);
    }
    for (col, val) in [
        ("date_of_birth", &f.date_of_birth),
        ("mrn", &f.mrn),
        ("phone", &f.phone),
        ("clinic_id", &f.clinic_id),
    ] {
        if let Some(v) = val {
            sql.push_str(&format!(" AND {col} = ?"));
            binds.push(v.clone());
        }
    }
    sql.push_str(" ORDER BY sort_key LIMIT ?");
    let mut query = sqlx::query(&sql);
    for b in &binds {
        query = query.bind(b);
    }
    let rows = query.bind(limit as i64 + 1).fetch_all(db).await?;
    Ok(rows.iter().map(patient_of).collect())
}

/// The sort key of a patient, for cursors.
pub fn cursor_key(p: &Patient) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        fold(&p.family_name),
        fold(&p.given_name),
        p.id
    )
}
