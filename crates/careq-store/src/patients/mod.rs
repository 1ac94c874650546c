//! Patients, each query written once for both engines (issue 25). The store computes no keys:
//! the caller passes the identity keys (`given_norm`/`family_norm`, duplicate checks), the
//! search keys (`given_key`/`family_key`) and the sort key already folded, the MRN format and
//! every time. Search lives in [`search`]; its plans are the one place the engines differ.
use crate::{Dialect, Read, ReadExt, Row, StoreError, Write};

mod search;
pub use search::{count, given_keys, search, search_statement, SearchQuery, SearchStatement, Sort};

/// A patient as stored (lifecycle columns included: the app decides how each is answered).
#[derive(Debug, Clone, PartialEq)]
pub struct PatientRow {
    pub id: String,
    pub clinic_id: String,
    pub mrn: String,
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: String,
    /// `female`, `male`, `other` or `unknown` (the schema's check).
    pub sex: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub height_cm: Option<f64>,
    pub weight_kg: Option<f64>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
    pub merged_into: Option<String>,
    pub sealed_at: Option<String>,
}

/// A patient's fields as a create or an update stores them, with the keys the app computed.
#[derive(Debug, Clone, Copy)]
pub struct PatientFields<'a> {
    pub mrn: &'a str,
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub date_of_birth: &'a str,
    pub sex: &'a str,
    pub phone: Option<&'a str>,
    pub email: Option<&'a str>,
    pub address: Option<&'a str>,
    pub height_cm: Option<f64>,
    pub weight_kg: Option<f64>,
    /// Identity keys of the names (duplicate checks).
    pub given_norm: &'a str,
    pub family_norm: &'a str,
    /// Search keys of the names (prefix search).
    pub given_key: &'a str,
    pub family_key: &'a str,
    /// The name order's key: family key, given key, id (unique).
    pub sort_key: &'a str,
}

/// Who a duplicate check looks for: a clinic, the names' identity keys, a date of birth.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    pub clinic_id: &'a str,
    pub family_norm: &'a str,
    pub given_norm: &'a str,
    pub date_of_birth: &'a str,
}

pub(crate) const COLUMNS: &str =
    "id, clinic_id, mrn, given_name, family_name, date_of_birth, sex, phone, email, address,
    height_cm, weight_kg, version, created_at, updated_at, deleted_at, merged_into, sealed_at";

pub(crate) fn patient(r: &dyn Row) -> Result<PatientRow, StoreError> {
    Ok(PatientRow {
        id: r.text(0)?,
        clinic_id: r.text(1)?,
        mrn: r.text(2)?,
        given_name: r.text(3)?,
        family_name: r.text(4)?,
        date_of_birth: r.text(5)?,
        sex: r.text(6)?,
        phone: r.opt_text(7)?,
        email: r.opt_text(8)?,
        address: r.opt_text(9)?,
        height_cm: r.opt_real(10)?,
        weight_kg: r.opt_real(11)?,
        version: r.int(12)?,
        created_at: r.text(13)?,
        updated_at: r.text(14)?,
        deleted_at: r.opt_text(15)?,
        merged_into: r.opt_text(16)?,
        sealed_at: r.opt_text(17)?,
    })
}

/// A patient by id, whatever its state (`Tx::find_patient`).
pub fn find(r: &mut dyn Read, id: &str) -> Result<Option<PatientRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM patients WHERE id = $1");
    r.first(&sql, &[id.into()], patient)
}

/// The id of the clinic's patient holding `mrn`, whatever its state (`Tx::patient_by_mrn`).
pub fn id_by_mrn(
    r: &mut dyn Read,
    clinic_id: &str,
    mrn: &str,
) -> Result<Option<String>, StoreError> {
    r.first(
        "SELECT id FROM patients WHERE clinic_id = $1 AND mrn = $2",
        &[clinic_id.into(), mrn.into()],
        |row| row.text(0),
    )
}

/// The next free assigned MRN of a clinic (`Tx::next_mrn`): the clinic's `mrn` counter is
/// bumped until `format(n)` names no patient of the clinic (one typed by hand may hold it).
pub fn next_mrn(
    w: &mut dyn Write,
    clinic_id: &str,
    format: &dyn Fn(i64) -> String,
) -> Result<String, StoreError> {
    loop {
        // The target is qualified: PostgreSQL finds a bare `value` ambiguous with `excluded`.
        let n = w
            .int(
                "INSERT INTO clinic_counters (clinic_id, name, value) VALUES ($1, 'mrn', 1)
                 ON CONFLICT (clinic_id, name) DO UPDATE SET value = clinic_counters.value + 1
                 RETURNING value",
                &[clinic_id.into()],
            )?
            .ok_or_else(|| StoreError::other("the MRN counter returned no value"))?;
        let mrn = format(n);
        if id_by_mrn(w, clinic_id, &mrn)?.is_none() {
            return Ok(mrn);
        }
    }
}

const SAME_PERSON: &str = "SELECT id FROM patients WHERE clinic_id = $1 AND family_norm = $2
       AND given_norm = $3 AND date_of_birth = $4 AND deleted_at IS NULL AND merged_into IS NULL
       AND id <> $5 LIMIT 1";

/// A live patient (neither deleted nor merged) other than `except` with the same identity
/// (`Tx::same_person` on a read).
pub fn same_person(
    r: &mut dyn Read,
    who: &Identity<'_>,
    except: &str,
) -> Result<Option<String>, StoreError> {
    let params = [
        who.clinic_id.into(),
        who.family_norm.into(),
        who.given_norm.into(),
        who.date_of_birth.into(),
        except.into(),
    ];
    r.first(SAME_PERSON, &params, |row| row.text(0))
}

/// [`same_person`] inside a write unit (`Tx::same_person` there): first holds that identity
/// until the unit ends, so two creates of one person cannot both find none. No unique index
/// can say "one live patient per identity"; SQLite's one writer runs units one at a time
/// already, PostgreSQL takes a transaction-scoped advisory lock named by the identity.
pub fn same_person_held(
    w: &mut dyn Write,
    who: &Identity<'_>,
    except: &str,
) -> Result<Option<String>, StoreError> {
    if w.dialect() == Dialect::Postgres {
        let name = format!(
            "person\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            who.clinic_id, who.family_norm, who.given_norm, who.date_of_birth
        );
        w.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[name.as_str().into()],
        )?;
    }
    same_person(w, who, except)
}

/// Stores a new patient at version 1 (`Tx::insert_patient`); false when the id or the
/// clinic's MRN is taken (nothing stored, and the unit goes on: the caller looks the holder
/// up, which a failed statement would forbid on PostgreSQL).
pub fn insert(
    w: &mut dyn Write,
    id: &str,
    clinic_id: &str,
    p: &PatientFields<'_>,
    now: &str,
) -> Result<bool, StoreError> {
    let n = w.execute(
        "INSERT INTO patients (id, clinic_id, mrn, given_name, family_name, date_of_birth, sex,
             phone, email, address, height_cm, weight_kg, given_norm, family_norm, sort_key,
             created_at, updated_at, given_key, family_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16,
             $17, $18)
         ON CONFLICT DO NOTHING",
        &[
            id.into(),
            clinic_id.into(),
            p.mrn.into(),
            p.given_name.into(),
            p.family_name.into(),
            p.date_of_birth.into(),
            p.sex.into(),
            p.phone.into(),
            p.email.into(),
            p.address.into(),
            p.height_cm.into(),
            p.weight_kg.into(),
            p.given_norm.into(),
            p.family_norm.into(),
            p.sort_key.into(),
            now.into(),
            p.given_key.into(),
            p.family_key.into(),
        ],
    )?;
    Ok(n == 1)
}

/// Replaces the fields of a live patient still at `version` (`Tx::update_patient`); false
/// when it moved on, or was deleted or merged meanwhile.
pub fn update(
    w: &mut dyn Write,
    id: &str,
    version: i64,
    p: &PatientFields<'_>,
    now: &str,
) -> Result<bool, StoreError> {
    let n = w.execute(
        "UPDATE patients SET mrn = $1, given_name = $2, family_name = $3, date_of_birth = $4,
             sex = $5, phone = $6, email = $7, address = $8, height_cm = $9, weight_kg = $10,
             given_norm = $11, family_norm = $12, sort_key = $13, version = version + 1,
             updated_at = $14, given_key = $17, family_key = $18
         WHERE id = $15 AND version = $16 AND deleted_at IS NULL AND merged_into IS NULL",
        &[
            p.mrn.into(),
            p.given_name.into(),
            p.family_name.into(),
            p.date_of_birth.into(),
            p.sex.into(),
            p.phone.into(),
            p.email.into(),
            p.address.into(),
            p.height_cm.into(),
            p.weight_kg.into(),
            p.given_norm.into(),
            p.family_norm.into(),
            p.sort_key.into(),
            now.into(),
            id.into(),
            version.into(),
            p.given_key.into(),
            p.family_key.into(),
        ],
    )?;
    Ok(n == 1)
}

/// A lifecycle change of a patient record, and what `value` of [`mark`] means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatientMark {
    /// Tombstoned: `value` is the time (`deleted_at`).
    Deleted,
    /// Merged: `value` is the survivor's id (`merged_into`).
    Merged,
    /// Sealed under a legal hold at `now`: `value` is the reason.
    Sealed,
    /// Seal lifted: `value` is the reason.
    Unsealed,
}

/// Sets a lifecycle state, bumping the version and `updated_at` (`Tx::mark_patient`); false
/// for no such patient.
pub fn mark(
    w: &mut dyn Write,
    id: &str,
    mark: PatientMark,
    value: Option<&str>,
    now: &str,
) -> Result<bool, StoreError> {
    let set = match mark {
        PatientMark::Deleted => "deleted_at = $1",
        PatientMark::Merged => "merged_into = $1",
        PatientMark::Sealed => "sealed_at = $2, sealed_reason = $1",
        PatientMark::Unsealed => "sealed_at = NULL, sealed_reason = $1",
    };
    let sql =
        format!("UPDATE patients SET {set}, version = version + 1, updated_at = $2 WHERE id = $3");
    Ok(w.execute(&sql, &[value.into(), now.into(), id.into()])? == 1)
}

/// Moves a merged patient's appointments and tickets to the survivor, bumping each one's
/// version (`Tx::move_patient_records`); how many rows moved.
pub fn move_records(w: &mut dyn Write, from: &str, to: &str) -> Result<u64, StoreError> {
    let mut moved = 0;
    for sql in [
        "UPDATE appointments SET patient_id = $1, version = version + 1 WHERE patient_id = $2",
        "UPDATE tickets SET patient_id = $1, version = version + 1 WHERE patient_id = $2",
    ] {
        moved += w.execute(sql, &[to.into(), from.into()])?;
    }
    Ok(moved)
}

/// A patient's names as start-up re-keying reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub id: String,
    pub given_name: String,
    pub family_name: String,
}

/// Up to `limit` patients stored before search keys existed (migration 0014): the first
/// step of `backfill_search_keys`, run after migrating and before serving; the app folds
/// the names and calls [`set_search_keys`] for each, a batch per unit, until none is left.
pub fn without_search_keys(r: &mut dyn Read, limit: u32) -> Result<Vec<Names>, StoreError> {
    r.all(
        "SELECT id, given_name, family_name FROM patients WHERE given_key IS NULL LIMIT $1",
        &[i64::from(limit).into()],
        |row| {
            Ok(Names {
                id: row.text(0)?,
                given_name: row.text(1)?,
                family_name: row.text(2)?,
            })
        },
    )
}

/// Stores a patient's search keys and the sort key made of them.
pub fn set_search_keys(
    w: &mut dyn Write,
    id: &str,
    given_key: &str,
    family_key: &str,
    sort_key: &str,
) -> Result<bool, StoreError> {
    let n = w.execute(
        "UPDATE patients SET given_key = $1, family_key = $2, sort_key = $3 WHERE id = $4",
        &[
            given_key.into(),
            family_key.into(),
            sort_key.into(),
            id.into(),
        ],
    )?;
    Ok(n == 1)
}

/// One entry of `patients_rekey` (migration 0017): the patient's names, or `None` when the
/// patient is no longer there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToRekey {
    pub id: String,
    /// (given name, family name).
    pub names: Option<(String, String)>,
}

/// Up to `limit` entries of `patients_rekey` in id order: the first step of
/// `rekey_identities`; the app computes identity keys and calls [`rekey`] for each.
pub fn to_rekey(r: &mut dyn Read, limit: u32) -> Result<Vec<ToRekey>, StoreError> {
    r.all(
        "SELECT r.id, p.given_name, p.family_name FROM patients_rekey r
           LEFT JOIN patients p ON p.id = r.id ORDER BY r.id LIMIT $1",
        &[i64::from(limit).into()],
        |row| {
            let names = match (row.opt_text(1)?, row.opt_text(2)?) {
                (Some(given), Some(family)) => Some((given, family)),
                _ => None,
            };
            Ok(ToRekey {
                id: row.text(0)?,
                names,
            })
        },
    )
}

/// Gives a listed patient its identity keys (`keys`: given, family; `None` for a patient no
/// longer there) and takes it off the list in the same unit, so a crash in between leaves it
/// listed.
pub fn rekey(w: &mut dyn Write, id: &str, keys: Option<(&str, &str)>) -> Result<(), StoreError> {
    if let Some((given_norm, family_norm)) = keys {
        w.execute(
            "UPDATE patients SET given_norm = $1, family_norm = $2 WHERE id = $3",
            &[given_norm.into(), family_norm.into(), id.into()],
        )?;
    }
    w.execute("DELETE FROM patients_rekey WHERE id = $1", &[id.into()])?;
    Ok(())
}
