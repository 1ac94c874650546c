//! `POST /v1/tickets/{id}/notify {message}`: forwards a message about a ticket to the configured
//! notifier (an SMS or messaging webhook). Unset → 501; the notifier's error status or an
//! unreadable answer → 502; no answer within `CAREQ_NOTIFY_TIMEOUT_MS` → 504.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};

pub use super::notifier::{signature, Notifier, SIGNATURE_HEADER};
use crate::access::{self, Action, Touch};
use crate::auth::{perm, Require};
use crate::error::{ApiError, FieldError};
use crate::http::extract::JsonBody;
use crate::patients::Use;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyRequest {
    /// 1–500 characters.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\s\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb][^\u0000-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$"
    )]
    pub message: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NotifyResult {
    pub delivered: bool,
    /// The notifier's HTTP status.
    pub upstream_status: u16,
}

/// Send a message about a ticket through the configured notifier
#[utoipa::path(post, path = "/v1/tickets/{id}/notify", tag = "queue", params(("id" = String, Path, pattern = "^tkt_[0-9a-f]{20}$")),
    request_body = NotifyRequest,
    responses((status = 200, description = "The notifier accepted it", body = NotifyResult),
        (status = 404, description = "No such ticket, or not yours"),
        (status = 423, description = "The ticket's patient record is sealed"),
        (status = 501, description = "No notifier is configured"),
        (status = 502, description = "The notifier answered with an error or garbage"),
        (status = 504, description = "The notifier did not answer in time")))]
pub async fn notify(
    State(st): State<AppState>,
    caller: Require<perm::ReadClinics>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<NotifyRequest>,
) -> Result<Json<NotifyResult>, ApiError> {
    let message = crate::text::line(&req.message, 500)
        .map_err(|m| ApiError::invalid(vec![FieldError::new("/message", m)]))?;
    // Sending a sealed patient's id to a third party is a write naming the patient: 423. The
    // ticket itself is not written, so a read unit judges it (nothing to hold).
    let reader = caller.0.clone();
    let ticket = st
        .db
        .read(move |conn| super::usable_unheld(conn, &reader, &id, Use::Write))
        .await?;
    let notifier = &st.notifier;
    let Some(url) = notifier.url.clone() else {
        return Err(ApiError::NotImplemented(
            "no notifier is configured (CAREQ_NOTIFY_URL)".into(),
        ));
    };
    // What leaves careq is on the record before it leaves.
    let touched = Touch {
        resource_type: "ticket",
        resource_id: &ticket.id,
        patient: ticket.patient_id.as_deref(),
    };
    access::record_now(&st.db, &caller, Action::Notify, &[touched]).await?;
    let timeout = notifier.timeout;
    let body = serde_json::to_vec(&serde_json::json!({
        "ticket_id": ticket.id, "clinic_id": ticket.clinic_id, "number": ticket.number,
        "patient_id": ticket.patient_id, "message": message,
    }))
    .map_err(ApiError::internal)?;
    let mut request = notifier
        .client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some(secret) = &notifier.secret {
        let t = crate::clock::now_unix();
        request = request.header(SIGNATURE_HEADER, signature(secret, t, &body));
    }
    let sent = request.body(body).send().await;
    let res = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Err(ApiError::GatewayTimeout(
                "the notifier did not answer in time".into(),
            ))
        }
        Err(_) => {
            return Err(ApiError::BadGateway(
                "the notifier could not be reached".into(),
            ))
        }
    };
    let status = res.status();
    // Read the whole answer within the same deadline: a notifier that stalls mid-body is late.
    match tokio::time::timeout(timeout, res.bytes()).await {
        Err(_) => {
            return Err(ApiError::GatewayTimeout(
                "the notifier did not finish answering in time".into(),
            ))
        }
        Ok(Err(e)) if e.is_timeout() => {
            return Err(ApiError::GatewayTimeout(
                "the notifier did not finish answering in time".into(),
            ))
        }
        Ok(Err(_)) => {
            return Err(ApiError::BadGateway(
                "the notifier's answer could not be read".into(),
            ))
        }
        Ok(Ok(_)) => {}
    }
    if !status.is_success() {
        return Err(ApiError::BadGateway(format!(
            "the notifier answered {}",
            status.as_u16()
        )));
    }
    Ok(Json(NotifyResult {
        delivered: true,
        upstream_status: status.as_u16(),
    }))
}

impl crate::http::extract::BodyRules for NotifyRequest {}
