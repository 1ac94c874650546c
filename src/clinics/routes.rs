//! `/v1/clinics`: thin handlers; admins write (`ManageClinics`), members read (`ReadClinics`).
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::domain::{Clinic, ClinicPatch, NewClinic, ValidClinic};

use super::{records, visible};
use crate::auth::{perm, Require, Role};
use crate::error::ApiError;
use crate::http::extract::{ApiQuery, JsonBody};
use crate::http::paging::{Page, PageParams};
use crate::http::precondition::{stale, IfMatch};
use crate::http::resource;
use crate::state::AppState;
use crate::store::Held;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/clinics", get(list).post(create))
        .route("/v1/clinics/{id}", get(read).patch(update))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ClinicPage {
    pub items: Vec<Clinic>,
    pub next_cursor: Option<String>,
}

/// Create a clinic
#[utoipa::path(post, path = "/v1/clinics", tag = "clinics", request_body = NewClinic,
    responses((status = 201, description = "Created", body = Clinic), (status = 403, description = "Not an admin")))]
pub async fn create(
    State(st): State<AppState>,
    _admin: Require<perm::ManageClinics>,
    JsonBody(new): JsonBody<NewClinic>,
) -> Result<Response, ApiError> {
    let valid = ValidClinic::parse(
        &new.name,
        &new.timezone,
        &new.ticket_prefix,
        new.country.as_deref(),
    )
    .map_err(ApiError::invalid)?;
    let id = crate::ids::new_id("cln");
    let clinic = st
        .db
        .write_data(move |conn| {
            records::insert_clinic(conn, &id, &valid)?;
            records::find_clinic(conn, &id)?.ok_or_else(|| ApiError::internal("clinic vanished"))
        })
        .await?;
    Ok(resource::created(
        &clinic,
        &format!("/v1/clinics/{}", clinic.id),
    ))
}

/// List the clinics the caller may see
#[utoipa::path(get, path = "/v1/clinics", tag = "clinics", params(PageParams),
    responses((status = 200, description = "A page of clinics", body = ClinicPage,
        headers(("Link" = String, description = "`rel=\"next\"` when there is more")))))]
pub async fn list(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    ApiQuery(paging): ApiQuery<PageParams>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let limit = paging.limit()?;
    let after = paging.after()?.unwrap_or_default();
    let member = (caller.role != Role::Admin).then_some(caller.user_id.as_str());
    let rows = super::list(&st.db, member, &after, limit).await?;
    let page = Page::from_rows(rows, limit, |c| c.id.clone());
    Ok(page.respond(&uri))
}

/// Read a clinic
#[utoipa::path(get, path = "/v1/clinics/{id}", tag = "clinics", params(("id" = String, Path, pattern = "^cln_[0-9a-f]{20}$")),
    responses((status = 200, description = "The clinic", body = Clinic,
        headers(("ETag" = String), ("Last-Modified" = String))),
        (status = 304, description = "Not modified"), (status = 404, description = "No such clinic, or not yours")))]
pub async fn read(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller.0;
    let clinic = st
        .db
        .lookup(move |conn| visible(conn, &caller, &id))
        .await?;
    Ok(resource::read(&clinic, &headers))
}

/// Update a clinic (merge patch; needs If-Match)
#[utoipa::path(patch, path = "/v1/clinics/{id}", tag = "clinics", params(("id" = String, Path, pattern = "^cln_[0-9a-f]{20}$")),
    request_body(content = ClinicPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Updated", body = Clinic, headers(("ETag" = String))),
        (status = 403, description = "Not an admin"), (status = 404, description = "No such clinic"),
        (status = 412, description = "Stale If-Match"), (status = 428, description = "No If-Match")))]
pub async fn update(
    State(st): State<AppState>,
    admin: Require<perm::ManageClinics>,
    Path(id): Path<String>,
    if_match: IfMatch,
    JsonBody(patch): JsonBody<ClinicPatch>,
) -> Result<Response, ApiError> {
    let admin = admin.0;
    let clinic = st
        .db
        .write_data(move |conn| {
            conn.hold(Held::Clinic.table(), &id)?;
            let current = visible(conn, &admin, &id)?;
            let valid = ValidClinic::parse(
                patch.name.as_deref().unwrap_or(&current.name),
                patch.timezone.as_deref().unwrap_or(&current.timezone),
                patch
                    .ticket_prefix
                    .as_deref()
                    .unwrap_or(&current.ticket_prefix),
                match &patch.country {
                    Some(given) => given.as_deref(),
                    None => current.country.as_deref(),
                },
            )
            .map_err(ApiError::invalid)?;
            if_match.check(current.version)?;
            if !records::update_clinic(conn, &id, current.version, &valid)? {
                let now = records::find_clinic(conn, &id)?
                    .map(|c| c.version)
                    .unwrap_or(0);
                return Err(stale(now));
            }
            records::find_clinic(conn, &id)?.ok_or_else(|| ApiError::internal("clinic vanished"))
        })
        .await?;
    Ok(resource::updated(&clinic))
}

// How this feature's domain types meet the HTTP mechanism (bodies' rules, CSV rows): kept
// beside the routes, so the domain imports nothing of `http`.
mod domain_http {
    use super::super::domain::*;
    use crate::error::FieldError;

    /// The rules of each member a patch sends, for a patch that also has shape errors.
    impl crate::http::extract::BodyRules for ClinicPatch {
        fn rule_errors(&self) -> Vec<FieldError> {
            let mut errors = Vec::new();
            if let Some(name) = &self.name {
                errors.extend(ClinicName::parse(name).err());
            }
            if let Some(zone) = &self.timezone {
                errors.extend(TimeZoneName::parse(zone).err());
            }
            if let Some(prefix) = &self.ticket_prefix {
                errors.extend(TicketPrefix::parse(prefix).err());
            }
            if let Some(Some(country)) = &self.country {
                errors.extend(Country::parse(country).err());
            }
            errors
        }
    }

    /// The clinic rules, for a body that also has shape errors.
    impl crate::http::extract::BodyRules for NewClinic {
        fn rule_errors(&self) -> Vec<FieldError> {
            ValidClinic::parse(
                &self.name,
                &self.timezone,
                &self.ticket_prefix,
                self.country.as_deref(),
            )
            .err()
            .unwrap_or_default()
        }
    }
}
