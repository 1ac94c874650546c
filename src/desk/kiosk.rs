//! The self-service kiosk's API: an admin rotates a clinic's kiosk key (shown once, stored
//! hashed), and the kiosk page issues priority-free walk-in tickets with it, rate-limited per key.
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Serialize;

use crate::auth::{perm, Require};
use crate::clinics::records as clinic_records;
use crate::error::ApiError;
use crate::http::conditional::Representation;
use crate::queue::domain::Priority;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct KioskLink {
    /// Open this once on the kiosk; it carries the clinic's kiosk key, which the page moves into
    /// the browser's storage and out of the address bar (the page and its files send
    /// `Referrer-Policy: no-referrer`).
    pub url: String,
}

/// A new kiosk key for the clinic (admin): the answer is the only time the key is shown, and
/// the old key stops working at once
#[utoipa::path(post, path = "/v1/clinics/{id}/kiosk", tag = "queue", params(("id" = String, Path, pattern = "^cln_[0-9a-f]{20}$")),
    responses((status = 200, description = "The kiosk URL with the new key", body = KioskLink), (status = 403, description = "Not an admin"),
        (status = 404, description = "No such clinic")))]
pub async fn rotate_kiosk_key(
    State(st): State<AppState>,
    admin: Require<perm::ManageClinics>,
    Path(id): Path<String>,
) -> Result<Json<KioskLink>, ApiError> {
    let admin = admin.0;
    let key = crate::auth::tokens::new_token();
    let hash = crate::auth::tokens::hash_token(&key);
    let clinic_id = st
        .db
        .write(move |conn| {
            let clinic = crate::clinics::visible(conn, &admin, &id)?;
            clinic_records::set_kiosk_key_hash(conn, &clinic.id, &hash)?;
            Ok(clinic.id)
        })
        .await?;
    Ok(Json(KioskLink {
        url: format!("/kiosk/{clinic_id}?key={key}"),
    }))
}

/// What a kiosk shows the patient: the number and the wait, nothing about anyone.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KioskTicket {
    /// Prefix and daily sequence, e.g. `A-017`.
    pub number: String,
    pub clinic_name: String,
    /// RFC 3339, UTC.
    pub issued_at: String,
    /// 1 for the next to be called.
    pub position: Option<u32>,
    /// Estimated seconds until called, from recent service times.
    pub estimated_wait_seconds: Option<u64>,
}

/// Take a number at the kiosk: a walk-in ticket of normal priority, with the clinic's kiosk key
/// as the bearer credential (not a staff token)
#[utoipa::path(post, path = "/v1/clinics/{id}/kiosk/tickets", tag = "queue", params(("id" = String, Path, pattern = "^cln_[0-9a-f]{20}$")),
    responses((status = 201, description = "Issued; the number to show", body = KioskTicket),
        (status = 401, description = "No kiosk key, or not this clinic's current one"),
        (status = 423, description = "The queue is closed for today"),
        (status = 429, description = "This kiosk issued too many tickets in a short time")))]
pub async fn take_number(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = crate::auth::bearer_in(&headers)?.ok_or_else(|| ApiError::Unauthorized {
        detail: "a kiosk takes numbers with its key: `Authorization: Bearer <kiosk key>`".into(),
        invalid_token: false,
    })?;
    let key_hash = crate::auth::tokens::hash_token(key);
    let expected = key_hash.clone();
    let clinic = st
        .db
        .read(move |conn| {
            let stored = clinic_records::kiosk_key_hash(conn, &id)?;
            // Only the hash is stored; compare hashes, in constant time.
            if !matches!(stored, Some(ref k) if crate::queue::live::constant_eq(k, &expected)) {
                return Err(crate::auth::invalid_token());
            }
            clinic_records::find_clinic(conn, &id)?
                .ok_or_else(|| ApiError::NotFound("no clinic with this id".into()))
        })
        .await?;
    st.kiosk_limiter.check(&key_hash)?;
    let aging = st.config.queue_aging_minutes;
    let issued_for = clinic.clone();
    // The moment whose local day the ticket belongs to (the clock tests may move).
    let at = st.config.clock.now();
    let ticket = st
        .db
        .write_data(move |conn| {
            crate::queue::issue_in(aging, conn, &issued_for, None, Priority::Normal, at)
        })
        .await?;
    crate::queue::live::publish(&st, &ticket.clinic_id, "issued", Some(&ticket));
    let shown = KioskTicket {
        number: ticket.number.clone(),
        clinic_name: clinic.name.clone(),
        issued_at: ticket.issued_at.clone(),
        position: ticket.position,
        estimated_wait_seconds: ticket.estimated_wait_seconds,
    };
    let mut rep = Representation::json(&shown).status(StatusCode::CREATED);
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/tickets/{}", ticket.id)) {
        rep.extra.insert(header::LOCATION, v);
    }
    Ok(rep.respond(&HeaderMap::new()))
}
