//! `POST /v1/tickets/{id}/notify {message}`: forwards a message about a ticket to the configured
//! notifier (an SMS or messaging webhook). Unset → 501; the notifier's error status or an
//! unreadable answer → 502; no answer within `CAREQ_NOTIFY_TIMEOUT_MS` → 504.
use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::access::{self, Action, Touch};
use crate::auth::{perm, Require};
use crate::error::{ApiError, FieldError};
use crate::http::extract::JsonBody;
use crate::patients::Use;
use crate::startup::AppState;

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
#[utoipa::path(post, path = "/v1/tickets/{id}/notify", tag = "queue", params(("id" = String, Path)),
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
    let mut conn = st.db.read().await?;
    // Sending a sealed patient's id to a third party is a write naming the patient: 423.
    let ticket = super::usable_ticket(&mut *conn, &caller, &id, Use::Write).await?;
    drop(conn);
    let Some(url) = st.config.notify_url.clone() else {
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
    let timeout = Duration::from_millis(st.config.notify_timeout_ms);
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(ApiError::internal)?;
    let body = serde_json::json!({
        "ticket_id": ticket.id, "clinic_id": ticket.clinic_id, "number": ticket.number,
        "patient_id": ticket.patient_id, "message": message,
    });
    let sent = client.post(&url).json(&body).send().await;
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
