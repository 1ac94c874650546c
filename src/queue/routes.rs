//! `/v1/clinics/{id}/queue…` and `/v1/tickets/{id}`: thin handlers over the queue service.
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::domain::{DayReport, Priority, Status, Ticket};
use super::{
    issue_in, local_day_at, move_ticket, next_to_call, queue_of, readable, records, visible_ticket,
};
use crate::access::{Action, Touch};
use crate::auth::{perm, Caller, Require};
use crate::clinics::domain::Clinic;
use crate::error::{ApiError, FieldError};
use crate::http::conditional::Representation;
use crate::http::extract::{ApiQuery, JsonBody};
use crate::http::middleware::redirect;
use crate::http::precondition::IfMatch;
use crate::http::resource;
use crate::patients::Use;
use crate::state::AppState;
use crate::store::Read;

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
        .route("/v1/tickets/{id}/served", post(served))
        .route("/v1/tickets/{id}/no-show", post(no_show))
        .route("/v1/tickets/{id}/recall", post(recall))
        .route("/v1/tickets/{id}/cancel", post(cancel))
        .route("/v1/clinics/{id}/board", post(rotate_board_key))
        .route("/board/app.js", get(super::live::board_script))
        .route("/board/app.css", get(super::live::board_style))
        .route("/board/{clinic_id}", get(super::live::board_page))
}

fn clinic(conn: &mut dyn Read, caller: &Caller, id: &str) -> Result<Clinic, ApiError> {
    crate::clinics::visible(conn, caller, id)
}

#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    pub patient_id: Option<String>,
    #[serde(default = "normal")]
    pub priority: Priority,
}

fn normal() -> Priority {
    Priority::Normal
}

/// Issue a walk-in ticket
#[utoipa::path(post, path = "/v1/clinics/{id}/queue/tickets", tag = "queue", params(("id" = String, Path, pattern = "^cln_[0-9a-f]{20}$")),
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
    let (caller, aging) = (caller.0, st.config.queue_aging_minutes);
    let ticket = st
        .db
        .write_data(move |conn| {
            let clinic = clinic(conn, &caller, &id)?;
            if let Some(pid) = &req.patient_id {
                let ok = crate::patients::records::find_patient(conn, pid)?.is_some_and(|p| {
                    p.patient.clinic_id == clinic.id && !p.deleted && p.merged_into.is_none()
                });
                if !ok {
                    return Err(ApiError::invalid(vec![FieldError::new(
                        "/patient_id",
                        "no live patient of this clinic with this id",
                    )]));
                }
                crate::patients::check_seal(conn, &caller, pid, Use::Write)?;
            }
            let ticket = issue_in(
                aging,
                conn,
                &clinic,
                req.patient_id.as_deref(),
                req.priority,
                caller.now,
            )?;
            super::log_change(conn, &caller, Action::Create, &ticket)?;
            Ok(ticket)
        })
        .await?;
    super::live::publish(&st, &ticket.clinic_id, "issued", Some(&ticket));
    Ok(resource::created(
        &ticket,
        &format!("/v1/tickets/{}", ticket.id),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QueueView {
    /// Waiting tickets in calling order (with positions), then called ones.
    pub items: Vec<QueueItem>,
    pub closed: bool,
    pub day: String,
}

/// A ticket as a counter screen shows it: everything it needs without a lookup per ticket.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QueueItem {
    #[serde(flatten)]
    pub ticket: Ticket,
    /// Seconds waited by the server's clock: until now while waiting, until the call once called.
    pub waiting_seconds: u64,
    /// The patient's given and family name (staff only: this view needs a staff token, and the
    /// board and its live feed never carry it); null for a walk-in without a patient.
    #[schema(example = "Amy Pond")]
    pub patient_name: Option<String>,
}

/// The clinic's queue today
#[utoipa::path(get, path = "/v1/clinics/{id}/queue", tag = "queue", params(("id" = String, Path, pattern = "^cln_[0-9a-f]{20}$")),
    responses((status = 200, description = "Waiting and called tickets, each with its number, priority, waiting time and patient's name", body = QueueView, headers(("ETag" = String))),
        (status = 304, description = "Not modified"), (status = 404, description = "No such clinic, or not yours")))]
pub async fn view(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (reader, aging) = (caller.0.clone(), st.config.queue_aging_minutes);
    let (items, closed, day) = st
        .db
        .read(move |conn| {
            let caller = reader;
            let clinic = clinic(conn, &caller, &id)?;
            let day = local_day_at(&clinic, caller.now);
            let closed = records::is_day_closed(conn, &clinic.id, &day)?;
            let now = crate::clock::now_ms();
            let mut items = Vec::new();
            for t in queue_of(aging, conn, &clinic, caller.now)? {
                if !readable(conn, &caller, &t)? {
                    continue;
                }
                let patient_name = match &t.patient_id {
                    Some(pid) => crate::patients::records::find_patient(conn, pid)?
                        .map(|p| format!("{} {}", p.patient.given_name, p.patient.family_name)),
                    None => None,
                };
                let waiting_seconds = super::waited_seconds(&t, now);
                items.push(QueueItem {
                    ticket: t,
                    waiting_seconds,
                    patient_name,
                });
            }
            Ok((items, closed, day))
        })
        .await?;
    // Names are patient data: each named ticket shown is a read in that patient's access log,
    // one row per ticket, naming the ticket that showed the name (a ticket is not the patient
    // record itself, so these are not folded into one entry as a patient search's hits are).
    let touched: Vec<Touch> = items
        .iter()
        .filter(|i| i.patient_name.is_some())
        .filter_map(|i| super::touch(&i.ticket))
        .collect();
    crate::access::record_now(&st.db, &caller, Action::Read, &touched).await?;
    Ok(Representation::json(&QueueView { items, closed, day }).respond(&headers))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    /// The counter or room calling, e.g. `3`.
    #[schema(
        min_length = 1,
        max_length = 32,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\s\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb][^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$",
        example = "3"
    )]
    pub counter: String,
}

/// Call the next ticket to a counter (204 when nobody waits)
#[utoipa::path(post, path = "/v1/clinics/{id}/queue/call-next", tag = "queue", params(("id" = String, Path, pattern = "^cln_[0-9a-f]{20}$")),
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
    let counter = crate::text::line(&req.counter, 32)
        .map_err(|m| ApiError::invalid(vec![FieldError::new("/counter", m)]))?;
    let (caller, aging) = (caller.0, st.config.queue_aging_minutes);
    // One unit on the one writer: two counters never get the same ticket.
    let called = st
        .db
        .write_data(move |conn| {
            let clinic = clinic(conn, &caller, &id)?;
            // A sealed patient's ticket is out of staff's sight, so it is not called to a
            // counter either (an admin still sees it in the queue).
            let Some(next) = next_to_call(aging, conn, &caller, &clinic)? else {
                return Ok(None);
            };
            if !records::set_ticket_status(
                conn,
                &next.id,
                next.version,
                Status::Called,
                Some(&counter),
            )? {
                return Err(ApiError::internal(
                    "a waiting ticket changed under the write lock",
                ));
            }
            let called = records::find_ticket(conn, &next.id)?
                .ok_or_else(|| ApiError::internal("ticket vanished"))?;
            super::log_change(conn, &caller, Action::Update, &called)?;
            Ok(Some(called))
        })
        .await?;
    let Some(ticket) = called else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    super::live::publish(&st, &ticket.clinic_id, "called", Some(&ticket));
    Ok(resource::updated(&ticket))
}

/// Where the ticket called most recently is (302)
#[utoipa::path(get, path = "/v1/clinics/{id}/queue/now-serving", tag = "queue", params(("id" = String, Path, pattern = "^cln_[0-9a-f]{20}$")),
    responses((status = 302, description = "The ticket called most recently"),
        (status = 404, description = "Nobody called yet today, or no such clinic")))]
pub async fn now_serving(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = caller.0;
    let last = st
        .db
        .read(move |conn| {
            let clinic = clinic(conn, &caller, &id)?;
            records::last_called(conn, &clinic.id, &local_day_at(&clinic, caller.now))?
                .ok_or_else(|| ApiError::NotFound("no ticket has been called today".into()))
        })
        .await?;
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
    let (caller, id) = (caller.clone(), id.to_string());
    let (clinic_id, day) = st
        .db
        .write(move |conn| {
            let clinic = clinic(conn, &caller, &id)?;
            let day = local_day_at(&clinic, caller.now);
            records::set_day_closed(conn, &clinic.id, &day, closed)?;
            Ok((clinic.id, day))
        })
        .await?;
    super::live::publish(
        st,
        &clinic_id,
        if closed { "closed" } else { "reopened" },
        None,
    );
    Ok(Json(DayState { day, closed }))
}

/// Close the queue for the rest of the local day (new tickets answer 423)
#[utoipa::path(post, path = "/v1/clinics/{id}/queue/close", tag = "queue", params(("id" = String, Path, pattern = "^cln_[0-9a-f]{20}$")),
    responses((status = 200, description = "Closed", body = DayState), (status = 404, description = "No such clinic, or not yours")))]
pub async fn close(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
) -> Result<Json<DayState>, ApiError> {
    set_closed(&st, &caller, &id, true).await
}

/// Reopen today's queue
#[utoipa::path(post, path = "/v1/clinics/{id}/queue/reopen", tag = "queue", params(("id" = String, Path, pattern = "^cln_[0-9a-f]{20}$")),
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
    /// The same as `date` (the name the appointment list uses); `date` wins when both are given
    /// (each must be a date).
    #[param(format = Date)]
    pub day: Option<String>,
}

/// A day's queue figures
#[utoipa::path(get, path = "/v1/clinics/{id}/queue/report", tag = "queue", params(("id" = String, Path, pattern = "^cln_[0-9a-f]{20}$"), ReportParams),
    responses((status = 200, description = "The figures (CSV when asked: `Accept: text/csv`, `bom=1` for a byte order mark; one row)", body = DayReport,
        content((DayReport = "application/json"), (String = "text/csv"))),
        (status = 404, description = "No such clinic, or not yours")))]
pub async fn report(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<ReportParams>,
    axum::Extension(pref): axum::Extension<crate::http::negotiate::Preference>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller.0;
    let report = st
        .db
        .read(move |conn| {
            let clinic = clinic(conn, &caller, &id)?;
            // Each value sent must be a date, even where `date` wins.
            if let Some(d) = &p.day {
                crate::http::extract::query_date("day", d)?;
            }
            let (name, given) = match (p.date, p.day) {
                (Some(d), _) => ("date", Some(d)),
                (None, d) => ("day", d),
            };
            let date = match given {
                Some(d) => crate::http::extract::query_date(name, &d)?.to_string(),
                None => local_day_at(&clinic, caller.now),
            };
            let rows = records::day_tickets(conn, &clinic.id, &date)?;
            Ok(DayReport::of(date, &rows))
        })
        .await?;
    Ok(if pref.wants_csv() {
        crate::http::csv_out::representation(&[report], &headers).into_response()
    } else {
        Json(report).into_response()
    })
}

/// Read a ticket
#[utoipa::path(get, path = "/v1/tickets/{id}", tag = "queue", params(("id" = String, Path, pattern = "^tkt_[0-9a-f]{20}$")),
    responses((status = 200, description = "The ticket", body = Ticket, headers(("ETag" = String))),
        (status = 304, description = "Not modified"), (status = 404, description = "No such ticket, or not yours"),
        (status = 451, description = "The ticket's patient record is sealed")))]
pub async fn read(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let reader = caller.0.clone();
    let (ticket, sealed) = st
        .db
        .read(move |conn| {
            let ticket = visible_ticket(conn, &reader, &id)?;
            let sealed = match &ticket.patient_id {
                Some(pid) => crate::patients::check_seal(conn, &reader, pid, Use::Read),
                None => Ok(()),
            };
            Ok((ticket, sealed))
        })
        .await?;
    if let Some(pid) = &ticket.patient_id {
        if let Err(e) = sealed {
            let touched = Touch {
                resource_type: "ticket",
                resource_id: &ticket.id,
                patient: Some(pid),
            };
            return Err(crate::patients::log_denial(&st.db, &caller, e, touched).await);
        }
    }
    if let Some(touched) = super::touch(&ticket) {
        crate::access::record_now(&st.db, &caller, Action::Read, &[touched]).await?;
    }
    Ok(resource::read(&ticket, &headers))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketPatch {
    /// `served`, `no_show`, `cancelled`, or `waiting` (the one recall of a no-show).
    #[schema(value_type = super::domain::TicketMove)]
    pub status: Status,
}

/// Move a ticket: served, no_show, cancelled, or a single recall of a no-show (needs If-Match;
/// the actions below need none)
#[utoipa::path(patch, path = "/v1/tickets/{id}", tag = "queue", params(("id" = String, Path, pattern = "^tkt_[0-9a-f]{20}$")),
    request_body(content = TicketPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Moved", body = Ticket, headers(("ETag" = String))),
        (status = 404, description = "No such ticket, or not yours"),
        (status = 409, description = "Not a transition this ticket may make (the problem names its state)"),
        (status = 423, description = "The ticket's patient record is sealed")))]
pub async fn transition(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<TicketPatch>,
) -> Result<Response, ApiError> {
    let moved = move_ticket(&st, &caller, &id, patch.status, Some(if_match)).await?;
    Ok(resource::updated(&moved))
}

/// The action endpoints: the state machine guards them, so `If-Match` is optional (412 if sent
/// and stale).
async fn act(
    st: AppState,
    caller: Caller,
    id: String,
    if_match: Option<IfMatch>,
    to: Status,
) -> Result<Response, ApiError> {
    let moved = move_ticket(&st, &caller, &id, to, if_match).await?;
    Ok(resource::updated(&moved))
}

/// Mark a called ticket served (no If-Match needed)
#[utoipa::path(post, path = "/v1/tickets/{id}/served", tag = "queue",
    params(("id" = String, Path, pattern = "^tkt_[0-9a-f]{20}$"), ("If-Match" = Option<String>, Header, description = "Optional: the ETag the move is meant for (412 if it is not current)")),
    responses((status = 200, description = "Served", body = Ticket, headers(("ETag" = String))),
        (status = 404, description = "No such ticket, or not yours"),
        (status = 409, description = "The ticket is not called (the problem names its state)"),
        (status = 412, description = "An If-Match was sent and is not current"),
        (status = 423, description = "The ticket's patient record is sealed")))]
pub async fn served(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    if_match: Option<IfMatch>,
) -> Result<Response, ApiError> {
    act(st, caller.0, id, if_match, Status::Served).await
}

/// Mark a called ticket a no-show (no If-Match needed)
#[utoipa::path(post, path = "/v1/tickets/{id}/no-show", tag = "queue",
    params(("id" = String, Path, pattern = "^tkt_[0-9a-f]{20}$"), ("If-Match" = Option<String>, Header, description = "Optional: the ETag the move is meant for (412 if it is not current)")),
    responses((status = 200, description = "No-show", body = Ticket, headers(("ETag" = String))),
        (status = 404, description = "No such ticket, or not yours"),
        (status = 409, description = "The ticket is not called (the problem names its state)"),
        (status = 412, description = "An If-Match was sent and is not current"),
        (status = 423, description = "The ticket's patient record is sealed")))]
pub async fn no_show(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    if_match: Option<IfMatch>,
) -> Result<Response, ApiError> {
    act(st, caller.0, id, if_match, Status::NoShow).await
}

/// Put a no-show back in the queue, once (no If-Match needed)
#[utoipa::path(post, path = "/v1/tickets/{id}/recall", tag = "queue",
    params(("id" = String, Path, pattern = "^tkt_[0-9a-f]{20}$"), ("If-Match" = Option<String>, Header, description = "Optional: the ETag the move is meant for (412 if it is not current)")),
    responses((status = 200, description = "Waiting again", body = Ticket, headers(("ETag" = String))),
        (status = 404, description = "No such ticket, or not yours"),
        (status = 409, description = "Not a no-show, or already recalled once (the problem names its state)"),
        (status = 412, description = "An If-Match was sent and is not current"),
        (status = 423, description = "The ticket's patient record is sealed")))]
pub async fn recall(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    if_match: Option<IfMatch>,
) -> Result<Response, ApiError> {
    act(st, caller.0, id, if_match, Status::Waiting).await
}

/// Cancel a waiting or called ticket (no If-Match needed)
#[utoipa::path(post, path = "/v1/tickets/{id}/cancel", tag = "queue",
    params(("id" = String, Path, pattern = "^tkt_[0-9a-f]{20}$"), ("If-Match" = Option<String>, Header, description = "Optional: the ETag the move is meant for (412 if it is not current)")),
    responses((status = 200, description = "Cancelled", body = Ticket, headers(("ETag" = String))),
        (status = 404, description = "No such ticket, or not yours"),
        (status = 409, description = "The ticket is served, a no-show or cancelled already (the problem names its state)"),
        (status = 412, description = "An If-Match was sent and is not current"),
        (status = 423, description = "The ticket's patient record is sealed")))]
pub async fn cancel(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    if_match: Option<IfMatch>,
) -> Result<Response, ApiError> {
    act(st, caller.0, id, if_match, Status::Cancelled).await
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BoardLink {
    /// Open this once on the waiting-room screen; it carries the clinic's board key, which the
    /// page moves into the browser's storage and out of the address bar (the page and its files
    /// send `Referrer-Policy: no-referrer`; the live socket offers the key as a subprotocol).
    pub url: String,
}

/// A new board key for the clinic (admin): the answer is the only time the key is shown; the
/// old key stops working and screens still using it are disconnected
#[utoipa::path(post, path = "/v1/clinics/{id}/board", tag = "queue", params(("id" = String, Path, pattern = "^cln_[0-9a-f]{20}$")),
    responses((status = 200, description = "The board URL with the new key", body = BoardLink), (status = 403, description = "Not an admin"),
        (status = 404, description = "No such clinic")))]
pub async fn rotate_board_key(
    State(st): State<AppState>,
    admin: Require<perm::ManageClinics>,
    Path(id): Path<String>,
) -> Result<Json<BoardLink>, ApiError> {
    let admin = admin.0;
    let key = crate::auth::tokens::new_token();
    let hash = crate::auth::tokens::hash_token(&key);
    let clinic_id = st
        .db
        .write(move |conn| {
            let clinic = clinic(conn, &admin, &id)?;
            crate::clinics::records::set_board_key_hash(conn, &clinic.id, &hash)?;
            Ok(clinic.id)
        })
        .await?;
    // Live screens re-check their key on every event: this one closes the old key's sockets.
    super::live::publish(&st, &clinic_id, super::live::REKEYED, None);
    Ok(Json(BoardLink {
        url: format!("/board/{clinic_id}?key={key}"),
    }))
}

impl crate::http::extract::BodyRules for IssueRequest {}
impl crate::http::extract::BodyRules for CallRequest {}
impl crate::http::extract::BodyRules for TicketPatch {}

// How this feature's domain types meet the HTTP mechanism (bodies' rules, CSV rows): kept
// beside the routes, so the domain imports nothing of `http`.
mod domain_http {
    use super::super::domain::*;

    impl crate::http::csv_out::CsvRow for DayReport {
        fn columns() -> &'static [&'static str] {
            &[
                "date",
                "issued",
                "served",
                "no_shows",
                "cancelled",
                "average_wait_seconds",
                "p90_wait_seconds",
            ]
        }
        fn cells(&self) -> Vec<crate::http::csv_out::Cell> {
            use crate::http::csv_out::Cell;
            vec![
                Cell::text(&self.date),
                Cell::number(self.issued),
                Cell::number(self.served),
                Cell::number(self.no_shows),
                Cell::number(self.cancelled),
                Cell::opt_number(self.average_wait_seconds),
                Cell::opt_number(self.p90_wait_seconds),
            ]
        }
    }
}
