//! Clinics, each query written once for both engines: the pattern every record family of the
//! store follows (issue 25). Times come from the caller (the store reads no clock).
use crate::{Read, ReadExt, Row, StoreError, Write};

/// A clinic as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicRow {
    pub id: String,
    pub name: String,
    pub timezone: String,
    pub ticket_prefix: String,
    pub country: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A clinic's fields, as a create or an update stores them.
#[derive(Debug, Clone, Copy)]
pub struct ClinicFields<'a> {
    pub name: &'a str,
    pub timezone: &'a str,
    pub ticket_prefix: &'a str,
    pub country: Option<&'a str>,
}

const COLUMNS: &str = "id, name, timezone, ticket_prefix, country, version, created_at, updated_at";

fn clinic(r: &dyn Row) -> Result<ClinicRow, StoreError> {
    Ok(ClinicRow {
        id: r.text(0)?,
        name: r.text(1)?,
        timezone: r.text(2)?,
        ticket_prefix: r.text(3)?,
        country: r.opt_text(4)?,
        version: r.int(5)?,
        created_at: r.text(6)?,
        updated_at: r.text(7)?,
    })
}

pub fn find(r: &mut dyn Read, id: &str) -> Result<Option<ClinicRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM clinics WHERE id = $1");
    r.first(&sql, &[id.into()], clinic)
}

/// Whether any clinic is stored (a bulk load wants a database without one).
pub fn any(r: &mut dyn Read) -> Result<bool, StoreError> {
    Ok(r.int("SELECT 1 FROM clinics LIMIT 1", &[])?.is_some())
}

/// Clinics after `after` in id order, at most `limit + 1` (the extra one says there is more);
/// `member`: only that user's clinics.
pub fn list(
    r: &mut dyn Read,
    member: Option<&str>,
    after: &str,
    limit: u32,
) -> Result<Vec<ClinicRow>, StoreError> {
    let take = i64::from(limit) + 1;
    match member {
        None => r.all(
            &format!("SELECT {COLUMNS} FROM clinics WHERE id > $1 ORDER BY id LIMIT $2"),
            &[after.into(), take.into()],
            clinic,
        ),
        Some(user) => r.all(
            &format!(
                "SELECT {COLUMNS} FROM clinics WHERE id > $1
                   AND id IN (SELECT clinic_id FROM user_clinics WHERE user_id = $2)
                 ORDER BY id LIMIT $3"
            ),
            &[after.into(), user.into(), take.into()],
            clinic,
        ),
    }
}

/// Stores a new clinic at version 1; false when the id is taken (nothing stored, and the unit
/// goes on: on PostgreSQL a failed statement would end the whole transaction).
pub fn insert(
    w: &mut dyn Write,
    id: &str,
    c: &ClinicFields<'_>,
    now: &str,
) -> Result<bool, StoreError> {
    let n = w.execute(
        "INSERT INTO clinics (id, name, timezone, ticket_prefix, country, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING",
        &[
            id.into(),
            c.name.into(),
            c.timezone.into(),
            c.ticket_prefix.into(),
            c.country.into(),
            now.into(),
        ],
    )?;
    Ok(n == 1)
}

/// Replaces the fields if the clinic is still at `version`; false when it moved on.
pub fn update(
    w: &mut dyn Write,
    id: &str,
    version: i64,
    c: &ClinicFields<'_>,
    now: &str,
) -> Result<bool, StoreError> {
    let n = w.execute(
        "UPDATE clinics SET name = $1, timezone = $2, ticket_prefix = $3, country = $4,
             version = version + 1, updated_at = $5
         WHERE id = $6 AND version = $7",
        &[
            c.name.into(),
            c.timezone.into(),
            c.ticket_prefix.into(),
            c.country.into(),
            now.into(),
            id.into(),
            version.into(),
        ],
    )?;
    Ok(n == 1)
}

/// Which key of a clinic: the board's (waiting-room screens) or the kiosk's (take-a-number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Board,
    Kiosk,
}

impl Key {
    fn column(self) -> &'static str {
        match self {
            Key::Board => "board_key_hash",
            Key::Kiosk => "kiosk_key_hash",
        }
    }
}

/// Stores the hash of a clinic's new key (the old one stops working); false for no such clinic.
pub fn set_key_hash(w: &mut dyn Write, id: &str, key: Key, hash: &str) -> Result<bool, StoreError> {
    let sql = format!("UPDATE clinics SET {} = $1 WHERE id = $2", key.column());
    Ok(w.execute(&sql, &[hash.into(), id.into()])? == 1)
}

/// The hash of a clinic's key, if the clinic exists and has one.
pub fn key_hash(r: &mut dyn Read, id: &str, key: Key) -> Result<Option<String>, StoreError> {
    let sql = format!("SELECT {} FROM clinics WHERE id = $1", key.column());
    Ok(r.first(&sql, &[id.into()], |row| row.opt_text(0))?
        .flatten())
}
