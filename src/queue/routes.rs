//! `/v1/clinics/{id}/queue…` and `/v1/tickets/{id}`: thin handlers over the queue store.
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::domain::{may_move, order, Priority, Status, Ticket};
use super::store;
use crate::access::Touch;
use crate::auth::{perm, Caller, Require};
use crate::clinics::domain::Clinic;
use crate::error::{ApiError, FieldError};
use crate::http::conditional::Representation;
use crate::http::extract::{ApiQuery, JsonBody};
use crate::http::middleware::redirect;
use crate::http::precondition::{stale, IfMatch};
use crate::http::{resource, AppState};
use crate::patients::Use;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/clinics/{id}/queue", get(view))
        .route("/v1/clinics/{id}/queue/tickets", post(issue))
        .route("/v1/clinics/{id}/queue/call-next", post(call_next))
        .route("/v1/clinics/{id}/queue/now-serving", get(now_serving))
        .route("/v1/clinics/{id}/queue/close", post(close))
        .route("/v1/clinics/{id}/queue/reopen", post(reopen))
        .route("/v1/clinics/{id}/queue/report", get(report))
        .route("/v1/clinics/{id}/queue/live", get(super::live::live))
        .route("/v1/tickets/{id}", get(read).patch(transition))
        .route("/v1/tickets/{id}/notify", post(super::notify::notify))
        .route("/v1/clinics/{id}/board", get(board_link))
        .route("/board/app.js", get(super::live::board_script))
        .route("/board/{clinic_id}", get(super::live::board_page))
}

/// The clinic's local calendar day now.
pub fn local_day(clinic: &Clinic) -> String {
    let tz = jiff::tz::TimeZone::get(&clinic.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::now().to_zoned(tz).date().to_string()
}

async fn clinic(
    conn: &mut sqlx::SqliteConnection,
    caller: &Caller,
    id: &str,
) -> Result<Clinic, ApiError> {
    crate::clinics::routes::visible(conn, caller, id).await
}

/// Waiting tickets in calling order, numbered, with wait estimates; called tickets after them.
pub async fn queue_of(
    st: &AppState,
    conn: &mut sqlx::SqliteConnection,
    clinic: &Clinic,
) -> Result<Vec<Ticket>, ApiError> {
    let day = local_day(clinic);
    let open = store::open_tickets(conn, &clinic.id, &day).await?;
    let (mut waiting, called): (Vec<Ticket>, Vec<Ticket>) =
        open.into_iter().partition(|t| t.status == Status::Waiting);
    order(&mut waiting, store::now_ms(), st.config.queue_aging_minutes);
    let per_ticket = store::service_seconds(conn, &clinic.id).await?;
    for (i, t) in waiting.iter_mut().enumerate() {
        t.position = Some(i as u32 + 1);
        t.estimated_wait_seconds = Some(per_ticket * i as u64);
    }
    waiting.extend(called);
    Ok(waiting)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    pub patient_id: Option<String>,
    #[serde(default = "normal")]
    pub priority: Priority,
}

fn normal() -> Priority {
    Priority::Normal
}

/// Issues a ticket in `conn`'s transaction: the next number of the clinic's day, 423 when the
/// day is closed. Shared by walk-ins and appointment check-ins.
pub async fn issue_in(
    st: &AppState,
    conn: &mut sqlx::SqliteConnection,
    clinic: &Clinic,
    patient_id: Option<&str>,
    priority: Priority,
) -> Result<Ticket, ApiError> {
    let day = local_day(clinic);
    let seq = store::next_seq(conn, &clinic.id, &day)
        .await?
        .ok_or_else(|| {
            ApiError::Locked("the queue is closed for today; reopen it to issue tickets".into())
        })?;
    let id = crate::ids::new_id("tkt");
    let number = format!("{}-{seq:03}", clinic.ticket_prefix);
    store::insert(
        conn,
        &store::NewTicket {
            id: &id,
            clinic_id: &clinic.id,
            day: &day,
            seq,
            number: &number,
            patient_id,
            priority,
        },
    )
    .await?;
    let queue = queue_of(st, conn, clinic).await?;
    queue
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::internal("ticket vanished"))
}

/// Issue a walk-in ticket
#[utoipa::path(post, path = "/v1/clinics/{id}/queue/tickets", tag = "queue", params(("id" = String, Path)),
    request_body = IssueRequest,
    responses((status = 201, description = "Issued", body = Ticket),
        (status = 404, description = "No such clinic, or not yours"),
        (status = 423, description = "The queue is closed for today, or the patient's record is sealed")))]
pub async fn issue(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<IssueRequest>,
) -> Result<Response, ApiError> {
    let mut tx = st.write_tx().await?;
    let clinic = clinic(&mut tx, &caller, &id).await?;
    if let Some(pid) = &req.patient_id {
        let ok = crate::patients::store::find(&mut tx, pid)
            .await?
            .is_some_and(|p| {
                p.patient.clinic_id == clinic.id && !p.deleted && p.merged_into.is_none()
            });
        if !ok {
            return Err(ApiError::invalid(vec![FieldError::new(
                "/patient_id",
                "no live patient of this clinic with this id",
            )]));
        }
        crate::patients::check_seal(&mut tx, &caller, pid, Use::Write).await?;
    }
    let ticket = issue_in(
        &st,
        &mut tx,
        &clinic,
        req.patient_id.as_deref(),
        req.priority,
    )
    .await?;
    tx.commit().await?;
    super::live::publish(&st, &clinic.id, "issued", Some(&ticket));
    Ok(resource::created(
        &ticket,
        &format!("/v1/tickets/{}", ticket.id),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QueueView {
    /// Waiting tickets in calling order (with positions), then called ones.
    pub items: Vec<Ticket>,
    pub closed: bool,
    pub day: String,
}

/// The clinic's queue today
#[utoipa::path(get, path = "/v1/clinics/{id}/queue", tag = "queue", params(("id" = String, Path)),
    responses((status = 200, description = "Waiting and called tickets", body = QueueView, headers(("ETag" = String))),
        (status = 304, description = "Not modified"), (status = 404, description = "No such clinic, or not yours")))]
pub async fn view(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut conn = st.db.acquire().await?;
    let clinic = clinic(&mut conn, &caller, &id).await?;
    let day = local_day(&clinic);
    let closed = store::is_closed(&mut conn, &clinic.id, &day).await?;
    let mut items = Vec::new();
    for t in queue_of(&st, &mut conn, &clinic).await? {
        if readable(&mut conn, &caller, &t).await? {
            items.push(t);
        }
    }
    Ok(Representation::json(&QueueView { items, closed, day }).respond(&headers))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    /// The counter or room calling, e.g. `3`.
    #[schema(min_length = 1, max_length = 32, pattern = "\\S")]
    pub counter: String,
}

/// Call the next ticket to a counter (204 when nobody waits)
#[utoipa::path(post, path = "/v1/clinics/{id}/queue/call-next", tag = "queue", params(("id" = String, Path)),
    request_body = CallRequest,
    responses((status = 200, description = "The called ticket", body = Ticket, headers(("ETag" = String))),
        (status = 204, description = "Nobody is waiting"), (status = 404, description = "No such clinic, or not yours")))]
pub async fn call_next(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CallRequest>,
) -> Result<Response, ApiError> {
    // The limit applies to what was sent, as the schema says; blanks around it are dropped.
    let counter = req.counter.trim();
    if counter.is_empty() || req.counter.chars().count() > 32 {
        return Err(ApiError::invalid(vec![FieldError::new(
            "/counter",
            "1 to 32 characters",
        )]));
    }
    // The write lock is held from here to commit, so two counters never get the same ticket.
    let mut tx = st.write_tx().await?;
    let clinic = clinic(&mut tx, &caller, &id).await?;
    let queue = queue_of(&st, &mut tx, &clinic).await?;
    // A sealed patient's ticket is out of staff's sight, so it is not called to a counter
    // either (an admin can still see it in the queue and move it once the seal is lifted).
    let mut next = None;
    for t in queue.into_iter().filter(|t| t.status == Status::Waiting) {
        if readable(&mut tx, &caller, &t).await? {
            next = Some(t);
            break;
        }
    }
    let Some(next) = next else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    if !store::set_status(
        &mut tx,
        &next.id,
        next.version,
        Status::Called,
        Some(counter),
    )
    .await?
    {
        return Err(ApiError::internal(
            "a waiting ticket changed under the write lock",
        ));
    }
    let ticket = store::find(&mut tx, &next.id)
        .await?
        .ok_or_else(|| ApiError::internal("ticket vanished"))?;
    tx.commit().await?;
    super::live::publish(&st, &clinic.id, "called", Some(&ticket));
    Ok(resource::updated(&ticket))
}

/// Where the ticket called most recently is (302)
#[utoipa::path(get, path = "/v1/clinics/{id}/queue/now-serving", tag = "queue", params(("id" = String, Path)),
    responses((status = 302, description = "The ticket called most recently"),
        (status = 404, description = "Nobody called yet today, or no such clinic")))]
pub async fn now_serving(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut conn = st.db.acquire().await?;
    let clinic = clinic(&mut conn, &caller, &id).await?;
    let last = store::last_called(&mut conn, &clinic.id, &local_day(&clinic))
        .await?
        .ok_or_else(|| ApiError::NotFound("no ticket has been called today".into()))?;
    Ok(redirect(StatusCode::FOUND, &format!("/v1/tickets/{last}")))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DayState {
    pub day: String,
    pub closed: bool,
}

async fn set_closed(
    st: &AppState,
    caller: &Caller,
    id: &str,
    closed: bool,
) -> Result<Json<DayState>, ApiError> {
    let mut tx = st.write_tx().await?;
    let clinic = clinic(&mut tx, caller, id).await?;
    let day = local_day(&clinic);
    store::set_closed(&mut tx, &clinic.id, &day, closed).await?;
    tx.commit().await?;
    super::live::publish(
        st,
        &clinic.id,
        if closed { "closed" } else { "reopened" },
        None,
    );
    Ok(Json(DayState { day, closed }))
}

/// Close the queue for the rest of the local day (new tickets answer 423)
#[utoipa::path(post, path = "/v1/clinics/{id}/queue/close", tag = "queue", params(("id" = String, Path)),
    responses((status = 200, description = "Closed", body = DayState), (status = 404, description = "No such clinic, or not yours")))]
pub async fn close(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
) -> Result<Json<DayState>, ApiError> {
    set_closed(&st, &caller, &id, true).await
}

/// Reopen today's queue
#[utoipa::path(post, path = "/v1/clinics/{id}/queue/reopen", tag = "queue", params(("id" = String, Path)),
    responses((status = 200, description = "Open", body = DayState), (status = 404, description = "No such clinic, or not yours")))]
pub async fn reopen(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
) -> Result<Json<DayState>, ApiError> {
    set_closed(&st, &caller, &id, false).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// The clinic's local day, `YYYY-MM-DD` (default: today).
    #[param(format = Date)]
    pub date: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DayReport {
    pub date: String,
    pub issued: u32,
    pub served: u32,
    pub no_shows: u32,
    pub cancelled: u32,
    /// From issue to call, over tickets that were called.
    pub average_wait_seconds: Option<f64>,
    pub p90_wait_seconds: Option<f64>,
}

/// A day's queue figures
#[utoipa::path(get, path = "/v1/clinics/{id}/queue/report", tag = "queue", params(("id" = String, Path), ReportParams),
    responses((status = 200, description = "The figures", body = DayReport), (status = 404, description = "No such clinic, or not yours")))]
pub async fn report(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<ReportParams>,
) -> Result<Json<DayReport>, ApiError> {
    let mut conn = st.db.acquire().await?;
    let clinic = clinic(&mut conn, &caller, &id).await?;
    let date = match p.date {
        Some(d) => crate::http::extract::query_date("date", &d)?.to_string(),
        None => local_day(&clinic),
    };
    let rows = store::day_tickets(&mut conn, &clinic.id, &date).await?;
    let count = |s: &str| rows.iter().filter(|(st, _)| st == s).count() as u32;
    let mut waits: Vec<f64> = rows.iter().filter_map(|(_, w)| *w).collect();
    waits.sort_by(|a, b| a.total_cmp(b));
    let average = (!waits.is_empty()).then(|| waits.iter().sum::<f64>() / waits.len() as f64);
    let p90 = (!waits.is_empty())
        .then(|| waits[((waits.len() as f64 * 0.9).ceil() as usize).clamp(1, waits.len()) - 1]);
    Ok(Json(DayReport {
        date,
        issued: rows.len() as u32,
        served: count("served"),
        no_shows: count("no_show"),
        cancelled: count("cancelled"),
        average_wait_seconds: average,
        p90_wait_seconds: p90,
    }))
}

async fn visible_ticket(
    conn: &mut sqlx::SqliteConnection,
    caller: &Caller,
    id: &str,
) -> Result<Ticket, ApiError> {
    store::find(conn, id)
        .await?
        .filter(|t| caller.sees_clinic(&t.clinic_id))
        .ok_or_else(|| ApiError::NotFound("no ticket with this id".into()))
}

/// A ticket the caller may see and use: a ticket names its patient, so the patient's seal
/// answers 451 to a non-admin's read and 423 to any write, as for the patient itself.
pub async fn usable_ticket(
    conn: &mut sqlx::SqliteConnection,
    caller: &Caller,
    id: &str,
    use_: Use,
) -> Result<Ticket, ApiError> {
    let t = visible_ticket(conn, caller, id).await?;
    if let Some(pid) = &t.patient_id {
        crate::patients::check_seal(conn, caller, pid, use_).await?;
    }
    Ok(t)
}

/// Whether a ticket may be shown to the caller in a list (not a sealed patient's, unless admin).
async fn readable(
    conn: &mut sqlx::SqliteConnection,
    caller: &Caller,
    t: &Ticket,
) -> Result<bool, ApiError> {
    let Some(pid) = &t.patient_id else {
        return Ok(true);
    };
    match crate::patients::check_seal(conn, caller, pid, Use::Read).await {
        Ok(()) => Ok(true),
        Err(ApiError::UnavailableForLegalReasons { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Read a ticket
#[utoipa::path(get, path = "/v1/tickets/{id}", tag = "queue", params(("id" = String, Path)),
    responses((status = 200, description = "The ticket", body = Ticket, headers(("ETag" = String))),
        (status = 304, description = "Not modified"), (status = 404, description = "No such ticket, or not yours"),
        (status = 451, description = "The ticket's patient record is sealed")))]
pub async fn read(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut conn = st.db.acquire().await?;
    let ticket = visible_ticket(&mut conn, &caller, &id).await?;
    if let Some(pid) = &ticket.patient_id {
        let sealed = crate::patients::check_seal(&mut conn, &caller, pid, Use::Read).await;
        drop(conn);
        if let Err(e) = sealed {
            let touched = Touch {
                resource_type: "ticket",
                resource_id: &ticket.id,
                patient: Some(pid),
            };
            return Err(crate::patients::log_denial(&st.db, &caller, e, touched).await);
        }
    }
    Ok(resource::read(&ticket, &headers))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketPatch {
    /// `served`, `no_show`, `cancelled`, or `waiting` (the one recall of a no-show).
    pub status: Status,
}

/// Move a ticket: served, no_show, cancelled, or a single recall of a no-show (needs If-Match)
#[utoipa::path(patch, path = "/v1/tickets/{id}", tag = "queue", params(("id" = String, Path)),
    request_body(content = TicketPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Moved", body = Ticket, headers(("ETag" = String))),
        (status = 404, description = "No such ticket, or not yours"),
        (status = 409, description = "Not a transition this ticket may make"),
        (status = 423, description = "The ticket's patient record is sealed")))]
pub async fn transition(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    if_match: IfMatch,
    uri: Uri,
    JsonBody(patch): JsonBody<TicketPatch>,
) -> Result<Response, ApiError> {
    let mut tx = st.write_tx().await?;
    let ticket = usable_ticket(&mut tx, &caller, &id, Use::Write).await?;
    if_match.check(ticket.version)?;
    if !may_move(ticket.status, patch.status, ticket.recalled) {
        return Err(ApiError::Conflict {
            detail: format!(
                "a {} ticket cannot become {}",
                ticket.status.as_str(),
                patch.status.as_str()
            ),
            existing: Some(uri.path().to_string()),
        });
    }
    if !store::set_status(&mut tx, &id, ticket.version, patch.status, None).await? {
        return Err(stale(ticket.version + 1));
    }
    let moved = store::find(&mut tx, &id)
        .await?
        .ok_or_else(|| ApiError::internal("ticket vanished"))?;
    tx.commit().await?;
    super::live::publish(&st, &moved.clinic_id, "updated", Some(&moved));
    Ok(resource::updated(&moved))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BoardLink {
    /// Open this on the waiting-room screen; it carries the clinic's board key.
    pub url: String,
}

/// The waiting-room board's address for a clinic, with its key (admin)
#[utoipa::path(get, path = "/v1/clinics/{id}/board", tag = "queue", params(("id" = String, Path)),
    responses((status = 200, description = "The board URL", body = BoardLink), (status = 403, description = "Not an admin"),
        (status = 404, description = "No such clinic")))]
pub async fn board_link(
    State(st): State<AppState>,
    admin: Require<perm::ManageClinics>,
    Path(id): Path<String>,
) -> Result<Json<BoardLink>, ApiError> {
    let mut tx = st.write_tx().await?;
    let clinic = clinic(&mut tx, &admin, &id).await?;
    let key: Option<String> = sqlx::query_scalar("SELECT board_key FROM clinics WHERE id = $1")
        .bind(&clinic.id)
        .fetch_one(&mut *tx)
        .await?;
    let key = match key {
        Some(k) => k,
        None => {
            let k = crate::auth::tokens::new_token();
            sqlx::query("UPDATE clinics SET board_key = $1 WHERE id = $2")
                .bind(&k)
                .bind(&clinic.id)
                .execute(&mut *tx)
                .await?;
            k
        }
    };
    tx.commit().await?;
    Ok(Json(BoardLink {
        url: format!("/board/{}?key={key}", clinic.id),
    }))
}
