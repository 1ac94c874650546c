//! `/v1/patients` handlers: extract, parse, call the shared rules and the store, answer.
use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::domain::{
    merge_patch, NewPatient, Patient, PatientFields, SearchFilters as Filters, Sort,
};
use super::{location, records, resolve, resolve_to_write, Resolved};
use crate::access::{self, Action, Touch};
use crate::auth::{perm, Require};
use crate::error::{ApiError, FieldError};
use crate::http::cursor_seal::Scope;
use crate::http::extract::{parse_value, query_date, ApiQuery, JsonBody};
use crate::http::middleware::redirect;
use crate::http::negotiate::Preference;
use crate::http::paging::{
    bad_cursor, numeric_after, with_next_link, NumericPageParams, Page, PageParams,
};
use crate::http::precondition::IfMatch;
use crate::http::resource;
use crate::idempotency::{idempotency, record_in, Claimed, Idempotency};
use crate::state::AppState;
use crate::store::PatientMark;

pub fn router(state: &AppState) -> Router<AppState> {
    let keys = Idempotency::new(state.clone(), super::replay_check());
    let once = || from_fn_with_state(keys.clone(), idempotency);
    Router::new()
        .route("/v1/patients", get(list).post(create.layer(once())))
        .route("/v1/patients/lookup", get(lookup))
        .route(
            "/v1/patients/batch",
            post(super::batch::batch.layer(once())),
        )
        .route(
            "/v1/patients/{id}",
            get(read).put(replace).patch(patch).delete(remove),
        )
        .route("/v1/patients/{id}/merge", post(merge))
        .route("/v1/patients/{id}/seal", post(seal))
        .route("/v1/patients/{id}/unseal", post(unseal))
        .route("/v1/patients/{id}/access-log", get(access_log))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PatientPage {
    pub items: Vec<Patient>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Name words, as people type them: each word (split on spaces and commas) is a prefix of
    /// the given or the family name, in any order (`john smith`, `smith, john`, `jo sm`); case,
    /// accents, apostrophes and punctuation are ignored (`obrien` finds O'Brien).
    pub q: Option<String>,
    /// `YYYY-MM-DD`.
    #[param(format = Date)]
    pub date_of_birth: Option<String>,
    pub mrn: Option<String>,
    /// As typed: international (`+43 664 1234567`), or national in the country of `clinic_id`
    /// (or of your one clinic).
    /// A `+` sent unencoded (it arrives as a space) is read as the `+` it was.
    #[param(pattern = "^([+0-9][0-9 ().\\-]{2,39}| [0-9][0-9 ().\\-]{1,38})$")]
    pub phone: Option<String>,
    /// The whole address; case is ignored.
    pub email: Option<String>,
    pub clinic_id: Option<String>,
    /// The order: `name` (family, then given name; the default), `created` (registration
    /// time) or `birth_date`; ties by id. A cursor belongs to the order it was made in.
    #[param(inline, value_type = Option<SortParam>)]
    pub sort: Option<String>,
    /// Items per page, 1–200.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page's `next_cursor` (sealed: it does not reveal names).
    #[param(pattern = "^(a[A-Za-z0-9_-]{64,})?$")]
    pub cursor: Option<String>,
}

/// The orders a patient list offers (`sort=`).
#[derive(utoipa::ToSchema)]
#[schema(as = PatientSort)]
#[allow(dead_code)]
pub enum SortParam {
    #[schema(rename = "name")]
    Name,
    #[schema(rename = "created")]
    Created,
    #[schema(rename = "birth_date")]
    BirthDate,
}

/// A cursor's position, marked with the order it belongs to.
fn cursor_key(sort: Sort, key: &str) -> String {
    format!("\u{1e}{}\u{1e}{key}", sort.as_str())
}

/// The position in a cursor made for `sort`; 400 for one made for another order. Every cursor
/// careq seals for this list carries its order, and no other cursor opens.
fn cursor_position(sort: Sort, opened: String) -> Result<String, ApiError> {
    let tagged = opened
        .strip_prefix('\u{1e}')
        .and_then(|rest| rest.split_once('\u{1e}'))
        .and_then(|(s, key)| Some((Sort::parse(s)?, key)));
    match tagged {
        Some((made, key)) if made == sort => Ok(key.to_string()),
        Some((made, _)) => Err(ApiError::bad_param(
            "cursor",
            format!(
                "this cursor belongs to sort={}; page with the same sort, or start again without a cursor",
                made.as_str()
            ),
        )),
        None => Err(bad_cursor()),
    }
}

/// Records what the request read or returned, committed before the answer leaves: an entry
/// about the one patient, or one entry naming several (which each patient's own log shows as an
/// entry about that patient).
async fn log_access(
    st: &AppState,
    caller: &crate::auth::Caller,
    action: Action,
    ids: &[&str],
) -> Result<(), ApiError> {
    let touched: Vec<Touch> = ids.iter().map(|id| Touch::patient(id)).collect();
    access::record_now(&st.db, caller, action, &touched).await
}

/// Search patients
#[utoipa::path(get, path = "/v1/patients", tag = "patients", params(SearchParams),
    responses((status = 200, description = "A page of patients", body = PatientPage,
        content((PatientPage = "application/json"), (String = "text/csv")),
        headers(("Link" = String, description = "`rel=\"next\"` when there is more")))))]
pub async fn list(
    State(st): State<AppState>,
    caller: Require<perm::ReadPatients>,
    ApiQuery(p): ApiQuery<SearchParams>,
    Extension(pref): Extension<Preference>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(d) = &p.date_of_birth {
        // A filter, not a new record: any real date may be searched for.
        query_date("date_of_birth", d)?;
    }
    let phone = match &p.phone {
        Some(ph) => Some(
            super::phone_query(&st.db, &caller, ph, p.clinic_id.as_deref())
                .await?
                // Stored numbers are all valid E.164: what cannot be a number matches none.
                .unwrap_or_else(|| ph.trim().to_string()),
        ),
        None => None,
    };
    let sort = match p.sort.as_deref() {
        None => Sort::Name,
        Some(s) => Sort::parse(s)
            .ok_or_else(|| ApiError::bad_param("sort", "one of name, created, birth_date"))?,
    };
    let paging = PageParams {
        limit: p.limit,
        cursor: p.cursor.clone(),
    };
    let limit = paging.limit()?;
    let after = match paging.after_by(|c| st.cursor_seal.open(Scope::Patients, c))? {
        Some(opened) => cursor_position(sort, opened)?,
        None => String::new(),
    };
    let filters = Filters {
        q: p.q,
        date_of_birth: p.date_of_birth,
        mrn: p.mrn,
        phone,
        // Addresses are stored in lower case.
        email: p.email.map(|e| e.trim().to_lowercase()),
        clinic_id: p.clinic_id,
        sort,
        ..Filters::default()
    };
    let rows = super::search(&st.db, &caller, &filters, &after, limit).await?;
    let page = Page::from_rows_by(rows, limit, |(key, _)| {
        st.cursor_seal.seal(Scope::Patients, &cursor_key(sort, key))
    })
    .map(|(_, patient)| patient);
    let ids: Vec<&str> = page.items.iter().map(|p| p.id.as_str()).collect();
    log_access(&st, &caller, Action::Search, &ids).await?;
    let res = if pref.wants_csv() {
        crate::http::csv_out::representation(&page.items, &headers).into_response()
    } else {
        Json(&page).into_response()
    };
    Ok(with_next_link(res, &uri, page.next_cursor.as_deref()))
}

/// Register a patient (accepts Idempotency-Key)
#[utoipa::path(post, path = "/v1/patients", tag = "patients", request_body = NewPatient,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Replays the first response for the same key and body")),
    responses((status = 201, description = "Created", body = Patient),
        (status = 409, description = "Duplicate (same MRN, or the same names — look-alikes included — and date of birth), or the key is in flight"),
        (status = 404, description = "A replayed key's patient is no longer yours to see"),
        (status = 410, description = "A replayed key's patient was deleted since"),
        (status = 451, description = "A replayed key's patient is sealed")))]
pub async fn create(
    State(st): State<AppState>,
    caller: Require<perm::WritePatients>,
    claimed: Claimed,
    JsonBody(new): JsonBody<NewPatient>,
) -> Result<Response, ApiError> {
    let caller = caller.0;
    st.db
        .write_data(move |conn| {
            let patient = super::create(conn, &caller, &new)?;
            let res = resource::created(&patient, &location(&patient.id));
            // The key's outcome commits with the patient: both are stored, or neither.
            record_in(conn, &claimed, res)
        })
        .await
}

/// Read a patient
#[utoipa::path(get, path = "/v1/patients/{id}", tag = "patients", params(("id" = String, Path, pattern = "^pat_[0-9a-f]{20}$")),
    responses((status = 200, description = "The patient", body = Patient,
            headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 301, description = "Merged into another patient"),
        (status = 304, description = "Not modified"),
        (status = 404, description = "No such patient, or not in your clinics"),
        (status = 410, description = "Deleted"),
        (status = 451, description = "Sealed")))]
pub async fn read(
    State(st): State<AppState>,
    caller: Require<perm::ReadPatients>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let resolved = {
        let (caller, id) = (caller.0.clone(), id.clone());
        st.db
            .lookup(move |conn| resolve(conn, &caller, &id, false))
            .await
    };
    let stored = match resolved {
        Ok(Resolved::Moved(to)) => return Ok(redirect(StatusCode::MOVED_PERMANENTLY, &to)),
        Ok(Resolved::Live(s)) => s,
        Err(e) => {
            let touched = Touch::patient(&id);
            return Err(super::log_denial(&st.db, &caller, e, touched).await);
        }
    };
    log_access(&st, &caller, Action::Read, &[&id]).await?;
    Ok(resource::read(&stored.patient, &headers))
}

/// Shared by PUT and PATCH: resolve for writing, check If-Match, replace, answer.
async fn write(
    st: &AppState,
    caller: &crate::auth::Caller,
    id: &str,
    if_match: IfMatch,
    fields: impl Fn(&Patient) -> Result<PatientFields, ApiError> + Send + Sync + 'static,
) -> Result<Response, ApiError> {
    let (caller, id) = (caller.clone(), id.to_string());
    st.db
        .write_data(move |conn| {
            let stored = match resolve_to_write(conn, &caller, &id)? {
                Resolved::Moved(to) => return Ok(redirect(StatusCode::MOVED_PERMANENTLY, &to)),
                Resolved::Live(s) => s,
            };
            let fields = fields(&stored.patient)?;
            let patient = super::replace(conn, &caller, &stored.patient, &if_match, &fields)?;
            Ok(resource::updated(&patient))
        })
        .await
}

/// Replace a patient (needs If-Match)
#[utoipa::path(put, path = "/v1/patients/{id}", tag = "patients", params(("id" = String, Path, pattern = "^pat_[0-9a-f]{20}$")),
    request_body = PatientFields,
    responses((status = 200, description = "Replaced", body = Patient, headers(("ETag" = String))),
        (status = 301, description = "Merged into another patient"),
        (status = 404, description = "No such patient"), (status = 409, description = "MRN taken, or the new names and date of birth are another patient's"),
        (status = 410, description = "Deleted"), (status = 412, description = "Stale If-Match"),
        (status = 423, description = "Sealed"), (status = 428, description = "No If-Match")))]
pub async fn replace(
    State(st): State<AppState>,
    caller: Require<perm::WritePatients>,
    Path(id): Path<String>,
    if_match: IfMatch,
    JsonBody(fields): JsonBody<PatientFields>,
) -> Result<Response, ApiError> {
    write(&st, &caller, &id, if_match, move |_| Ok(fields.clone())).await
}

/// Update a patient with a JSON merge patch (needs If-Match)
#[utoipa::path(patch, path = "/v1/patients/{id}", tag = "patients", params(("id" = String, Path, pattern = "^pat_[0-9a-f]{20}$")),
    request_body(content = Object, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Updated", body = Patient, headers(("ETag" = String))),
        (status = 301, description = "Merged into another patient"),
        (status = 404, description = "No such patient"), (status = 409, description = "MRN taken, or the new names and date of birth are another patient's"),
        (status = 410, description = "Deleted"), (status = 412, description = "Stale If-Match"),
        (status = 423, description = "Sealed"), (status = 428, description = "No If-Match")))]
pub async fn patch(
    State(st): State<AppState>,
    caller: Require<perm::WritePatients>,
    Path(id): Path<String>,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<serde_json::Map<String, serde_json::Value>>,
) -> Result<Response, ApiError> {
    let patch = serde_json::Value::Object(patch);
    write(&st, &caller, &id, if_match, move |current| {
        let mut doc = serde_json::to_value(current.fields()).map_err(ApiError::internal)?;
        merge_patch(&mut doc, &patch);
        parse_value(doc)
    })
    .await
}

/// Delete a patient (soft: later requests answer 410)
#[utoipa::path(delete, path = "/v1/patients/{id}", tag = "patients", params(("id" = String, Path, pattern = "^pat_[0-9a-f]{20}$")),
    responses((status = 204, description = "Deleted (also when it already was)"),
        (status = 301, description = "Merged into another patient"),
        (status = 403, description = "Receptionists may not delete"),
        (status = 404, description = "No such patient"), (status = 423, description = "Sealed")))]
pub async fn remove(
    State(st): State<AppState>,
    caller: Require<perm::DeletePatients>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = caller.0;
    st.db
        .write_data(move |conn| match resolve_to_write(conn, &caller, &id) {
            Ok(Resolved::Moved(to)) => Ok(redirect(StatusCode::MOVED_PERMANENTLY, &to)),
            Ok(Resolved::Live(_)) => {
                let now = crate::clock::now_rfc3339();
                records::mark_patient(conn, &id, PatientMark::Deleted, Some(&now))?;
                access::record(conn, &caller, Action::Delete, "patient", &id)?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            // Deleting what is already deleted succeeds: DELETE is idempotent.
            Err(ApiError::Gone(_)) => Ok(StatusCode::NO_CONTENT.into_response()),
            Err(e) => Err(e),
        })
        .await
}

#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The surviving patient's id.
    pub into: String,
}

/// Merge a duplicate into the surviving patient
#[utoipa::path(post, path = "/v1/patients/{id}/merge", tag = "patients", params(("id" = String, Path, pattern = "^pat_[0-9a-f]{20}$")),
    request_body = MergeRequest,
    responses((status = 200, description = "The survivor", body = Patient, headers(("ETag" = String))),
        (status = 301, description = "Already merged"),
        (status = 403, description = "Receptionists may not merge"), (status = 404, description = "No such patient"),
        (status = 410, description = "Deleted"), (status = 423, description = "Sealed")))]
pub async fn merge(
    State(st): State<AppState>,
    caller: Require<perm::MergePatients>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<MergeRequest>,
) -> Result<Response, ApiError> {
    let into_err = |m: &str| ApiError::invalid(vec![FieldError::new("/into", m)]);
    if req.into == id {
        return Err(into_err("a patient cannot be merged into itself"));
    }
    let caller = caller.0;
    st.db
        .write_data(move |conn| {
            let from = match resolve_to_write(conn, &caller, &id)? {
                Resolved::Moved(to) => return Ok(redirect(StatusCode::MOVED_PERMANENTLY, &to)),
                Resolved::Live(s) => s.patient,
            };
            let survivor = match resolve_to_write(conn, &caller, &req.into) {
                Ok(Resolved::Live(s)) => s.patient,
                Ok(Resolved::Moved(_)) | Err(ApiError::NotFound(_)) | Err(ApiError::Gone(_)) => {
                    return Err(into_err("no live patient with this id that you may see"))
                }
                Err(e) => return Err(e),
            };
            if survivor.clinic_id != from.clinic_id {
                return Err(into_err("the survivor must be in the same clinic"));
            }
            records::mark_patient(conn, &from.id, PatientMark::Merged, Some(&survivor.id))?;
            records::move_patient_records(conn, &from.id, &survivor.id)?;
            access::record(conn, &caller, Action::Merge, "patient", &from.id)?;
            access::record(conn, &caller, Action::Merge, "patient", &survivor.id)?;
            Ok(resource::updated(&survivor))
        })
        .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupParams {
    /// A phone number as typed (`+43 664 1234567`; a national number when you belong to one
    /// clinic with a country set); a `+` sent unencoded (it arrives as a space) is read as `+`.
    #[param(pattern = "^([+0-9][0-9 ().\\-]{2,39}| [0-9][0-9 ().\\-]{1,38})$")]
    pub phone: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Candidates {
    pub items: Vec<Patient>,
}

/// Find patients by phone: 307 to the one match, 300 with the candidates, 404 for none
#[utoipa::path(get, path = "/v1/patients/lookup", tag = "patients", params(LookupParams),
    responses((status = 307, description = "Exactly one match"),
        (status = 300, description = "Several matches", body = Candidates,
            headers(("Link" = String, description = "One `rel=\"alternate\"` per candidate"))),
        (status = 404, description = "No match")))]
pub async fn lookup(
    State(st): State<AppState>,
    caller: Require<perm::ReadPatients>,
    ApiQuery(p): ApiQuery<LookupParams>,
) -> Result<Response, ApiError> {
    let Some(phone) = super::phone_query(&st.db, &caller, &p.phone, None).await? else {
        return Err(ApiError::NotFound(
            "no patient has this phone number (a national number is read in your clinic's \
             country; give +country code when there is none)"
                .into(),
        ));
    };
    let filters = Filters {
        phone: Some(phone),
        ..Filters::default()
    };
    let found: Vec<Patient> = super::search(&st.db, &caller, &filters, "", 20)
        .await?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let ids: Vec<&str> = found.iter().map(|p| p.id.as_str()).collect();
    log_access(&st, &caller, Action::Search, &ids).await?;
    match found.len() {
        0 => Err(ApiError::NotFound(
            "no patient has this phone number".into(),
        )),
        1 => Ok(redirect(
            StatusCode::TEMPORARY_REDIRECT,
            &location(&found[0].id),
        )),
        _ => {
            let mut res = (
                StatusCode::MULTIPLE_CHOICES,
                Json(Candidates {
                    items: found.clone(),
                }),
            )
                .into_response();
            for p in &found {
                if let Ok(v) =
                    HeaderValue::from_str(&format!("<{}>; rel=\"alternate\"", location(&p.id)))
                {
                    res.headers_mut().append(http::header::LINK, v);
                }
            }
            Ok(res)
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SealRequest {
    /// Why the record is sealed (1–500 characters).
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\s\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb][^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$"
    )]
    pub reason: String,
}

/// Seal a patient record under a legal hold (admin)
#[utoipa::path(post, path = "/v1/patients/{id}/seal", tag = "patients", params(("id" = String, Path, pattern = "^pat_[0-9a-f]{20}$")),
    request_body = SealRequest,
    responses((status = 200, description = "Sealed", body = Patient, headers(("ETag" = String))),
        (status = 403, description = "Not an admin"), (status = 404, description = "No such patient"),
        (status = 410, description = "Deleted")))]
pub async fn seal(
    State(st): State<AppState>,
    caller: Require<perm::SealPatients>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<SealRequest>,
) -> Result<Response, ApiError> {
    let reason = crate::text::line(&req.reason, 500)
        .map_err(|m| ApiError::invalid(vec![FieldError::new("/reason", m)]))?;
    set_seal(&st, &caller, &id, Some(&reason)).await
}

/// Lift a seal (admin)
#[utoipa::path(post, path = "/v1/patients/{id}/unseal", tag = "patients", params(("id" = String, Path, pattern = "^pat_[0-9a-f]{20}$")),
    responses((status = 200, description = "Unsealed", body = Patient, headers(("ETag" = String))),
        (status = 403, description = "Not an admin"), (status = 404, description = "No such patient"),
        (status = 410, description = "Deleted")))]
pub async fn unseal(
    State(st): State<AppState>,
    caller: Require<perm::SealPatients>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_seal(&st, &caller, &id, None).await
}

async fn set_seal(
    st: &AppState,
    caller: &crate::auth::Caller,
    id: &str,
    reason: Option<&str>,
) -> Result<Response, ApiError> {
    let (caller, id) = (caller.clone(), id.to_string());
    let reason = reason.map(str::to_string);
    st.db
        .write(move |conn| {
            // Admins read sealed records, so resolving for reading finds them either way.
            if let Resolved::Moved(to) = resolve(conn, &caller, &id, false)? {
                return Ok(redirect(StatusCode::MOVED_PERMANENTLY, &to));
            }
            let (mark, action) = match reason {
                Some(_) => (PatientMark::Sealed, Action::Seal),
                None => (PatientMark::Unsealed, Action::Unseal),
            };
            records::mark_patient(conn, &id, mark, reason.as_deref())?;
            access::record(conn, &caller, action, "patient", &id)?;
            let patient = records::find_patient(conn, &id)?
                .ok_or_else(|| ApiError::internal("patient vanished"))?
                .patient;
            Ok(resource::updated(&patient))
        })
        .await
}

/// Who read or changed this patient record (admin)
#[utoipa::path(get, path = "/v1/patients/{id}/access-log", tag = "patients", params(("id" = String, Path, pattern = "^pat_[0-9a-f]{20}$"), NumericPageParams),
    responses((status = 200, description = "A page of entries, oldest first", body = crate::access::AccessLogPage,
            headers(("Link" = String, description = "`rel=\"next\"` when there is more"))),
        (status = 403, description = "Not an admin"), (status = 404, description = "No such patient")))]
pub async fn access_log(
    State(st): State<AppState>,
    _admin: Require<perm::ReadAccessLog>,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<NumericPageParams>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let paging = params.paging();
    let limit = paging.limit()?;
    let after = i64::try_from(numeric_after(paging.after()?)?).unwrap_or(i64::MAX);
    let rows = st
        .db
        .read(move |conn| {
            if records::find_patient(conn, &id)?.is_none() {
                return Err(ApiError::NotFound("no patient with this id".into()));
            }
            access::list(conn, "patient", &id, after, limit)
        })
        .await?;
    let page = Page::from_rows(rows, limit, |e| e.seq.to_string());
    Ok(page.respond(&uri))
}

impl crate::http::extract::BodyRules for MergeRequest {}
impl crate::http::extract::BodyRules for SealRequest {}

// How this feature's domain types meet the HTTP mechanism (bodies' rules, CSV rows): kept
// beside the routes, so the domain imports nothing of `http`.
mod domain_http {
    use super::super::domain::*;
    use crate::error::FieldError;

    impl crate::http::csv_out::CsvRow for Patient {
        fn columns() -> &'static [&'static str] {
            &[
                "id",
                "clinic_id",
                "mrn",
                "given_name",
                "family_name",
                "date_of_birth",
                "sex",
                "phone",
                "email",
                "address",
                "height_cm",
                "weight_kg",
                "bmi",
                "version",
                "updated_at",
            ]
        }
        fn cells(&self) -> Vec<crate::http::csv_out::Cell> {
            use crate::http::csv_out::Cell;
            vec![
                Cell::text(&self.id),
                Cell::text(&self.clinic_id),
                Cell::text(&self.mrn),
                Cell::text(&self.given_name),
                Cell::text(&self.family_name),
                Cell::text(&self.date_of_birth),
                Cell::text(self.sex.as_str()),
                Cell::opt_text(self.phone.as_deref()),
                Cell::opt_text(self.email.as_deref()),
                Cell::opt_text(self.address.as_deref()),
                Cell::opt_number(self.height_cm),
                Cell::opt_number(self.weight_kg),
                Cell::opt_number(self.bmi),
                Cell::number(self.version),
                Cell::text(&self.updated_at),
            ]
        }
    }

    impl crate::http::extract::BodyRules for PatientFields {
        fn rule_errors(&self) -> Vec<FieldError> {
            rules_without_clinic(self)
        }
    }

    impl crate::http::extract::BodyRules for NewPatient {
        fn rule_errors(&self) -> Vec<FieldError> {
            rules_without_clinic(&self.fields())
        }
    }
}
