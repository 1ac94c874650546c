//! The first admin. At every start, when no active admin exists (whatever other accounts there
//! are), `admin` is made one: created if the name is free, or — if `admin` is an admin account
//! that was deactivated — made active again with the new password and its old sessions ended.
//! careq never turns somebody's clinician or receptionist account into an admin, nor brings back
//! a deleted account: in those cases it says so and what to do.
use crate::auth::Role;
use crate::error::ApiError;
use crate::store::{Read, Store};

use super::domain::Username;
use super::records;

/// The name of the account made at start.
pub const ADMIN: &str = "admin";

/// What the accounts say about admins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admins {
    /// At least one active admin; whether `admin` is one of them.
    Active { admin_is_one: bool },
    /// None; what the name `admin` is now.
    None(AdminName),
}

/// The account named `admin`, when no active admin exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminName {
    /// No live account has the name (a deleted one may, which only the insert can tell).
    Free,
    /// An admin account, deactivated.
    Deactivated { id: String, version: i64 },
    /// Somebody's account with another role.
    OtherRole(Role),
}

/// What `make_admin` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made {
    Created,
    Reactivated,
    /// Another process made an admin first (several processes on one PostgreSQL database).
    NotNeeded,
    /// `admin` is an account careq will not make an admin; the reason, for the operator.
    Refused(String),
}

/// Looks through the live accounts for an active admin, and at the one named `admin`.
pub fn admins(conn: &mut dyn Read) -> Result<Admins, ApiError> {
    const PAGE: u32 = 500;
    let (mut after, mut named) = (String::new(), AdminName::Free);
    let mut admin_is_one = None;
    loop {
        let page = records::list_users(conn, &after, PAGE)?;
        for u in page.iter().take(PAGE as usize) {
            let is_admin = u.role == Role::Admin && u.active;
            if is_admin {
                admin_is_one = Some(admin_is_one.unwrap_or(false) || u.username == ADMIN);
            }
            if u.username == ADMIN {
                named = match u.role {
                    Role::Admin => AdminName::Deactivated {
                        id: u.id.clone(),
                        version: u.version,
                    },
                    other => AdminName::OtherRole(other),
                };
            }
        }
        if page.len() <= PAGE as usize {
            break;
        }
        after = page[PAGE as usize - 1].id.clone();
    }
    Ok(match admin_is_one {
        Some(admin_is_one) => Admins::Active { admin_is_one },
        None => Admins::None(named),
    })
}

/// Reads the accounts (see `admins`).
pub async fn check(db: &Store) -> Result<Admins, ApiError> {
    db.read(admins).await
}

/// Makes `admin` an active admin with this password hash, if no active admin exists by the time
/// the write runs.
pub async fn make_admin(db: &Store, hash: String) -> Result<Made, ApiError> {
    let id = crate::ids::new_id("usr");
    let outcome = db
        .write(move |conn| match admins(conn)? {
            Admins::Active { .. } => Ok(Made::NotNeeded),
            Admins::None(AdminName::Free) => {
                let name = Username::parse(ADMIN).expect("`admin` is a valid username");
                records::insert_user(conn, &id, &name, &hash, Role::Admin)?;
                Ok(Made::Created)
            }
            Admins::None(AdminName::Deactivated { id, version }) => {
                if !records::update_user(conn, &id, version, Role::Admin, true, Some(&hash))? {
                    return Err(ApiError::internal("the user changed under the write lock"));
                }
                super::revoke_tokens(conn, &id)?;
                Ok(Made::Reactivated)
            }
            Admins::None(AdminName::OtherRole(role)) => Ok(Made::Refused(format!(
                "the account `admin` is a {}, and careq does not make somebody's account an \
                 admin",
                role.as_str()
            ))),
        })
        .await;
    match outcome {
        // The name is taken though no live account has it: a deleted `admin` (whose record and
        // history stay), or another process's `admin` created a moment ago.
        Err(e) if e.status().code == 409 => match check(db).await? {
            Admins::Active { .. } => Ok(Made::NotNeeded),
            Admins::None(_) => Ok(Made::Refused(
                "the account `admin` was deleted, and careq does not bring deleted accounts back"
                    .into(),
            )),
        },
        other => other,
    }
}
