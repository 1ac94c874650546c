//! `/fhir/r4/Appointment` and `/fhir/r4/Practitioner` handlers: read and search appointments,
//! read the clinicians they name.
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use super::bundle::{self, Query};
use super::respond::{bundle_response, versioned};
use super::{appointment, base_url, fhir_id, native_id};
use crate::access::{self, Action, Touch};
use crate::auth::{perm, Require, Role};
use crate::error::ApiError;
use crate::state::AppState;

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
    let reader = caller.0.clone();
    let (a, sealed) = st
        .db
        .read(move |conn| {
            let a = crate::appointments::visible(conn, &reader, &native_id(&id))?;
            let sealed = crate::patients::check_seal(
                conn,
                &reader,
                &a.patient_id,
                crate::patients::Use::Read,
            );
            Ok((a, sealed))
        })
        .await?;
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
    Ok(versioned(&appointment::to_fhir(&a), a.version, &a.updated_at).respond(&headers))
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
    let rows = match super::appointment_filters(&st, &caller, &q).await? {
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
    let url = format!("{}/Appointment", base_url(&st));
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
    let u = st
        .db
        .read(move |conn| crate::users::get(conn, &native_id(&id)))
        .await?;
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
    Ok(versioned(&appointment::practitioner(&u), u.version, &u.updated_at).respond(&headers))
}
