//! Clinics as typed values: name, IANA time zone, ticket prefix, each built only through `parse`.
use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::versioned::Versioned;

#[derive(Debug, Clone)]
pub struct ClinicName(String);

impl ClinicName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        crate::text::line(raw, 120)
            .map(Self)
            .map_err(|m| FieldError::new("/name", m))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An IANA time zone name the system's zone database knows (`Europe/Vienna`), stored as the
/// database spells it (the lookup ignores ASCII case: `europe/vienna` is `Europe/Vienna`).
#[derive(Debug, Clone)]
pub struct TimeZoneName(String);

impl TimeZoneName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        let found = (!s.is_empty() && s.len() <= 64)
            .then(|| jiff::tz::TimeZone::get(s).ok())
            .flatten();
        match found {
            Some(tz) => Ok(Self(tz.iana_name().unwrap_or(s).to_string())),
            None => Err(FieldError::new(
                "/timezone",
                "not an IANA time zone name (e.g. Europe/Vienna)",
            )),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 1–3 ASCII letters, stored upper-case (`A`, `ER`).
#[derive(Debug, Clone)]
pub struct TicketPrefix(String);

impl TicketPrefix {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(Self(s.to_ascii_uppercase()))
        } else {
            Err(FieldError::new("/ticket_prefix", "1 to 3 letters A-Z"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Clinic {
    pub id: String,
    pub name: String,
    pub timezone: String,
    pub ticket_prefix: String,
    /// ISO 3166 alpha-2 country: national phone numbers typed for this clinic's patients are
    /// read as numbers of this country. `null`: numbers must start with `+` and a country code.
    pub country: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl Versioned for Clinic {
    fn version(&self) -> i64 {
        self.version
    }
    fn updated_at(&self) -> &str {
        &self.updated_at
    }
}

/// `POST /v1/clinics`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClinic {
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\s\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb][^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$",
        example = "Riverside Clinic"
    )]
    pub name: String,
    /// IANA time zone, e.g. `Europe/Vienna`.
    #[schema(
        pattern = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$",
        example = "Europe/Vienna"
    )]
    pub timezone: String,
    /// 1–3 letters for ticket numbers (`A` → `A-017`).
    #[schema(pattern = r"^[A-Za-z]{1,3}$", example = "A")]
    pub ticket_prefix: String,
    /// ISO 3166 alpha-2 (`AT`, `GB`): the country national phone numbers are read in.
    #[schema(pattern = r"^[A-Za-z]{2}$", example = "AT")]
    #[serde(default)]
    pub country: Option<String>,
}

/// `PATCH /v1/clinics/{id}` (merge patch).
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClinicPatch {
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\s\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb][^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$",
        example = "Riverside Walk-in Clinic"
    )]
    pub name: Option<String>,
    #[schema(
        pattern = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$",
        example = "Europe/London"
    )]
    pub timezone: Option<String>,
    #[schema(pattern = r"^[A-Za-z]{1,3}$", example = "ER")]
    pub ticket_prefix: Option<String>,
    /// ISO 3166 alpha-2; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable, pattern = r"^[A-Za-z]{2}$", example = "GB")]
    pub country: Option<Option<String>>,
}

/// A merge-patch member that may be `null`: absent → `None`, `null` → `Some(None)`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A country whose phone numbering careq knows (ISO 3166 alpha-2, stored upper case).
#[derive(Clone)]
pub struct Country(String);

impl Country {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() == 2 && code.parse::<phonenumber::country::Id>().is_ok() {
            Ok(Self(code))
        } else {
            Err(FieldError::new(
                "/country",
                "an ISO 3166 country code such as AT or GB",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A clinic's fields after every rule has passed.
#[derive(Clone)]
pub struct ValidClinic {
    pub name: ClinicName,
    pub timezone: TimeZoneName,
    pub ticket_prefix: TicketPrefix,
    pub country: Option<Country>,
}

impl ValidClinic {
    /// Parses all fields, reporting every broken rule at once.
    pub fn parse(
        name: &str,
        timezone: &str,
        prefix: &str,
        country: Option<&str>,
    ) -> Result<Self, Vec<FieldError>> {
        let (n, t, p) = (
            ClinicName::parse(name),
            TimeZoneName::parse(timezone),
            TicketPrefix::parse(prefix),
        );
        let c = country.map(Country::parse).transpose();
        match (n, t, p, c) {
            (Ok(name), Ok(timezone), Ok(ticket_prefix), Ok(country)) => Ok(Self {
                name,
                timezone,
                ticket_prefix,
                country,
            }),
            (n, t, p, c) => Err([n.err(), t.err(), p.err(), c.err()]
                .into_iter()
                .flatten()
                .collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clinic_fields_are_checked() {
        assert!(TimeZoneName::parse("Europe/Vienna").is_ok());
        assert!(TimeZoneName::parse("Mars/Olympus").is_err());
        assert_eq!(
            TimeZoneName::parse(" europe/VIENNA ").unwrap().as_str(),
            "Europe/Vienna"
        );
        assert_eq!(TicketPrefix::parse("er").unwrap().as_str(), "ER");
        assert!(TicketPrefix::parse("ABCD").is_err());
        assert!(TicketPrefix::parse("A1").is_err());
        assert!(ClinicName::parse("  ").is_err());
        let errs = ValidClinic::parse("", "Nowhere/City", "12345", Some("XX"))
            .err()
            .unwrap();
        assert_eq!(errs.len(), 4);
        assert_eq!(Country::parse("at").unwrap().as_str(), "AT");
    }
}
