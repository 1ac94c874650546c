//! `/fhir/r4` handlers: extract (the native extractors), call the services, answer in FHIR.
use axum::extract::{FromRef, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::header::{self, HeaderValue};
use serde_json::Value;

use super::bundle::{self, Query};
use super::{appointment, base_url, fhir_id, native_id, patient, FHIR_JSON};
use crate::access::{self, Action, Touch};
use crate::auth::{perm, Require, Role};
use crate::config::Config;
use crate::error::{ApiError, BodyMethod};
use crate::http::conditional::Representation;
use crate::http::extract::{parse_json, read_body};
use crate::http::middleware::redirect;
use crate::http::precondition::{version_etag, IfMatch};
use crate::patients::{resolve, Resolved};
use crate::startup::AppState;

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
        .route("/fhir/r4/Appointment", get(search_appointments))
        .route("/fhir/r4/Appointment/{id}", get(read_appointment))
        .route("/fhir/r4/Practitioner/{id}", get(read_practitioner))
}

/// A FHIR resource body: `application/fhir+json` or `application/json`, read within the same
/// limits and with the same errors as every JSON body.
pub struct FhirBody(pub Value);

impl<S> FromRequest<S> for FhirBody
where
    S: Send + Sync,
    std::sync::Arc<Config>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let config = std::sync::Arc::<Config>::from_ref(state);
        let media = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        if !matches!(media.as_deref(), Some(FHIR_JSON) | Some("application/json")) {
            let method = if req.method() == http::Method::PUT {
                BodyMethod::Put
            } else {
                BodyMethod::Post
            };
            return Err(ApiError::UnsupportedMediaType {
                accept: FHIR_JSON,
                method,
            });
        }
        let bytes = read_body(req.into_body(), &config).await?;
        parse_json::<Value>(&bytes).map(FhirBody)
    }
}

/// A versioned resource's answer: `ETag` from the version (weak once it leaves), `Last-Modified`,
/// and 304 on a matching `If-None-Match`.
fn versioned(body: &Value, version: i64, updated_at: &str, req: &HeaderMap) -> Representation {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut rep = Representation::new(bytes, FHIR_JSON).modified(crate::clock::unix_of(updated_at));
    rep.etag = version_etag(version);
    let _ = req;
    rep
}

fn created(body: &Value, version: i64, updated_at: &str, location: &str) -> Response {
    let mut rep =
        versioned(body, version, updated_at, &HeaderMap::new()).status(StatusCode::CREATED);
    if let Ok(v) = HeaderValue::from_str(location) {
        rep.extra.insert(header::LOCATION, v);
    }
    rep.respond(&HeaderMap::new())
}

fn bundle_response(b: &Value) -> Response {
    Representation::new(serde_json::to_vec(b).unwrap_or_default(), FHIR_JSON)
        .respond(&HeaderMap::new())
}

/// The server's CapabilityStatement
#[utoipa::path(get, path = "/fhir/r4/metadata", tag = "fhir", security(()),
    responses((status = 200, description = "CapabilityStatement", content_type = "application/fhir+json", body = Object)))]
pub async fn metadata(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let body = super::capability::statement(&base_url(&st, &headers), &crate::clock::now_rfc3339());
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
    Ok(versioned(&body, version, &updated, &headers).respond(&headers))
}

/// The patient as FHIR, its version and time of change; the read is access-logged.
async fn patient_now(
    st: &AppState,
    caller: &crate::auth::Caller,
    id: &str,
) -> Result<(Value, i64, String), ApiError> {
    let mut conn = st.db.read().await?;
    let found = match resolve(&mut *conn, caller, id, false).await {
        Ok(Resolved::Live(s)) => {
            let p = s.patient;
            (patient::to_fhir(&p), p.version, p.updated_at)
        }
        Ok(Resolved::Moved(_)) => {
            let s = conn
                .find_patient(id)
                .await?
                .ok_or_else(|| ApiError::internal("patient vanished"))?;
            let survivor = s.merged_into.clone().unwrap_or_default();
            let p = s.patient;
            (patient::replaced(&p, &survivor), p.version, p.updated_at)
        }
        Err(e) => {
            drop(conn);
            return Err(crate::patients::log_denial(&st.db, caller, e, Touch::patient(id)).await);
        }
    };
    drop(conn);
    access::record_now(&st.db, caller, Action::Read, &[Touch::patient(id)]).await?;
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
    Ok(versioned(&body, version, &updated, &headers).respond(&headers))
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
    let base = base_url(&st, &headers);
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
            let (caller, new, condition) = (caller.clone(), new.clone(), condition.clone());
            Box::pin(async move {
                if let Some(cond) = condition {
                    let found = match cond {
                        None => Vec::new(),
                        Some((f, Some(id))) => super::by_id(conn, &caller, &id, &f)
                            .await?
                            .into_iter()
                            .collect(),
                        Some((f, None)) => {
                            let member_of = (caller.role != Role::Admin)
                                .then_some(caller.clinic_ids.as_slice());
                            conn.search_patients(member_of, &f, "", 2)
                                .await?
                                .into_iter()
                                .map(|(_, p)| p)
                                .collect()
                        }
                    };
                    match found.as_slice() {
                        [] => {}
                        [one] => {
                            access::record(conn, &caller, Action::Read, "patient", &one.id).await?;
                            return Ok((one.clone(), false));
                        }
                        _ => {
                            return Err(ApiError::AmbiguousCondition(
                                "If-None-Exist matched more than one patient; make it narrower"
                                    .into(),
                            ))
                        }
                    }
                }
                let p = crate::patients::create(conn, &caller, &new)
                    .await
                    .map_err(patient::repoint)?;
                Ok((p, true))
            })
        })
        .await?;
    let body = patient::to_fhir(&p);
    if made {
        let location = format!(
            "{}/Patient/{}/_history/{}",
            base_url(&st, &headers),
            fhir_id(&p.id),
            p.version
        );
        Ok(created(&body, p.version, &p.updated_at, &location))
    } else {
        Ok(versioned(&body, p.version, &p.updated_at, &headers).respond(&HeaderMap::new()))
    }
}

/// Update a Patient (needs If-Match: W/"version")
#[utoipa::path(put, path = "/fhir/r4/Patient/{id}", tag = "fhir", params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/fhir+json"),
    responses((status = 200, description = "Updated", content_type = "application/fhir+json", body = Object, headers(("ETag" = String))),
        (status = 301, description = "Merged into another patient"),
        (status = 404, description = "No such patient"), (status = 409, description = "MRN taken"),
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
            let (caller, id, if_match, doc) =
                (caller.clone(), id.clone(), if_match.clone(), doc.clone());
            Box::pin(async move {
                let stored = match resolve(conn, &caller, &id, true).await? {
                    Resolved::Moved(to) => {
                        let into = to.rsplit('/').next().unwrap_or_default().to_string();
                        return Ok(redirect(
                            StatusCode::MOVED_PERMANENTLY,
                            &format!("/fhir/r4/Patient/{}", fhir_id(&into)),
                        ));
                    }
                    Resolved::Live(s) => s,
                };
                let fields = patient::replacement(&doc, &id, &stored.patient)?;
                let p =
                    crate::patients::replace(conn, &caller, &stored.patient, &if_match, &fields)
                        .await
                        .map_err(patient::repoint)?;
                Ok(versioned(
                    &patient::to_fhir(&p),
                    p.version,
                    &p.updated_at,
                    &HeaderMap::new(),
                )
                .respond(&HeaderMap::new()))
            })
        })
        .await
}

/// Read an Appointment
#[utoipa::path(get, path = "/fhir/r4/Appointment/{id}", tag = "fhir", params(("id" = String, Path)),
    responses((status = 200, description = "Appointment", content_type = "application/fhir+json", body = Object,
            headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 304, description = "Not modified"), (status = 404, description = "No such appointment, or not yours"),
        (status = 410, description = "Deleted"), (status = 451, description = "The patient's record is sealed")))]
pub async fn read_appointment(
    State(st): State<AppState>,
    caller: Require<perm::ReadPatients>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut conn = st.db.read().await?;
    let a = crate::appointments::visible(&mut *conn, &caller, &native_id(&id)).await?;
    let sealed = crate::patients::check_seal(
        &mut *conn,
        &caller,
        &a.patient_id,
        crate::patients::Use::Read,
    )
    .await;
    drop(conn);
    let touch = crate::appointments::touch(&a);
    if let Err(e) = sealed {
        return Err(crate::patients::log_denial(&st.db, &caller, e, touch).await);
    }
    access::record_now(
        &st.db,
        &caller,
        Action::Read,
        &[crate::appointments::touch(&a)],
    )
    .await?;
    Ok(versioned(
        &appointment::to_fhir(&a),
        a.version,
        &a.updated_at,
        &headers,
    )
    .respond(&headers))
}

/// Search Appointments
#[utoipa::path(get, path = "/fhir/r4/Appointment", tag = "fhir",
    params(("patient" = Option<String>, Query), ("practitioner" = Option<String>, Query),
        ("date" = Option<String>, Query, description = "eq/ge/le + YYYY-MM-DD"), ("status" = Option<String>, Query),
        ("_count" = Option<u32>, Query, minimum = 1, maximum = 200), ("_cursor" = Option<String>, Query),
        ("Prefer" = Option<String>, Header, description = "`handling=lenient` ignores unknown parameters")),
    responses((status = 200, description = "searchset Bundle", content_type = "application/fhir+json", body = Object)))]
pub async fn search_appointments(
    State(st): State<AppState>,
    caller: Require<perm::ReadPatients>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = Query::parse(
        uri.query(),
        super::APPOINTMENT_PARAMS,
        bundle::lenient(&headers),
    )?;
    let limit = q.count()?;
    let after = match q.get("_cursor") {
        Some(c) => crate::http::paging::decode_cursor(c)
            .map_err(|_| ApiError::bad_param("_cursor", "not a valid cursor"))?,
        None => String::new(),
    };
    let (start, after_id) = match after.split_once('|') {
        Some((s, id)) => (s.parse::<i64>().unwrap_or(i64::MIN), id.to_string()),
        None => (after.parse::<i64>().unwrap_or(i64::MIN), String::new()),
    };
    let rows = match super::appointment_filters(&q)? {
        Some(f) => {
            let member = (caller.role != Role::Admin).then_some(caller.user_id.as_str());
            crate::appointments::list(&st.db, member, &f, (start, &after_id), limit).await?
        }
        None => Vec::new(),
    };
    let page = crate::http::paging::Page::from_rows(rows, limit, |a| {
        let t = a
            .start
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_second())
            .unwrap_or(0);
        format!("{t}|{}", a.id)
    });
    let touched: Vec<Touch> = page.items.iter().map(crate::appointments::touch).collect();
    access::record_now(&st.db, &caller, Action::Search, &touched).await?;
    let url = format!("{}/Appointment", base_url(&st, &headers));
    let entries = page
        .items
        .iter()
        .map(|a| (format!("{url}/{}", fhir_id(&a.id)), appointment::to_fhir(a)))
        .collect();
    let next = page.next_cursor.as_deref().map(|c| q.url(&url, Some(c)));
    Ok(bundle_response(&bundle::searchset(
        &q.url(&url, None),
        next,
        None,
        entries,
    )))
}

/// Read a Practitioner (a clinician; no credentials)
#[utoipa::path(get, path = "/fhir/r4/Practitioner/{id}", tag = "fhir", params(("id" = String, Path)),
    responses((status = 200, description = "Practitioner", content_type = "application/fhir+json", body = Object,
            headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 304, description = "Not modified"),
        (status = 404, description = "No such clinician in your clinics"), (status = 410, description = "Deleted")))]
pub async fn read_practitioner(
    State(st): State<AppState>,
    caller: Require<perm::ReadPatients>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut conn = st.db.read().await?;
    let u = crate::users::get(&mut *conn, &native_id(&id)).await?;
    drop(conn);
    // Clinicians (and admins, who may hold appointments anywhere) of the caller's clinics.
    let shares = u.clinic_ids.iter().any(|c| caller.sees_clinic(c));
    let visible = match u.role {
        Role::Admin => true,
        Role::Clinician => shares,
        Role::Receptionist => false,
    };
    if !visible {
        return Err(ApiError::NotFound(
            "no clinician with this id in your clinics".into(),
        ));
    }
    Ok(versioned(
        &appointment::practitioner(&u),
        u.version,
        &u.updated_at,
        &headers,
    )
    .respond(&headers))
}
