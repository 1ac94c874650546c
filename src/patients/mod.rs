//! Patients: `/v1/patients`. The rules shared by the single create, the batch and the updates
//! live here; `routes.rs` holds thin handlers, `store.rs` the queries.
pub mod batch;
pub mod domain;
pub mod routes;
pub mod store;

use sqlx::SqliteConnection;

use crate::access::{self, Action};
use crate::auth::Caller;
use crate::error::{ApiError, FieldError};
use domain::{NewPatient, Patient, ValidPatient};
use store::Stored;

pub use routes::router;

pub fn location(id: &str) -> String {
    format!("/v1/patients/{id}")
}

fn duplicate(existing: &str, why: &str) -> ApiError {
    ApiError::Conflict {
        detail: format!("a patient with {why} already exists in this clinic"),
        existing: Some(location(existing)),
    }
}

/// Validates and stores one new patient inside `conn`'s transaction, with its access-log entry.
pub async fn create(
    conn: &mut SqliteConnection,
    caller: &Caller,
    new: &NewPatient,
) -> Result<Patient, ApiError> {
    let valid = ValidPatient::parse(&new.fields()).map_err(ApiError::invalid)?;
    let clinic = crate::clinics::store::find(conn, &new.clinic_id)
        .await?
        .filter(|c| caller.sees_clinic(&c.id))
        .ok_or_else(|| {
            ApiError::invalid(vec![FieldError::new(
                "/clinic_id",
                "no clinic with this id that you belong to",
            )])
        })?;
    let mrn = match &valid.mrn {
        Some(m) => {
            if let Some(existing) = store::id_by_mrn(conn, &clinic.id, m).await? {
                return Err(duplicate(&existing, "this MRN"));
            }
            m.clone()
        }
        None => store::next_mrn(conn, &clinic.id, &clinic.ticket_prefix).await?,
    };
    if !new.allow_duplicate {
        if let Some(existing) = store::same_person(conn, &clinic.id, &valid, "").await? {
            return Err(duplicate(&existing, "these names and date of birth"));
        }
    }
    let id = crate::ids::new_id("pat");
    if let Err(e) = store::insert(conn, &id, &clinic.id, &mrn, &valid).await {
        // A concurrent create took the MRN between the check and the insert.
        return Err(match crate::db::failure(&e) {
            crate::db::DbFailure::Unique => match store::id_by_mrn(conn, &clinic.id, &mrn).await? {
                Some(existing) => duplicate(&existing, "this MRN"),
                None => ApiError::from(e),
            },
            _ => ApiError::from(e),
        });
    }
    access::record(conn, caller, Action::Create, "patient", &id).await?;
    let stored = store::find(conn, &id)
        .await?
        .ok_or_else(|| ApiError::internal("patient vanished"))?;
    Ok(stored.patient)
}

/// How a request for a patient id resolves.
pub enum Resolved {
    /// Live and readable.
    Live(Box<Stored>),
    /// Merged into another patient: answer 301 to it.
    Moved(String),
}

/// Finds a patient the caller may see. Missing or in another clinic → 404 (same answer);
/// deleted → 410; merged → `Moved`. `writing` makes a sealed record 423, else (non-admins) 451.
pub async fn resolve(
    conn: &mut SqliteConnection,
    caller: &Caller,
    id: &str,
    writing: bool,
) -> Result<Resolved, ApiError> {
    let stored = store::find(conn, id)
        .await?
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
            return Err(ApiError::Locked(
                "this record is sealed under a legal hold; unseal it first".into(),
            ));
        }
        if caller.role != crate::auth::Role::Admin {
            return Err(ApiError::UnavailableForLegalReasons {
                blocked_by: format!("{}/seal", location(id)),
            });
        }
    }
    Ok(Resolved::Live(Box::new(stored)))
}

/// Replaces a live patient's fields if it is still at `version` (the If-Match check).
pub async fn replace(
    conn: &mut SqliteConnection,
    caller: &Caller,
    current: &Patient,
    if_match: &crate::http::precondition::IfMatch,
    fields: &domain::PatientFields,
) -> Result<Patient, ApiError> {
    // The content is judged first: a broken body is 422 whatever the precondition says.
    let valid = ValidPatient::parse(fields).map_err(ApiError::invalid)?;
    if_match.check(current.version)?;
    let mrn = valid.mrn.clone().unwrap_or_else(|| current.mrn.clone());
    if mrn != current.mrn {
        if let Some(existing) = store::id_by_mrn(conn, &current.clinic_id, &mrn).await? {
            return Err(duplicate(&existing, "this MRN"));
        }
    }
    match store::update(conn, &current.id, current.version, &mrn, &valid).await {
        Ok(true) => {}
        Ok(false) => {
            let now = store::find(conn, &current.id)
                .await?
                .map(|s| s.patient.version)
                .unwrap_or(0);
            return Err(crate::http::precondition::stale(now));
        }
        Err(e) => return Err(ApiError::from(e)),
    }
    access::record(conn, caller, Action::Update, "patient", &current.id).await?;
    Ok(store::find(conn, &current.id)
        .await?
        .ok_or_else(|| ApiError::internal("patient vanished"))?
        .patient)
}
