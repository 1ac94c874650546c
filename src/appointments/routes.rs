//! `/v1/appointments`: book, list, read, reschedule or change status (If-Match), delete, and
//! check in (which issues a queue ticket).
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::domain::{Appointment, AppointmentPatch, AppointmentStatus, NewAppointment, Slot};
use super::store::{self, Filters};
use crate::access::{self, Action, Touch};
use crate::auth::{perm, Caller, Require, Role};
use crate::error::{ApiError, FieldError};
use crate::http::extract::{ApiQuery, JsonBody};
use crate::http::paging::Page;
use crate::http::precondition::{stale, IfMatch};
use crate::http::{resource, AppState};
use crate::patients::Use;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/appointments", get(list).post(book))
        .route(
            "/v1/appointments/{id}",
            get(read).patch(update).delete(remove),
        )
        .route("/v1/appointments/{id}/check-in", post(check_in))
}

fn location(id: &str) -> String {
    format!("/v1/appointments/{id}")
}

fn taken(other: &str) -> ApiError {
    ApiError::Conflict {
        detail: "the clinician already has an appointment in this slot".into(),
        existing: Some(location(other)),
    }
}

/// A live appointment the caller may see: 404 if missing or another clinic's, 410 if deleted.
async fn visible(
    conn: &mut sqlx::SqliteConnection,
    caller: &Caller,
    id: &str,
) -> Result<Appointment, ApiError> {
    match store::find(conn, id).await? {
        Some((a, deleted)) if caller.sees_clinic(&a.clinic_id) => {
            if deleted {
                Err(ApiError::Gone("this appointment was deleted".into()))
            } else {
                Ok(a)
            }
        }
        _ => Err(ApiError::NotFound("no appointment with this id".into())),
    }
}

/// A live appointment the caller may see and use: its patient's seal answers 451 to a read by
/// a non-admin and 423 to any write.
async fn usable(
    conn: &mut sqlx::SqliteConnection,
    caller: &Caller,
    id: &str,
    use_: Use,
) -> Result<Appointment, ApiError> {
    let a = visible(conn, caller, id).await?;
    crate::patients::check_seal(conn, caller, &a.patient_id, use_).await?;
    Ok(a)
}

/// An access-log entry for an appointment: it carries the patient's data (the reason).
fn touch(a: &Appointment) -> Touch<'_> {
    Touch {
        resource_type: "appointment",
        resource_id: &a.id,
        patient: Some(&a.patient_id),
    }
}

/// 422 unless the patient is live in the clinic and the clinician may see patients there.
async fn check_people(
    conn: &mut sqlx::SqliteConnection,
    clinic_id: &str,
    patient_id: &str,
    clinician_id: &str,
) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let patient_ok = crate::patients::store::find(conn, patient_id)
        .await?
        .is_some_and(|p| p.patient.clinic_id == clinic_id && !p.deleted && p.merged_into.is_none());
    if !patient_ok {
        errors.push(FieldError::new(
            "/patient_id",
            "no live patient of this clinic with this id",
        ));
    }
    let clinician_ok = match crate::users::store::find(conn, clinician_id).await? {
        Some(crate::users::store::Found::Live(u)) => {
            u.active
                && (u.role == Role::Admin
                    || (u.role == Role::Clinician && u.clinic_ids.iter().any(|c| c == clinic_id)))
        }
        _ => false,
    };
    if !clinician_ok {
        errors.push(FieldError::new(
            "/clinician_id",
            "no active clinician of this clinic with this id",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(errors))
    }
}

/// Book an appointment
#[utoipa::path(post, path = "/v1/appointments", tag = "appointments", request_body = NewAppointment,
    responses((status = 201, description = "Booked", body = Appointment),
        (status = 409, description = "The clinician's slot is taken; the problem names the other appointment"),
        (status = 423, description = "The patient's record is sealed")))]
pub async fn book(
    State(st): State<AppState>,
    caller: Require<perm::WritePatients>,
    JsonBody(new): JsonBody<NewAppointment>,
) -> Result<Response, ApiError> {
    let slot = Slot::parse(&new.start, new.duration_minutes).map_err(ApiError::invalid)?;
    let mut tx = st.write_tx().await?;
    if crate::clinics::routes::visible(&mut tx, &caller, &new.clinic_id)
        .await
        .is_err()
    {
        return Err(ApiError::invalid(vec![FieldError::new(
            "/clinic_id",
            "no clinic with this id that you belong to",
        )]));
    }
    check_people(&mut tx, &new.clinic_id, &new.patient_id, &new.clinician_id).await?;
    crate::patients::check_seal(&mut tx, &caller, &new.patient_id, Use::Write).await?;
    if let Some(other) = store::overlapping(&mut tx, &new.clinician_id, &slot, "").await? {
        return Err(taken(&other));
    }
    let id = crate::ids::new_id("apt");
    let reason = new
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    store::insert(
        &mut tx,
        &store::NewRow {
            id: &id,
            clinic_id: &new.clinic_id,
            patient_id: &new.patient_id,
            clinician_id: &new.clinician_id,
            slot: &slot,
            reason,
        },
    )
    .await?;
    let (a, _) = store::find(&mut tx, &id)
        .await?
        .ok_or_else(|| ApiError::internal("appointment vanished"))?;
    access::record_about(
        &mut tx,
        &caller,
        Action::Create,
        "appointment",
        &id,
        Some(&a.patient_id),
    )
    .await?;
    tx.commit().await?;
    Ok(resource::created(&a, &location(&id)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    pub clinic_id: Option<String>,
    pub clinician_id: Option<String>,
    pub patient_id: Option<String>,
    /// A UTC day, `YYYY-MM-DD`.
    #[param(format = Date)]
    pub day: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page's `next_cursor`.
    #[param(pattern = "^(c([0-9a-f]{2})*)?$")]
    pub cursor: Option<String>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AppointmentPage {
    pub items: Vec<Appointment>,
    pub next_cursor: Option<String>,
}

/// List appointments by clinic, clinician, patient or day
#[utoipa::path(get, path = "/v1/appointments", tag = "appointments", params(ListParams),
    responses((status = 200, description = "A page, in start order", body = AppointmentPage,
        headers(("Link" = String, description = "`rel=\"next\"` when there is more")))))]
pub async fn list(
    State(st): State<AppState>,
    caller: Require<perm::ReadPatients>,
    ApiQuery(p): ApiQuery<ListParams>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let paging = crate::http::paging::PageParams {
        limit: p.limit,
        cursor: p.cursor.clone(),
    };
    let limit = paging.limit()?;
    let after = paging.after()?.unwrap_or_default();
    // The key is "START|ID"; any decodable cursor is a position in that order.
    let (start, id) = match after.split_once('|') {
        Some((s, id)) => (s.parse::<i64>().unwrap_or(i64::MIN), id.to_string()),
        None => (after.parse::<i64>().unwrap_or(i64::MIN), String::new()),
    };
    let between = match &p.day {
        Some(d) => {
            let date = crate::http::extract::query_date("day", d)?;
            let from = date
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map_err(ApiError::internal)?
                .timestamp()
                .as_second();
            Some((from, from + 86_400))
        }
        None => None,
    };
    let filters = Filters {
        clinic_id: p.clinic_id,
        clinician_id: p.clinician_id,
        patient_id: p.patient_id,
        between,
    };
    let member = (caller.role != Role::Admin).then_some(caller.user_id.as_str());
    // Sealed patients' appointments are left out for non-admins, as in the patient search.
    let rows = store::list(&st.db, member, &filters, (start, &id), limit).await?;
    let page = Page::from_rows(rows, limit, |a| {
        format!(
            "{}|{}",
            a.start
                .parse::<jiff::Timestamp>()
                .map(|t| t.as_second())
                .unwrap_or(0),
            a.id
        )
    });
    let touched: Vec<Touch> = page.items.iter().map(touch).collect();
    access::record_now(&st.db, &caller, Action::Search, &touched).await?;
    Ok(page.respond(&uri))
}

/// Read an appointment
#[utoipa::path(get, path = "/v1/appointments/{id}", tag = "appointments", params(("id" = String, Path, pattern = "^apt_[0-9a-f]{20}$")),
    responses((status = 200, description = "The appointment", body = Appointment, headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 304, description = "Not modified"), (status = 404, description = "No such appointment, or not yours"),
        (status = 410, description = "Deleted"), (status = 451, description = "The patient's record is sealed")))]
pub async fn read(
    State(st): State<AppState>,
    caller: Require<perm::ReadPatients>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut conn = st.db.acquire().await?;
    let a = visible(&mut conn, &caller, &id).await?;
    let sealed = crate::patients::check_seal(&mut conn, &caller, &a.patient_id, Use::Read).await;
    drop(conn);
    if let Err(e) = sealed {
        return Err(crate::patients::log_denial(&st.db, &caller, e, touch(&a)).await);
    }
    access::record_now(&st.db, &caller, Action::Read, &[touch(&a)]).await?;
    Ok(resource::read(&a, &headers))
}

/// Reschedule an appointment or change its status (merge patch; needs If-Match)
#[utoipa::path(patch, path = "/v1/appointments/{id}", tag = "appointments", params(("id" = String, Path, pattern = "^apt_[0-9a-f]{20}$")),
    request_body(content = AppointmentPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Updated", body = Appointment, headers(("ETag" = String))),
        (status = 404, description = "No such appointment"), (status = 409, description = "The new slot is taken"),
        (status = 410, description = "Deleted"), (status = 423, description = "The patient's record is sealed")))]
pub async fn update(
    State(st): State<AppState>,
    caller: Require<perm::WritePatients>,
    Path(id): Path<String>,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<AppointmentPatch>,
) -> Result<Response, ApiError> {
    let mut tx = st.write_tx().await?;
    let current = usable(&mut tx, &caller, &id, Use::Write).await?;
    let rescheduling = patch.start.is_some() || patch.duration_minutes.is_some();
    let slot = if rescheduling {
        Slot::parse(
            patch.start.as_deref().unwrap_or(&current.start),
            patch.duration_minutes.unwrap_or(current.duration_minutes),
        )
        .map_err(ApiError::invalid)?
    } else {
        Slot {
            start: current.start.parse().map_err(ApiError::internal)?,
            minutes: current.duration_minutes,
        }
    };
    if_match.check(current.version)?;
    let status = patch.status.unwrap_or(current.status);
    if status == AppointmentStatus::CheckedIn && current.status != AppointmentStatus::CheckedIn {
        return Err(ApiError::invalid(vec![FieldError::new(
            "/status",
            "use POST …/check-in to check a patient in",
        )]));
    }
    if rescheduling && status.holds_slot() {
        if let Some(other) = store::overlapping(&mut tx, &current.clinician_id, &slot, &id).await? {
            return Err(taken(&other));
        }
    }
    let reason = patch.reason.as_deref().or(current.reason.as_deref());
    if !store::update(&mut tx, &id, current.version, &slot, reason, status, None).await? {
        return Err(stale(current.version + 1));
    }
    let a = visible(&mut tx, &caller, &id).await?;
    access::record_about(
        &mut tx,
        &caller,
        Action::Update,
        "appointment",
        &id,
        Some(&a.patient_id),
    )
    .await?;
    tx.commit().await?;
    Ok(resource::updated(&a))
}

/// Delete an appointment (afterwards 410)
#[utoipa::path(delete, path = "/v1/appointments/{id}", tag = "appointments", params(("id" = String, Path, pattern = "^apt_[0-9a-f]{20}$")),
    responses((status = 204, description = "Deleted (also when it already was)"), (status = 404, description = "No such appointment"),
        (status = 423, description = "The patient's record is sealed")))]
pub async fn remove(
    State(st): State<AppState>,
    caller: Require<perm::WritePatients>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut tx = st.write_tx().await?;
    match usable(&mut tx, &caller, &id, Use::Write).await {
        Ok(a) => {
            store::delete(&mut tx, &id).await?;
            access::record_about(
                &mut tx,
                &caller,
                Action::Delete,
                "appointment",
                &id,
                Some(&a.patient_id),
            )
            .await?;
            tx.commit().await?;
        }
        Err(ApiError::Gone(_)) => {}
        Err(e) => return Err(e),
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Check the patient in: puts them into the clinic's queue (201 with the ticket)
#[utoipa::path(post, path = "/v1/appointments/{id}/check-in", tag = "appointments", params(("id" = String, Path, pattern = "^apt_[0-9a-f]{20}$")),
    responses((status = 201, description = "The ticket", body = crate::queue::domain::Ticket),
        (status = 404, description = "No such appointment"), (status = 409, description = "Not booked (already checked in, cancelled…)"),
        (status = 410, description = "Deleted"), (status = 423, description = "The queue is closed for today, or the patient's record is sealed")))]
pub async fn check_in(
    State(st): State<AppState>,
    caller: Require<perm::WritePatients>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut tx = st.write_tx().await?;
    let a = usable(&mut tx, &caller, &id, Use::Write).await?;
    if a.status != AppointmentStatus::Booked {
        return Err(ApiError::Conflict {
            detail: format!(
                "only a booked appointment can be checked in; this one is {}",
                a.status.as_str()
            ),
            existing: Some(location(&id)),
        });
    }
    let clinic = crate::clinics::store::find(&mut tx, &a.clinic_id)
        .await?
        .ok_or_else(|| ApiError::internal("clinic vanished"))?;
    let ticket = crate::queue::routes::issue_in(
        &st,
        &mut tx,
        &clinic,
        Some(&a.patient_id),
        crate::queue::domain::Priority::Normal,
    )
    .await?;
    let slot = Slot {
        start: a.start.parse().map_err(ApiError::internal)?,
        minutes: a.duration_minutes,
    };
    if !store::update(
        &mut tx,
        &id,
        a.version,
        &slot,
        a.reason.as_deref(),
        AppointmentStatus::CheckedIn,
        Some(&ticket.id),
    )
    .await?
    {
        return Err(stale(a.version + 1));
    }
    access::record_about(
        &mut tx,
        &caller,
        Action::Update,
        "appointment",
        &id,
        Some(&a.patient_id),
    )
    .await?;
    tx.commit().await?;
    crate::queue::live::publish(&st, &clinic.id, "issued", Some(&ticket));
    Ok(resource::created(
        &ticket,
        &format!("/v1/tickets/{}", ticket.id),
    ))
}
