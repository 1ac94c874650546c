//! The access log in SQLite: appended to, never changed (triggers refuse UPDATE and DELETE).
use sqlx::{Row, SqliteConnection};

use crate::store::{LogEntry, LogRow, StoreError};

/// Appends rows, a hundred per statement: the one place that writes the log.
pub async fn append_rows(conn: &mut SqliteConnection, rows: &[&LogRow]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(100) {
        let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
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

/// A page of entries for one record, oldest first, after sequence number `after`. For a patient
/// this includes entries about resources that carry the patient's data.
pub async fn entries(
    conn: &mut SqliteConnection,
    resource_type: &str,
    resource_id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<LogEntry>, StoreError> {
    let about_patient = if resource_type == "patient" {
        " OR patient_id = $2"
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "SELECT seq, at, actor_id, action, resource_type, resource_id, ip, request_id, patient_id,
             client_request_id
         FROM access_log WHERE ((resource_type = $1 AND resource_id = $2){about_patient}) AND seq > $3
         ORDER BY seq LIMIT $4"
    ))
    .bind(resource_type)
    .bind(resource_id)
    .bind(after)
    .bind(limit as i64 + 1)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| LogEntry {
            seq: r.get("seq"),
            at: r.get("at"),
            actor_id: r.get("actor_id"),
            action: r.get("action"),
            resource_type: r.get("resource_type"),
            resource_id: r.get("resource_id"),
            ip: r.get("ip"),
            request_id: r.get("request_id"),
            patient_id: r.get("patient_id"),
            client_request_id: r.get("client_request_id"),
        })
        .collect())
}
