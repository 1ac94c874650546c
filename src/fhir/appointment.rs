//! careq's appointments ↔ FHIR R4 `Appointment`, and staff ↔ `Practitioner` (read-only, no
//! credentials: only the id, the username as an identifier, and whether the account is active).
use serde_json::{json, Value};

use super::{fhir_id, meta};
use crate::appointments::domain::{Appointment, AppointmentStatus};
use crate::error::ApiError;
use crate::users::domain::User;

/// Where a staff member's username is named.
pub const USERNAME_SYSTEM: &str = "urn:careq:username";

/// careq's status → FHIR `Appointment.status`.
pub fn status_code(s: AppointmentStatus) -> &'static str {
    match s {
        AppointmentStatus::Booked => "booked",
        AppointmentStatus::CheckedIn => "arrived",
        AppointmentStatus::Completed => "fulfilled",
        AppointmentStatus::Cancelled => "cancelled",
        AppointmentStatus::NoShow => "noshow",
    }
}

/// FHIR status codes careq never holds: a search for them finds nothing.
const UNUSED_CODES: &[&str] = &[
    "proposed",
    "pending",
    "entered-in-error",
    "checked-in",
    "waitlist",
];

/// A FHIR status code searched for: `Ok(None)` when careq has no appointment in that state;
/// a code outside FHIR's value set answers 400.
pub fn status_of(code: &str) -> Result<Option<AppointmentStatus>, ApiError> {
    let all = [
        AppointmentStatus::Booked,
        AppointmentStatus::CheckedIn,
        AppointmentStatus::Completed,
        AppointmentStatus::Cancelled,
        AppointmentStatus::NoShow,
    ];
    if let Some(s) = all.into_iter().find(|s| status_code(*s) == code) {
        return Ok(Some(s));
    }
    if UNUSED_CODES.contains(&code) {
        return Ok(None);
    }
    Err(ApiError::bad_param(
        "status",
        "an Appointment status code (booked, arrived, fulfilled, cancelled, noshow, …)",
    ))
}

pub fn to_fhir(a: &Appointment) -> Value {
    let end = a
        .start
        .parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| {
            t.checked_add(jiff::SignedDuration::from_mins(a.duration_minutes))
                .ok()
        })
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    let mut r = json!({
        "resourceType": "Appointment",
        "id": fhir_id(&a.id),
        "meta": meta(a.version, &a.updated_at),
        "status": status_code(a.status),
        "start": a.start,
        "minutesDuration": a.duration_minutes,
        "participant": [
            {"actor": {"reference": format!("Patient/{}", fhir_id(&a.patient_id))}, "status": "accepted"},
            {"actor": {"reference": format!("Practitioner/{}", fhir_id(&a.clinician_id))}, "status": "accepted"},
        ],
    });
    if let Some(end) = end {
        r["end"] = json!(end);
    }
    if let Some(reason) = &a.reason {
        r["description"] = json!(reason);
    }
    r
}

pub fn practitioner(u: &User) -> Value {
    json!({
        "resourceType": "Practitioner",
        "id": fhir_id(&u.id),
        "meta": meta(u.version, &u.updated_at),
        "identifier": [{"system": USERNAME_SYSTEM, "value": u.username}],
        "active": u.active,
    })
}
