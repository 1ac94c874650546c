//! Patients: `/v1/patients`. The rules shared by the single create, the batch and the updates
//! live here; `routes.rs` holds thin handlers, `records.rs` the patients as stored.
pub mod batch;
pub mod domain;
pub mod records;
pub mod routes;

use std::sync::Arc;

use crate::access::{self, Action, Touch};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, FieldError};
use crate::idempotency::{ReplayCheck, Replayed};
use crate::state::AppState;
use crate::store::{Held, Read, Store, StoreError, Write};
use domain::{NewPatient, Patient, SearchFilters, StoredPatient, ValidPatient};

pub use routes::router;

/// A phone number in a search or lookup, read as the records were: national numbers in the
/// country of the clinic searched (`clinic_id`) or of the caller's one clinic; otherwise it must
/// be international. `None` when it cannot be read as a number (nobody can have it): the search
/// finds nothing rather than refusing a query that has the shape of a phone number.
pub async fn phone_query(
    db: &Store,
    caller: &Caller,
    raw: &str,
    clinic_id: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let typed = domain::phone_as_typed(raw);
    let raw = typed.as_str();
    if !domain::phone_shaped(raw) {
        return Err(ApiError::bad_param(
            "phone",
            "a phone number such as +43 664 1234567",
        ));
    }
    let clinic = match (clinic_id, caller.clinic_ids.as_slice()) {
        (Some(id), _) => Some(id),
        (None, [one]) => Some(one.as_str()),
        _ => None,
    };
    let region = match clinic {
        Some(id) => {
            let (id, caller) = (id.to_string(), caller.clone());
            db.lookup(move |conn| {
                Ok(crate::clinics::records::find_clinic(conn, &id)?
                    .filter(|c| caller.sees_clinic(&c.id))
                    .and_then(|c| c.country))
            })
            .await?
        }
        None => None,
    };
    // Without a country a national number cannot be read either: it finds nobody, and the
    // lookup's 404 says to give the country code.
    Ok(domain::phone(raw, region.as_deref()).ok())
}

pub fn location(id: &str) -> String {
    format!("/v1/patients/{id}")
}

fn duplicate(existing: &str, why: &str) -> ApiError {
    ApiError::Conflict {
        detail: format!("a patient with {why} already exists in this clinic"),
        existing: Some(location(existing)),
    }
}

/// The 409 for a duplicate, naming the existing record only when the caller could read it: a
/// sealed record's id is not confirmed to anyone but an admin.
fn duplicate_of(
    conn: &mut dyn Read,
    caller: &Caller,
    existing: &str,
    why: &str,
) -> Result<ApiError, ApiError> {
    let sealed = records::find_patient(conn, existing)?.is_some_and(|s| s.sealed);
    if sealed && caller.role != Role::Admin {
        return Ok(ApiError::Conflict {
            detail: format!("a patient with {why} already exists in this clinic"),
            existing: None,
        });
    }
    Ok(duplicate(existing, why))
}

/// What a request wants to do with data that belongs to a patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Read,
    Write,
}

fn sealed_read(id: &str) -> ApiError {
    ApiError::UnavailableForLegalReasons {
        blocked_by: format!("{}/seal", location(id)),
    }
}

fn sealed_write() -> ApiError {
    ApiError::Locked("this patient's record is sealed under a legal hold; unseal it first".into())
}

/// A seal means the same on every path that reaches the patient: through an appointment or a
/// ticket, a write answers 423 (admins too) and a read 451 (admins may read).
pub fn check_seal(
    conn: &mut dyn Read,
    caller: &Caller,
    patient_id: &str,
    use_: Use,
) -> Result<(), ApiError> {
    if use_ == Use::Read && caller.role == Role::Admin {
        return Ok(()); // admins read sealed records: nothing to look up
    }
    let Some(mut stored) = records::find_patient(conn, patient_id)? else {
        return Ok(());
    };
    // Records move to the survivor of a merge, but one written beside the merge (PostgreSQL
    // runs units side by side) can still name the old id: the person's seal is the survivor's.
    if stored.merged_into.is_some() {
        stored = survivor_of(conn, &stored)?;
    }
    match (stored.sealed, use_) {
        (false, _) => Ok(()),
        (true, Use::Write) => Err(sealed_write()),
        (true, Use::Read) if caller.role == Role::Admin => Ok(()),
        (true, Use::Read) => Err(sealed_read(&stored.patient.id)),
    }
}

/// Logs a read refused by a seal (451), then hands the error back; other errors pass as they are.
pub async fn log_denial(
    db: &Store,
    caller: &Caller,
    err: ApiError,
    touched: Touch<'_>,
) -> ApiError {
    if !matches!(err, ApiError::UnavailableForLegalReasons { .. }) {
        return err;
    }
    match access::record_now(db, caller, Action::Denied, &[touched]).await {
        Ok(()) => err,
        Err(e) => e,
    }
}

/// Decides whether a stored create answer may be replayed to this caller now: every patient it
/// names must still be readable by them (not sealed, deleted or out of their clinics), and the
/// replay is logged as a read of each.
pub fn replay_check() -> ReplayCheck {
    Arc::new(|st: AppState, caller: Caller, replayed: Replayed| {
        Box::pin(async move {
            if !crate::auth::allows(caller.role, crate::auth::Permission::WritePatients) {
                return Err(ApiError::Forbidden(format!(
                    "the {} role may not do this",
                    caller.role.as_str()
                )));
            }
            let ids = named_patients(&replayed);
            // One read finds them all; the first that may not be replayed is the answer.
            let refused = {
                let (ids, caller) = (ids.clone(), caller.clone());
                st.db
                    .read(move |conn| {
                        for id in ids {
                            if let Err(e) = resolve(conn, &caller, &id, false) {
                                return Ok(Some((id, e)));
                            }
                        }
                        Ok(None)
                    })
                    .await?
            };
            if let Some((id, e)) = refused {
                let touched = Touch::patient(&id);
                return Err(log_denial(&st.db, &caller, e, touched).await);
            }
            let touched: Vec<Touch> = ids.iter().map(|id| Touch::patient(id)).collect();
            access::record_now(&st.db, &caller, Action::Read, &touched).await
        })
    })
}

/// The patient ids a stored answer names: its `Location`, and the ids of a batch's results.
fn named_patients(replayed: &Replayed) -> Vec<String> {
    let mut ids: Vec<String> = replayed
        .location
        .as_deref()
        .and_then(|l| l.strip_prefix("/v1/patients/"))
        .map(|id| vec![id.to_string()])
        .unwrap_or_default();
    if replayed.status == 207 {
        if let Ok(body) = serde_json::from_slice::<serde_json::Value>(&replayed.body) {
            let results = body["results"].as_array().cloned().unwrap_or_default();
            ids.extend(
                results
                    .iter()
                    .filter_map(|r| r["id"].as_str().map(str::to_string)),
            );
        }
    }
    ids
}

/// Validates and stores one new patient inside the caller's unit of work, with its access-log entry.
pub fn create(
    conn: &mut dyn Write,
    caller: &Caller,
    new: &NewPatient,
) -> Result<Patient, ApiError> {
    let clinic = crate::clinics::records::find_clinic(conn, &new.clinic_id)?
        .filter(|c| caller.sees_clinic(&c.id));
    // National phone numbers are read in the clinic's country; "today" is the clinic's date
    // (UTC when the clinic is not one the caller may use: the body is refused anyway).
    let region = clinic.as_ref().and_then(|c| c.country.clone());
    let zone = clinic.as_ref().map_or("UTC", |c| c.timezone.as_str());
    let today = crate::clock::local_date(caller.now, zone);
    let valid = ValidPatient::parse_in(&new.fields(), region.as_deref(), today)
        .map_err(ApiError::invalid)?;
    let clinic = clinic.ok_or_else(|| {
        ApiError::invalid(vec![FieldError::new(
            "/clinic_id",
            "no clinic with this id that you belong to",
        )])
    })?;
    let mrn = match &valid.mrn {
        Some(m) => {
            if let Some(existing) = records::patient_by_mrn(conn, &clinic.id, m)? {
                return Err(duplicate_of(conn, caller, &existing, "this MRN")?);
            }
            m.clone()
        }
        None => records::next_mrn(conn, &clinic.id, &clinic.ticket_prefix)?,
    };
    if !new.allow_duplicate {
        if let Some(existing) = records::same_person(conn, &clinic.id, &valid, "")? {
            return Err(duplicate_of(
                conn,
                caller,
                &existing,
                "these names and date of birth",
            )?);
        }
    }
    let id = crate::ids::new_id("pat");
    if let Err(e) = records::insert_patient(conn, &id, &clinic.id, &mrn, &valid) {
        // A concurrent create took the MRN between the check and the insert.
        return Err(match e {
            StoreError::Conflict => match records::patient_by_mrn(conn, &clinic.id, &mrn)? {
                Some(existing) => duplicate_of(conn, caller, &existing, "this MRN")?,
                None => ApiError::from(e),
            },
            _ => ApiError::from(e),
        });
    }
    access::record(conn, caller, Action::Create, "patient", &id)?;
    let stored =
        records::find_patient(conn, &id)?.ok_or_else(|| ApiError::internal("patient vanished"))?;
    Ok(stored.patient)
}

/// Live patients the caller may see, in the filters' order after the position `after` (at
/// most `limit + 1`), each with its position. Sealed records are left out for all but admins.
pub async fn search(
    db: &Store,
    caller: &Caller,
    f: &SearchFilters,
    after: &str,
    limit: u32,
) -> Result<Vec<(String, Patient)>, ApiError> {
    let member_of = (caller.role != Role::Admin).then(|| caller.clinic_ids.clone());
    let (f, after) = (f.clone(), after.to_string());
    db.read(move |conn| {
        Ok(records::search_patients(
            conn,
            member_of.as_deref(),
            &f,
            &after,
            limit,
        )?)
    })
    .await
}

/// How a request for a patient id resolves.
pub enum Resolved {
    /// Live and readable.
    Live(Box<StoredPatient>),
    /// Merged into another patient: answer 301 to it.
    Moved(String),
}

/// Finds a patient the caller may see. Missing or in another clinic → 404 (same answer);
/// deleted → 410; merged → `Moved`. `writing` makes a sealed record 423, else (non-admins) 451.
/// A unit that goes on to change the patient uses [`resolve_to_write`], which holds it first.
pub fn resolve(
    conn: &mut dyn Read,
    caller: &Caller,
    id: &str,
    writing: bool,
) -> Result<Resolved, ApiError> {
    let stored = records::find_patient(conn, id)?
        .filter(|s| caller.sees_clinic(&s.patient.clinic_id))
        .ok_or_else(|| ApiError::NotFound("no patient with this id".into()))?;
    if let Some(into) = &stored.merged_into {
        return Ok(Resolved::Moved(location(into)));
    }
    if stored.deleted {
        return Err(ApiError::Gone("this patient record was deleted".into()));
    }
    if stored.sealed {
        if writing {
            return Err(sealed_write());
        }
        if caller.role != Role::Admin {
            return Err(sealed_read(id));
        }
    }
    Ok(Resolved::Live(Box::new(stored)))
}

/// [`resolve`] for a unit that changes the patient: holds the record against other writers
/// first, so what is found is still so when the unit writes.
pub fn resolve_to_write(
    conn: &mut dyn Write,
    caller: &Caller,
    id: &str,
) -> Result<Resolved, ApiError> {
    conn.hold(Held::Patient.table(), id)?;
    resolve(conn, caller, id, true)
}

/// The most merges followed from a merged-away record to the one that carries the person now.
/// A merge needs a live survivor, so chains grow only when survivors are merged in turn.
const MERGE_HOPS: usize = 32;

/// The record a merged-away patient's chain of merges ends at (the survivor of the survivor…).
pub fn survivor_of(conn: &mut dyn Read, merged: &StoredPatient) -> Result<StoredPatient, ApiError> {
    let mut next = merged.merged_into.clone();
    for _ in 0..MERGE_HOPS {
        let Some(id) = next else { break };
        let s = records::find_patient(conn, &id)?
            .ok_or_else(|| ApiError::internal("a merge names a patient that is not stored"))?;
        if s.merged_into.is_none() {
            return Ok(s);
        }
        next = s.merged_into.clone();
    }
    Err(ApiError::internal("a chain of merges does not end"))
}

/// Whether a merged-away record may be served as itself (FHIR serves it with `replaced-by`,
/// where the native API answers 301). It is the same person as its survivor, so the survivor's
/// state decides: sealed → 423 for a write and (non-admins) 451 for a read, blocked by the
/// survivor's seal, as the survivor itself answers; deleted → 410.
pub fn survivor_allows(
    caller: &Caller,
    survivor: &StoredPatient,
    use_: Use,
) -> Result<(), ApiError> {
    if survivor.deleted {
        return Err(ApiError::Gone(
            "the patient this record was merged into was deleted".into(),
        ));
    }
    match (survivor.sealed, use_) {
        (false, _) => Ok(()),
        (true, Use::Write) => Err(sealed_write()),
        (true, Use::Read) if caller.role == Role::Admin => Ok(()),
        (true, Use::Read) => Err(sealed_read(&survivor.patient.id)),
    }
}

/// The access-log entry of a merged-away record served as itself: about that record, and in
/// the survivor's log too (the data is the survivor's person).
pub fn merged_touch<'a>(merged: &'a str, survivor: &'a str) -> Touch<'a> {
    Touch {
        resource_type: "patient",
        resource_id: merged,
        patient: Some(survivor),
    }
}

/// Whether `valid` names the same person as `current` for duplicate checks.
fn same_identity(current: &Patient, valid: &ValidPatient) -> bool {
    use domain::identity_key;
    valid.date_of_birth == current.date_of_birth
        && identity_key(&valid.given_name) == identity_key(&current.given_name)
        && identity_key(&valid.family_name) == identity_key(&current.family_name)
}

/// Replaces a live patient's fields if it is still at `version` (the If-Match check).
pub fn replace(
    conn: &mut dyn Write,
    caller: &Caller,
    current: &Patient,
    if_match: &crate::http::precondition::IfMatch,
    fields: &domain::PatientFields,
) -> Result<Patient, ApiError> {
    // The content is judged first: a broken body is 422 whatever the precondition says.
    let clinic = crate::clinics::records::find_clinic(conn, &current.clinic_id)?;
    let region = clinic.as_ref().and_then(|c| c.country.clone());
    let zone = clinic.as_ref().map_or("UTC", |c| c.timezone.as_str());
    let today = crate::clock::local_date(caller.now, zone);
    let valid =
        ValidPatient::parse_in(fields, region.as_deref(), today).map_err(ApiError::invalid)?;
    if_match.check(current.version)?;
    let mrn = valid.mrn.clone().unwrap_or_else(|| current.mrn.clone());
    if mrn != current.mrn {
        if let Some(existing) = records::patient_by_mrn(conn, &current.clinic_id, &mrn)? {
            return Err(duplicate_of(conn, caller, &existing, "this MRN")?);
        }
    }
    // New names or a new date of birth that make this patient another's duplicate are refused
    // as on create. Unchanged ones are not checked again: a namesake registered knowingly
    // (`allow_duplicate`) can still be updated.
    if !same_identity(current, &valid) {
        if let Some(existing) = records::same_person(conn, &current.clinic_id, &valid, &current.id)?
        {
            return Err(duplicate_of(
                conn,
                caller,
                &existing,
                "these names and date of birth",
            )?);
        }
    }
    match records::update_patient(conn, &current.id, current.version, &mrn, &valid) {
        Ok(true) => {}
        Ok(false) => {
            let now = records::find_patient(conn, &current.id)?
                .map(|s| s.patient.version)
                .unwrap_or(0);
            return Err(crate::http::precondition::stale(now));
        }
        Err(e) => return Err(ApiError::from(e)),
    }
    access::record(conn, caller, Action::Update, "patient", &current.id)?;
    Ok(records::find_patient(conn, &current.id)?
        .ok_or_else(|| ApiError::internal("patient vanished"))?
        .patient)
}
