//! Tickets and queue days as the store keeps them: each function runs one `careq_store::queue`
//! query on the unit's connection and turns its rows into the feature's types. The app supplies
//! what the store leaves to it: the moments of changes (ticket times in Unix milliseconds, shown
//! as RFC 3339), the service-time estimate when a clinic has no history, and the words of a
//! day's report.
use careq_store::queue::{self as stored, TicketRow, TicketStatus};

use super::domain::{NewTicket, Priority, Status, Ticket};
use crate::clock::{now_ms, now_rfc3339, rfc3339_of_ms};
use crate::store::{Read, StoreError, Write};

/// The estimate per ticket, in seconds, for a clinic that has served nobody yet.
const DEFAULT_SERVICE_SECONDS: u64 = 300;

impl From<stored::Priority> for Priority {
    fn from(p: stored::Priority) -> Priority {
        match p {
            stored::Priority::Normal => Priority::Normal,
            stored::Priority::Urgent => Priority::Urgent,
            stored::Priority::Emergency => Priority::Emergency,
        }
    }
}

impl From<Priority> for stored::Priority {
    fn from(p: Priority) -> stored::Priority {
        match p {
            Priority::Normal => stored::Priority::Normal,
            Priority::Urgent => stored::Priority::Urgent,
            Priority::Emergency => stored::Priority::Emergency,
        }
    }
}

impl From<TicketStatus> for Status {
    fn from(s: TicketStatus) -> Status {
        match s {
            TicketStatus::Waiting => Status::Waiting,
            TicketStatus::Called => Status::Called,
            TicketStatus::Served => Status::Served,
            TicketStatus::NoShow => Status::NoShow,
            TicketStatus::Cancelled => Status::Cancelled,
        }
    }
}

impl From<Status> for TicketStatus {
    fn from(s: Status) -> TicketStatus {
        match s {
            Status::Waiting => TicketStatus::Waiting,
            Status::Called => TicketStatus::Called,
            Status::Served => TicketStatus::Served,
            Status::NoShow => TicketStatus::NoShow,
            Status::Cancelled => TicketStatus::Cancelled,
        }
    }
}

/// A stored ticket as served: its moments in RFC 3339, no place in the queue yet (the queue's
/// order fills that in).
impl From<TicketRow> for Ticket {
    fn from(r: TicketRow) -> Ticket {
        Ticket {
            id: r.id,
            clinic_id: r.clinic_id,
            number: r.number,
            day: r.day,
            patient_id: r.patient_id,
            priority: r.priority.into(),
            status: r.status.into(),
            counter: r.counter,
            recalled: r.recalled,
            issued_at: rfc3339_of_ms(r.issued_ms),
            called_at: r.called_ms.map(rfc3339_of_ms),
            finished_at: r.finished_ms.map(rfc3339_of_ms),
            position: None,
            estimated_wait_seconds: None,
            version: r.version,
            updated_at: r.updated_at,
            issued_ms: r.issued_ms,
        }
    }
}

fn tickets(rows: Vec<TicketRow>) -> Vec<Ticket> {
    rows.into_iter().map(Ticket::from).collect()
}

pub fn find_ticket(conn: &mut dyn Read, id: &str) -> Result<Option<Ticket>, StoreError> {
    Ok(stored::find_ticket(conn, id)?.map(Ticket::from))
}

/// Bumps the clinic's counter for the day and answers the new number; `None` when the day is
/// closed, which leaves the counter as it was (no number is used up, and the caller refuses).
/// On PostgreSQL the day's row stays locked until the unit ends, so issuers of one clinic and
/// day take numbers one after the other and the numbers have no gaps.
pub fn next_ticket_seq(
    conn: &mut dyn Write,
    clinic_id: &str,
    day: &str,
) -> Result<Option<i64>, StoreError> {
    stored::next_ticket_seq(conn, clinic_id, day)
}

/// Stores a waiting ticket issued now.
pub fn insert_ticket(conn: &mut dyn Write, t: &NewTicket<'_>) -> Result<(), StoreError> {
    let issued_ms = now_ms();
    let new = stored::NewTicket {
        id: t.id,
        clinic_id: t.clinic_id,
        day: t.day,
        seq: t.seq,
        number: t.number,
        patient_id: t.patient_id,
        priority: t.priority.into(),
    };
    stored::insert_ticket(conn, &new, issued_ms, &rfc3339_of_ms(issued_ms))
}

/// The earliest waiting ticket of each priority on the clinic's day: the next to call is one
/// of them. Takes a write unit: on PostgreSQL it first locks the day's row, so two counters
/// calling at once are served one after the other.
pub fn head_of_each_priority(
    conn: &mut dyn Write,
    clinic_id: &str,
    day: &str,
) -> Result<Vec<Ticket>, StoreError> {
    Ok(tickets(stored::head_of_each_priority(
        conn, clinic_id, day,
    )?))
}

/// Waiting tickets of a priority issued at or before `issued_ms` (all when `None`), from the
/// day's kept counts (not a count over the queue).
pub fn count_waiting(
    conn: &mut dyn Read,
    clinic_id: &str,
    day: &str,
    priority: Priority,
    issued_ms: Option<i64>,
) -> Result<u64, StoreError> {
    stored::waiting(conn, clinic_id, day, priority.into(), issued_ms)
}

/// Waiting and called tickets of a day in issue order (capped as a safety bound).
pub fn open_tickets(
    conn: &mut dyn Read,
    clinic_id: &str,
    day: &str,
) -> Result<Vec<Ticket>, StoreError> {
    Ok(tickets(stored::open_tickets(conn, clinic_id, day)?))
}

/// Moves a ticket, now, if it is still at `version`; false when it moved on meanwhile (the unit
/// is then marked as having lost a race, so PostgreSQL may run it again).
pub fn set_ticket_status(
    conn: &mut dyn Write,
    id: &str,
    version: i64,
    to: Status,
    counter: Option<&str>,
) -> Result<bool, StoreError> {
    let at = now_ms();
    let applied = stored::set_ticket_status(
        conn,
        id,
        version,
        to.into(),
        counter,
        at,
        &rfc3339_of_ms(at),
    )?;
    if !applied {
        conn.lost_race();
    }
    Ok(applied)
}

/// The id of the ticket called most recently on a day.
pub fn last_called(
    conn: &mut dyn Read,
    clinic_id: &str,
    day: &str,
) -> Result<Option<String>, StoreError> {
    stored::last_called(conn, clinic_id, day)
}

/// The recent average seconds from call to finish, at least 1; 300 for a clinic that has
/// served nobody yet.
pub fn service_seconds(conn: &mut dyn Read, clinic_id: &str) -> Result<u64, StoreError> {
    Ok(stored::service_seconds(conn, clinic_id)?
        .map(|s| s.max(1.0) as u64)
        .unwrap_or(DEFAULT_SERVICE_SECONDS))
}

/// Closes the day now (`closed`) or reopens it.
pub fn set_day_closed(
    conn: &mut dyn Write,
    clinic_id: &str,
    day: &str,
    closed: bool,
) -> Result<(), StoreError> {
    let at = closed.then(now_rfc3339);
    stored::set_day_closed(conn, clinic_id, day, at.as_deref())
}

pub fn is_day_closed(conn: &mut dyn Read, clinic_id: &str, day: &str) -> Result<bool, StoreError> {
    stored::is_day_closed(conn, clinic_id, day)
}

/// Each ticket of a day: its status (as the API spells it) and, once called, the seconds it
/// waited.
pub fn day_tickets(
    conn: &mut dyn Read,
    clinic_id: &str,
    day: &str,
) -> Result<Vec<(String, Option<f64>)>, StoreError> {
    Ok(stored::day_tickets(conn, clinic_id, day)?
        .into_iter()
        .map(|t| (Status::from(t.status).as_str().to_string(), t.wait_seconds))
        .collect())
}
