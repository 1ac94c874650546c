//! Clinics as the store keeps them: each function runs one `careq_store::clinics` query on the
//! unit's connection and turns its rows into the feature's [`Clinic`]. The app supplies what the
//! store does not compute (the moment of a change).
use careq_store::clinics::{self as stored, ClinicFields, ClinicRow, Key};

use super::domain::{Clinic, ValidClinic};
use crate::clock::now_rfc3339;
use crate::store::{Read, StoreError, Write};

impl From<ClinicRow> for Clinic {
    fn from(r: ClinicRow) -> Clinic {
        Clinic {
            id: r.id,
            name: r.name,
            timezone: r.timezone,
            ticket_prefix: r.ticket_prefix,
            country: r.country,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The validated fields as the store's insert and update take them.
fn fields(c: &ValidClinic) -> ClinicFields<'_> {
    ClinicFields {
        name: c.name.as_str(),
        timezone: c.timezone.as_str(),
        ticket_prefix: c.ticket_prefix.as_str(),
        country: c.country.as_ref().map(|c| c.as_str()),
    }
}

pub fn find_clinic(conn: &mut dyn Read, id: &str) -> Result<Option<Clinic>, StoreError> {
    Ok(stored::find(conn, id)?.map(Clinic::from))
}

/// Clinics after `after` by id, at most `limit + 1` (the extra one says there is more);
/// `member` limits them to one user's.
pub fn list_clinics(
    conn: &mut dyn Read,
    member: Option<&str>,
    after: &str,
    limit: u32,
) -> Result<Vec<Clinic>, StoreError> {
    Ok(stored::list(conn, member, after, limit)?
        .into_iter()
        .map(Clinic::from)
        .collect())
}

/// Stores a new clinic, created now; `Conflict` when the id is taken.
pub fn insert_clinic(conn: &mut dyn Write, id: &str, c: &ValidClinic) -> Result<(), StoreError> {
    if stored::insert(conn, id, &fields(c), &now_rfc3339())? {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

/// Replaces the fields if the clinic is still at `version`; false when it moved on meanwhile
/// (the unit is then marked as having lost a race, so PostgreSQL may run it again).
pub fn update_clinic(
    conn: &mut dyn Write,
    id: &str,
    version: i64,
    c: &ValidClinic,
) -> Result<bool, StoreError> {
    let applied = stored::update(conn, id, version, &fields(c), &now_rfc3339())?;
    if !applied {
        conn.lost_race();
    }
    Ok(applied)
}

/// Stores the hash of a clinic's new board key (the old one stops working). An unknown clinic
/// changes nothing: callers have found it in the same unit.
pub fn set_board_key_hash(conn: &mut dyn Write, id: &str, hash: &str) -> Result<(), StoreError> {
    stored::set_key_hash(conn, id, Key::Board, hash)?;
    Ok(())
}

/// The hash of a clinic's board key, if the clinic exists and has one.
pub fn board_key_hash(conn: &mut dyn Read, id: &str) -> Result<Option<String>, StoreError> {
    stored::key_hash(conn, id, Key::Board)
}

/// Stores the hash of a clinic's new kiosk key (the old one stops working). An unknown clinic
/// changes nothing: callers have found it in the same unit.
pub fn set_kiosk_key_hash(conn: &mut dyn Write, id: &str, hash: &str) -> Result<(), StoreError> {
    stored::set_key_hash(conn, id, Key::Kiosk, hash)?;
    Ok(())
}

/// The hash of a clinic's kiosk key, if the clinic exists and has one.
pub fn kiosk_key_hash(conn: &mut dyn Read, id: &str) -> Result<Option<String>, StoreError> {
    stored::key_hash(conn, id, Key::Kiosk)
}
