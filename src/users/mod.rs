//! Staff accounts: `/v1/users` (admin only), plus the operations the CLI and first start share.
pub mod domain;
pub mod routes;
pub mod store;

use crate::access::{self, Action};
use crate::auth::{password, Caller, Role};
use crate::db::Db;
use crate::error::ApiError;
use domain::{NewUser, User, Username};

pub use routes::router;

/// Validates and stores a new account (and, when an API caller made it, logs the access).
pub async fn create(db: &Db, new: NewUser, actor: Option<&Caller>) -> Result<User, ApiError> {
    let username = Username::parse(&new.username).map_err(|e| ApiError::invalid(vec![e]))?;
    password::validate(&new.password, "/password")?;
    let hash = password::hash(new.password).await?;
    let id = crate::ids::new_id("usr");
    let actor = actor.cloned();
    db.write_data(move |conn| {
        Box::pin(async move {
            store::check_clinics(conn, &new.clinic_ids).await?;
            store::insert(conn, &id, &username, &hash, new.role).await?;
            store::set_clinics(conn, &id, &new.clinic_ids).await?;
            if let Some(actor) = &actor {
                access::record(conn, actor, Action::Create, "user", &id).await?;
            }
            store::get(conn, &id).await
        })
    })
    .await
}

/// On first start (no users at all) creates `admin`. Returns the password when it was generated,
/// so the caller can show it once.
pub async fn bootstrap_admin(
    db: &Db,
    configured: Option<&str>,
) -> Result<Option<String>, ApiError> {
    if store::count(db.pool()).await? > 0 {
        return Ok(None);
    }
    let (pw, generated) = match configured {
        Some(p) => (p.to_string(), false),
        None => (crate::auth::tokens::new_token()[..24].to_string(), true),
    };
    create(
        db,
        NewUser {
            username: "admin".into(),
            password: pw.clone(),
            role: Role::Admin,
            clinic_ids: Vec::new(),
        },
        None,
    )
    .await?;
    Ok(generated.then_some(pw))
}
