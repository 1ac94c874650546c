//! Appointments as typed values.
use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::versioned::Versioned;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    CheckedIn,
    Completed,
    Cancelled,
    NoShow,
}

impl AppointmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::CheckedIn => "checked_in",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::NoShow => "no_show",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Booked,
            Self::CheckedIn,
            Self::Completed,
            Self::Cancelled,
            Self::NoShow,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
    /// Whether it still holds its slot (for overlap checks).
    pub fn holds_slot(self) -> bool {
        matches!(self, Self::Booked | Self::CheckedIn)
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Appointment {
    pub id: String,
    pub clinic_id: String,
    pub patient_id: String,
    pub clinician_id: String,
    /// RFC 3339, UTC.
    pub start: String,
    pub duration_minutes: i64,
    pub reason: Option<String>,
    pub status: AppointmentStatus,
    /// The queue ticket issued at check-in.
    pub ticket_id: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl Versioned for Appointment {
    fn version(&self) -> i64 {
        self.version
    }
    fn updated_at(&self) -> &str {
        &self.updated_at
    }
}

/// An appointment's reason: optional, at most 500 characters, one line without control or
/// invisible formatting characters; blank means none.
pub fn reason(raw: Option<&str>) -> Result<Option<String>, FieldError> {
    match raw {
        None => Ok(None),
        Some(r) => crate::text::optional(r, 500, false)
            .map(|r| Some(r).filter(|r| !r.is_empty()))
            .map_err(|m| FieldError::new("/reason", m)),
    }
}

/// `POST /v1/appointments`.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAppointment {
    pub clinic_id: String,
    pub patient_id: String,
    pub clinician_id: String,
    /// RFC 3339; must be in the future.
    #[schema(format = DateTime)]
    pub start: String,
    /// 5–720.
    #[schema(minimum = 5, maximum = 720)]
    pub duration_minutes: i64,
    #[serde(default)]
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$"
    )]
    pub reason: Option<String>,
}

/// `PATCH /v1/appointments/{id}` (merge patch): reschedule, or change the status.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppointmentPatch {
    #[schema(format = DateTime)]
    pub start: Option<String>,
    #[schema(minimum = 5, maximum = 720)]
    pub duration_minutes: Option<i64>,
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$"
    )]
    pub reason: Option<String>,
    pub status: Option<AppointmentStatus>,
}

/// A slot: a start in the future and a length of 5–720 minutes.
#[derive(Clone)]
pub struct Slot {
    pub start: jiff::Timestamp,
    pub minutes: i64,
}

impl Slot {
    pub fn parse(start: &str, minutes: i64) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let parsed = start.parse::<jiff::Timestamp>();
        match &parsed {
            Err(_) => errors.push(FieldError::new(
                "/start",
                "an RFC 3339 time such as 2030-01-02T09:30:00Z",
            )),
            Ok(t) if *t <= jiff::Timestamp::now() => {
                errors.push(FieldError::new("/start", "must be in the future"))
            }
            Ok(_) => {}
        }
        if !(5..=720).contains(&minutes) {
            errors.push(FieldError::new("/duration_minutes", "between 5 and 720"));
        }
        match parsed {
            Ok(start) if errors.is_empty() => Ok(Slot { start, minutes }),
            _ => Err(errors),
        }
    }

    pub fn start_unix(&self) -> i64 {
        self.start.as_second()
    }
    pub fn end_unix(&self) -> i64 {
        self.start_unix() + self.minutes * 60
    }
    pub fn start_text(&self) -> String {
        self.start.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    }
}

/// A new appointment as stored.
pub struct AppointmentRow<'a> {
    pub id: &'a str,
    pub clinic_id: &'a str,
    pub patient_id: &'a str,
    pub clinician_id: &'a str,
    pub slot: &'a Slot,
    pub reason: Option<&'a str>,
}

/// Filters of the appointment list.
#[derive(Default)]
pub struct Filters {
    pub clinic_id: Option<String>,
    pub clinician_id: Option<String>,
    pub patient_id: Option<String>,
    /// Unix seconds [from, to) of the day asked for.
    pub between: Option<(i64, i64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_must_be_in_the_future_and_5_to_720_minutes() {
        assert!(Slot::parse("2999-01-01T10:00:00Z", 30).is_ok());
        assert_eq!(
            Slot::parse("2000-01-01T10:00:00Z", 30).err().unwrap()[0].pointer,
            "/start"
        );
        assert_eq!(
            Slot::parse("2999-01-01T10:00:00Z", 4).err().unwrap()[0].pointer,
            "/duration_minutes"
        );
        assert_eq!(Slot::parse("tomorrow", 800).err().unwrap().len(), 2);
    }
}
