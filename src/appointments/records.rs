//! The appointment records as this feature reads and writes them: each function runs one query
//! of `careq_store::appointments` and turns its rows into the feature's types (and back). The
//! store computes nothing of times: the slot's text and instants, the clinic's local start and
//! the moment of a change are worked out here.
use careq_store::appointments as store;

use super::domain::{local_time, Appointment, AppointmentRow, AppointmentStatus, Filters, Slot};
use crate::store::{Read, StoreError, Write};

/// The zone an appointment's local start is given in when its clinic is gone.
const ZONE_IF_UNKNOWN: &str = "UTC";

impl From<store::AppointmentStatus> for AppointmentStatus {
    fn from(s: store::AppointmentStatus) -> AppointmentStatus {
        match s {
            store::AppointmentStatus::Booked => AppointmentStatus::Booked,
            store::AppointmentStatus::CheckedIn => AppointmentStatus::CheckedIn,
            store::AppointmentStatus::Completed => AppointmentStatus::Completed,
            store::AppointmentStatus::Cancelled => AppointmentStatus::Cancelled,
            store::AppointmentStatus::NoShow => AppointmentStatus::NoShow,
        }
    }
}

impl From<AppointmentStatus> for store::AppointmentStatus {
    fn from(s: AppointmentStatus) -> store::AppointmentStatus {
        match s {
            AppointmentStatus::Booked => store::AppointmentStatus::Booked,
            AppointmentStatus::CheckedIn => store::AppointmentStatus::CheckedIn,
            AppointmentStatus::Completed => store::AppointmentStatus::Completed,
            AppointmentStatus::Cancelled => store::AppointmentStatus::Cancelled,
            AppointmentStatus::NoShow => store::AppointmentStatus::NoShow,
        }
    }
}

/// An appointment as clients see it, from its stored row: the start also on its clinic's clock.
fn appointment(row: store::AppointmentRow) -> Appointment {
    let timezone = row.timezone.unwrap_or_else(|| ZONE_IF_UNKNOWN.to_string());
    Appointment {
        start_local: local_time(&row.start_at, &timezone),
        start: row.start_at,
        timezone,
        id: row.id,
        clinic_id: row.clinic_id,
        patient_id: row.patient_id,
        clinician_id: row.clinician_id,
        duration_minutes: row.duration_minutes,
        reason: row.reason,
        status: row.status.into(),
        ticket_id: row.ticket_id,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// A slot as the store keeps it, its start text borrowed from `start_at`.
fn stored_slot<'a>(slot: &Slot, start_at: &'a str) -> store::Slot<'a> {
    store::Slot {
        start_at,
        start_unix: slot.start_unix(),
        end_unix: slot.end_unix(),
        minutes: slot.minutes,
    }
}

/// The appointment and whether it was deleted.
pub fn find_appointment(
    conn: &mut dyn Read,
    id: &str,
) -> Result<Option<(Appointment, bool)>, StoreError> {
    Ok(store::find(conn, id)?.map(|row| {
        let deleted = row.deleted_at.is_some();
        (appointment(row), deleted)
    }))
}

/// A live appointment of the clinician that still holds its slot and overlaps `slot` (other
/// than `except`): its id and its clinic. A booking's check, so it runs in the booking's write
/// unit, where bookings of one clinician are checked one at a time.
pub fn overlapping(
    conn: &mut dyn Write,
    clinician_id: &str,
    slot: &Slot,
    except: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let start = slot.start_text();
    let found = store::overlapping(conn, clinician_id, &stored_slot(slot, &start), except)?;
    Ok(found.map(|o| (o.id, o.clinic_id)))
}

/// Stores a new appointment, booked, at version 1.
pub fn insert_appointment(conn: &mut dyn Write, a: &AppointmentRow<'_>) -> Result<(), StoreError> {
    let start = a.slot.start_text();
    let new = store::NewAppointment {
        id: a.id,
        clinic_id: a.clinic_id,
        patient_id: a.patient_id,
        clinician_id: a.clinician_id,
        slot: stored_slot(a.slot, &start),
        reason: a.reason,
    };
    store::insert(conn, &new, &crate::clock::now_rfc3339())
}

/// Writes slot, reason, status and (when given) ticket if the appointment is live and still at
/// `version`; false when it moved on. A miss means another unit changed it after this one read
/// it: the unit is told it lost a race, so an engine that runs units side by side runs it again.
#[allow(clippy::too_many_arguments)]
pub fn update_appointment(
    conn: &mut dyn Write,
    id: &str,
    version: i64,
    slot: &Slot,
    reason: Option<&str>,
    status: AppointmentStatus,
    ticket_id: Option<&str>,
) -> Result<bool, StoreError> {
    let start = slot.start_text();
    let change = store::AppointmentChange {
        slot: stored_slot(slot, &start),
        reason,
        status: status.into(),
        ticket_id,
    };
    let applied = store::update(conn, id, version, &change, &crate::clock::now_rfc3339())?;
    if !applied {
        conn.lost_race();
    }
    Ok(applied)
}

/// Marks a live appointment deleted; one already deleted (or absent) is left as it is.
pub fn delete_appointment(conn: &mut dyn Write, id: &str) -> Result<(), StoreError> {
    store::delete(conn, id, &crate::clock::now_rfc3339())?;
    Ok(())
}

/// Live appointments in start order after the (start, id) key, at most `limit + 1`, scoped to
/// `member`'s clinics with sealed patients' left out (`None`: an admin, who sees all).
pub fn list_appointments(
    conn: &mut dyn Read,
    member: Option<&str>,
    f: &Filters,
    after: (i64, &str),
    limit: u32,
) -> Result<Vec<Appointment>, StoreError> {
    let ranges: Option<Vec<store::DayRange<'_>>> = f.between.as_ref().map(|all| {
        all.iter()
            .map(|r| store::DayRange {
                clinic_ids: r.clinic_ids.as_deref(),
                from: r.from,
                to: r.to,
            })
            .collect()
    });
    let filter = store::ListFilter {
        clinic_id: f.clinic_id.as_deref(),
        clinician_id: f.clinician_id.as_deref(),
        patient_id: f.patient_id.as_deref(),
        status: f.status.map(Into::into),
        between: ranges.as_deref(),
    };
    let rows = store::list(conn, member, &filter, after, limit)?;
    Ok(rows.into_iter().map(appointment).collect())
}
