//! The access log, idempotency outcomes and settings (`meta`), each query written once for both
//! engines. The log is append-only on both: triggers refuse UPDATE and DELETE, and only
//! [`purge`] (the operator's archive) lifts the DELETE one, inside its own unit.
//!
//! A request that returned several patients (a search, a list, a replayed batch) is one row,
//! a *request row* ([`SEVERAL`]), plus one narrow pair per patient in `access_log_patients`,
//! written in the same unit. A patient's entries ([`entries`]) find the request through its
//! pairs and show it as an entry about that patient, as if it had a row of its own; the whole
//! log ([`log`]) shows it once, with the patients it returned.
use std::collections::HashMap;

use crate::{Dialect, Read, ReadExt, Row, StoreError, Value, Write};

/// The `resource_id` of a request row: a request that returned several patients names none of
/// them on its row (`resource_type` is `patient`, `patient_id` is NULL); its pairs name each.
/// Never a record's id (those carry a prefix and an underscore), so it marks the row.
pub const SEVERAL: &str = "several";

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
    /// The patients a request row stands for (see [`SEVERAL`]), each written as a pair; empty
    /// for every other row.
    pub patients: Vec<String>,
}

impl LogRow {
    /// Whether this is a request row, which must have the one shape [`SEVERAL`] describes.
    fn is_request(&self) -> Result<bool, StoreError> {
        if self.patients.is_empty() {
            return Ok(false);
        }
        if self.resource_type != "patient"
            || self.resource_id != SEVERAL
            || self.patient_id.is_some()
        {
            return Err(StoreError::Other(format!(
                "an access-log row with patients must be a request row (resource `patient`/\
                 `{SEVERAL}`, no patient_id), not `{}`/`{}`",
                self.resource_type, self.resource_id
            )));
        }
        Ok(true)
    }
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
    /// In the whole log, the patients a request row stands for, in id order; empty otherwise
    /// (a patient's own entries show such a request as an entry about that patient).
    pub patients: Vec<String>,
}

impl LogEntry {
    fn is_request(&self) -> bool {
        self.resource_type == "patient" && self.resource_id == SEVERAL && self.patient_id.is_none()
    }
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

/// Pairs per INSERT at most: 8,192 parameters, far under SQLite's 32,766 and PostgreSQL's
/// 65,535.
const MAX_PAIRS_PER_INSERT: usize = 4096;

/// Appends rows, a hundred per statement, and the pairs of the request rows among them: the
/// one place that writes the log. Rows keep their order; a request's pairs name each of its
/// patients once.
pub fn append(w: &mut dyn Write, rows: &[&LogRow]) -> Result<(), StoreError> {
    let mut pairs: Vec<(&str, i64)> = Vec::new();
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
        let mut requests = false;
        for r in chunk {
            requests |= r.is_request()?;
            params.extend::<[Value<'_>; 9]>([
                r.at.as_str().into(),
                r.actor_id.as_str().into(),
                r.action.into(),
                r.resource_type.as_str().into(),
                r.resource_id.as_str().into(),
                r.ip.as_str().into(),
                r.request_id.as_str().into(),
                stored_patient(r).into(),
                r.client_request_id.as_deref().into(),
            ]);
        }
        if !requests {
            w.execute(&sql, &params)?;
            continue;
        }
        // Both engines number the rows of one INSERT in the order of its VALUES, each above the
        // last (SQLite's AUTOINCREMENT, PostgreSQL's identity, drawn row by row); RETURNING
        // promises no order, so the numbers are sorted back into that one.
        let mut seqs = w.all(&format!("{sql} RETURNING seq"), &params, |r| r.int(0))?;
        seqs.sort_unstable();
        if seqs.len() != chunk.len() {
            return Err(StoreError::Other(format!(
                "{} access-log rows inserted, {} numbers returned",
                chunk.len(),
                seqs.len()
            )));
        }
        for (r, seq) in chunk.iter().zip(seqs) {
            let mut ids: Vec<&str> = r.patients.iter().map(String::as_str).collect();
            ids.sort_unstable();
            ids.dedup();
            pairs.extend(ids.into_iter().map(|id| (id, seq)));
        }
    }
    append_pairs(w, &pairs)
}

/// Inserts (patient, request) pairs, as many per statement as the largest power of two that
/// fits (up to [`MAX_PAIRS_PER_INSERT`]): both engines keep a prepared statement per text on
/// each connection, so the statements take a dozen shapes in all, whatever the counts.
fn append_pairs(w: &mut dyn Write, pairs: &[(&str, i64)]) -> Result<(), StoreError> {
    let mut rest = pairs;
    while !rest.is_empty() {
        let n = MAX_PAIRS_PER_INSERT.min(1 << rest.len().ilog2());
        let (chunk, tail) = rest.split_at(n);
        let values = (0..n)
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let mut params: Vec<Value<'_>> = Vec::with_capacity(2 * n);
        for (id, seq) in chunk {
            params.push((*id).into());
            params.push((*seq).into());
        }
        w.execute(
            &format!("INSERT INTO access_log_patients (patient_id, seq) VALUES {values}"),
            &params,
        )?;
        rest = tail;
    }
    Ok(())
}

const SELECT: &str =
    "SELECT a.seq, a.at, a.actor_id, u.username, a.action, a.resource_type, a.resource_id, a.ip,
         a.request_id, a.patient_id, a.client_request_id
     FROM access_log a LEFT JOIN users u ON u.id = a.actor_id";

/// The `patient_id` a row is stored with: [`ITSELF`] when the row is about that patient's
/// record itself, whose id is the row's resource already. Every read of a patient record then
/// costs one random place in one index (`access_log_resource`), not two: those rows all sit at
/// the `ITSELF` end of `access_log_patient`, in sequence order. [`entry`] gives the id back.
fn stored_patient(r: &LogRow) -> Option<&str> {
    let id = r.patient_id.as_deref()?;
    Some(if r.resource_type == "patient" && r.resource_id == id {
        ITSELF
    } else {
        id
    })
}

/// `patient_id` of a row about the patient record named by its `resource_id`.
const ITSELF: &str = "";

fn entry(r: &dyn Row) -> Result<LogEntry, StoreError> {
    let resource_type = r.text(5)?;
    let resource_id = r.text(6)?;
    let patient_id = match r.opt_text(9)? {
        Some(id) if id == ITSELF => Some(resource_id.clone()),
        stored => stored,
    };
    Ok(LogEntry {
        seq: r.int(0)?,
        at: r.text(1)?,
        actor_id: r.text(2)?,
        actor_username: r.opt_text(3)?,
        action: r.text(4)?,
        resource_type,
        resource_id,
        ip: r.text(7)?,
        request_id: r.text(8)?,
        patient_id,
        client_request_id: r.opt_text(10)?,
        patients: Vec::new(),
    })
}

/// A patient's entries: those about the patient record itself, those about resources carrying
/// the patient's data (`patient_id`), and the request rows whose pairs name the patient, each
/// of the three read off its own index, at most `$4` of each after `$3`, then merged. A request
/// row found through a pair (`via_pair`) reads as the entry the request would have written
/// about this one patient: the patient as resource and as patient. (No row is found both ways:
/// a request row names no record and no patient of its own.)
const PATIENT_ENTRIES: &str =
    "SELECT a.seq, a.at, a.actor_id, u.username, a.action, a.resource_type,
         CASE WHEN h.via_pair = 1 THEN $2 ELSE a.resource_id END, a.ip, a.request_id,
         CASE WHEN h.via_pair = 1 THEN $2 ELSE a.patient_id END, a.client_request_id
     FROM (SELECT seq, 0 AS via_pair FROM (SELECT seq FROM access_log
               WHERE resource_type = $1 AND resource_id = $2 AND seq > $3
               ORDER BY seq LIMIT $4) AS own
           UNION SELECT seq, 0 FROM (SELECT seq FROM access_log
               WHERE patient_id = $2 AND seq > $3 ORDER BY seq LIMIT $4) AS carrying
           UNION SELECT seq, 1 FROM (SELECT seq FROM access_log_patients
               WHERE patient_id = $2 AND seq > $3 ORDER BY seq LIMIT $4) AS returned) AS h
     JOIN access_log a ON a.seq = h.seq
     LEFT JOIN users u ON u.id = a.actor_id
     ORDER BY a.seq LIMIT $4";

/// Entries about one record, oldest first after sequence number `after`, at most `limit + 1`;
/// for a patient also those about resources carrying the patient's data (`patient_id`) and
/// the requests that returned the patient among several (shown as entries about the patient).
pub fn entries(
    r: &mut dyn Read,
    resource_type: &str,
    resource_id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<LogEntry>, StoreError> {
    let take = i64::from(limit) + 1;
    let params: [Value<'_>; 4] = [
        resource_type.into(),
        resource_id.into(),
        after.into(),
        take.into(),
    ];
    if resource_type == "patient" {
        return r.all(PATIENT_ENTRIES, &params, entry);
    }
    let sql = format!(
        "{SELECT} WHERE a.resource_type = $1 AND a.resource_id = $2
           AND a.seq > $3 ORDER BY a.seq LIMIT $4"
    );
    r.all(&sql, &params, entry)
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
    let mut found = r.all(&sql, &params, entry)?;
    with_patients(r, &mut found)?;
    Ok(found)
}

/// Fills in the patients of the request rows among `found` (in sequence order), in one read
/// of their pairs. The pairs are keyed by patient alone, so this read scans them: it is made
/// only for a page that holds a request row.
fn with_patients(r: &mut dyn Read, found: &mut [LogEntry]) -> Result<(), StoreError> {
    let mut requests = found.iter().filter(|e| e.is_request()).map(|e| e.seq);
    let Some(first) = requests.next() else {
        return Ok(());
    };
    let last = requests.next_back().unwrap_or(first);
    let mut patients: HashMap<i64, Vec<String>> = HashMap::new();
    r.query(
        "SELECT seq, patient_id FROM access_log_patients WHERE seq >= $1 AND seq <= $2
         ORDER BY seq, patient_id",
        &[first.into(), last.into()],
        &mut |row| {
            patients.entry(row.int(0)?).or_default().push(row.text(1)?);
            Ok(())
        },
    )?;
    for e in found.iter_mut().filter(|e| e.is_request()) {
        e.patients = patients.remove(&e.seq).unwrap_or_default();
    }
    Ok(())
}

/// Removes the entries before `before` up to sequence number `through` (an archive written
/// first), and the pairs of the request rows among them: the one way entries leave the log.
/// The DELETE triggers are lifted and put back inside the unit, so no other writer ever sees the
/// log unguarded; how differs by engine (SQLite cannot disable a trigger, PostgreSQL's ALTER
/// TABLE locks the tables meanwhile, the log before its pairs as every writer takes them).
/// How many entries were removed.
pub fn purge(w: &mut dyn Write, before: &str, through: i64) -> Result<u64, StoreError> {
    let guards = ["access_log", "access_log_patients"];
    for table in guards {
        let lift = match w.dialect() {
            Dialect::Sqlite => format!("DROP TRIGGER {table}_no_delete"),
            Dialect::Postgres => format!("ALTER TABLE {table} DISABLE TRIGGER {table}_no_delete"),
        };
        w.execute(&lift, &[])?;
    }
    w.execute(
        "DELETE FROM access_log_patients WHERE seq IN
             (SELECT seq FROM access_log WHERE seq <= $1 AND at < $2)",
        &[through.into(), before.into()],
    )?;
    let done = w.execute(
        "DELETE FROM access_log WHERE seq <= $1 AND at < $2",
        &[through.into(), before.into()],
    )?;
    for table in guards {
        let restore = match w.dialect() {
            Dialect::Sqlite => format!(
                "CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
                 BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END"
            ),
            Dialect::Postgres => format!("ALTER TABLE {table} ENABLE TRIGGER {table}_no_delete"),
        };
        w.execute(&restore, &[])?;
    }
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
