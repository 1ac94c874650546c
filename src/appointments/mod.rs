//! Appointments: `/v1/appointments`. This module is the feature's service: the rules of booking,
//! rescheduling and checking in, each run inside one write unit over its transaction;
//! `records.rs` reads and writes the rows; `routes.rs` holds thin handlers.
pub mod domain;
pub mod records;
pub mod routes;

use crate::access::{self, Action, Touch};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, FieldError};
use crate::http::precondition::{stale, IfMatch};
use crate::patients::Use;
use crate::store::{Held, Read, Store, Write};
use crate::users::domain::StoredUser;
use domain::{Appointment, AppointmentPatch, AppointmentRow, AppointmentStatus, Filters};
use domain::{NewAppointment, Slot};

pub use routes::router;

pub fn location(id: &str) -> String {
    format!("/v1/appointments/{id}")
}

/// The 409 for a double booking. The clinician really is busy wherever the other appointment
/// is, but its id is named only to a caller who could read it: the overlap check spans clinics
/// and must not reveal another clinic's appointments, and a sealed patient's appointment is
/// confirmed to admins only (its read is 451, naming the patient).
fn taken(
    conn: &mut dyn Read,
    caller: &Caller,
    (other, clinic_id): (String, String),
) -> Result<ApiError, ApiError> {
    if !caller.sees_clinic(&clinic_id) {
        return Ok(ApiError::Conflict {
            detail: "the clinician is booked elsewhere (another clinic) at this time".into(),
            existing: None,
        });
    }
    let hidden = match records::find_appointment(conn, &other)? {
        Some((a, _)) => matches!(
            crate::patients::check_seal(conn, caller, &a.patient_id, Use::Read),
            Err(ApiError::UnavailableForLegalReasons { .. })
        ),
        None => false,
    };
    Ok(ApiError::Conflict {
        detail: "the clinician already has an appointment in this slot".into(),
        existing: (!hidden).then(|| location(&other)),
    })
}

/// A live appointment the caller may see: 404 if missing or another clinic's, 410 if deleted.
pub fn visible(conn: &mut dyn Read, caller: &Caller, id: &str) -> Result<Appointment, ApiError> {
    match records::find_appointment(conn, id)? {
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
pub fn usable(
    conn: &mut dyn Write,
    caller: &Caller,
    id: &str,
    use_: Use,
) -> Result<Appointment, ApiError> {
    if use_ == Use::Write {
        conn.hold(Held::Appointment.table(), id)?;
    }
    let a = visible(conn, caller, id)?;
    crate::patients::check_seal(conn, caller, &a.patient_id, use_)?;
    Ok(a)
}

/// An access-log entry for an appointment: it carries the patient's data (the reason).
pub fn touch(a: &Appointment) -> Touch<'_> {
    Touch {
        resource_type: "appointment",
        resource_id: &a.id,
        patient: Some(&a.patient_id),
    }
}

/// Writes the access-log entry of a change to an appointment (it carries the patient's data).
fn log(
    conn: &mut dyn Write,
    caller: &Caller,
    action: Action,
    a: &Appointment,
) -> Result<(), ApiError> {
    access::record_about(
        conn,
        caller,
        action,
        "appointment",
        &a.id,
        Some(&a.patient_id),
    )
}

/// 422 unless the patient is live in the clinic and the clinician may see patients there.
fn check_people(
    conn: &mut dyn Read,
    clinic_id: &str,
    patient_id: &str,
    clinician_id: &str,
) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let patient_ok = crate::patients::records::find_patient(conn, patient_id)?
        .is_some_and(|p| p.patient.clinic_id == clinic_id && !p.deleted && p.merged_into.is_none());
    if !patient_ok {
        errors.push(FieldError::new(
            "/patient_id",
            "no live patient of this clinic with this id",
        ));
    }
    let clinician_ok = match crate::users::records::find_user(conn, clinician_id)? {
        Some(StoredUser::Live(u)) => {
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

/// Books an appointment (the rules and the insert), with its access-log entry.
pub fn book(
    conn: &mut dyn Write,
    caller: Caller,
    new: NewAppointment,
    slot: Slot,
) -> Result<Appointment, ApiError> {
    if crate::clinics::visible(conn, &caller, &new.clinic_id).is_err() {
        return Err(ApiError::invalid(vec![FieldError::new(
            "/clinic_id",
            "no clinic with this id that you belong to",
        )]));
    }
    check_people(conn, &new.clinic_id, &new.patient_id, &new.clinician_id)?;
    crate::patients::check_seal(conn, &caller, &new.patient_id, Use::Write)?;
    if let Some(other) = records::overlapping(conn, &new.clinician_id, &slot, "")? {
        return Err(taken(conn, &caller, other)?);
    }
    let id = crate::ids::new_id("apt");
    let reason = domain::reason(new.reason.as_deref()).map_err(|e| ApiError::invalid(vec![e]))?;
    let reason = reason.as_deref();
    records::insert_appointment(
        conn,
        &AppointmentRow {
            id: &id,
            clinic_id: &new.clinic_id,
            patient_id: &new.patient_id,
            clinician_id: &new.clinician_id,
            slot: &slot,
            reason,
        },
    )?;
    let (a, _) = records::find_appointment(conn, &id)?
        .ok_or_else(|| ApiError::internal("appointment vanished"))?;
    log(conn, &caller, Action::Create, &a)?;
    Ok(a)
}

/// Reschedules or changes the status of an appointment if still at the `If-Match` version.
pub fn update(
    conn: &mut dyn Write,
    caller: Caller,
    id: String,
    if_match: IfMatch,
    patch: AppointmentPatch,
) -> Result<Appointment, ApiError> {
    let current = usable(conn, &caller, &id, Use::Write)?;
    let rescheduling = patch.start.is_some() || patch.duration_minutes.is_some();
    let slot = if rescheduling {
        Slot::parse(
            patch.start.as_deref().unwrap_or(&current.start),
            patch.duration_minutes.unwrap_or(current.duration_minutes),
            caller.now,
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
        if let Some(other) = records::overlapping(conn, &current.clinician_id, &slot, &id)? {
            return Err(taken(conn, &caller, other)?);
        }
    }
    let given = domain::reason(patch.reason.as_deref()).map_err(|e| ApiError::invalid(vec![e]))?;
    let reason = match &patch.reason {
        Some(_) => given.as_deref(),
        None => current.reason.as_deref(),
    };
    if !records::update_appointment(conn, &id, current.version, &slot, reason, status, None)? {
        return Err(stale(current.version + 1));
    }
    let a = visible(conn, &caller, &id)?;
    log(conn, &caller, Action::Update, &a)?;
    Ok(a)
}

/// Deletes an appointment (already deleted is fine: DELETE is idempotent).
pub fn remove(conn: &mut dyn Write, caller: Caller, id: String) -> Result<(), ApiError> {
    match usable(conn, &caller, &id, Use::Write) {
        Ok(a) => {
            records::delete_appointment(conn, &id)?;
            log(conn, &caller, Action::Delete, &a)?;
        }
        Err(ApiError::Gone(_)) => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Checks a booked appointment in: issues its queue ticket in the same unit of work.
pub fn check_in(
    conn: &mut dyn Write,
    caller: Caller,
    id: String,
    aging_minutes: u64,
) -> Result<crate::queue::domain::Ticket, ApiError> {
    let a = usable(conn, &caller, &id, Use::Write)?;
    if a.status != AppointmentStatus::Booked {
        return Err(ApiError::Conflict {
            detail: format!(
                "only a booked appointment can be checked in; this one is {}",
                a.status.as_str()
            ),
            existing: Some(location(&id)),
        });
    }
    let clinic = crate::clinics::records::find_clinic(conn, &a.clinic_id)?
        .ok_or_else(|| ApiError::internal("clinic vanished"))?;
    // Check-in is for the appointment's own day on the clinic's clock, so its ticket joins
    // that day's queue (never today's queue for tomorrow's appointment).
    let start: jiff::Timestamp = a.start.parse().map_err(ApiError::internal)?;
    let on = crate::clock::local_date(start, &clinic.timezone);
    let today = crate::clock::local_date(caller.now, &clinic.timezone);
    if on != today {
        return Err(ApiError::Conflict {
            detail: format!(
                "this appointment is on {on} ({}); it can be checked in on that day only, and                  today there is {today}",
                clinic.timezone
            ),
            existing: Some(location(&id)),
        });
    }
    let ticket = crate::queue::issue_in(
        aging_minutes,
        conn,
        &clinic,
        Some(&a.patient_id),
        crate::queue::domain::Priority::Normal,
        caller.now,
    )?;
    let slot = Slot {
        start: a.start.parse().map_err(ApiError::internal)?,
        minutes: a.duration_minutes,
    };
    if !records::update_appointment(
        conn,
        &id,
        a.version,
        &slot,
        a.reason.as_deref(),
        AppointmentStatus::CheckedIn,
        Some(&ticket.id),
    )? {
        // Another check-in (or change) committed meanwhile (PostgreSQL runs units side by
        // side): this unit, its ticket included, is undone. No If-Match was sent, so this is
        // the state conflict a later request would get, not a 412.
        let now = visible(conn, &caller, &id)?;
        return Err(ApiError::Conflict {
            detail: format!(
                "only a booked appointment can be checked in; this one is {}",
                now.status.as_str()
            ),
            existing: Some(location(&id)),
        });
    }
    log(conn, &caller, Action::Update, &a)?;
    crate::queue::log_change(conn, &caller, Action::Create, &ticket)?;
    Ok(ticket)
}

/// The instants of calendar day `day` on the clock of each clinic searched: the clinic named by
/// `clinic_id`, else the caller's clinics (an admin's: all), one range per time zone.
pub async fn day_ranges(
    db: &Store,
    caller: &Caller,
    clinic_id: Option<&str>,
    day: jiff::civil::Date,
) -> Result<Vec<domain::DayRange>, ApiError> {
    let one;
    let ids = match clinic_id {
        Some(id) => {
            one = [id.to_string()];
            Some(&one[..])
        }
        None if caller.role == Role::Admin => None,
        None => Some(&caller.clinic_ids[..]),
    };
    let clinics = crate::clinics::among(db, ids).await?;
    let mut zones: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for c in clinics {
        zones.entry(c.timezone).or_default().push(c.id);
    }
    let one_zone = zones.len() == 1;
    zones
        .into_iter()
        .map(|(tz, ids)| {
            let (from, to) = crate::clock::day_bounds(day, &tz).map_err(ApiError::internal)?;
            Ok(domain::DayRange {
                // With one zone the other filters (and the caller's scope) say which clinics.
                clinic_ids: (!one_zone).then_some(ids),
                from,
                to,
            })
        })
        .collect()
}

/// Live appointments in start order after the (start, id) key, at most `limit + 1`;
/// `member` scopes them to one user's clinics (`None`: an admin).
pub async fn list(
    db: &Store,
    member: Option<&str>,
    f: &Filters,
    after: (i64, &str),
    limit: u32,
) -> Result<Vec<Appointment>, ApiError> {
    let (member, f, after_id) = (member.map(str::to_string), f.clone(), after.1.to_string());
    db.read(move |conn| {
        let after = (after.0, after_id.as_str());
        Ok(records::list_appointments(
            conn,
            member.as_deref(),
            &f,
            after,
            limit,
        )?)
    })
    .await
}
