//! The walk-in queue: one `queue_days` row per clinic and local day (the ticket counter and
//! the closed flag) and the tickets, each query written once for both engines (issue 25).
//!
//! Numbers are gap-free and race-free per clinic and day: [`next_ticket_seq`] bumps the day's
//! row inside the issuing unit (on PostgreSQL the upsert locks that row until commit, so
//! issuers of one day queue behind each other; SQLite's one writer runs units one at a time).
//! The calling order (priority, aging, then issue time) is the app's; the store hands it the
//! candidates in issue order. Times (`*_ms`, `now`) come from the caller.
use crate::{Dialect, Read, ReadExt, Row, StoreError, Value, Write};

/// A ticket's base priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Normal,
    Urgent,
    Emergency,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::Normal, Priority::Urgent, Priority::Emergency];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::Urgent => "urgent",
            Priority::Emergency => "emergency",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketStatus {
    Waiting,
    Called,
    Served,
    NoShow,
    Cancelled,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 5] = [
        TicketStatus::Waiting,
        TicketStatus::Called,
        TicketStatus::Served,
        TicketStatus::NoShow,
        TicketStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Waiting => "waiting",
            TicketStatus::Called => "called",
            TicketStatus::Served => "served",
            TicketStatus::NoShow => "no_show",
            TicketStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<TicketStatus> {
        TicketStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRow {
    pub id: String,
    pub clinic_id: String,
    /// The clinic's local day the ticket belongs to.
    pub day: String,
    /// As the app formatted it at issue (`A-017`).
    pub number: String,
    pub patient_id: Option<String>,
    pub priority: Priority,
    pub status: TicketStatus,
    pub counter: Option<String>,
    /// Its one recall (no-show back to waiting) is used up.
    pub recalled: bool,
    /// Unix milliseconds; a recall moves it to the recall's moment.
    pub issued_ms: i64,
    pub called_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub version: i64,
    pub updated_at: String,
}

/// A new ticket: its number taken from [`next_ticket_seq`] in the same unit.
#[derive(Debug, Clone, Copy)]
pub struct NewTicket<'a> {
    pub id: &'a str,
    pub clinic_id: &'a str,
    pub day: &'a str,
    pub seq: i64,
    pub number: &'a str,
    pub patient_id: Option<&'a str>,
    pub priority: Priority,
}

const COLUMNS: &str = "id, clinic_id, day, number, patient_id, priority, status, counter, \
     recalled, issued_ms, called_ms, finished_ms, version, updated_at";

fn ticket(r: &dyn Row) -> Result<TicketRow, StoreError> {
    let priority = r.text(5)?;
    let status = r.text(6)?;
    Ok(TicketRow {
        id: r.text(0)?,
        clinic_id: r.text(1)?,
        day: r.text(2)?,
        number: r.text(3)?,
        patient_id: r.opt_text(4)?,
        // Both schemas CHECK these columns, so another word is a schema mismatch.
        priority: Priority::parse(&priority)
            .ok_or_else(|| StoreError::Other(format!("a ticket of priority {priority:?}")))?,
        status: TicketStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("a ticket in status {status:?}")))?,
        counter: r.opt_text(7)?,
        recalled: r.flag(8)?,
        issued_ms: r.int(9)?,
        called_ms: r.opt_int(10)?,
        finished_ms: r.opt_int(11)?,
        version: r.int(12)?,
        updated_at: r.text(13)?,
    })
}

/// SQLite's planner, without statistics, takes `tickets_queue` (clinic, day, status) for the
/// waiting-queue queries and then sorts or reads the table; `tickets_waiting` covers them
/// (clinic, day, status, priority, issued_ms), so counting never touches the table.
/// PostgreSQL finds it alone and has no such hint.
fn waiting_index(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "INDEXED BY tickets_waiting",
        Dialect::Postgres => "",
    }
}

pub fn find_ticket(r: &mut dyn Read, id: &str) -> Result<Option<TicketRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM tickets WHERE id = $1");
    r.first(&sql, &[id.into()], ticket)
}

/// Bumps the day's counter and answers the new number; `None` when the day is closed, and
/// then the counter is left as it was (so a unit that goes on anyway uses no number up).
/// On PostgreSQL the day's row stays locked until the unit ends: keep what follows short.
pub fn next_ticket_seq(
    w: &mut dyn Write,
    clinic_id: &str,
    day: &str,
) -> Result<Option<i64>, StoreError> {
    // A closed day's row is not updated, so RETURNING gives no row (PostgreSQL still locks
    // it). Qualified `queue_days.last_seq`: PostgreSQL wants it, SQLite accepts it.
    w.int(
        "INSERT INTO queue_days (clinic_id, day, last_seq) VALUES ($1, $2, 1)
         ON CONFLICT (clinic_id, day) DO UPDATE SET last_seq = queue_days.last_seq + 1
           WHERE queue_days.closed_at IS NULL
         RETURNING last_seq",
        &[clinic_id.into(), day.into()],
    )
}

/// Takes `count` numbers of the day at once (a bulk load: `careq bench-seed`) and answers the
/// last; the first is `last - count + 1`. `None` when the day is closed.
pub fn take_ticket_seqs(
    w: &mut dyn Write,
    clinic_id: &str,
    day: &str,
    count: i64,
) -> Result<Option<i64>, StoreError> {
    w.int(
        "INSERT INTO queue_days (clinic_id, day, last_seq) VALUES ($1, $2, $3)
         ON CONFLICT (clinic_id, day) DO UPDATE SET last_seq = queue_days.last_seq + $3
           WHERE queue_days.closed_at IS NULL
         RETURNING last_seq",
        &[clinic_id.into(), day.into(), count.into()],
    )
}

/// One waiting ticket of a bulk load: numbers already taken ([`take_ticket_seqs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingTicket {
    pub id: String,
    pub seq: i64,
    pub number: String,
    pub patient_id: Option<String>,
    pub issued_ms: i64,
}

/// Tickets per statement of [`insert_waiting`]: five parameters each, well under both engines'
/// limits.
const BULK_ROWS: usize = 500;

/// Stores normal-priority waiting tickets of one clinic's day, as [`insert_ticket`] stores
/// each, many to a statement (`now`: their creation time in RFC 3339).
pub fn insert_waiting(
    w: &mut dyn Write,
    clinic_id: &str,
    day: &str,
    now: &str,
    tickets: &[WaitingTicket],
) -> Result<(), StoreError> {
    for chunk in tickets.chunks(BULK_ROWS) {
        let mut params: Vec<Value<'_>> = vec![clinic_id.into(), day.into(), now.into()];
        for t in chunk {
            params.extend([
                Value::from(t.id.as_str()),
                Value::from(t.seq),
                Value::from(t.number.as_str()),
                Value::from(t.patient_id.as_deref()),
                Value::from(t.issued_ms),
            ]);
        }
        w.execute(&bulk_insert(chunk.len()), &params)?;
    }
    Ok(())
}

/// The INSERT of `rows` waiting tickets: `$1` clinic, `$2` day, `$3` time, then five parameters
/// per ticket (id, seq, number, patient, issue time).
fn bulk_insert(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p = 4 + 5 * r;
            format!(
                "(${p}, $1, $2, ${}, ${}, ${}, 'normal', 'waiting', ${}, $3, $3)",
                p + 1,
                p + 2,
                p + 3,
                p + 4
            )
        })
        .collect();
    format!(
        "INSERT INTO tickets (id, clinic_id, day, seq, number, patient_id, priority, status,
             issued_ms, created_at, updated_at) VALUES {}",
        values.join(", ")
    )
}

/// Stores a waiting ticket issued at `issued_ms` (`now`: the same moment in RFC 3339). A plain
/// insert: the id is fresh and the number comes from the counter, so a clash is a bug, and
/// answers `Conflict`.
pub fn insert_ticket(
    w: &mut dyn Write,
    t: &NewTicket<'_>,
    issued_ms: i64,
    now: &str,
) -> Result<(), StoreError> {
    w.execute(
        "INSERT INTO tickets (id, clinic_id, day, seq, number, patient_id, priority, status,
             issued_ms, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'waiting', $8, $9, $9)",
        &[
            t.id.into(),
            t.clinic_id.into(),
            t.day.into(),
            t.seq.into(),
            t.number.into(),
            t.patient_id.into(),
            t.priority.as_str().into(),
            issued_ms.into(),
            now.into(),
        ],
    )?;
    Ok(())
}

/// The earliest waiting ticket of each priority on the clinic's day (the next to call is one
/// of them, by the app's order), in no particular order. For call-next, so it takes a write
/// unit: on PostgreSQL it first locks the day's row (which issuing locks too), so two counters
/// calling at once — through one process or several — are served one after the other and the
/// second sees the first one's call. SQLite's one writer already does that.
pub fn head_of_each_priority(
    w: &mut dyn Write,
    clinic_id: &str,
    day: &str,
) -> Result<Vec<TicketRow>, StoreError> {
    let d = w.dialect();
    if d == Dialect::Postgres {
        w.execute(
            "SELECT 1 FROM queue_days WHERE clinic_id = $1 AND day = $2 FOR UPDATE",
            &[clinic_id.into(), day.into()],
        )?;
    }
    let index = waiting_index(d);
    // Each arm a derived table (with a name, which PostgreSQL wants), as SQLite takes no
    // parenthesised SELECT with its own LIMIT in a UNION.
    let sql = Priority::ALL
        .iter()
        .map(|p| {
            format!(
                "SELECT * FROM (SELECT {COLUMNS} FROM tickets {index}
                   WHERE clinic_id = $1 AND day = $2 AND status = 'waiting' AND priority = '{}'
                   ORDER BY issued_ms LIMIT 1) AS head_{}",
                p.as_str(),
                p.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    w.all(&sql, &[clinic_id.into(), day.into()], ticket)
}

/// The most waiting tickets a count looks at: positions are exact up to this many ahead.
pub const COUNT_CAP: i64 = 10_000;

/// Waiting tickets of `priority` on the day issued at or before `issued_ms` (`None`: all),
/// counted up to [`COUNT_CAP`] over the covering index, so a day's queue of any length costs
/// at most that.
pub fn count_waiting(
    r: &mut dyn Read,
    clinic_id: &str,
    day: &str,
    priority: Priority,
    issued_ms: Option<i64>,
) -> Result<u64, StoreError> {
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM tickets {}
           WHERE clinic_id = $1 AND day = $2 AND status = 'waiting' AND priority = $3
             AND issued_ms <= $4 LIMIT $5) AS w",
        waiting_index(r.dialect())
    );
    let n = r.int(
        &sql,
        &[
            clinic_id.into(),
            day.into(),
            priority.as_str().into(),
            issued_ms.unwrap_or(i64::MAX).into(),
            COUNT_CAP.into(),
        ],
    )?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// Waiting tickets of `priority` on the day issued at or before `issued_ms` (`None`: all), from
/// the day's kept count (`queue_waiting`, maintained by triggers with every change of a ticket):
/// all of them is one row; a bound subtracts those issued after it, the recent ones, counted
/// over the index. Only when more than [`COUNT_CAP`] came after the bound are the earlier ones
/// counted instead, up to the cap, as [`count_waiting`] does.
pub fn waiting(
    r: &mut dyn Read,
    clinic_id: &str,
    day: &str,
    priority: Priority,
    issued_ms: Option<i64>,
) -> Result<u64, StoreError> {
    let kept = r
        .int(
            "SELECT n FROM queue_waiting WHERE clinic_id = $1 AND day = $2 AND priority = $3",
            &[clinic_id.into(), day.into(), priority.as_str().into()],
        )?
        .unwrap_or(0)
        .max(0);
    let Some(bound) = issued_ms else {
        return Ok(kept as u64);
    };
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM tickets {}
           WHERE clinic_id = $1 AND day = $2 AND status = 'waiting' AND priority = $3
             AND issued_ms > $4 LIMIT $5) AS w",
        waiting_index(r.dialect())
    );
    let later = r
        .int(
            &sql,
            &[
                clinic_id.into(),
                day.into(),
                priority.as_str().into(),
                bound.into(),
                COUNT_CAP.into(),
            ],
        )?
        .unwrap_or(0);
    if later < COUNT_CAP {
        return Ok((kept - later).max(0) as u64);
    }
    count_waiting(r, clinic_id, day, priority, Some(bound))
}

/// The most open tickets a day's queue loads (a safety bound).
pub const OPEN_CAP: i64 = 2000;

/// Waiting and called tickets of the clinic's day in issue order, at most [`OPEN_CAP`].
pub fn open_tickets(
    r: &mut dyn Read,
    clinic_id: &str,
    day: &str,
) -> Result<Vec<TicketRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM tickets
         WHERE clinic_id = $1 AND day = $2 AND status IN ('waiting', 'called')
         ORDER BY issued_ms LIMIT $3"
    );
    r.all(
        &sql,
        &[clinic_id.into(), day.into(), OPEN_CAP.into()],
        ticket,
    )
}

/// Moves a ticket to `to` if it is still at `version`; false when it moved on meanwhile.
/// `counter`: where it is called to (`None` keeps the one it has). Stamps `now_ms` as the
/// call or the finish; a recall (no-show back to waiting) uses the ticket's one recall and
/// re-issues it at `now_ms`, and leaving a finished status clears the finish.
#[allow(clippy::too_many_arguments)]
pub fn set_ticket_status(
    w: &mut dyn Write,
    id: &str,
    version: i64,
    to: TicketStatus,
    counter: Option<&str>,
    now_ms: i64,
    now: &str,
) -> Result<bool, StoreError> {
    let n = w.execute(
        "UPDATE tickets SET status = $1,
             counter = COALESCE($2, counter),
             called_ms = CASE WHEN $1 = 'called' THEN $3 ELSE called_ms END,
             finished_ms = CASE WHEN $1 IN ('served', 'no_show', 'cancelled') THEN $3 ELSE NULL END,
             recalled = CASE WHEN status = 'no_show' AND $1 = 'waiting' THEN 1 ELSE recalled END,
             issued_ms = CASE WHEN status = 'no_show' AND $1 = 'waiting' THEN $3 ELSE issued_ms END,
             version = version + 1, updated_at = $4
         WHERE id = $5 AND version = $6",
        &[
            to.as_str().into(),
            counter.into(),
            now_ms.into(),
            now.into(),
            id.into(),
            version.into(),
        ],
    )?;
    Ok(n == 1)
}

/// The id of the ticket called most recently on the clinic's day.
pub fn last_called(
    r: &mut dyn Read,
    clinic_id: &str,
    day: &str,
) -> Result<Option<String>, StoreError> {
    r.first(
        "SELECT id FROM tickets WHERE clinic_id = $1 AND day = $2 AND called_ms IS NOT NULL
         ORDER BY called_ms DESC LIMIT 1",
        &[clinic_id.into(), day.into()],
        |row| row.text(0),
    )
}

/// Mean seconds from call to finish over the clinic's last 20 served tickets, any day; `None`
/// when it has served none (the app chooses the estimate then, and any floor).
pub fn service_seconds(r: &mut dyn Read, clinic_id: &str) -> Result<Option<f64>, StoreError> {
    // AVG of BIGINT is NUMERIC on PostgreSQL, which reads as a real.
    Ok(r.first(
        "SELECT AVG(finished_ms - called_ms) / 1000.0 FROM (SELECT finished_ms, called_ms
           FROM tickets WHERE clinic_id = $1 AND status = 'served'
           ORDER BY finished_ms DESC LIMIT 20) AS s",
        &[clinic_id.into()],
        |row| row.opt_real(0),
    )?
    .flatten())
}

/// Closes the day (`closed_at`: when) or reopens it (`None`); a day with no ticket yet gets
/// its row, with the counter at 0.
pub fn set_day_closed(
    w: &mut dyn Write,
    clinic_id: &str,
    day: &str,
    closed_at: Option<&str>,
) -> Result<(), StoreError> {
    w.execute(
        "INSERT INTO queue_days (clinic_id, day, last_seq, closed_at) VALUES ($1, $2, 0, $3)
         ON CONFLICT (clinic_id, day) DO UPDATE SET closed_at = $3",
        &[clinic_id.into(), day.into(), closed_at.into()],
    )?;
    Ok(())
}

pub fn is_day_closed(r: &mut dyn Read, clinic_id: &str, day: &str) -> Result<bool, StoreError> {
    let closed = r.first(
        "SELECT closed_at FROM queue_days WHERE clinic_id = $1 AND day = $2",
        &[clinic_id.into(), day.into()],
        |row| row.opt_text(0),
    )?;
    Ok(matches!(closed, Some(Some(_))))
}

/// A ticket of a day as the day's report reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct DayTicket {
    pub status: TicketStatus,
    /// From issue to call, once called.
    pub wait_seconds: Option<f64>,
}

/// Every ticket of the clinic's day, in no particular order.
pub fn day_tickets(
    r: &mut dyn Read,
    clinic_id: &str,
    day: &str,
) -> Result<Vec<DayTicket>, StoreError> {
    r.all(
        "SELECT status, (called_ms - issued_ms) / 1000.0 FROM tickets
         WHERE clinic_id = $1 AND day = $2",
        &[clinic_id.into(), day.into()],
        |row| {
            let status = row.text(0)?;
            Ok(DayTicket {
                status: TicketStatus::parse(&status)
                    .ok_or_else(|| StoreError::Other(format!("a ticket in status {status:?}")))?,
                wait_seconds: row.opt_real(1)?,
            })
        },
    )
}
