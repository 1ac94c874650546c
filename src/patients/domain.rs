//! Patient values that can only be built through `parse`, and the patient as served.
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::error::FieldError;
use crate::versioned::Versioned;

/// The form names are compared in, for search and duplicate checks: compatibility forms
/// folded to plain ones (full-width `Ａ` → `a`), accents dropped, lower case, and runs of
/// whitespace made one space: "José", "JOSE" and "ＪＯＳＥ" fold alike.
pub fn fold(s: &str) -> String {
    let folded: String = s
        .nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The form names are compared in for duplicates: folded as above, then reduced to their
/// confusable skeleton (Unicode TS #39: letters of other scripts that look like Latin ones,
/// `0` like `o`, `rn` like `m`, all written one way) and folded again, with every code point
/// that draws nothing (fillers, variation selectors, the braille blank…) dropped before and
/// after. "Pond", "PОND" with a Cyrillic О, and "Pond" followed by a Hangul filler compare
/// alike. Search keeps the plain fold: a search for "rn" must not find "m".
pub fn identity_key(s: &str) -> String {
    let folded = fold(&crate::text::without_ignorable(s));
    let skeleton: String = unicode_security::skeleton(&folded).collect();
    fold(&crate::text::without_ignorable(&skeleton))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }
    pub fn parse(s: &str) -> Option<Sex> {
        [Sex::Female, Sex::Male, Sex::Other, Sex::Unknown]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// What a client sends for a patient (create, replace, or the result of a merge patch).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientFields {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\s\u0000-\u001f\u007f-\u009f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb][^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$",
        example = "Amy"
    )]
    pub given_name: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\s\u0000-\u001f\u007f-\u009f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb][^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$",
        example = "Pond"
    )]
    pub family_name: String,
    /// `YYYY-MM-DD`, not in the future, not over 130 years ago.
    #[schema(format = Date, example = "1989-04-01")]
    pub date_of_birth: String,
    pub sex: Sex,
    /// Unique per clinic; assigned (`PREFIX-000001`) when absent on create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[A-Za-z0-9-]{1,32}$")]
    pub mrn: Option<String>,
    /// As people type it (`+44 20 7946 0000`, `0664 123 45 67` with the clinic's `country`);
    /// stored and answered as E.164 (`+442079460000`).
    #[serde(default)]
    #[schema(pattern = r"^[+0-9][0-9 ().\-]{2,39}$", example = "+43 664 1234567")]
    pub phone: Option<String>,
    #[serde(default)]
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s]+@[^@\s.][^@\s]*\.[^@\s]*[^@\s.]$",
        example = "amy.pond@example.org"
    )]
    pub email: Option<String>,
    #[serde(default)]
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$",
        example = "1 Leadworth Lane, Gloucester"
    )]
    pub address: Option<String>,
    /// 30–272.
    #[serde(default)]
    #[schema(minimum = 30, maximum = 272, example = 168)]
    pub height_cm: Option<f64>,
    /// 0.5–650.
    #[serde(default)]
    #[schema(minimum = 0.5, maximum = 650, example = 61.5)]
    pub weight_kg: Option<f64>,
}

/// `POST /v1/patients` (and each batch item).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPatient {
    pub clinic_id: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\s\u0000-\u001f\u007f-\u009f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb][^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$",
        example = "Amy"
    )]
    pub given_name: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\s\u0000-\u001f\u007f-\u009f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb][^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$",
        example = "Pond"
    )]
    pub family_name: String,
    #[schema(format = Date, example = "1989-04-01")]
    pub date_of_birth: String,
    pub sex: Sex,
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9-]{1,32}$")]
    pub mrn: Option<String>,
    /// As people type it; stored as E.164.
    #[serde(default)]
    #[schema(pattern = r"^[+0-9][0-9 ().\-]{2,39}$", example = "+43 664 1234567")]
    pub phone: Option<String>,
    #[serde(default)]
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s]+@[^@\s.][^@\s]*\.[^@\s]*[^@\s.]$",
        example = "amy.pond@example.org"
    )]
    pub email: Option<String>,
    #[serde(default)]
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$",
        example = "1 Leadworth Lane, Gloucester"
    )]
    pub address: Option<String>,
    #[serde(default)]
    #[schema(minimum = 30, maximum = 272, example = 168)]
    pub height_cm: Option<f64>,
    #[serde(default)]
    #[schema(minimum = 0.5, maximum = 650, example = 61.5)]
    pub weight_kg: Option<f64>,
    /// Store even when a patient with the same names (compared as they look: case, accents,
    /// look-alike letters and invisible fillers aside) and date of birth exists in the clinic.
    #[serde(default)]
    #[schema(example = true)]
    pub allow_duplicate: bool,
}

impl NewPatient {
    pub fn fields(&self) -> PatientFields {
        PatientFields {
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            date_of_birth: self.date_of_birth.clone(),
            sex: self.sex,
            mrn: self.mrn.clone(),
            phone: self.phone.clone(),
            email: self.email.clone(),
            address: self.address.clone(),
            height_cm: self.height_cm,
            weight_kg: self.weight_kg,
        }
    }
}

/// Fields after every rule has passed.
#[derive(Debug, Clone)]
pub struct ValidPatient {
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: String,
    pub sex: Sex,
    pub mrn: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub height_cm: Option<f64>,
    pub weight_kg: Option<f64>,
}

fn name(raw: &str, pointer: &str, errors: &mut Vec<FieldError>) -> String {
    // Length and characters are judged as sent (as the schema states them); then trimmed.
    match crate::text::line(raw, 100) {
        // Fillers alone (U+3164, the braille blank…) would be a name nobody can read or tell
        // apart from another.
        Ok(v) if crate::text::shows_nothing(&v) => {
            errors.push(FieldError::new(
                pointer,
                "must show at least one letter: it holds only invisible or filler characters",
            ));
            v
        }
        Ok(v) => v,
        Err(m) => {
            errors.push(FieldError::new(pointer, m));
            raw.trim().to_string()
        }
    }
}

/// A date of birth: a real date, not after `today` (the clinic's local date), not over 130
/// years ago.
pub fn date_of_birth(raw: &str, today: jiff::civil::Date) -> Result<String, &'static str> {
    let d: jiff::civil::Date = raw.parse().map_err(|_| "a date as YYYY-MM-DD")?;
    if raw.len() != 10 {
        return Err("a date as YYYY-MM-DD");
    }
    if d > today {
        return Err("must not be in the future");
    }
    let oldest = today.saturating_sub(jiff::Span::new().years(130));
    if d < oldest {
        return Err("must not be more than 130 years ago");
    }
    Ok(d.to_string())
}

/// E.164: `+`, then 8 to 15 digits, the first not 0.
/// Whether a query value has the shape of a typed phone number (what the API documents:
/// `^[+0-9][0-9 ().-]{2,39}$`), before any number-plan rules.
pub fn phone_shaped(raw: &str) -> bool {
    let mut chars = raw.chars();
    (3..=40).contains(&raw.len())
        && chars.next().is_some_and(|c| c == '+' || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_digit() || " ().-".contains(c))
}

/// A phone number in a query string as it was typed: a `+` sent unencoded arrives decoded as a
/// space (`?phone=+43 660…`), and no number starts with a space, so a leading space before a
/// digit is read back as the `+` it was.
pub fn phone_as_typed(raw: &str) -> String {
    match raw.strip_prefix(' ') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => format!("+{rest}"),
        _ => raw.to_string(),
    }
}

/// What makes a value no phone number in any country, whatever the clinic's: nothing typed, over
/// 40 characters, a letter, or no digit at all. Judged before the numbering plans, and without
/// the clinic, so a body with other errors lists it too.
fn phone_anywhere(s: &str) -> Result<(), &'static str> {
    if s.is_empty()
        || s.len() > 40
        || s.chars().any(char::is_alphabetic)
        || !s.contains(|c: char| c.is_ascii_digit())
    {
        return Err("a phone number such as +43 664 1234567: digits, with spaces, dashes, dots or parentheses");
    }
    Ok(())
}

/// Whether a typed number can be judged only in the clinic's country: a national number (no
/// `+` or `00`) that could be a number somewhere.
fn needs_country(raw: &str) -> bool {
    let s = raw.trim();
    phone_anywhere(s).is_ok() && !s.starts_with('+') && !s.starts_with("00")
}

/// A phone number as people type it — spaces, dashes, dots, parentheses, `00` for `+`, or a
/// national number read in `region` (the clinic's country) — as E.164 (`+436641234567`), if it
/// can be a number of that country's plan (libphonenumber's rules, via `phonenumber`).
pub fn phone(raw: &str, region: Option<&str>) -> Result<String, &'static str> {
    let s = raw.trim();
    phone_anywhere(s)?;
    let international = s.starts_with('+') || s.starts_with("00");
    let region = region.and_then(|r| r.parse::<phonenumber::country::Id>().ok());
    if !international && region.is_none() {
        return Err("start with + and the country code (the clinic has no country set)");
    }
    let typed = match s.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => s.to_string(),
    };
    match phonenumber::parse(region, &typed) {
        Ok(n) if phonenumber::is_valid(&n) => {
            Ok(n.format().mode(phonenumber::Mode::E164).to_string())
        }
        _ => Err("not a phone number: check the digits and the country code"),
    }
}

fn email(raw: &str) -> Result<String, &'static str> {
    let s = raw.trim();
    let ok = s.len() <= 254
        && !s.contains(char::is_whitespace)
        && s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(s.to_lowercase())
    } else {
        Err("an email address such as name@example.org")
    }
}

fn mrn(raw: &str) -> Result<String, &'static str> {
    let s = raw.trim();
    if (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(s.to_string())
    } else {
        Err("1 to 32 characters of letters, digits and '-'")
    }
}

fn in_range(
    v: Option<f64>,
    lo: f64,
    hi: f64,
    pointer: &str,
    errors: &mut Vec<FieldError>,
) -> Option<f64> {
    if let Some(x) = v {
        if !(lo..=hi).contains(&x) || !x.is_finite() {
            errors.push(FieldError::new(pointer, format!("between {lo} and {hi}")));
        }
    }
    v
}

impl ValidPatient {
    /// Checks every field and reports every broken rule at once; phone numbers must be
    /// international (`+…`), and "today" is the UTC date (no clinic, no zone).
    pub fn parse(f: &PatientFields) -> Result<Self, Vec<FieldError>> {
        Self::parse_in(
            f,
            None,
            crate::clock::local_date(jiff::Timestamp::now(), "UTC"),
        )
    }

    /// `parse`, reading a national phone number as one of `region` (the clinic's country), and
    /// judging the date of birth against `today`, the clinic's local date.
    pub fn parse_in(
        f: &PatientFields,
        region: Option<&str>,
        today: jiff::civil::Date,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let given_name = name(&f.given_name, "/given_name", &mut errors);
        let family_name = name(&f.family_name, "/family_name", &mut errors);
        let mut check = |r: Result<String, &'static str>, pointer: &str| match r {
            Ok(v) => Some(v),
            Err(m) => {
                errors.push(FieldError::new(pointer, m));
                None
            }
        };
        let dob = check(date_of_birth(&f.date_of_birth, today), "/date_of_birth");
        let mrn_v = f.mrn.as_deref().and_then(|m| check(mrn(m), "/mrn"));
        let phone_v = f
            .phone
            .as_deref()
            .and_then(|p| check(phone(p, region), "/phone"));
        let email_v = f.email.as_deref().and_then(|e| check(email(e), "/email"));
        let address = f.address.as_deref().map(|a| {
            crate::text::optional(a, 500, true).unwrap_or_else(|m| {
                errors.push(FieldError::new("/address", m));
                a.to_string()
            })
        });
        let height_cm = in_range(f.height_cm, 30.0, 272.0, "/height_cm", &mut errors);
        let weight_kg = in_range(f.weight_kg, 0.5, 650.0, "/weight_kg", &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ValidPatient {
            given_name,
            family_name,
            date_of_birth: dob.unwrap_or_default(),
            sex: f.sex,
            mrn: mrn_v,
            phone: phone_v,
            email: email_v,
            address,
            height_cm,
            weight_kg,
        })
    }
}

/// Body mass index from height and weight, one decimal; `None` unless both are known.
pub fn bmi(height_cm: Option<f64>, weight_kg: Option<f64>) -> Option<f64> {
    let (h, w) = (height_cm? / 100.0, weight_kg?);
    Some((w / (h * h) * 10.0).round() / 10.0)
}

/// A patient as served. `bmi` is computed on every read, so it is never out of date.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Patient {
    pub id: String,
    pub clinic_id: String,
    pub mrn: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\s\u0000-\u001f\u007f-\u009f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb][^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$"
    )]
    pub given_name: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\s\u0000-\u001f\u007f-\u009f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb][^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$"
    )]
    pub family_name: String,
    pub date_of_birth: String,
    pub sex: Sex,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub height_cm: Option<f64>,
    pub weight_kg: Option<f64>,
    pub bmi: Option<f64>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl Patient {
    /// The client-writable fields, as a merge patch applies to them.
    pub fn fields(&self) -> PatientFields {
        PatientFields {
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            date_of_birth: self.date_of_birth.clone(),
            sex: self.sex,
            mrn: Some(self.mrn.clone()),
            phone: self.phone.clone(),
            email: self.email.clone(),
            address: self.address.clone(),
            height_cm: self.height_cm,
            weight_kg: self.weight_kg,
        }
    }
}

impl Versioned for Patient {
    fn version(&self) -> i64 {
        self.version
    }
    fn updated_at(&self) -> &str {
        &self.updated_at
    }
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// A stored patient with the states that decide how a request for it is answered.
pub struct StoredPatient {
    pub patient: Patient,
    pub deleted: bool,
    pub merged_into: Option<String>,
    pub sealed: bool,
}

/// Search filters (all optional, combined with AND) and the order of the list.
#[derive(Debug, Default, Clone)]
pub struct SearchFilters {
    /// Words as typed; see [`search_words`] for how they match.
    pub q: Option<String>,
    pub date_of_birth: Option<String>,
    pub mrn: Option<String>,
    pub phone: Option<String>,
    /// Lower case, as stored.
    pub email: Option<String>,
    pub clinic_id: Option<String>,
    /// Prefix of the family name alone (FHIR `family`), compared as a search key.
    pub family: Option<String>,
    /// Prefix of the given name alone (FHIR `given`), compared as a search key.
    pub given: Option<String>,
    pub sort: Sort,
}

/// The order of a patient list; each is a keyset order that ends in the id, so paging is exact.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Family name, then given name (search keys), then id.
    #[default]
    Name,
    /// Registration time, then id.
    Created,
    /// Date of birth, then id.
    BirthDate,
}

impl Sort {
    pub const ALL: [Sort; 3] = [Sort::Name, Sort::Created, Sort::BirthDate];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::Created => "created",
            Sort::BirthDate => "birth_date",
        }
    }

    pub fn parse(s: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The key a name is searched by: folded (case, accents, compatibility forms), then only
/// letters and digits kept, so "O'Brien", "o brien" and "OBRIEN" all become "obrien".
pub fn search_key(name: &str) -> String {
    fold(name).chars().filter(|c| c.is_alphanumeric()).collect()
}

/// The list order by name and a name cursor's position: family key, given key, id (unique;
/// U+001F sorts below every letter and digit, so "young" comes before "youngs").
pub fn sort_key_of(family_key: &str, given_key: &str, id: &str) -> String {
    format!("{family_key}\u{1f}{given_key}\u{1f}{id}")
}

/// The words of a name query (split on spaces and commas), each as a search key. A patient
/// matches when every word is a prefix of the given or the family name's key, in any order
/// ("john smith", "smith, john", "jo sm"), or when the words run together are a prefix of one
/// of them ("van der berg" finds "van der Berg"; "obrien" and "o'brien" find "O'Brien").
pub fn search_words(q: &str) -> Vec<String> {
    q.split(|c: char| c.is_whitespace() || c == ',')
        .map(search_key)
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether a patient with these names is found by the name query `q`, by the rule of
/// [`search_words`] (what the stores' search SQL checks).
pub fn name_matches(q: &str, given_name: &str, family_name: &str) -> bool {
    let (given, family) = (search_key(given_name), search_key(family_name));
    let either = |w: &str| given.starts_with(w) || family.starts_with(w);
    let words = search_words(q);
    words.iter().all(|w| either(w)) || (words.len() > 1 && either(&words.concat()))
}

impl SearchFilters {
    /// A name prefix as a search key (`None` when nothing searchable is left).
    pub fn key_prefix(raw: Option<&str>) -> Option<String> {
        raw.map(search_key).filter(|k| !k.is_empty())
    }
}

/// The patient rules that need no clinic, for a body that also has shape errors: a national
/// phone number (read in the clinic's country) is judged only once the body's shape is right;
/// a value that is no number in any country (letters, no digit) is reported with the rest.
pub(crate) fn rules_without_clinic(f: &PatientFields) -> Vec<FieldError> {
    let national = f.phone.as_deref().is_some_and(needs_country);
    // Without the clinic, its local date is unknown: the date of birth is judged against the
    // latest date anywhere (UTC+14), so no rule is reported that the clinic's day would not break.
    let latest = crate::clock::local_date(jiff::Timestamp::now(), "Pacific/Kiritimati");
    ValidPatient::parse_in(f, None, latest)
        .err()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !(national && e.pointer == "/phone"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> PatientFields {
        PatientFields {
            given_name: "José".into(),
            family_name: "Núñez".into(),
            date_of_birth: "1980-02-29".into(),
            sex: Sex::Male,
            mrn: None,
            phone: Some("+436641234567".into()),
            email: Some("Jose@Example.org".into()),
            address: None,
            height_cm: Some(180.0),
            weight_kg: Some(81.0),
        }
    }

    #[test]
    fn valid_fields_parse_and_bad_ones_are_all_reported() {
        let v = ValidPatient::parse(&fields()).unwrap();
        assert_eq!(v.email.as_deref(), Some("jose@example.org"));
        let mut bad = fields();
        bad.given_name = " ".into();
        bad.date_of_birth = "2999-01-01".into();
        bad.phone = Some("0664 123".into());
        bad.height_cm = Some(500.0);
        let errs = ValidPatient::parse(&bad).unwrap_err();
        let pointers: Vec<&str> = errs.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/given_name", "/date_of_birth", "/phone", "/height_cm"]
        );
    }

    #[test]
    fn dates_of_birth_are_bounded() {
        assert!(date_of_birth("1900-13-01", jiff::civil::date(2026, 1, 1)).is_err());
        assert!(date_of_birth("1850-01-01", jiff::civil::date(2026, 1, 1)).is_err());
        assert!(date_of_birth("2001-02-29", jiff::civil::date(2026, 1, 1)).is_err());
        assert!(date_of_birth("2000-02-29", jiff::civil::date(2026, 1, 1)).is_ok());
    }

    #[test]
    fn search_keys_ignore_punctuation_case_and_accents() {
        assert_eq!(search_key("O'Brien"), "obrien");
        assert_eq!(search_key("van der Berg"), "vanderberg");
        assert_eq!(search_key("Smith-Jones"), "smithjones");
        assert_eq!(search_key("Núñez"), "nunez");
        assert_eq!(search_words("smith,  John"), ["smith", "john"]);
        assert_eq!(search_words("o'brien ,"), ["obrien"]);
        assert!(search_words(" ,' ").is_empty());
    }

    #[test]
    fn folding_drops_case_and_accents() {
        assert_eq!(fold("José Núñez"), "jose nunez");
        assert_eq!(fold("ÅSA"), "asa");
    }

    #[test]
    fn look_alike_names_share_one_identity_key_and_different_names_do_not() {
        let pond = identity_key("Pond");
        for alike in [
            "Pond\u{3164}",
            "Pond\u{115F}",
            "Pond\u{2800}",
            "Po\u{FE0F}nd",
            "P\u{43E}nd",
            "P\u{41E}ND",
            "\u{FF30}ond",
            "Pónd",
            "P0nd",
            " Pond ",
        ] {
            assert_eq!(identity_key(alike), pond, "{alike:?}");
        }
        for other in ["Pound", "Bond", "Pon", "Ponds"] {
            assert_ne!(identity_key(other), pond, "{other:?}");
        }
        // Stricter than search on purpose: "rn" and "m" look alike.
        assert_eq!(identity_key("Arny"), identity_key("Amy"));
        assert_ne!(search_key("Arny"), search_key("Amy"));
        assert_eq!(identity_key("李小龍"), identity_key("李小龍\u{FE00}"));
        assert_ne!(identity_key("李小龍"), identity_key("李小"));
    }

    #[test]
    fn names_that_show_nothing_are_refused() {
        for blank in ["\u{3164}", "\u{2800}\u{115F}", "\u{FE0F} \u{FFA0}"] {
            let mut f = fields();
            f.family_name = blank.into();
            let errs = ValidPatient::parse(&f).unwrap_err();
            assert_eq!(errs[0].pointer, "/family_name", "{blank:?}");
        }
    }

    #[test]
    fn a_phone_with_letters_or_no_digit_is_no_number_in_any_country() {
        for bad in ["not a phone", "+43 664 CALL-ME", "()", "+", ""] {
            assert!(phone(bad, Some("AT")).is_err(), "{bad:?}");
            assert!(!needs_country(bad), "{bad:?}");
        }
        assert!(needs_country("0664 123 45 67"));
        assert!(!needs_country("+43 664 1234567"));
        assert_eq!(
            phone("0664 123 45 67", Some("AT")).unwrap(),
            "+436641234567"
        );
    }

    #[test]
    fn bmi_needs_both_measures() {
        assert_eq!(bmi(Some(180.0), Some(81.0)), Some(25.0));
        assert_eq!(bmi(None, Some(81.0)), None);
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut t = serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(
            &mut t,
            &serde_json::json!({"a": null, "b": {"c": 9}, "e": "x"}),
        );
        assert_eq!(t, serde_json::json!({"b": {"c": 9, "d": 3}, "e": "x"}));
    }
}
