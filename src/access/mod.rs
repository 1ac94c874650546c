//! The access log: a durable, append-only record of who read or changed which record, when, from
//! which IP, under which request id. Writes go into the same transaction as the change they
//! describe; reads are recorded before the response is sent. Triggers refuse UPDATE and DELETE.
pub mod records;
pub mod routes;

use crate::auth::Caller;
use crate::clock::now_rfc3339;
use crate::error::ApiError;
use crate::store::{LogRow, Read, Store, Write};

pub use crate::store::LogEntry as Entry;

/// A page of access-log entries (the per-patient and the whole-log views).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AccessLogPage {
    pub items: Vec<Entry>,
    pub next_cursor: Option<String>,
}

/// What was done to the record.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    Read,
    Search,
    Create,
    Update,
    Delete,
    Merge,
    Seal,
    Unseal,
    /// A read refused because the record is sealed (451): the attempt is itself on the record.
    Denied,
    /// Data about the patient sent to the configured notifier (a third party).
    Notify,
    /// An export file written (one entry per export, naming the job; the job names the kind
    /// and the rows).
    Export,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Search => "search",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Merge => "merge",
            Action::Seal => "seal",
            Action::Unseal => "unseal",
            Action::Denied => "denied",
            Action::Notify => "notify",
            Action::Export => "export",
        }
    }
}

/// Appends an entry inside the caller's unit of work.
pub fn record(
    conn: &mut dyn Write,
    caller: &Caller,
    action: Action,
    resource_type: &str,
    resource_id: &str,
) -> Result<(), ApiError> {
    record_about(conn, caller, action, resource_type, resource_id, None)
}

/// Appends an entry for a resource that carries a patient's data (`patient`), so the patient's
/// own log lists it too.
pub fn record_about(
    conn: &mut dyn Write,
    caller: &Caller,
    action: Action,
    resource_type: &str,
    resource_id: &str,
    patient: Option<&str>,
) -> Result<(), ApiError> {
    let row = log_row(caller, action, resource_type, resource_id, patient);
    records::append_access(conn, &[&row])?;
    Ok(())
}

/// The row for one entry: careq's request id and the client's travel in the caller.
fn log_row(
    caller: &Caller,
    action: Action,
    resource_type: &str,
    resource_id: &str,
    patient: Option<&str>,
) -> LogRow {
    LogRow {
        at: now_rfc3339(),
        actor_id: caller.user_id.clone(),
        action: action.as_str(),
        resource_type: resource_type.to_string(),
        resource_id: resource_id.to_string(),
        ip: caller.ip.to_string(),
        request_id: caller.request_id.clone(),
        patient_id: patient.map(str::to_string),
        client_request_id: caller.client_request_id.clone(),
        patients: Vec::new(),
    }
}

/// What a request read: a record, or a patient record itself (a read, a search hit, a denial).
pub struct Touch<'a> {
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub patient: Option<&'a str>,
}

impl<'a> Touch<'a> {
    /// An entry about a patient record itself.
    pub fn patient(id: &'a str) -> Self {
        Touch {
            resource_type: "patient",
            resource_id: id,
            patient: Some(id),
        }
    }

    /// The patient, when this touches a patient record itself ([`Touch::patient`]).
    fn patient_itself(&self) -> Option<&'a str> {
        (self.resource_type == "patient" && self.patient == Some(self.resource_id))
            .then_some(self.resource_id)
    }
}

/// Writes entries in their own unit of work, committed (durable) before the caller answers:
/// for reads, which change nothing else. One entry per touch, except that the touches of
/// several patient records themselves (a search, a list, a replayed batch) are one request
/// entry naming them all (`careq_store::access::SEVERAL`), which each patient's own log still
/// shows as an entry about that patient; every other touch (a ticket or an appointment naming
/// a patient, a merged record read for its survivor) keeps an entry of its own.
pub async fn record_now(
    db: &Store,
    caller: &Caller,
    action: Action,
    touched: &[Touch<'_>],
) -> Result<(), ApiError> {
    if touched.is_empty() {
        return Ok(());
    }
    let mut patients: Vec<&str> = touched.iter().filter_map(Touch::patient_itself).collect();
    patients.sort_unstable();
    patients.dedup();
    let mut rows = Vec::with_capacity(touched.len());
    let mut request_written = false;
    for t in touched {
        if t.patient_itself().is_some() && patients.len() > 1 {
            // The request's one entry, where its first patient was.
            if !request_written {
                let mut row = log_row(caller, action, "patient", records::SEVERAL, None);
                row.patients = patients.iter().map(|p| p.to_string()).collect();
                rows.push(row);
                request_written = true;
            }
            continue;
        }
        rows.push(log_row(
            caller,
            action,
            t.resource_type,
            t.resource_id,
            t.patient,
        ));
    }
    db.append_log(rows).await
}

/// A page of entries for one record, oldest first, after sequence number `after`. For a patient
/// this includes entries about resources that carry the patient's data.
pub fn list(
    conn: &mut dyn Read,
    resource_type: &str,
    resource_id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<Entry>, ApiError> {
    Ok(records::access_entries(
        conn,
        resource_type,
        resource_id,
        after,
        limit,
    )?)
}

/// An instant as the log stores it (RFC 3339 UTC, milliseconds), from a query or CLI value: an
/// RFC 3339 instant, or a `YYYY-MM-DD` UTC day — its start, or with `end_of_day` the start of the
/// next day (so `to=2026-11-28` includes all of that day).
pub fn instant(name: &str, value: &str, end_of_day: bool) -> Result<String, ApiError> {
    const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";
    if value.len() == 10 {
        let day = crate::http::extract::query_date(name, value)?;
        let day = if end_of_day {
            day.tomorrow()
                .map_err(|_| ApiError::bad_param(name, "a day before 9999-12-31"))?
        } else {
            day
        };
        return Ok(format!("{day}T00:00:00.000Z"));
    }
    value
        .parse::<jiff::Timestamp>()
        .map(|t| t.strftime(FORMAT).to_string())
        .map_err(|_| {
            ApiError::bad_param(
                name,
                "an RFC 3339 instant (2026-11-28T09:30:00Z) or a YYYY-MM-DD day",
            )
        })
}
