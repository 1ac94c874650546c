//! Patients as the store holds them: each function runs one query of `careq_store::patients`
//! and maps its rows to and from the domain types. The store computes nothing of its own, so
//! the keys it indexes (identity keys for duplicate checks, search keys, the name order's sort
//! key), the MRN format and every time are worked out here, with the folding rules of
//! [`domain`](super::domain).
use careq_store::patients::{self as store, Identity, PatientFields, PatientRow, SearchQuery};

use super::domain::{
    bmi, identity_key, search_key, search_words, sort_key_of, Patient, SearchFilters, Sex, Sort,
    StoredPatient, ValidPatient,
};
use crate::error::ApiError;
use crate::store::{PatientMark, Read, Store, StoreError, Write};

impl From<PatientRow> for Patient {
    fn from(r: PatientRow) -> Patient {
        Patient {
            bmi: bmi(r.height_cm, r.weight_kg),
            // The schema's check allows only the four values; anything else reads as unknown.
            sex: Sex::parse(&r.sex).unwrap_or(Sex::Unknown),
            id: r.id,
            clinic_id: r.clinic_id,
            mrn: r.mrn,
            given_name: r.given_name,
            family_name: r.family_name,
            date_of_birth: r.date_of_birth,
            phone: r.phone,
            email: r.email,
            address: r.address,
            height_cm: r.height_cm,
            weight_kg: r.weight_kg,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl From<PatientRow> for StoredPatient {
    fn from(r: PatientRow) -> StoredPatient {
        let deleted = r.deleted_at.is_some();
        let sealed = r.sealed_at.is_some();
        let merged_into = r.merged_into.clone();
        StoredPatient {
            patient: Patient::from(r),
            deleted,
            merged_into,
            sealed,
        }
    }
}

/// The keys a patient's names are stored with.
struct Keys {
    given_norm: String,
    family_norm: String,
    given_key: String,
    family_key: String,
    sort_key: String,
}

impl Keys {
    fn of(v: &ValidPatient, id: &str) -> Keys {
        let given_key = search_key(&v.given_name);
        let family_key = search_key(&v.family_name);
        Keys {
            given_norm: identity_key(&v.given_name),
            family_norm: identity_key(&v.family_name),
            sort_key: sort_key_of(&family_key, &given_key, id),
            given_key,
            family_key,
        }
    }

    /// The fields a create or an update stores: `v` under `mrn`, with these keys.
    fn fields<'a>(&'a self, v: &'a ValidPatient, mrn: &'a str) -> PatientFields<'a> {
        PatientFields {
            mrn,
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

/// A patient by id, whatever its state.
pub fn find_patient(conn: &mut dyn Read, id: &str) -> Result<Option<StoredPatient>, StoreError> {
    Ok(store::find(conn, id)?.map(StoredPatient::from))
}

/// The next free assigned MRN of a clinic (`PREFIX-000042`).
pub fn next_mrn(conn: &mut dyn Write, clinic_id: &str, prefix: &str) -> Result<String, StoreError> {
    store::next_mrn(conn, clinic_id, &|n| format!("{prefix}-{n:06}"))
}

/// The id of the clinic's patient holding `mrn`, whatever its state.
pub fn patient_by_mrn(
    conn: &mut dyn Read,
    clinic_id: &str,
    mrn: &str,
) -> Result<Option<String>, StoreError> {
    store::id_by_mrn(conn, clinic_id, mrn)
}

/// A live patient of the clinic (other than `except`) with the same names by
/// [`identity_key`] (look-alikes included) and the same date of birth. It is asked inside the
/// unit that then stores the patient, so it holds that identity until the unit ends: two
/// creates of one person cannot both find none.
pub fn same_person(
    conn: &mut dyn Write,
    clinic_id: &str,
    v: &ValidPatient,
    except: &str,
) -> Result<Option<String>, StoreError> {
    let (family_norm, given_norm) = (identity_key(&v.family_name), identity_key(&v.given_name));
    let who = Identity {
        clinic_id,
        family_norm: &family_norm,
        given_norm: &given_norm,
        date_of_birth: &v.date_of_birth,
    };
    store::same_person_held(conn, &who, except)
}

/// Stores a new patient at version 1; `Conflict` when its id or the clinic's MRN is taken
/// (nothing is stored and the unit may go on, e.g. to look the MRN's holder up).
pub fn insert_patient(
    conn: &mut dyn Write,
    id: &str,
    clinic_id: &str,
    mrn: &str,
    v: &ValidPatient,
) -> Result<(), StoreError> {
    let keys = Keys::of(v, id);
    let now = crate::clock::now_rfc3339();
    if store::insert(conn, id, clinic_id, &keys.fields(v, mrn), &now)? {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

/// Replaces the fields if the patient is still at `version`; false when it moved on (or was
/// deleted or merged) meanwhile. A miss tells the unit it lost a race, so an engine that runs
/// units side by side runs it again and the If-Match is judged against the new version.
pub fn update_patient(
    conn: &mut dyn Write,
    id: &str,
    version: i64,
    mrn: &str,
    v: &ValidPatient,
) -> Result<bool, StoreError> {
    let keys = Keys::of(v, id);
    let now = crate::clock::now_rfc3339();
    let applied = store::update(conn, id, version, &keys.fields(v, mrn), &now)?;
    if !applied {
        conn.lost_race();
    }
    Ok(applied)
}

/// Sets a lifecycle state and bumps the version; `value` as each `PatientMark` says. A
/// patient that is not there is left so (the caller has just found it in the same unit).
pub fn mark_patient(
    conn: &mut dyn Write,
    id: &str,
    mark: PatientMark,
    value: Option<&str>,
) -> Result<(), StoreError> {
    let now = crate::clock::now_rfc3339();
    store::mark(conn, id, mark, value, &now)?;
    Ok(())
}

/// The store's form of a search: the name words and prefixes as search keys.
struct Query {
    words: Vec<String>,
    family: Option<String>,
    given: Option<String>,
}

impl Query {
    fn of(f: &SearchFilters) -> Query {
        Query {
            words: search_words(f.q.as_deref().unwrap_or("")),
            family: SearchFilters::key_prefix(f.family.as_deref()),
            given: SearchFilters::key_prefix(f.given.as_deref()),
        }
    }

    fn with<'a>(&'a self, f: &'a SearchFilters) -> SearchQuery<'a> {
        SearchQuery {
            words: &self.words,
            family: self.family.as_deref(),
            given: self.given.as_deref(),
            mrn: f.mrn.as_deref(),
            phone: f.phone.as_deref(),
            email: f.email.as_deref(),
            date_of_birth: f.date_of_birth.as_deref(),
            clinic_id: f.clinic_id.as_deref(),
            sort: match f.sort {
                Sort::Name => store::Sort::Name,
                Sort::Created => store::Sort::Created,
                Sort::BirthDate => store::Sort::BirthDate,
            },
        }
    }
}

/// Live patients in the filters' order after the position `after`, at most `limit + 1`, each
/// with its position (for the name order the stored sort key). `member_of`: the clinics a
/// non-admin belongs to (sealed records left out); `None` for an admin.
pub fn search_patients(
    conn: &mut dyn Read,
    member_of: Option<&[String]>,
    f: &SearchFilters,
    after: &str,
    limit: u32,
) -> Result<Vec<(String, Patient)>, StoreError> {
    let q = Query::of(f);
    let rows = store::search(conn, member_of, &q.with(f), after, limit)?;
    Ok(rows
        .into_iter()
        .map(|(key, row)| (key, Patient::from(row)))
        .collect())
}

/// How many patients [`search_patients`] would find from the start, counting at most `cap`.
pub fn count_patients(
    conn: &mut dyn Read,
    member_of: Option<&[String]>,
    f: &SearchFilters,
    cap: u32,
) -> Result<i64, StoreError> {
    let q = Query::of(f);
    store::count(conn, member_of, &q.with(f), cap)
}

/// Moves a merged patient's appointments and tickets to the survivor.
pub fn move_patient_records(conn: &mut dyn Write, from: &str, to: &str) -> Result<(), StoreError> {
    store::move_records(conn, from, to)?;
    Ok(())
}

/// How many patients one unit of [`backfill`] gives their keys.
const BACKFILL_BATCH: u32 = 1000;

/// Brings patients stored by older versions of careq up to today's keys, a batch per unit of
/// work, until none is left; run after the store is opened (and migrated), before serving.
/// Rows stored before search keys existed get their search keys and the sort key made of them;
/// rows listed for re-keying (stored before names were compared by [`identity_key`]) get their
/// identity keys, each taken off the list in the unit that re-keys it.
pub async fn backfill(db: &Store) -> Result<(), ApiError> {
    loop {
        let done = db
            .write(|conn| {
                let rows = store::without_search_keys(conn, BACKFILL_BATCH)?;
                for r in &rows {
                    let (given, family) = (search_key(&r.given_name), search_key(&r.family_name));
                    let sort = sort_key_of(&family, &given, &r.id);
                    store::set_search_keys(conn, &r.id, &given, &family, &sort)?;
                }
                Ok(rows.len())
            })
            .await?;
        if done == 0 {
            break;
        }
    }
    loop {
        let done = db
            .write(|conn| {
                let listed = store::to_rekey(conn, BACKFILL_BATCH)?;
                for r in &listed {
                    let keys = r
                        .names
                        .as_ref()
                        .map(|(given, family)| (identity_key(given), identity_key(family)));
                    let keys = keys.as_ref().map(|(g, f)| (g.as_str(), f.as_str()));
                    store::rekey(conn, &r.id, keys)?;
                }
                Ok(listed.len())
            })
            .await?;
        if done == 0 {
            break;
        }
    }
    Ok(())
}
