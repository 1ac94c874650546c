//! `/v1/appointments`: book, list, read, reschedule or change status (If-Match), delete, and
//! check in (which issues a queue ticket).
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::domain::Filters;
use super::domain::{Appointment, AppointmentPatch, NewAppointment, Slot};
use super::{location, touch, visible};
use crate::access::{self, Action, Touch};
use crate::auth::{perm, Require, Role};
use crate::error::ApiError;
use crate::http::extract::{ApiQuery, JsonBody};
use crate::http::paging::Page;
use crate::http::precondition::IfMatch;
use crate::http::resource;
use crate::patients::Use;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/appointments", get(list).post(book))
        .route(
            "/v1/appointments/{id}",
            get(read).patch(update).delete(remove),
        )
        .route("/v1/appointments/{id}/check-in", post(check_in))
}

/// Book an appointment
#[utoipa::path(post, path = "/v1/appointments", tag = "appointments", request_body = NewAppointment,
    responses((status = 201, description = "Booked", body = Appointment),
        (status = 409, description = "The clinician's slot is taken; the problem names the other appointment when you may read it (not another clinic's, nor a sealed patient's unless you are an admin)"),
        (status = 423, description = "The patient's record is sealed")))]
pub async fn book(
    State(st): State<AppState>,
    caller: Require<perm::WritePatients>,
    JsonBody(new): JsonBody<NewAppointment>,
) -> Result<Response, ApiError> {
    let slot =
        Slot::parse(&new.start, new.duration_minutes, caller.now).map_err(ApiError::invalid)?;
    // The content is judged first: a broken reason is 422 whatever else holds.
    super::domain::reason(new.reason.as_deref()).map_err(|e| ApiError::invalid(vec![e]))?;
    let caller = caller.0;
    let a = st
        .db
        .write_data(move |conn| super::book(conn, caller.clone(), new.clone(), slot.clone()))
        .await?;
    Ok(resource::created(&a, &location(&a.id)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    pub clinic_id: Option<String>,
    pub clinician_id: Option<String>,
    pub patient_id: Option<String>,
    /// A day, `YYYY-MM-DD`, on each clinic's own clock (its time zone): an appointment at
    /// 00:30 in Vienna is on that Vienna day, whatever the UTC date.
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
    responses((status = 200, description = "A page, in start order (CSV when asked: `Accept: text/csv`, `bom=1` for a byte order mark)", body = AppointmentPage,
        content((AppointmentPage = "application/json"), (String = "text/csv")),
        headers(("Link" = String, description = "`rel=\"next\"` when there is more")))))]
pub async fn list(
    State(st): State<AppState>,
    caller: Require<perm::ReadPatients>,
    ApiQuery(p): ApiQuery<ListParams>,
    axum::Extension(pref): axum::Extension<crate::http::negotiate::Preference>,
    uri: Uri,
    headers: axum::http::HeaderMap,
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
    let day = match &p.day {
        Some(d) => Some(crate::http::extract::query_date("day", d)?),
        None => None,
    };
    let between = match day {
        Some(day) => Some(super::day_ranges(&st.db, &caller, p.clinic_id.as_deref(), day).await?),
        None => None,
    };
    let filters = Filters {
        clinic_id: p.clinic_id,
        clinician_id: p.clinician_id,
        patient_id: p.patient_id,
        between,
        status: None,
    };
    let member = (caller.role != Role::Admin).then_some(caller.user_id.as_str());
    // Sealed patients' appointments are left out for non-admins, as in the patient search.
    let rows = super::list(&st.db, member, &filters, (start, &id), limit).await?;
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
    Ok(crate::http::csv_out::page(page, pref, &uri, &headers))
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
    let reader = caller.0.clone();
    let (a, sealed) = st
        .db
        .read(move |conn| {
            let a = visible(conn, &reader, &id)?;
            let sealed = crate::patients::check_seal(conn, &reader, &a.patient_id, Use::Read);
            Ok((a, sealed))
        })
        .await?;
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
    super::domain::reason(patch.reason.as_deref()).map_err(|e| ApiError::invalid(vec![e]))?;
    let caller = caller.0;
    let a = st
        .db
        .write_data(move |conn| {
            super::update(
                conn,
                caller.clone(),
                id.clone(),
                if_match.clone(),
                patch.clone(),
            )
        })
        .await?;
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
    let caller = caller.0;
    st.db
        .write_data(move |conn| super::remove(conn, caller.clone(), id.clone()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Check the patient in: puts them into the clinic's queue (201 with the ticket)
#[utoipa::path(post, path = "/v1/appointments/{id}/check-in", tag = "appointments", params(("id" = String, Path, pattern = "^apt_[0-9a-f]{20}$")),
    responses((status = 201, description = "The ticket", body = crate::queue::domain::Ticket),
        (status = 404, description = "No such appointment"), (status = 409, description = "Not booked (already checked in, cancelled…), or not the appointment's day on the clinic's clock (the problem names that day)"),
        (status = 410, description = "Deleted"), (status = 423, description = "The queue is closed for today, or the patient's record is sealed")))]
pub async fn check_in(
    State(st): State<AppState>,
    caller: Require<perm::WritePatients>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (caller, aging) = (caller.0, st.config.queue_aging_minutes);
    let ticket = st
        .db
        .write_data(move |conn| super::check_in(conn, caller.clone(), id.clone(), aging))
        .await?;
    crate::queue::live::publish(&st, &ticket.clinic_id, "issued", Some(&ticket));
    Ok(resource::created(
        &ticket,
        &format!("/v1/tickets/{}", ticket.id),
    ))
}

// How this feature's domain types meet the HTTP mechanism (bodies' rules, CSV rows): kept
// beside the routes, so the domain imports nothing of `http`.
mod domain_http {
    use super::super::domain::*;
    use crate::error::FieldError;

    /// The slot rules of the members a patch sends, for a patch that also has shape errors (a
    /// member it leaves out keeps a valid stored value, so a stand-in that passes is used).
    impl crate::http::extract::BodyRules for AppointmentPatch {
        fn rule_errors(&self) -> Vec<FieldError> {
            let now = jiff::Timestamp::now();
            let start = self
                .start
                .clone()
                .unwrap_or_else(|| (now + jiff::SignedDuration::from_hours(1)).to_string());
            Slot::parse(&start, self.duration_minutes.unwrap_or(30), now)
                .err()
                .unwrap_or_default()
        }
    }

    impl crate::http::csv_out::CsvRow for Appointment {
        fn columns() -> &'static [&'static str] {
            &[
                "id",
                "clinic_id",
                "patient_id",
                "clinician_id",
                "start",
                "duration_minutes",
                "reason",
                "status",
                "ticket_id",
                "version",
                "created_at",
                "updated_at",
            ]
        }
        fn cells(&self) -> Vec<crate::http::csv_out::Cell> {
            use crate::http::csv_out::Cell;
            let status = serde_json::to_value(self.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            vec![
                Cell::text(&self.id),
                Cell::text(&self.clinic_id),
                Cell::text(&self.patient_id),
                Cell::text(&self.clinician_id),
                Cell::text(&self.start),
                Cell::number(self.duration_minutes),
                Cell::opt_text(self.reason.as_deref()),
                Cell::text(status),
                Cell::opt_text(self.ticket_id.as_deref()),
                Cell::number(self.version),
                Cell::text(&self.created_at),
                Cell::text(&self.updated_at),
            ]
        }
    }

    /// The slot rules, for a body that also has shape errors.
    impl crate::http::extract::BodyRules for NewAppointment {
        fn rule_errors(&self) -> Vec<FieldError> {
            // Only beside shape errors; the request's own moment decides when the shape is right.
            Slot::parse(&self.start, self.duration_minutes, jiff::Timestamp::now())
                .err()
                .unwrap_or_default()
        }
    }
}
