//! The access log, idempotency outcomes and settings (`meta`), each query written once for both
//! engines. The log is append-only on both: triggers refuse UPDATE and DELETE, and only
//! [`purge`] (the operator's archive) lifts the DELETE one, inside its own unit.
use crate::{Dialect, Read, ReadExt, Row, StoreError, Value, Write};

/// One access-log entry, as appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub at: String,
    pub actor_id: String,
    pub action: &'static str,
    pub resource_type: String,
    pub resource_id: String,
    pub ip: String,
    pub request_id: String,
    pub patient_id: Option<String>,
    pub client_request_id: Option<String>,
}

/// One access-log entry as read back (the app adds its serde and OpenAPI derives on its side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: i64,
    pub at: String,
    pub actor_id: String,
    /// The actor's username (absent if the account is gone).
    pub actor_username: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub ip: String,
    pub request_id: String,
    /// The patient whose data the access touched, when the resource is not the patient itself.
    pub patient_id: Option<String>,
    pub client_request_id: Option<String>,
}

/// Which entries a listing wants (all given filters hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub actor_id: Option<String>,
    pub resource_type: Option<String>,
    /// At or after this time (RFC 3339, as stored).
    pub from: Option<String>,
    /// Before this time (RFC 3339, as stored).
    pub before: Option<String>,
}

/// The stored outcome of a request made with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub caller_id: String,
    pub key: String,
    pub request_hash: String,
    pub status: u16,
    /// The kept response headers, as a JSON list of `[name, value]` pairs.
    pub headers: String,
    pub body: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Rows per INSERT: 900 parameters, under SQLite's limit, one round trip per hundred rows.
const ROWS_PER_INSERT: usize = 100;

/// Appends rows, a hundred per statement: the one place that writes the log.
pub fn append(w: &mut dyn Write, rows: &[&LogRow]) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values = (0..chunk.len())
            .map(|i| {
                let n = i * 9;
                let p: Vec<String> = (1..=9).map(|k| format!("${}", n + k)).collect();
                format!("({})", p.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO access_log (at, actor_id, action, resource_type, resource_id, ip,
                 request_id, patient_id, client_request_id) VALUES {values}"
        );
        let mut params: Vec<Value<'_>> = Vec::with_capacity(chunk.len() * 9);
        for r in chunk {
            params.extend::<[Value<'_>; 9]>([
                r.at.as_str().into(),
                r.actor_id.as_str().into(),
                r.action.into(),
                r.resource_type.as_str().into(),
                r.resource_id.as_str().into(),
                r.ip.as_str().into(),
                r.request_id.as_str().into(),
                r.patient_id.as_deref().into(),
                r.client_request_id.as_deref().into(),
            ]);
        }
        w.execute(&sql, &params)?;
    }
    Ok(())
}

const SELECT: &str =
    "SELECT a.seq, a.at, a.actor_id, u.username, a.action, a.resource_type, a.resource_id, a.ip,
         a.request_id, a.patient_id, a.client_request_id
     FROM access_log a LEFT JOIN users u ON u.id = a.actor_id";

fn entry(r: &dyn Row) -> Result<LogEntry, StoreError> {
    Ok(LogEntry {
        seq: r.int(0)?,
        at: r.text(1)?,
        actor_id: r.text(2)?,
        actor_username: r.opt_text(3)?,
        action: r.text(4)?,
        resource_type: r.text(5)?,
        resource_id: r.text(6)?,
        ip: r.text(7)?,
        request_id: r.text(8)?,
        patient_id: r.opt_text(9)?,
        client_request_id: r.opt_text(10)?,
    })
}

/// Entries about one record, oldest first after sequence number `after`, at most `limit + 1`;
/// for a patient also those about resources carrying the patient's data (`patient_id`).
pub fn entries(
    r: &mut dyn Read,
    resource_type: &str,
    resource_id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<LogEntry>, StoreError> {
    let about_patient = if resource_type == "patient" {
        " OR a.patient_id = $2"
    } else {
        ""
    };
    let sql = format!(
        "{SELECT} WHERE ((a.resource_type = $1 AND a.resource_id = $2){about_patient})
           AND a.seq > $3 ORDER BY a.seq LIMIT $4"
    );
    let take = i64::from(limit) + 1;
    r.all(
        &sql,
        &[
            resource_type.into(),
            resource_id.into(),
            after.into(),
            take.into(),
        ],
        entry,
    )
}

/// Entries matching `f`, oldest first after sequence number `after`, at most `limit + 1`.
pub fn log(
    r: &mut dyn Read,
    f: &LogFilter,
    after: i64,
    limit: u32,
) -> Result<Vec<LogEntry>, StoreError> {
    let mut sql = format!("{SELECT} WHERE a.seq > $1");
    let mut params: Vec<Value<'_>> = vec![after.into()];
    for (cond, value) in [
        (" AND a.actor_id = ", &f.actor_id),
        (" AND a.resource_type = ", &f.resource_type),
        (" AND a.at >= ", &f.from),
        (" AND a.at < ", &f.before),
    ] {
        if let Some(v) = value {
            params.push(v.into());
            sql.push_str(&format!("{cond}${}", params.len()));
        }
    }
    params.push((i64::from(limit) + 1).into());
    sql.push_str(&format!(" ORDER BY a.seq LIMIT ${}", params.len()));
    r.all(&sql, &params, entry)
}

/// Removes the entries before `before` up to sequence number `through` (an archive written
/// first): the one way entries leave the log. The DELETE trigger is lifted and put back inside
/// the unit, so no other writer ever sees the log unguarded; how differs by engine (SQLite
/// cannot disable a trigger, PostgreSQL's ALTER TABLE locks the log meanwhile).
pub fn purge(w: &mut dyn Write, before: &str, through: i64) -> Result<u64, StoreError> {
    let (lift, restore) = match w.dialect() {
        Dialect::Sqlite => (
            "DROP TRIGGER access_log_no_delete",
            "CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
             BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END",
        ),
        Dialect::Postgres => (
            "ALTER TABLE access_log DISABLE TRIGGER access_log_no_delete",
            "ALTER TABLE access_log ENABLE TRIGGER access_log_no_delete",
        ),
    };
    w.execute(lift, &[])?;
    let done = w.execute(
        "DELETE FROM access_log WHERE seq <= $1 AND at < $2",
        &[through.into(), before.into()],
    )?;
    w.execute(restore, &[])?;
    Ok(done)
}

/// Stores an outcome, first dropping those created before `expired_before`; false when one is
/// already stored under the caller's key (the unit goes on; the caller answers `Conflict`).
pub fn save_outcome(
    w: &mut dyn Write,
    o: &Outcome,
    expired_before: i64,
) -> Result<bool, StoreError> {
    w.execute(
        "DELETE FROM idempotency_keys WHERE created_at < $1",
        &[expired_before.into()],
    )?;
    let n = w.execute(
        "INSERT INTO idempotency_keys
             (caller_id, key, request_hash, completed, status, headers, body, created_at)
         VALUES ($1, $2, $3, 1, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        &[
            o.caller_id.as_str().into(),
            o.key.as_str().into(),
            o.request_hash.as_str().into(),
            i64::from(o.status).into(),
            o.headers.as_str().into(),
            o.body.as_slice().into(),
            o.created_at.into(),
        ],
    )?;
    Ok(n == 1)
}

/// The completed outcome stored under the caller's key at or after `since` (Unix seconds).
pub fn find_outcome(
    r: &mut dyn Read,
    caller_id: &str,
    key: &str,
    since: i64,
) -> Result<Option<Outcome>, StoreError> {
    r.first(
        "SELECT request_hash, status, headers, body, created_at FROM idempotency_keys
         WHERE caller_id = $1 AND key = $2 AND completed = 1 AND created_at >= $3",
        &[caller_id.into(), key.into(), since.into()],
        |row| {
            Ok(Outcome {
                caller_id: caller_id.to_string(),
                key: key.to_string(),
                request_hash: row.text(0)?,
                status: u16::try_from(row.int(1)?).map_err(StoreError::other)?,
                headers: row.text(2)?,
                body: row.blob(3)?,
                created_at: row.int(4)?,
            })
        },
    )
}

/// The value of setting `key`, storing `value` first if there is none: the first writer wins
/// (on PostgreSQL a concurrent insert of the key waits for the other to commit, then stores
/// nothing, and the SELECT, a statement of its own under READ COMMITTED, sees the winner's).
pub fn setting_or_insert(w: &mut dyn Write, key: &str, value: &str) -> Result<String, StoreError> {
    w.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[key.into(), value.into()],
    )?;
    w.first(
        "SELECT value FROM meta WHERE key = $1",
        &[key.into()],
        |r| r.text(0),
    )?
    .ok_or(StoreError::NotFound)
}
