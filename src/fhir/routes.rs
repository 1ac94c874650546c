//! `/fhir/r4` handlers: extract (the native extractors), call the services, answer in FHIR.
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use super::bundle::{self, Query};
use super::respond::{bundle_response, created, versioned, FhirBody};
use super::{base_url, fhir_id, native_id, patient, schedule};
use crate::access::{self, Action, Touch};
use crate::auth::{perm, Require, Role};
use crate::error::ApiError;
use crate::http::middleware::redirect;
use crate::http::precondition::IfMatch;
use crate::patients::{records, resolve, resolve_to_write, Resolved, Use};
use crate::state::AppState;
use crate::store::Read;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/fhir/r4/metadata", get(metadata))
        .route(
            "/fhir/r4/Patient",
            get(search_patients).post(create_patient),
        )
        .route(
            "/fhir/r4/Patient/{id}",
            get(read_patient).put(update_patient),
        )
        .route("/fhir/r4/Patient/{id}/_history/{vid}", get(vread_patient))
        .route("/fhir/r4/Appointment", get(schedule::search_appointments))
        .route("/fhir/r4/Appointment/{id}", get(schedule::read_appointment))
        .route(
            "/fhir/r4/Practitioner/{id}",
            get(schedule::read_practitioner),
        )
}

/// The server's CapabilityStatement
#[utoipa::path(get, path = "/fhir/r4/metadata", tag = "fhir", security(()),
    responses((status = 200, description = "CapabilityStatement", content_type = "application/fhir+json", body = Object)))]
pub async fn metadata(State(st): State<AppState>) -> Response {
    let body = super::capability::statement(&base_url(&st), &crate::clock::now_rfc3339());
    bundle_response(&body)
}

/// Read a Patient
#[utoipa::path(get, path = "/fhir/r4/Patient/{id}", tag = "fhir", params(("id" = String, Path)),
    responses((status = 200, description = "Patient (a merged one has `link` replaced-by)", content_type = "application/fhir+json", body = Object,
            headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 304, description = "Not modified"),
        (status = 404, description = "No such patient, or not in your clinics"),
        (status = 410, description = "Deleted"), (status = 451, description = "Sealed")))]
pub async fn read_patient(
    State(st): State<AppState>,
    caller: Require<perm::ReadPatients>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (body, version, updated) = patient_now(&st, &caller, &native_id(&id)).await?;
    Ok(versioned(&body, version, &updated).respond(&headers))
}

/// What one read of a patient for FHIR found: the record served, or why it is refused (with
/// the survivor's id when the refusal is the survivor's).
enum Found {
    Served((Value, i64, String), Option<String>),
    Refused(ApiError, Option<String>),
}

/// Reads the patient for [`patient_now`], following a merge to its survivor.
fn find_for_fhir(
    conn: &mut dyn Read,
    caller: &crate::auth::Caller,
    id: &str,
) -> Result<Found, ApiError> {
    match resolve(conn, caller, id, false) {
        Ok(Resolved::Live(s)) => {
            let p = s.patient;
            Ok(Found::Served(
                (patient::to_fhir(&p), p.version, p.updated_at),
                None,
            ))
        }
        Ok(Resolved::Moved(_)) => {
            // FHIR serves the old record itself (`replaced-by`) where the native API answers
            // 301: the merge is followed first, so the survivor's seal governs it too.
            let s = records::find_patient(conn, id)?
                .ok_or_else(|| ApiError::internal("patient vanished"))?;
            let survivor = crate::patients::survivor_of(conn, &s)?;
            let sid = survivor.patient.id.clone();
            if let Err(e) = crate::patients::survivor_allows(caller, &survivor, Use::Read) {
                return Ok(Found::Refused(e, Some(sid)));
            }
            let p = s.patient;
            Ok(Found::Served(
                (patient::replaced(&p, &sid), p.version, p.updated_at),
                Some(sid),
            ))
        }
        Err(e) => Ok(Found::Refused(e, None)),
    }
}

/// The patient as FHIR, its version and time of change; the read is access-logged.
async fn patient_now(
    st: &AppState,
    caller: &crate::auth::Caller,
    id: &str,
) -> Result<(Value, i64, String), ApiError> {
    let found = {
        let (who, id) = (caller.clone(), id.to_string());
        st.db
            .lookup(move |conn| find_for_fhir(conn, &who, &id))
            .await?
    };
    let (found, survivor) = match found {
        Found::Served(found, survivor) => (found, survivor),
        Found::Refused(e, Some(sid)) => {
            let touched = crate::patients::merged_touch(id, &sid);
            return Err(crate::patients::log_denial(&st.db, caller, e, touched).await);
        }
        Found::Refused(e, None) => {
            return Err(crate::patients::log_denial(&st.db, caller, e, Touch::patient(id)).await);
        }
    };
    let touched = match &survivor {
        Some(sid) => crate::patients::merged_touch(id, sid),
        None => Touch::patient(id),
    };
    access::record_now(&st.db, caller, Action::Read, &[touched]).await?;
    Ok(found)
}

/// Read a version of a Patient (careq keeps the current one)
#[utoipa::path(get, path = "/fhir/r4/Patient/{id}/_history/{vid}", tag = "fhir", params(("id" = String, Path), ("vid" = String, Path)),
    responses((status = 200, description = "Patient at that version", content_type = "application/fhir+json", body = Object,
            headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 304, description = "Not modified"),
        (status = 404, description = "No such patient or version"),
        (status = 410, description = "Deleted"), (status = 451, description = "Sealed")))]
pub async fn vread_patient(
    State(st): State<AppState>,
    caller: Require<perm::ReadPatients>,
    Path((id, vid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (body, version, updated) = patient_now(&st, &caller, &native_id(&id)).await?;
    if vid != version.to_string() {
        return Err(ApiError::NotFound(format!(
            "careq keeps only the current version of a record (now {version})"
        )));
    }
    Ok(versioned(&body, version, &updated).respond(&headers))
}

/// Search Patients
#[utoipa::path(get, path = "/fhir/r4/Patient", tag = "fhir",
    params(("name" = Option<String>, Query), ("family" = Option<String>, Query), ("given" = Option<String>, Query),
        ("birthdate" = Option<String>, Query), ("identifier" = Option<String>, Query),
        ("telecom" = Option<String>, Query), ("phone" = Option<String>, Query), ("_id" = Option<String>, Query),
        ("_count" = Option<u32>, Query, minimum = 1, maximum = 200), ("_cursor" = Option<String>, Query),
        ("Prefer" = Option<String>, Header, description = "`handling=lenient` ignores unknown parameters")),
    responses((status = 200, description = "searchset Bundle", content_type = "application/fhir+json", body = Object)))]
pub async fn search_patients(
    State(st): State<AppState>,
    caller: Require<perm::ReadPatients>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = Query::parse(
        uri.query(),
        super::PATIENT_PARAMS,
        bundle::lenient(&headers),
    )?;
    let page = super::search_patients(&st, &caller, &q).await?;
    let base = base_url(&st);
    let url = format!("{base}/Patient");
    let entries = page
        .items
        .iter()
        .map(|p| (format!("{url}/{}", fhir_id(&p.id)), patient::to_fhir(p)))
        .collect();
    let next = page.next_cursor.as_deref().map(|c| q.url(&url, Some(c)));
    Ok(bundle_response(&bundle::searchset(
        &q.url(&url, None),
        next,
        page.total,
        entries,
    )))
}

/// Create a Patient (conditional with If-None-Exist)
#[utoipa::path(post, path = "/fhir/r4/Patient", tag = "fhir",
    params(("If-None-Exist" = Option<String>, Header, description = "A Patient search: 0 matches create, 1 answers it, more 412")),
    request_body(content = Object, content_type = "application/fhir+json"),
    responses((status = 201, description = "Created", content_type = "application/fhir+json", body = Object),
        (status = 200, description = "If-None-Exist matched one patient", content_type = "application/fhir+json", body = Object, headers(("ETag" = String))),
        (status = 404, description = "A conditional search's id is not yours to see"),
        (status = 409, description = "Duplicate (MRN, or names and birth date)"),
        (status = 412, description = "If-None-Exist matched more than one patient")))]
pub async fn create_patient(
    State(st): State<AppState>,
    caller: Require<perm::WritePatients>,
    headers: HeaderMap,
    FhirBody(doc): FhirBody,
) -> Result<Response, ApiError> {
    let new = patient::new_patient(&doc, &caller.clinic_ids)?;
    let condition = match headers.get("if-none-exist") {
        Some(v) => {
            let raw = v
                .to_str()
                .map_err(|_| ApiError::bad_request("If-None-Exist is not a query string"))?;
            let raw = raw.rsplit_once('?').map(|(_, q)| q).unwrap_or(raw);
            let q = Query::parse(Some(raw), super::PATIENT_PARAMS, false)?;
            Some(super::patient_filters(&st, &caller, &q).await?)
        }
        None => None,
    };
    let caller = caller.0;
    let (p, made) = st
        .db
        .write_data(move |conn| {
            if let Some(cond) = &condition {
                let found = match cond {
                    None => Vec::new(),
                    Some((f, Some(id))) => {
                        super::by_id(conn, &caller, id, f)?.into_iter().collect()
                    }
                    Some((f, None)) => {
                        let member_of =
                            (caller.role != Role::Admin).then_some(caller.clinic_ids.as_slice());
                        records::search_patients(conn, member_of, f, "", 2)?
                            .into_iter()
                            .map(|(_, p)| p)
                            .collect()
                    }
                };
                match found.as_slice() {
                    [] => {}
                    [one] => {
                        access::record(conn, &caller, Action::Read, "patient", &one.id)?;
                        return Ok((one.clone(), false));
                    }
                    _ => {
                        return Err(ApiError::AmbiguousCondition(
                            "If-None-Exist matched more than one patient; make it narrower".into(),
                        ))
                    }
                }
            }
            let p = crate::patients::create(conn, &caller, &new).map_err(patient::repoint)?;
            Ok((p, true))
        })
        .await?;
    let body = patient::to_fhir(&p);
    if made {
        let location = format!(
            "{}/Patient/{}/_history/{}",
            base_url(&st),
            fhir_id(&p.id),
            p.version
        );
        Ok(created(&body, p.version, &p.updated_at, &location))
    } else {
        Ok(versioned(&body, p.version, &p.updated_at).respond(&HeaderMap::new()))
    }
}

/// Update a Patient (needs If-Match: W/"version")
#[utoipa::path(put, path = "/fhir/r4/Patient/{id}", tag = "fhir", params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/fhir+json"),
    responses((status = 200, description = "Updated", content_type = "application/fhir+json", body = Object, headers(("ETag" = String))),
        (status = 301, description = "Merged into another patient"),
        (status = 404, description = "No such patient"), (status = 409, description = "MRN taken, or the new names and date of birth are another patient's"),
        (status = 410, description = "Deleted"), (status = 412, description = "Stale If-Match"),
        (status = 423, description = "Sealed"), (status = 428, description = "No If-Match")))]
pub async fn update_patient(
    State(st): State<AppState>,
    caller: Require<perm::WritePatients>,
    Path(id): Path<String>,
    if_match: IfMatch,
    FhirBody(doc): FhirBody,
) -> Result<Response, ApiError> {
    let (caller, if_match, id) = (caller.0, if_match.weak_as_version(), native_id(&id));
    st.db
        .write_data(move |conn| {
            let stored = match resolve_to_write(conn, &caller, &id)? {
                Resolved::Moved(_) => {
                    // Pointed at the record that carries the person now, unless that one
                    // refuses the write itself (sealed: 423; deleted: 410).
                    let merged = records::find_patient(conn, &id)?
                        .ok_or_else(|| ApiError::internal("patient vanished"))?;
                    let survivor = crate::patients::survivor_of(conn, &merged)?;
                    crate::patients::survivor_allows(&caller, &survivor, Use::Write)?;
                    return Ok(redirect(
                        StatusCode::MOVED_PERMANENTLY,
                        &format!("/fhir/r4/Patient/{}", fhir_id(&survivor.patient.id)),
                    ));
                }
                Resolved::Live(s) => s,
            };
            let fields = patient::replacement(&doc, &id, &stored.patient)?;
            let p = crate::patients::replace(conn, &caller, &stored.patient, &if_match, &fields)
                .map_err(patient::repoint)?;
            Ok(versioned(&patient::to_fhir(&p), p.version, &p.updated_at)
                .respond(&HeaderMap::new()))
        })
        .await
}
