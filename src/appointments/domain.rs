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
    #[schema(format = DateTime, example = "2026-02-28T23:30:00Z")]
    pub start: String,
    /// The same moment on the clinic's clock: RFC 3339 with the clinic's UTC offset then.
    #[schema(format = DateTime, example = "2026-03-01T00:30:00+01:00")]
    pub start_local: String,
    /// The clinic's IANA time zone, which `start_local`, `day=` and check-in days follow.
    #[schema(example = "Europe/Vienna")]
    pub timezone: String,
    pub duration_minutes: i64,
    pub reason: Option<String>,
    pub status: AppointmentStatus,
    /// The queue ticket issued at check-in.
    pub ticket_id: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// `start` (RFC 3339 UTC) on the clock of the IANA zone `tz`, with its offset then.
pub fn local_time(start: &str, tz: &str) -> String {
    match start.parse::<jiff::Timestamp>() {
        Ok(t) => t
            .to_zoned(crate::clock::zone(tz))
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        Err(_) => start.to_string(),
    }
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

/// A whole number however JSON writes it: JSON Schema's `integer` includes `30.0`, so a length
/// sent as `30.0` is 30 minutes, and `30.5` is refused as not whole.
struct WholeNumber(i64);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = WholeNumber;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<WholeNumber, E> {
                Ok(WholeNumber(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<WholeNumber, E> {
                i64::try_from(v)
                    .map(WholeNumber)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<WholeNumber, E> {
                // Within ±2^53 every whole f64 is exact; beyond it no length of minutes lies.
                if v.fract() == 0.0 && v.abs() <= 9_007_199_254_740_992.0 {
                    Ok(WholeNumber(v as i64))
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    WholeNumber::deserialize(d).map(|n| n.0)
}

fn whole_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<WholeNumber>::deserialize(d).map(|n| n.map(|n| n.0))
}

/// `POST /v1/appointments`.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAppointment {
    pub clinic_id: String,
    pub patient_id: String,
    pub clinician_id: String,
    /// RFC 3339; must be in the future.
    #[schema(format = DateTime, example = "2099-01-02T09:30:00Z")]
    pub start: String,
    /// 5–720.
    #[serde(deserialize_with = "whole")]
    #[schema(minimum = 5, maximum = 720, example = 30)]
    pub duration_minutes: i64,
    #[serde(default)]
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$",
        example = "check-up"
    )]
    pub reason: Option<String>,
}

/// `PATCH /v1/appointments/{id}` (merge patch): reschedule, or change the status.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppointmentPatch {
    #[schema(format = DateTime, example = "2099-01-02T10:00:00Z")]
    pub start: Option<String>,
    #[serde(default, deserialize_with = "whole_or_null")]
    #[schema(minimum = 5, maximum = 720, example = 45)]
    pub duration_minutes: Option<i64>,
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$",
        example = "check-up"
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
    /// A slot starting after `now` (the request's moment).
    pub fn parse(start: &str, minutes: i64, now: jiff::Timestamp) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let parsed = start.parse::<jiff::Timestamp>();
        match &parsed {
            Err(_) => errors.push(FieldError::new(
                "/start",
                "an RFC 3339 time such as 2030-01-02T09:30:00Z",
            )),
            Ok(t) if *t <= now => errors.push(FieldError::new("/start", "must be in the future")),
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
#[derive(Default, Clone)]
pub struct Filters {
    pub clinic_id: Option<String>,
    pub clinician_id: Option<String>,
    pub patient_id: Option<String>,
    /// The day asked for, as instants per time zone: an appointment matches when it starts in
    /// `[from, to)` of one range whose clinics (`None`: any) include its clinic.
    pub between: Option<Vec<DayRange>>,
    pub status: Option<AppointmentStatus>,
}

/// One clinic day as instants: Unix seconds `[from, to)` for the clinics listed (`None`: all).
#[derive(Debug, Clone)]
pub struct DayRange {
    pub clinic_ids: Option<Vec<String>>,
    pub from: i64,
    pub to: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_must_be_in_the_future_and_5_to_720_minutes() {
        assert!(Slot::parse("2999-01-01T10:00:00Z", 30, jiff::Timestamp::now()).is_ok());
        assert_eq!(
            Slot::parse("2000-01-01T10:00:00Z", 30, jiff::Timestamp::now())
                .err()
                .unwrap()[0]
                .pointer,
            "/start"
        );
        assert_eq!(
            Slot::parse("2999-01-01T10:00:00Z", 4, jiff::Timestamp::now())
                .err()
                .unwrap()[0]
                .pointer,
            "/duration_minutes"
        );
        assert_eq!(
            Slot::parse("tomorrow", 800, jiff::Timestamp::now())
                .err()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn local_times_and_days_follow_the_clinic_zone() {
        assert_eq!(
            local_time("2026-02-28T23:30:00Z", "Europe/Vienna"),
            "2026-03-01T00:30:00+01:00"
        );
        assert_eq!(
            local_time("2026-03-01T04:30:00Z", "America/New_York"),
            "2026-02-28T23:30:00-05:00"
        );
        let day = |s: &str| s.parse::<jiff::civil::Date>().unwrap();
        let (from, to) = crate::clock::day_bounds(day("2026-03-01"), "Europe/Vienna").unwrap();
        assert_eq!(to - from, 86_400);
        // The day clocks go forward in Vienna has 23 hours.
        let (from, to) = crate::clock::day_bounds(day("2026-03-29"), "Europe/Vienna").unwrap();
        assert_eq!(to - from, 23 * 3600);
    }

    #[test]
    fn a_length_is_a_whole_number_however_json_writes_it() {
        let parse = |body: &str| serde_json::from_str::<AppointmentPatch>(body);
        assert_eq!(
            parse(r#"{"duration_minutes": 30}"#)
                .unwrap()
                .duration_minutes,
            Some(30)
        );
        assert_eq!(
            parse(r#"{"duration_minutes": 30.0}"#)
                .unwrap()
                .duration_minutes,
            Some(30)
        );
        assert_eq!(
            parse(r#"{"duration_minutes": 3e1}"#)
                .unwrap()
                .duration_minutes,
            Some(30)
        );
        assert_eq!(
            parse(r#"{"duration_minutes": null}"#)
                .unwrap()
                .duration_minutes,
            None
        );
        assert_eq!(parse("{}").unwrap().duration_minutes, None);
        assert!(parse(r#"{"duration_minutes": 30.5}"#).is_err());
        assert!(parse(r#"{"duration_minutes": "30"}"#).is_err());
    }
}
