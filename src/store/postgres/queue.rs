//! Tickets and queue days in PostgreSQL.
use sqlx::{PgConnection, Row};

use crate::clock::{now_ms, now_rfc3339};
use crate::queue::domain::{NewTicket, Priority, Status, Ticket};

const COLUMNS: &str = "id, clinic_id, day, number, patient_id, priority, status, counter, recalled,
    issued_ms, called_ms, finished_ms, version, updated_at";

fn rfc3339_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

fn ticket_of(r: &sqlx::postgres::PgRow) -> Ticket {
    let issued_ms: i64 = r.get("issued_ms");
    let called_ms: Option<i64> = r.get("called_ms");
    let finished_ms: Option<i64> = r.get("finished_ms");
    Ticket {
        id: r.get("id"),
        clinic_id: r.get("clinic_id"),
        number: r.get("number"),
        day: r.get("day"),
        patient_id: r.get("patient_id"),
        priority: Priority::parse(r.get("priority")).unwrap_or(Priority::Normal),
        status: Status::parse(r.get("status")).unwrap_or(Status::Waiting),
        counter: r.get("counter"),
        recalled: r.get::<i64, _>("recalled") == 1,
        issued_at: rfc3339_ms(issued_ms),
        called_at: called_ms.map(rfc3339_ms),
        finished_at: finished_ms.map(rfc3339_ms),
        position: None,
        estimated_wait_seconds: None,
        version: r.get("version"),
        updated_at: r.get("updated_at"),
        issued_ms,
    }
}

pub async fn find(conn: &mut PgConnection, id: &str) -> Result<Option<Ticket>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tickets WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(ticket_of))
}

/// Bumps the day's counter and returns the new sequence number, or `None` when the day is
/// closed (the caller rolls back, so the number is not used up).
pub async fn next_seq(
    conn: &mut PgConnection,
    clinic_id: &str,
    day: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO queue_days (clinic_id, day, last_seq) VALUES ($1, $2, 1)
         ON CONFLICT (clinic_id, day) DO UPDATE SET last_seq = queue_days.last_seq + 1
         RETURNING last_seq, closed_at",
    )
    .bind(clinic_id)
    .bind(day)
    .fetch_one(conn)
    .await?;
    let closed: Option<String> = row.get("closed_at");
    Ok(closed.is_none().then(|| row.get("last_seq")))
}

pub async fn insert(conn: &mut PgConnection, t: &NewTicket<'_>) -> Result<(), sqlx::Error> {
    let now = now_rfc3339();
    sqlx::query(
        "INSERT INTO tickets (id, clinic_id, day, seq, number, patient_id, priority, status, issued_ms,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'waiting', $8, $9, $9)",
    )
    .bind(t.id)
    .bind(t.clinic_id)
    .bind(t.day)
    .bind(t.seq)
    .bind(t.number)
    .bind(t.patient_id)
    .bind(t.priority.as_str())
    .bind(now_ms())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The earliest waiting ticket of each priority: the next ticket to call is one of them.
/// Inside a unit this first locks the day's row (which issuing a ticket also locks), so two
/// counters calling at once — through one careq process or several — are served one after the
/// other, and the second sees the first one's call.
pub async fn head_of_each_priority(
    conn: &mut PgConnection,
    clinic_id: &str,
    day: &str,
    lock: bool,
) -> Result<Vec<Ticket>, sqlx::Error> {
    if lock {
        sqlx::query("SELECT 1 FROM queue_days WHERE clinic_id = $1 AND day = $2 FOR UPDATE")
            .bind(clinic_id)
            .bind(day)
            .fetch_optional(&mut *conn)
            .await?;
    }
    let one = |p: &str| {
        format!(
            "(SELECT {COLUMNS} FROM tickets
             WHERE clinic_id = $1 AND day = $2 AND status = 'waiting' AND priority = '{p}'
             ORDER BY issued_ms LIMIT 1)"
        )
    };
    let sql = format!(
        "{} UNION ALL {} UNION ALL {}",
        one("normal"),
        one("urgent"),
        one("emergency")
    );
    let rows = sqlx::query(&sql)
        .bind(clinic_id)
        .bind(day)
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(ticket_of).collect())
}

/// The most waiting tickets a count looks at: positions are exact up to this many people ahead.
pub const COUNT_CAP: i64 = 10_000;

/// Waiting tickets of a priority issued at or before `issued_ms`, up to `COUNT_CAP` (every
/// column it reads is in the index, so counting never touches the table; the cap bounds a count
/// over a day's queue of any length).
pub async fn count_waiting(
    conn: &mut PgConnection,
    clinic_id: &str,
    day: &str,
    priority: Priority,
    issued_ms: Option<i64>,
) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM tickets
         WHERE clinic_id = $1 AND day = $2 AND status = 'waiting' AND priority = $3
           AND issued_ms <= $4 LIMIT $5) AS w",
    )
    .bind(clinic_id)
    .bind(day)
    .bind(priority.as_str())
    .bind(issued_ms.unwrap_or(i64::MAX))
    .bind(COUNT_CAP)
    .fetch_one(conn)
    .await?;
    Ok(n.max(0) as u64)
}

pub async fn open_tickets(
    conn: &mut PgConnection,
    clinic_id: &str,
    day: &str,
) -> Result<Vec<Ticket>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM tickets WHERE clinic_id = $1 AND day = $2 AND status IN ('waiting', 'called')
         ORDER BY issued_ms LIMIT 2000"
    ))
    .bind(clinic_id)
    .bind(day)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(ticket_of).collect())
}

/// Moves a ticket if it is still at `version`; false when it moved on meanwhile.
pub async fn set_status(
    conn: &mut PgConnection,
    id: &str,
    version: i64,
    to: Status,
    counter: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let done = sqlx::query(
        "UPDATE tickets SET status = $1,
             counter = COALESCE($2, counter),
             called_ms = CASE WHEN $1 = 'called' THEN $3 ELSE called_ms END,
             finished_ms = CASE WHEN $1 IN ('served', 'no_show', 'cancelled') THEN $3 ELSE NULL END,
             recalled = CASE WHEN status = 'no_show' AND $1 = 'waiting' THEN 1 ELSE recalled END,
             issued_ms = CASE WHEN status = 'no_show' AND $1 = 'waiting' THEN $3 ELSE issued_ms END,
             version = version + 1, updated_at = $4
         WHERE id = $5 AND version = $6",
    )
    .bind(to.as_str())
    .bind(counter)
    .bind(now)
    .bind(now_rfc3339())
    .bind(id)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The ticket called most recently in the clinic's day.
pub async fn last_called(
    conn: &mut PgConnection,
    clinic_id: &str,
    day: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM tickets WHERE clinic_id = $1 AND day = $2 AND called_ms IS NOT NULL
         ORDER BY called_ms DESC LIMIT 1",
    )
    .bind(clinic_id)
    .bind(day)
    .fetch_optional(conn)
    .await
}

/// Mean seconds from call to finish over the clinic's last 20 served tickets (300 if none).
pub async fn service_seconds(conn: &mut PgConnection, clinic_id: &str) -> Result<u64, sqlx::Error> {
    let avg: Option<f64> = sqlx::query_scalar(
        "SELECT (AVG(finished_ms - called_ms) / 1000.0)::float8 FROM (SELECT finished_ms, called_ms
         FROM tickets WHERE clinic_id = $1 AND status = 'served' ORDER BY finished_ms DESC LIMIT 20) AS s",
    )
    .bind(clinic_id)
    .fetch_one(conn)
    .await?;
    Ok(avg.map(|a| a.max(1.0) as u64).unwrap_or(300))
}

pub async fn set_closed(
    conn: &mut PgConnection,
    clinic_id: &str,
    day: &str,
    closed: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO queue_days (clinic_id, day, last_seq, closed_at) VALUES ($1, $2, 0, $3)
         ON CONFLICT (clinic_id, day) DO UPDATE SET closed_at = $3",
    )
    .bind(clinic_id)
    .bind(day)
    .bind(closed.then(now_rfc3339))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn is_closed(
    conn: &mut PgConnection,
    clinic_id: &str,
    day: &str,
) -> Result<bool, sqlx::Error> {
    let closed: Option<Option<String>> =
        sqlx::query_scalar("SELECT closed_at FROM queue_days WHERE clinic_id = $1 AND day = $2")
            .bind(clinic_id)
            .bind(day)
            .fetch_optional(conn)
            .await?;
    Ok(matches!(closed, Some(Some(_))))
}

/// (status, wait from issue to call in seconds) for every ticket of a day.
pub async fn day_tickets(
    conn: &mut PgConnection,
    clinic_id: &str,
    day: &str,
) -> Result<Vec<(String, Option<f64>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT status, ((called_ms - issued_ms) / 1000.0)::float8 FROM tickets
         WHERE clinic_id = $1 AND day = $2",
    )
    .bind(clinic_id)
    .bind(day)
    .fetch_all(conn)
    .await
}
