//! The walk-in queue: tickets with gap-free daily numbers, calling order, transitions, closing
//! the day and the daily report. This module is the queue's service: what its routes and other
//! features (appointments' check-in, the live board) call.
pub mod domain;
pub mod events;
pub mod live;
pub mod notifier;
pub mod notify;
pub mod records;
pub mod routes;

use crate::access::{self, Action, Touch};
use crate::auth::Caller;
use crate::clinics::domain::Clinic;
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::http::precondition::IfMatch;
use crate::patients::Use;
use crate::state::AppState;
use crate::store::{Held, Read, Write};
use domain::{may_move, order, NewTicket, Priority, Status, Ticket};

pub use routes::router;

/// The clinic's local calendar day now.
pub fn local_day(clinic: &Clinic) -> String {
    local_day_at(clinic, jiff::Timestamp::now())
}

/// The clinic's local calendar day at `at`.
pub fn local_day_at(clinic: &Clinic, at: jiff::Timestamp) -> String {
    crate::clock::local_date(at, &clinic.timezone).to_string()
}

/// Waiting tickets in calling order, numbered, with wait estimates; called tickets after them.
pub fn queue_of(
    aging_minutes: u64,
    conn: &mut dyn Read,
    clinic: &Clinic,
    at: jiff::Timestamp,
) -> Result<Vec<Ticket>, ApiError> {
    let day = local_day_at(clinic, at);
    let open = records::open_tickets(conn, &clinic.id, &day)?;
    let (mut waiting, called): (Vec<Ticket>, Vec<Ticket>) =
        open.into_iter().partition(|t| t.status == Status::Waiting);
    order(&mut waiting, now_ms(), aging_minutes);
    let per_ticket = records::service_seconds(conn, &clinic.id)?;
    for (i, t) in waiting.iter_mut().enumerate() {
        t.position = Some(i as u32 + 1);
        t.estimated_wait_seconds = Some(per_ticket * i as u64);
    }
    waiting.extend(called);
    Ok(waiting)
}

/// Waiting tickets per clinic on each clinic's own day (for the metrics gauge: the day's kept
/// counts, no queue loaded), in one read unit.
pub async fn waiting_per_clinic(db: &crate::store::Store) -> Result<Vec<(String, u64)>, ApiError> {
    db.read(|conn| {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let page = crate::clinics::records::list_clinics(conn, None, &after, 200)?;
            for clinic in page.iter().take(200) {
                let day = local_day(clinic);
                let mut n = 0;
                for p in Priority::ALL {
                    n += records::count_waiting(conn, &clinic.id, &day, p, None)?;
                }
                out.push((clinic.id.clone(), n));
            }
            if page.len() <= 200 {
                return Ok(out);
            }
            after = page[199].id.clone();
        }
    })
    .await
}

/// Issues a ticket inside the caller's unit of work: the next number of the clinic's day, 423 when the
/// day is closed. Shared by walk-ins and appointment check-ins. The day is the clinic's local
/// day at `at` (the request's moment).
pub fn issue_in(
    aging_minutes: u64,
    conn: &mut dyn Write,
    clinic: &Clinic,
    patient_id: Option<&str>,
    priority: Priority,
    at: jiff::Timestamp,
) -> Result<Ticket, ApiError> {
    let day = local_day_at(clinic, at);
    // Its place first: the waiting tickets that have aged to its level or beyond, per priority
    // from the day's kept counts (less the recent ones an aging bound leaves out), not by
    // loading or counting the day's queue. Counted before the day's counter
    // is taken, because taking it locks the counter until the unit commits (on PostgreSQL every
    // other issuer of the clinic waits meanwhile): the locked part is kept to two statements.
    let now = now_ms();
    let mut ahead = 0;
    for base in Priority::ALL {
        let bound = domain::ahead_bound(base, priority.level(), now, aging_minutes);
        ahead += records::count_waiting(conn, &clinic.id, &day, base, bound)?;
    }
    let per_ticket = records::service_seconds(conn, &clinic.id)?;
    let seq = records::next_ticket_seq(conn, &clinic.id, &day)?.ok_or_else(|| {
        ApiError::Locked("the queue is closed for today; reopen it to issue tickets".into())
    })?;
    let id = crate::ids::new_id("tkt");
    let number = format!("{}-{seq:03}", clinic.ticket_prefix);
    records::insert_ticket(
        conn,
        &NewTicket {
            id: &id,
            clinic_id: &clinic.id,
            day: &day,
            seq,
            number: &number,
            patient_id,
            priority,
        },
    )?;
    let mut ticket =
        records::find_ticket(conn, &id)?.ok_or_else(|| ApiError::internal("ticket vanished"))?;
    ticket.position = Some(ahead as u32 + 1);
    ticket.estimated_wait_seconds = Some(per_ticket * ahead);
    Ok(ticket)
}

/// The waiting ticket to call next that the caller may see: the first in calling order among
/// the earliest ticket of each priority (only they can be first), or, when that one is a sealed
/// patient's, the first readable one of the whole queue. For call-next: it takes the unit
/// that calls the ticket, which (on PostgreSQL) holds the clinic's day while it picks.
pub fn next_to_call(
    aging_minutes: u64,
    conn: &mut dyn Write,
    caller: &Caller,
    clinic: &Clinic,
) -> Result<Option<Ticket>, ApiError> {
    let day = local_day_at(clinic, caller.now);
    let mut heads = records::head_of_each_priority(conn, &clinic.id, &day)?;
    order(&mut heads, now_ms(), aging_minutes);
    let Some(first) = heads.into_iter().next() else {
        return Ok(None);
    };
    if readable(conn, caller, &first)? {
        return Ok(Some(first));
    }
    let queue = queue_of(aging_minutes, conn, clinic, caller.now)?;
    for t in queue.into_iter().filter(|t| t.status == Status::Waiting) {
        if readable(conn, caller, &t)? {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

pub fn visible_ticket(conn: &mut dyn Read, caller: &Caller, id: &str) -> Result<Ticket, ApiError> {
    records::find_ticket(conn, id)?
        .filter(|t| caller.sees_clinic(&t.clinic_id))
        .ok_or_else(|| ApiError::NotFound("no ticket with this id".into()))
}

/// A ticket the caller may see and use: a ticket names its patient, so the patient's seal
/// answers 451 to a non-admin's read and 423 to any write, as for the patient itself. For a
/// write the ticket is held first, so what is judged here is still so when the unit writes.
pub fn usable_ticket(
    conn: &mut dyn Write,
    caller: &Caller,
    id: &str,
    use_: Use,
) -> Result<Ticket, ApiError> {
    if use_ == Use::Write {
        conn.hold(Held::Ticket.table(), id)?;
    }
    usable_unheld(conn, caller, id, use_)
}

/// What [`usable_ticket`] answers, on a read unit: nothing is held (a use that leaves the
/// database, such as a notification, writes nothing to the ticket).
pub fn usable_unheld(
    conn: &mut dyn Read,
    caller: &Caller,
    id: &str,
    use_: Use,
) -> Result<Ticket, ApiError> {
    let t = visible_ticket(conn, caller, id)?;
    if let Some(pid) = &t.patient_id {
        crate::patients::check_seal(conn, caller, pid, use_)?;
    }
    Ok(t)
}

/// The access-log entry of a ticket that names a patient (`None` for an anonymous walk-in): the
/// ticket says the patient is at the clinic today, so it is in the patient's log.
pub fn touch(t: &Ticket) -> Option<Touch<'_>> {
    t.patient_id.as_deref().map(|pid| Touch {
        resource_type: "ticket",
        resource_id: &t.id,
        patient: Some(pid),
    })
}

/// Writes the access-log entry of a change to a ticket that names a patient, inside the unit
/// that makes the change (`create` for an issue or a check-in, `update` for every move).
pub fn log_change(
    conn: &mut dyn Write,
    caller: &Caller,
    action: Action,
    t: &Ticket,
) -> Result<(), ApiError> {
    match &t.patient_id {
        Some(pid) => access::record_about(conn, caller, action, "ticket", &t.id, Some(pid)),
        None => Ok(()),
    }
}

/// Whether a ticket may be shown to the caller in a list (not a sealed patient's, unless admin).
pub fn readable(conn: &mut dyn Read, caller: &Caller, t: &Ticket) -> Result<bool, ApiError> {
    let Some(pid) = &t.patient_id else {
        return Ok(true);
    };
    match crate::patients::check_seal(conn, caller, pid, Use::Read) {
        Ok(()) => Ok(true),
        Err(ApiError::UnavailableForLegalReasons { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Moves a ticket along its state machine: the one path of every client move, whether asked by
/// action (`POST /v1/tickets/{id}/served`, no `If-Match` needed) or by merge patch (with one).
/// The move is judged on the ticket as stored and written only at the version judged; when
/// another move got there first (two counters, or PostgreSQL running both units at once) it is
/// judged again on what the ticket became, so the loser hears 409 naming that state, or 412 if
/// it sent an `If-Match`. The live board and webhooks hear every move the same way.
pub async fn move_ticket(
    st: &AppState,
    caller: &Caller,
    id: &str,
    to: Status,
    if_match: Option<IfMatch>,
) -> Result<Ticket, ApiError> {
    let (caller, id) = (caller.clone(), id.to_string());
    let moved = st
        .db
        .write_data(move |conn| {
            // Each miss means the ticket moved on; a state machine this small cannot keep
            // moving for long, so a few rounds end in a move, a 409 or a 412.
            for _ in 0..4 {
                let ticket = usable_ticket(conn, &caller, &id, Use::Write)?;
                if let Some(m) = &if_match {
                    m.check(ticket.version)?;
                }
                if !may_move(ticket.status, to, ticket.recalled) {
                    return Err(illegal_move(&ticket, to));
                }
                if records::set_ticket_status(conn, &id, ticket.version, to, None)? {
                    let moved = records::find_ticket(conn, &id)?
                        .ok_or_else(|| ApiError::internal("ticket vanished"))?;
                    log_change(conn, &caller, Action::Update, &moved)?;
                    return Ok(moved);
                }
            }
            Err(ApiError::internal(
                "the ticket kept changing under the move",
            ))
        })
        .await?;
    live::publish(st, &moved.clinic_id, "updated", Some(&moved));
    Ok(moved)
}

/// 409 naming the ticket's state and the one asked for.
fn illegal_move(ticket: &Ticket, to: Status) -> ApiError {
    let why = if ticket.status == Status::NoShow && to == Status::Waiting {
        " (its one recall is used)"
    } else {
        ""
    };
    ApiError::Conflict {
        detail: format!(
            "ticket {} is {}; it cannot become {}{why}",
            ticket.number,
            ticket.status.as_str(),
            to.as_str()
        ),
        existing: Some(format!("/v1/tickets/{}", ticket.id)),
    }
}

/// Seconds a ticket has waited by `now_ms`: until now while waiting, until its call once called.
pub fn waited_seconds(t: &Ticket, now_ms: i64) -> u64 {
    let until = match t.status {
        Status::Waiting => now_ms,
        _ => t
            .called_at
            .as_deref()
            .and_then(|c| c.parse::<jiff::Timestamp>().ok())
            .map(|c| c.as_millisecond())
            .unwrap_or(now_ms),
    };
    (until - t.issued_ms).max(0) as u64 / 1000
}
