//! FHIR R4 at `/fhir/r4`: a thin mapping over the patients, appointments and users services
//! (never their routes), with the same extractors, rules, access log and `ApiError`s as the
//! native API; `outcome.rs` renders every answer as FHIR.
pub mod appointment;
pub mod bundle;
pub mod capability;
pub mod outcome;
pub mod patient;
pub mod respond;
pub mod routes;
pub mod schedule;

use serde_json::{json, Value};

use crate::access::{self, Action, Touch};
use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::patients::domain::{name_matches, search_key, Patient, SearchFilters};
use crate::patients::records;
use crate::state::AppState;
use crate::store::Read;
use bundle::Query;

pub use routes::router;

pub use respond::FHIR_JSON;
/// The identifier system of careq's medical record numbers.
pub const MRN_SYSTEM: &str = "urn:careq:mrn";
/// The most matches a search counts for `Bundle.total`; beyond it `total` is left out.
pub const TOTAL_CAP: u32 = 10_000;

pub const PATIENT_PARAMS: &[&str] = &[
    "name",
    "family",
    "given",
    "birthdate",
    "identifier",
    "telecom",
    "phone",
    "_id",
];
pub const APPOINTMENT_PARAMS: &[&str] = &["patient", "practitioner", "date", "status"];

/// A careq id as a FHIR id: FHIR ids allow no `_`, so `pat_3f…` is served as `pat-3f…`.
pub fn fhir_id(native: &str) -> String {
    native.replacen('_', "-", 1)
}

/// The careq id a FHIR id (or a careq id as it is) names.
pub fn native_id(id: &str) -> String {
    if id.contains('_') {
        id.to_string()
    } else {
        id.replacen('-', "_", 1)
    }
}

/// `meta` of a versioned resource: careq's version is FHIR's `versionId`.
pub fn meta(version: i64, updated_at: &str) -> Value {
    json!({"versionId": version.to_string(), "lastUpdated": updated_at})
}

/// The absolute base of this server's FHIR API: the configured public origin (never the
/// request's `Host`, which a client chooses).
pub fn base_url(st: &AppState) -> String {
    format!("{}/fhir/r4", st.public_url)
}

/// A search's filters: `None` when it can match nobody (an identifier of another system, a
/// phone that is no number). `_id` is returned beside them.
pub async fn patient_filters(
    st: &AppState,
    caller: &Caller,
    q: &Query,
) -> Result<Option<(SearchFilters, Option<String>)>, ApiError> {
    let mut f = SearchFilters {
        q: q.get("name").map(str::to_string),
        family: q.get("family").map(str::to_string),
        given: q.get("given").map(str::to_string),
        ..SearchFilters::default()
    };
    if let Some(d) = q.get("birthdate") {
        let d = d.strip_prefix("eq").unwrap_or(d);
        crate::http::extract::query_date("birthdate", d)?;
        f.date_of_birth = Some(d.to_string());
    }
    if let Some(i) = q.get("identifier") {
        let value = match i.split_once('|') {
            Some((system, v)) if system.is_empty() || system == MRN_SYSTEM => v,
            Some(_) => return Ok(None),
            None => i,
        };
        f.mrn = Some(value.to_string());
    }
    let phone = match (q.get("phone"), q.get("telecom")) {
        (Some(_), Some(_)) => return Err(ApiError::bad_param("telecom", "give phone or telecom")),
        (Some(p), None) => Some(p),
        (None, Some(t)) => match t.split_once('|') {
            Some(("phone", v)) => Some(v),
            Some(_) => {
                return Err(ApiError::bad_param(
                    "telecom",
                    "careq searches phone numbers only (phone|NUMBER)",
                ))
            }
            None => Some(t),
        },
        (None, None) => None,
    };
    if let Some(p) = phone {
        match crate::patients::phone_query(&st.db, caller, p, None).await? {
            Some(e164) => f.phone = Some(e164),
            None => return Ok(None),
        }
    }
    Ok(Some((f, q.get("_id").map(native_id))))
}

/// Whether a patient meets the filters (used when `_id` names the one candidate).
fn meets(p: &Patient, f: &SearchFilters) -> bool {
    let prefix = |field: &str, q: &Option<String>| {
        SearchFilters::key_prefix(q.as_deref()).is_none_or(|q| search_key(field).starts_with(&q))
    };
    let q_ok =
        f.q.as_deref()
            .is_none_or(|q| name_matches(q, &p.given_name, &p.family_name));
    q_ok && prefix(&p.family_name, &f.family)
        && prefix(&p.given_name, &f.given)
        && f.date_of_birth
            .as_ref()
            .is_none_or(|d| *d == p.date_of_birth)
        && f.mrn.as_ref().is_none_or(|m| *m == p.mrn)
        && f.phone
            .as_ref()
            .is_none_or(|ph| Some(ph) == p.phone.as_ref())
}

/// The one patient `_id` names, if the caller may find it in a search and it meets the rest.
pub fn by_id(
    conn: &mut dyn Read,
    caller: &Caller,
    id: &str,
    f: &SearchFilters,
) -> Result<Option<Patient>, ApiError> {
    Ok(records::find_patient(conn, id)?.and_then(|s| {
        let visible = caller.sees_clinic(&s.patient.clinic_id)
            && !s.deleted
            && s.merged_into.is_none()
            && (!s.sealed || caller.role == Role::Admin);
        (visible && meets(&s.patient, f)).then_some(s.patient)
    }))
}

/// One page of a patient search: the matches, the next cursor, and the total when counted.
pub struct PatientPage {
    pub items: Vec<Patient>,
    pub next_cursor: Option<String>,
    pub total: Option<i64>,
}

pub async fn search_patients(
    st: &AppState,
    caller: &Caller,
    q: &Query,
) -> Result<PatientPage, ApiError> {
    let limit = q.count()?;
    let after = match q.get("_cursor") {
        Some(c) => st
            .cursor_seal
            .open(crate::http::cursor_seal::Scope::FhirPatients, c)?,
        None => String::new(),
    };
    let empty = PatientPage {
        items: Vec::new(),
        next_cursor: None,
        total: Some(0),
    };
    let Some((f, id)) = patient_filters(st, caller, q).await? else {
        return Ok(empty);
    };
    let member_of = (caller.role != Role::Admin).then(|| caller.clinic_ids.clone());
    let page = if let Some(id) = id {
        let who = caller.clone();
        let items: Vec<Patient> = st
            .db
            .lookup(move |conn| by_id(conn, &who, &id, &f))
            .await?
            .into_iter()
            .collect();
        let total = Some(items.len() as i64);
        PatientPage {
            items,
            next_cursor: None,
            total,
        }
    } else {
        // The page and its count in one read.
        let (rows, total) = st
            .db
            .read(move |conn| {
                let member_of = member_of.as_deref();
                let rows = records::search_patients(conn, member_of, &f, &after, limit)?;
                let total = records::count_patients(conn, member_of, &f, TOTAL_CAP)?;
                Ok((rows, total))
            })
            .await?;
        let page = crate::http::paging::Page::from_rows_by(rows, limit, |(key, _)| {
            st.cursor_seal
                .seal(crate::http::cursor_seal::Scope::FhirPatients, key)
        });
        PatientPage {
            items: page.items.into_iter().map(|(_, p)| p).collect(),
            next_cursor: page.next_cursor,
            total: (total < TOTAL_CAP as i64).then_some(total),
        }
    };
    let touched: Vec<Touch> = page.items.iter().map(|p| Touch::patient(&p.id)).collect();
    access::record_now(&st.db, caller, Action::Search, &touched).await?;
    Ok(page)
}

/// Appointment search filters; `None` when the status asked for is one careq never holds.
/// `date` names days on each clinic's own clock, as the native `day=` does.
pub async fn appointment_filters(
    st: &AppState,
    caller: &Caller,
    q: &Query,
) -> Result<Option<crate::appointments::domain::Filters>, ApiError> {
    let mut f = crate::appointments::domain::Filters {
        patient_id: q
            .get("patient")
            .map(|p| native_id(p.strip_prefix("Patient/").unwrap_or(p))),
        clinician_id: q
            .get("practitioner")
            .map(|p| native_id(p.strip_prefix("Practitioner/").unwrap_or(p))),
        ..Default::default()
    };
    // The first and last day asked for (`eq` is both).
    let (mut first, mut last): (Option<jiff::civil::Date>, Option<jiff::civil::Date>) =
        (None, None);
    for d in q.all("date") {
        let (prefix, day) = if d.len() > 2 && d.as_bytes()[0].is_ascii_alphabetic() {
            d.split_at(2)
        } else {
            ("eq", d)
        };
        let day = crate::http::extract::query_date("date", day)?;
        let (ge, le) = match prefix {
            "eq" => (true, true),
            "ge" => (true, false),
            "le" => (false, true),
            _ => {
                return Err(ApiError::bad_param(
                    "date",
                    "prefixes eq, ge and le on a date YYYY-MM-DD",
                ))
            }
        };
        if ge {
            first = Some(first.map_or(day, |f| f.max(day)));
        }
        if le {
            last = Some(last.map_or(day, |l| l.min(day)));
        }
    }
    if first.is_some() || last.is_some() {
        // One range per time zone of the clinics searched, from the first day's start to the
        // last day's end on that zone's clock (both lists come in the same zone order).
        let starts = match first {
            Some(day) => Some(crate::appointments::day_ranges(&st.db, caller, None, day).await?),
            None => None,
        };
        let ends = match last {
            Some(day) => Some(crate::appointments::day_ranges(&st.db, caller, None, day).await?),
            None => None,
        };
        let zones = starts
            .as_ref()
            .or(ends.as_ref())
            .cloned()
            .unwrap_or_default();
        f.between = Some(
            zones
                .into_iter()
                .enumerate()
                .map(|(i, mut range)| {
                    range.from = starts.as_ref().map_or(i64::MIN, |s| s[i].from);
                    range.to = ends.as_ref().map_or(i64::MAX, |e| e[i].to);
                    range
                })
                .collect(),
        );
    }
    if let Some(s) = q.get("status") {
        match appointment::status_of(s)? {
            Some(status) => f.status = Some(status),
            None => return Ok(None),
        }
    }
    Ok(Some(f))
}
