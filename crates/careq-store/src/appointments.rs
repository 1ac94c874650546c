//! Appointments, each query written once for both engines (issue 25). A slot is kept twice:
//! its start as RFC 3339 text for output, and start and end as Unix seconds for overlap checks
//! and the list order; the caller computes both (the store parses no times and reads no
//! clock). A deleted appointment keeps its row, with `deleted_at` set.
use crate::{Dialect, Read, ReadExt, Row, StoreError, Value, Write};

/// Where an appointment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppointmentStatus {
    Booked,
    CheckedIn,
    Completed,
    Cancelled,
    NoShow,
}

impl AppointmentStatus {
    pub const ALL: [AppointmentStatus; 5] = [
        AppointmentStatus::Booked,
        AppointmentStatus::CheckedIn,
        AppointmentStatus::Completed,
        AppointmentStatus::Cancelled,
        AppointmentStatus::NoShow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AppointmentStatus::Booked => "booked",
            AppointmentStatus::CheckedIn => "checked_in",
            AppointmentStatus::Completed => "completed",
            AppointmentStatus::Cancelled => "cancelled",
            AppointmentStatus::NoShow => "no_show",
        }
    }

    pub fn parse(s: &str) -> Option<AppointmentStatus> {
        AppointmentStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// An appointment as stored, with its clinic's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentRow {
    pub id: String,
    pub clinic_id: String,
    pub patient_id: String,
    pub clinician_id: String,
    /// RFC 3339, UTC, as the caller stored it.
    pub start_at: String,
    pub start_unix: i64,
    pub duration_minutes: i64,
    pub reason: Option<String>,
    pub status: AppointmentStatus,
    /// The queue ticket issued at check-in.
    pub ticket_id: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Set once deleted (the row stays).
    pub deleted_at: Option<String>,
    /// The clinic's IANA zone; `None` if the clinic is gone (the app picks a default).
    pub timezone: Option<String>,
}

/// A slot as stored: `end_unix` is `start_unix + minutes * 60`, computed by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    pub start_at: &'a str,
    pub start_unix: i64,
    pub end_unix: i64,
    pub minutes: i64,
}

/// A new appointment; it is stored as booked.
#[derive(Debug, Clone, Copy)]
pub struct NewAppointment<'a> {
    pub id: &'a str,
    pub clinic_id: &'a str,
    pub patient_id: &'a str,
    pub clinician_id: &'a str,
    pub slot: Slot<'a>,
    pub reason: Option<&'a str>,
}

/// What an update writes.
#[derive(Debug, Clone, Copy)]
pub struct AppointmentChange<'a> {
    pub slot: Slot<'a>,
    pub reason: Option<&'a str>,
    pub status: AppointmentStatus,
    /// `None` keeps the ticket it has.
    pub ticket_id: Option<&'a str>,
}

/// A live appointment in the way of a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub id: String,
    pub clinic_id: String,
}

const COLUMNS: &str = "id, clinic_id, patient_id, clinician_id, start_at, start_unix, \
     duration_minutes, reason, status, ticket_id, version, created_at, updated_at, deleted_at, \
     (SELECT timezone FROM clinics WHERE clinics.id = appointments.clinic_id)";

fn appointment(r: &dyn Row) -> Result<AppointmentRow, StoreError> {
    let status = r.text(8)?;
    Ok(AppointmentRow {
        id: r.text(0)?,
        clinic_id: r.text(1)?,
        patient_id: r.text(2)?,
        clinician_id: r.text(3)?,
        start_at: r.text(4)?,
        start_unix: r.int(5)?,
        duration_minutes: r.int(6)?,
        reason: r.opt_text(7)?,
        // Both schemas CHECK the column, so another word is a schema mismatch.
        status: AppointmentStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("an appointment in status {status:?}")))?,
        ticket_id: r.opt_text(9)?,
        version: r.int(10)?,
        created_at: r.text(11)?,
        updated_at: r.text(12)?,
        deleted_at: r.opt_text(13)?,
        timezone: r.opt_text(14)?,
    })
}

/// The appointment, deleted or not (see `deleted_at`).
pub fn find(r: &mut dyn Read, id: &str) -> Result<Option<AppointmentRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM appointments WHERE id = $1");
    r.first(&sql, &[id.into()], appointment)
}

/// A live appointment of the clinician that still holds its slot (booked or checked in),
/// other than `except`, overlapping `slot` (touching ends do not overlap). For a booking, so
/// it takes a write unit: on PostgreSQL it first takes a lock on the clinician's bookings,
/// held to the end of the unit, so two bookings of one clinician are checked one after the
/// other and cannot both pass (there is no unique key to lean on). SQLite's one writer
/// already does that.
pub fn overlapping(
    w: &mut dyn Write,
    clinician_id: &str,
    slot: &Slot<'_>,
    except: &str,
) -> Result<Option<Overlap>, StoreError> {
    if w.dialect() == Dialect::Postgres {
        // The key careq's old engine used, so old and new processes on one database agree.
        let key = format!("bookings\u{1f}{clinician_id}");
        w.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[key.as_str().into()],
        )?;
    }
    w.first(
        "SELECT id, clinic_id FROM appointments WHERE clinician_id = $1 AND deleted_at IS NULL
           AND status IN ('booked', 'checked_in') AND start_unix < $2 AND end_unix > $3
           AND id <> $4
         LIMIT 1",
        &[
            clinician_id.into(),
            slot.end_unix.into(),
            slot.start_unix.into(),
            except.into(),
        ],
        |row| {
            Ok(Overlap {
                id: row.text(0)?,
                clinic_id: row.text(1)?,
            })
        },
    )
}

/// Stores a booked appointment at version 1. A plain insert: the id is fresh and nothing else
/// is unique, so a clash is a bug, and answers `Conflict`.
pub fn insert(w: &mut dyn Write, a: &NewAppointment<'_>, now: &str) -> Result<(), StoreError> {
    w.execute(
        "INSERT INTO appointments (id, clinic_id, patient_id, clinician_id, start_at, start_unix,
             end_unix, duration_minutes, reason, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'booked', $10, $10)",
        &[
            a.id.into(),
            a.clinic_id.into(),
            a.patient_id.into(),
            a.clinician_id.into(),
            a.slot.start_at.into(),
            a.slot.start_unix.into(),
            a.slot.end_unix.into(),
            a.slot.minutes.into(),
            a.reason.into(),
            now.into(),
        ],
    )?;
    Ok(())
}

/// Writes slot, reason, status and ticket if the appointment is live and still at
/// `version`; false otherwise.
pub fn update(
    w: &mut dyn Write,
    id: &str,
    version: i64,
    c: &AppointmentChange<'_>,
    now: &str,
) -> Result<bool, StoreError> {
    let n = w.execute(
        "UPDATE appointments SET start_at = $1, start_unix = $2, end_unix = $3,
             duration_minutes = $4, reason = $5, status = $6, ticket_id = COALESCE($7, ticket_id),
             version = version + 1, updated_at = $8
         WHERE id = $9 AND version = $10 AND deleted_at IS NULL",
        &[
            c.slot.start_at.into(),
            c.slot.start_unix.into(),
            c.slot.end_unix.into(),
            c.slot.minutes.into(),
            c.reason.into(),
            c.status.as_str().into(),
            c.ticket_id.into(),
            now.into(),
            id.into(),
            version.into(),
        ],
    )?;
    Ok(n == 1)
}

/// Marks a live appointment deleted (a new version); false when there is none.
pub fn delete(w: &mut dyn Write, id: &str, now: &str) -> Result<bool, StoreError> {
    let n = w.execute(
        "UPDATE appointments SET deleted_at = $1, version = version + 1, updated_at = $1
         WHERE id = $2 AND deleted_at IS NULL",
        &[now.into(), id.into()],
    )?;
    Ok(n == 1)
}

/// One clinic day as instants: Unix seconds `[from, to)` for the clinics listed (`None`: all).
#[derive(Debug, Clone, Copy)]
pub struct DayRange<'a> {
    pub clinic_ids: Option<&'a [String]>,
    pub from: i64,
    pub to: i64,
}

/// What the list is narrowed to (every filter given holds).
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFilter<'a> {
    pub clinic_id: Option<&'a str>,
    pub clinician_id: Option<&'a str>,
    pub patient_id: Option<&'a str>,
    pub status: Option<AppointmentStatus>,
    /// The day asked for, one range per time zone of the clinics searched: an appointment
    /// matches when it starts in one range that covers its clinic. `Some(&[])` matches nothing.
    pub between: Option<&'a [DayRange<'a>]>,
}

/// Live appointments in (start, id) order after the key `after`, at most `limit + 1` (the
/// extra one says there is more). `member`: only that user's clinics, and never a sealed
/// patient's appointments (they are part of the sealed record); `None`: an admin, who sees
/// all.
pub fn list(
    r: &mut dyn Read,
    member: Option<&str>,
    f: &ListFilter<'_>,
    after: (i64, &str),
    limit: u32,
) -> Result<Vec<AppointmentRow>, StoreError> {
    let mut q = Query {
        sql: format!(
            "SELECT {COLUMNS} FROM appointments WHERE deleted_at IS NULL
               AND (start_unix > $1 OR (start_unix = $1 AND id > $2))"
        ),
        params: vec![after.0.into(), after.1.into()],
    };
    if let Some(user) = member {
        let p = q.param(user.into());
        q.sql.push_str(&format!(
            " AND clinic_id IN (SELECT clinic_id FROM user_clinics WHERE user_id = {p})
              AND patient_id NOT IN (SELECT id FROM patients WHERE sealed_at IS NOT NULL)"
        ));
    }
    let status = f.status.map(AppointmentStatus::as_str);
    for (column, v) in [
        ("clinic_id", f.clinic_id),
        ("clinician_id", f.clinician_id),
        ("patient_id", f.patient_id),
        ("status", status),
    ] {
        if let Some(v) = v {
            let p = q.param(v.into());
            q.sql.push_str(&format!(" AND {column} = {p}"));
        }
    }
    if let Some(ranges) = f.between {
        let mut any = Vec::new();
        for range in ranges {
            let from = q.param(range.from.into());
            let to = q.param(range.to.into());
            let mut one = format!("(start_unix >= {from} AND start_unix < {to}");
            if let Some(ids) = range.clinic_ids {
                let marks: Vec<String> = ids.iter().map(|id| q.param(id.into())).collect();
                one.push_str(&format!(" AND clinic_id IN ({})", marks.join(", ")));
            }
            one.push(')');
            any.push(one);
        }
        if any.is_empty() {
            any.push("1 = 0".into());
        }
        q.sql.push_str(&format!(" AND ({})", any.join(" OR ")));
    }
    let take = q.param((i64::from(limit) + 1).into());
    q.sql
        .push_str(&format!(" ORDER BY start_unix, id LIMIT {take}"));
    r.all(&q.sql, &q.params, appointment)
}

/// A statement built as filters are added, each parameter numbered as it comes.
struct Query<'a> {
    sql: String,
    params: Vec<Value<'a>>,
}

impl<'a> Query<'a> {
    /// Adds `v` and answers its placeholder.
    fn param(&mut self, v: Value<'a>) -> String {
        self.params.push(v);
        format!("${}", self.params.len())
    }
}
