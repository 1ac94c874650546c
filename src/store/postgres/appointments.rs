//! Appointments in PostgreSQL.
use sqlx::{PgConnection, Row};

use crate::appointments::domain::local_time;
use crate::appointments::domain::{Appointment, AppointmentRow, AppointmentStatus, Filters, Slot};
use crate::clock::now_rfc3339;

const COLUMNS: &str =
    "id, clinic_id, patient_id, clinician_id, start_at, duration_minutes, reason, status,
    ticket_id, version, created_at, updated_at, deleted_at, start_unix,
    (SELECT timezone FROM clinics WHERE clinics.id = appointments.clinic_id) AS timezone";

fn of(r: &sqlx::postgres::PgRow) -> Appointment {
    let timezone: String = r
        .get::<Option<String>, _>("timezone")
        .unwrap_or_else(|| "UTC".into());
    Appointment {
        id: r.get("id"),
        clinic_id: r.get("clinic_id"),
        patient_id: r.get("patient_id"),
        clinician_id: r.get("clinician_id"),
        start: r.get("start_at"),
        start_local: local_time(r.get("start_at"), &timezone),
        timezone,
        duration_minutes: r.get("duration_minutes"),
        reason: r.get("reason"),
        status: AppointmentStatus::parse(r.get("status")).unwrap_or(AppointmentStatus::Booked),
        ticket_id: r.get("ticket_id"),
        version: r.get("version"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

/// The appointment and whether it was deleted.
pub async fn find(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<(Appointment, bool)>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM appointments WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| (of(&r), r.get::<Option<String>, _>("deleted_at").is_some())))
}

/// Another live appointment of the clinician that overlaps the slot: its id and clinic. Inside
/// a unit it first takes a lock on the clinician's bookings (held to commit), so two bookings
/// of the same clinician are checked one after the other and cannot both pass.
pub async fn overlapping(
    conn: &mut PgConnection,
    clinician_id: &str,
    slot: &Slot,
    except: &str,
    lock: bool,
) -> Result<Option<(String, String)>, sqlx::Error> {
    if lock {
        super::patients::lock_key(conn, &format!("bookings\u{1f}{clinician_id}")).await?;
    }
    sqlx::query_as(
        "SELECT id, clinic_id FROM appointments WHERE clinician_id = $1 AND deleted_at IS NULL
           AND status IN ('booked', 'checked_in') AND start_unix < $2 AND end_unix > $3 AND id <> $4
         LIMIT 1",
    )
    .bind(clinician_id)
    .bind(slot.end_unix())
    .bind(slot.start_unix())
    .bind(except)
    .fetch_optional(conn)
    .await
}

pub async fn insert(conn: &mut PgConnection, a: &AppointmentRow<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO appointments (id, clinic_id, patient_id, clinician_id, start_at, start_unix, end_unix,
             duration_minutes, reason, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'booked', $10, $10)",
    )
    .bind(a.id)
    .bind(a.clinic_id)
    .bind(a.patient_id)
    .bind(a.clinician_id)
    .bind(a.slot.start_text())
    .bind(a.slot.start_unix())
    .bind(a.slot.end_unix())
    .bind(a.slot.minutes)
    .bind(a.reason)
    .bind(now_rfc3339())
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes slot, reason, status and ticket if still at `version`.
#[allow(clippy::too_many_arguments)]
pub async fn update(
    conn: &mut PgConnection,
    id: &str,
    version: i64,
    slot: &Slot,
    reason: Option<&str>,
    status: AppointmentStatus,
    ticket_id: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE appointments SET start_at = $1, start_unix = $2, end_unix = $3, duration_minutes = $4,
             reason = $5, status = $6, ticket_id = COALESCE($7, ticket_id), version = version + 1, updated_at = $8
         WHERE id = $9 AND version = $10 AND deleted_at IS NULL",
    )
    .bind(slot.start_text())
    .bind(slot.start_unix())
    .bind(slot.end_unix())
    .bind(slot.minutes)
    .bind(reason)
    .bind(status.as_str())
    .bind(ticket_id)
    .bind(now_rfc3339())
    .bind(id)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete(conn: &mut PgConnection, id: &str) -> Result<(), sqlx::Error> {
    let now = now_rfc3339();
    sqlx::query("UPDATE appointments SET deleted_at = $1, version = version + 1, updated_at = $1 WHERE id = $2 AND deleted_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Live appointments in start order after the (start, id) key, scoped to `member`'s clinics
/// (a member never sees the appointments of sealed patients; `None` is an admin, who does).
pub async fn list(
    conn: &mut PgConnection,
    member: Option<&str>,
    f: &Filters,
    after: (i64, &str),
    limit: u32,
) -> Result<Vec<Appointment>, sqlx::Error> {
    let mut sql = format!(
        "SELECT {COLUMNS} FROM appointments WHERE deleted_at IS NULL AND (start_unix > $1 OR (start_unix = $2 AND id > $3))"
    );
    enum Bind {
        Int(i64),
        Text(String),
    }
    let mut binds = vec![
        Bind::Int(after.0),
        Bind::Int(after.0),
        Bind::Text(after.1.to_string()),
    ];
    if let Some(m) = member {
        binds.push(Bind::Text(m.to_string()));
        sql.push_str(&format!(
            " AND clinic_id IN (SELECT clinic_id FROM user_clinics WHERE user_id = ${})",
            binds.len()
        ));
        // A sealed patient's appointments are part of the sealed record.
        sql.push_str(
            " AND patient_id NOT IN (SELECT id FROM patients WHERE sealed_at IS NOT NULL)",
        );
    }
    for (col, v) in [
        ("clinic_id", &f.clinic_id),
        ("clinician_id", &f.clinician_id),
        ("patient_id", &f.patient_id),
        ("status", &f.status.map(|s| s.as_str().to_string())),
    ] {
        if let Some(v) = v {
            binds.push(Bind::Text(v.clone()));
            sql.push_str(&format!(" AND {col} = ${}", binds.len()));
        }
    }
    if let Some(ranges) = &f.between {
        // One range per time zone of the clinics searched; none at all matches nothing.
        let mut any = Vec::new();
        for r in ranges {
            binds.push(Bind::Int(r.from));
            binds.push(Bind::Int(r.to));
            let mut one = format!(
                "(start_unix >= ${} AND start_unix < ${}",
                binds.len() - 1,
                binds.len()
            );
            if let Some(ids) = &r.clinic_ids {
                let marks: Vec<String> = ids
                    .iter()
                    .map(|i| {
                        binds.push(Bind::Text(i.clone()));
                        format!("${}", binds.len())
                    })
                    .collect();
                one.push_str(&format!(" AND clinic_id IN ({})", marks.join(", ")));
            }
            one.push(')');
            any.push(one);
        }
        if any.is_empty() {
            any.push("1 = 0".into());
        }
        sql.push_str(&format!(" AND ({})", any.join(" OR ")));
    }
    sql.push_str(&format!(
        " ORDER BY start_unix, id LIMIT ${}",
        binds.len() + 1
    ));
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = match b {
            Bind::Int(n) => q.bind(n),
            Bind::Text(t) => q.bind(t),
        };
    }
    let rows = q.bind(limit as i64 + 1).fetch_all(conn).await?;
    Ok(rows.iter().map(of).collect())
}

/// Moves a merged patient's appointments and tickets to the survivor.
pub async fn move_patient(
    conn: &mut PgConnection,
    from: &str,
    to: &str,
) -> Result<(), sqlx::Error> {
    for sql in [
        "UPDATE appointments SET patient_id = $1, version = version + 1 WHERE patient_id = $2",
        "UPDATE tickets SET patient_id = $1, version = version + 1 WHERE patient_id = $2",
    ] {
        sqlx::query(sql)
            .bind(to)
            .bind(from)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
