//! The access log in PostgreSQL: appended to, never changed through the API (triggers refuse
//! UPDATE and DELETE; only the archive, run by an operator, disables the DELETE trigger inside its
//! own transaction).
use sqlx::{PgConnection, Row};

use crate::store::{LogEntry, LogFilter, LogRow};

/// Appends rows, a hundred per statement: the one place that writes the log.
pub async fn append_rows(conn: &mut PgConnection, rows: &[&LogRow]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(100) {
        let values = (0..chunk.len())
            .map(|i| {
                let n = i * 9;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6,
                    n + 7,
                    n + 8,
                    n + 9
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO access_log (at, actor_id, action, resource_type, resource_id, ip,
                 request_id, patient_id, client_request_id) VALUES {values}"
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(&r.at)
                .bind(&r.actor_id)
                .bind(r.action)
                .bind(&r.resource_type)
                .bind(&r.resource_id)
                .bind(&r.ip)
                .bind(&r.request_id)
                .bind(&r.patient_id)
                .bind(&r.client_request_id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

const SELECT: &str =
    "SELECT a.seq, a.at, a.actor_id, u.username AS actor_username, a.action, a.resource_type,
         a.resource_id, a.ip, a.request_id, a.patient_id, a.client_request_id
     FROM access_log a LEFT JOIN users u ON u.id = a.actor_id";

fn entry_of(r: &sqlx::postgres::PgRow) -> LogEntry {
    LogEntry {
        seq: r.get("seq"),
        at: r.get("at"),
        actor_id: r.get("actor_id"),
        actor_username: r.get("actor_username"),
        action: r.get("action"),
        resource_type: r.get("resource_type"),
        resource_id: r.get("resource_id"),
        ip: r.get("ip"),
        request_id: r.get("request_id"),
        patient_id: r.get("patient_id"),
        client_request_id: r.get("client_request_id"),
    }
}

/// A page of entries for one record, oldest first, after sequence number `after`. For a patient
/// this includes entries about resources that carry the patient's data.
pub async fn entries(
    conn: &mut PgConnection,
    resource_type: &str,
    resource_id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<LogEntry>, sqlx::Error> {
    let about_patient = if resource_type == "patient" {
        " OR a.patient_id = $2"
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE ((a.resource_type = $1 AND a.resource_id = $2){about_patient}) AND a.seq > $3
         ORDER BY a.seq LIMIT $4"
    ))
    .bind(resource_type)
    .bind(resource_id)
    .bind(after)
    .bind(limit as i64 + 1)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(entry_of).collect())
}

/// A page of the whole log, oldest first, filtered.
pub async fn filtered(
    conn: &mut PgConnection,
    f: &LogFilter,
    after: i64,
    limit: u32,
) -> Result<Vec<LogEntry>, sqlx::Error> {
    let mut sql = format!("{SELECT} WHERE a.seq > $1");
    let mut binds = Vec::new();
    for (cond, value) in [
        (" AND a.actor_id = ", &f.actor_id),
        (" AND a.resource_type = ", &f.resource_type),
        (" AND a.at >= ", &f.from),
        (" AND a.at < ", &f.before),
    ] {
        if let Some(v) = value {
            binds.push(v.clone());
            sql.push_str(&format!("{cond}${}", binds.len() + 1));
        }
    }
    sql.push_str(&format!(" ORDER BY a.seq LIMIT ${}", binds.len() + 2));
    let mut q = sqlx::query(&sql).bind(after);
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.bind(limit as i64 + 1).fetch_all(conn).await?;
    Ok(rows.iter().map(entry_of).collect())
}

/// Deletes the entries before `before` up to `through`: the DELETE trigger is disabled and
/// enabled again inside the caller's transaction (ALTER TABLE locks the log meanwhile), so no
/// other session ever sees the log unguarded.
pub async fn purge(
    conn: &mut PgConnection,
    before: &str,
    through: i64,
) -> Result<u64, sqlx::Error> {
    sqlx::query("ALTER TABLE access_log DISABLE TRIGGER access_log_no_delete")
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("DELETE FROM access_log WHERE seq <= $1 AND at < $2")
        .bind(through)
        .bind(before)
        .execute(&mut *conn)
        .await?;
    sqlx::query("ALTER TABLE access_log ENABLE TRIGGER access_log_no_delete")
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}
