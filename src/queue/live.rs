//! The live queue: every change is broadcast as a JSON event; `GET …/queue/live` upgrades to a
//! WebSocket (101) that pushes them (a plain GET answers 426), and `/board/{clinic_id}` is the
//! waiting-room page that shows them. Events carry ticket numbers and counters only: no names,
//! no patient ids. A consumer that falls behind is dropped; the queue never waits for one.
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::domain::{Status, Ticket};
pub use super::events::{channel, BoardTicket, QueueEvent, Room, SocketCounts, SocketSlot};
use super::records;
use crate::auth::Caller;
use crate::clinics::domain::Clinic;
use crate::clinics::records as clinic_records;
use crate::error::ApiError;
use crate::state::AppState;

/// Publishes a change to this process's sockets and announces it to the other careq processes
/// on the same database (PostgreSQL); nobody listening is fine.
pub fn publish(st: &AppState, clinic_id: &str, kind: &'static str, ticket: Option<&Ticket>) {
    let event = QueueEvent {
        clinic_id: clinic_id.to_string(),
        kind,
        ticket: ticket.map(BoardTicket::from),
    };
    if let Ok(text) = serde_json::to_string(&Announced {
        origin: origin(),
        clinic_id: event.clinic_id.clone(),
        kind: kind.to_string(),
        ticket: event.ticket.clone(),
    }) {
        st.db.announce(text);
    }
    let _ = st.events.send(event);
}

/// A queue change as it crosses to other processes. Ticket numbers and counters only, as on
/// the board: never a name or a patient id.
#[derive(Serialize, Deserialize)]
struct Announced {
    /// The process that made the change (it has told its own sockets already).
    origin: u64,
    clinic_id: String,
    kind: String,
    ticket: Option<BoardTicket>,
}

/// This process's id among those sharing the database.
fn origin() -> u64 {
    static ORIGIN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(rand::random)
}

/// Passes changes announced by other processes to this process's sockets, for as long as the
/// app lives. Returns at once on an engine with one process per database (SQLite).
pub async fn relay_announcements(st: AppState) {
    let Some(mut heard) = st.db.announcements() else {
        return;
    };
    loop {
        let text = match heard.recv().await {
            Ok(text) => text,
            // Fell behind: the boards' next event carries the whole state anyway.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Ok(a) = serde_json::from_str::<Announced>(&text) else {
            continue;
        };
        if a.origin == origin() {
            continue;
        }
        let Some(kind) = KINDS.iter().copied().find(|k| *k == a.kind) else {
            continue;
        };
        let _ = st.events.send(QueueEvent {
            clinic_id: a.clinic_id,
            kind,
            ticket: a.ticket,
        });
    }
}

/// Every kind of queue event.
const KINDS: &[&str] = &["issued", "called", "updated", "closed", "reopened", REKEYED];

#[derive(Serialize)]
struct Board<'a> {
    kind: &'a str,
    /// The clinic's name, for the screen's heading.
    clinic: &'a str,
    /// The clinic's IANA time zone: the screen's clock shows the clinic's time.
    timezone: &'a str,
    ticket: Option<BoardTicket>,
    /// The most recently called tickets, newest first.
    now_serving: Vec<BoardTicket>,
    /// The next tickets in calling order.
    next: Vec<BoardTicket>,
    closed: bool,
}

async fn board_state(
    st: &AppState,
    clinic: &Clinic,
    kind: &str,
    ticket: Option<BoardTicket>,
) -> Result<String, ApiError> {
    let now = st.config.clock.now();
    let (aging, read_for) = (st.config.queue_aging_minutes, clinic.clone());
    let (closed, queue) = st
        .db
        .read(move |conn| {
            let day = super::local_day_at(&read_for, now);
            let closed = records::is_day_closed(conn, &read_for.id, &day)?;
            let queue = super::queue_of(aging, conn, &read_for, now)?;
            Ok((closed, queue))
        })
        .await?;
    let mut called: Vec<&Ticket> = queue
        .iter()
        .filter(|t| t.status == Status::Called)
        .collect();
    called.sort_by(|a, b| b.called_at.cmp(&a.called_at));
    let board = Board {
        kind,
        clinic: &clinic.name,
        timezone: &clinic.timezone,
        ticket,
        now_serving: called.into_iter().take(5).map(BoardTicket::from).collect(),
        next: queue
            .iter()
            .filter(|t| t.status == Status::Waiting)
            .take(6)
            .map(BoardTicket::from)
            .collect(),
        closed,
    };
    serde_json::to_string(&board).map_err(ApiError::internal)
}

/// The live endpoint takes no query parameter: credentials never travel in a URL (it is logged,
/// and leaks through `Referer`). The board key that `?board_key=` once carried is offered as a
/// subprotocol now, so the old form answers 400 naming the parameter.
#[derive(Deserialize)]
pub struct LiveParams {}

/// The subprotocol prefix a waiting-room screen offers its clinic's board key under
/// (`careq.board.<key>`, beside `careq`), as staff screens offer their token.
pub const WS_BOARD_PREFIX: &str = "careq.board.";

/// Queue events of this kind only make live sockets re-check their authorisation (a board key
/// was replaced); they are not sent to anyone.
pub const REKEYED: &str = "rekeyed";

/// What a live socket was opened with, checked again while it lives.
enum SocketAuth {
    Board {
        key_hash: String,
    },
    Staff {
        token_hash: String,
        ip: std::net::IpAddr,
    },
}

impl SocketAuth {
    /// Whether the key is still the clinic's, or the token still live and of a member.
    async fn still_valid(&self, st: &AppState, clinic_id: &str) -> bool {
        match self {
            SocketAuth::Board { key_hash } => {
                let id = clinic_id.to_string();
                let stored = st
                    .db
                    .read(move |conn| Ok(clinic_records::board_key_hash(conn, &id)?))
                    .await;
                matches!(stored, Ok(Some(stored)) if constant_eq(&stored, key_hash))
            }
            SocketAuth::Staff { token_hash, ip } => matches!(
                crate::auth::tokens::caller_of(&st.db, token_hash.clone(), *ip).await,
                Ok(Some(c)) if c.sees_clinic(clinic_id)
            ),
        }
    }
}

/// The clinic, for a staff member of it or a holder of its board key; else 401 / 404.
async fn authorize(
    st: &AppState,
    clinic_id: &str,
    key: Option<&str>,
    caller: Result<Caller, ApiError>,
) -> Result<(Clinic, SocketAuth), ApiError> {
    let id = clinic_id.to_string();
    if let Some(key) = key {
        // Only the key's hash is stored; compare hashes, in constant time.
        let key_hash = crate::auth::tokens::hash_token(key);
        let expected = key_hash.clone();
        let clinic = st
            .db
            .read(move |conn| {
                let stored = clinic_records::board_key_hash(conn, &id)?;
                if !matches!(stored, Some(ref k) if constant_eq(k, &expected)) {
                    return Err(crate::auth::invalid_token());
                }
                clinic_records::find_clinic(conn, &id)?
                    .ok_or_else(|| ApiError::NotFound("no clinic with this id".into()))
            })
            .await?;
        return Ok((clinic, SocketAuth::Board { key_hash }));
    }
    let caller = caller?;
    let reader = caller.clone();
    let clinic = st
        .db
        .read(move |conn| crate::clinics::visible(conn, &reader, &id))
        .await?;
    Ok((
        clinic,
        SocketAuth::Staff {
            token_hash: caller.token_hash,
            ip: caller.ip,
        },
    ))
}

pub(crate) fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Live queue events over a WebSocket (101); a plain GET answers 426
#[utoipa::path(get, path = "/v1/clinics/{id}/queue/live", tag = "queue", params(("id" = String, Path, pattern = "^cln_[0-9a-f]{20}$")),
    responses((status = 101, description = "Switching to WebSocket; JSON events follow. A browser, which cannot set `Authorization` here, offers its token as the subprotocol `careq.bearer.TOKEN`, and a waiting-room screen its clinic's board key as `careq.board.KEY`, beside `careq`; the answer picks `careq`. No credential is taken from the URL"),
        (status = 400, description = "A query parameter was sent (the endpoint takes none; a board key goes in the subprotocol)"),
        (status = 401, description = "No token or board key, or one that is not (or no longer) valid"),
        (status = 404, description = "No such clinic, or not yours"),
        (status = 426, description = "Not a WebSocket upgrade"),
        (status = 503, description = "The clinic has as many live sockets of this kind (staff screens, or board screens) open as it may")))]
pub async fn live(
    State(st): State<AppState>,
    Path(id): Path<String>,
    crate::http::extract::ApiQuery(LiveParams {}): crate::http::extract::ApiQuery<LiveParams>,
    headers: HeaderMap,
    caller: Result<Caller, ApiError>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let key = crate::auth::websocket_credential(&headers, WS_BOARD_PREFIX);
    let (clinic, auth) = authorize(&st, &id, key, caller).await?;
    // A browser that offered a credential as a subprotocol needs one echoed back: `careq`.
    let ws = ws
        .map_err(|_| ApiError::UpgradeRequired)?
        .protocols(["careq"]);
    let (room, max, who) = match auth {
        SocketAuth::Board { .. } => (
            Room::Board,
            st.config.max_board_sockets_per_clinic,
            "board screens",
        ),
        SocketAuth::Staff { .. } => (
            Room::Staff,
            st.config.max_sockets_per_clinic,
            "staff screens",
        ),
    };
    let slot = SocketCounts::take(&st.sockets, &clinic.id, room, max).ok_or_else(|| {
        ApiError::ServiceUnavailable {
            detail: format!(
                "this clinic has as many live connections of {who} open as it may; try again later"
            ),
            retry_after: 5,
        }
    })?;
    Ok(ws.on_upgrade(move |socket| stream(st, clinic, auth, slot, socket)))
}

/// How often an idle socket re-checks its authorisation.
const RECHECK: Duration = Duration::from_secs(15);

/// Sends a snapshot, then one message per change of this clinic's queue. A client that cannot
/// keep up (the channel laps it, or a send takes over 5 s) is disconnected; so is one whose key
/// was replaced or whose token was revoked (checked before every message and every 15 s), with
/// a close frame saying why.
async fn stream(
    st: AppState,
    clinic: Clinic,
    auth: SocketAuth,
    _slot: SocketSlot,
    mut socket: WebSocket,
) {
    let mut events = st.events.subscribe();
    let mut stopping = st.stopping.subscribe();
    if *stopping.borrow_and_update() {
        close_with(&mut socket, 1001, "the server is restarting; reconnect").await;
        return;
    }
    if let Ok(first) = board_state(&st, &clinic, "snapshot", None).await {
        if socket.send(Message::Text(first.into())).await.is_err() {
            return;
        }
    }
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.reset();
    loop {
        tokio::select! {
            event = events.recv() => {
                let event = match event {
                    Ok(e) => e,
                    Err(_) => break, // lagged or closed: drop this consumer
                };
                if event.clinic_id != clinic.id {
                    continue;
                }
                if !auth.still_valid(&st, &clinic.id).await {
                    close_revoked(&mut socket).await;
                    break;
                }
                if event.kind == REKEYED {
                    continue;
                }
                let Ok(text) = board_state(&st, &clinic, event.kind, event.ticket).await else { break };
                match tokio::time::timeout(Duration::from_secs(5), socket.send(Message::Text(text.into()))).await {
                    Ok(Ok(())) => {}
                    _ => break,
                }
            }
            _ = recheck.tick() => {
                if !auth.still_valid(&st, &clinic.id).await {
                    close_revoked(&mut socket).await;
                    break;
                }
            }
            incoming = socket.recv() => {
                match incoming {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    _ => {}
                }
            }
            _ = stopping.changed() => {
                close_with(&mut socket, 1001, "the server is restarting; reconnect").await;
                break;
            }
        }
    }
}

/// Closes with 1008 (policy violation): the key or token this socket was opened with is gone.
async fn close_revoked(socket: &mut WebSocket) {
    close_with(socket, 1008, "the board key or token is no longer valid").await;
}

/// Sends a close frame, waiting at most 2 s for a slow client.
async fn close_with(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = axum::extract::ws::CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}

const BOARD_HTML: &str = include_str!("board.html");
const BOARD_JS: &str = include_str!("board.js");
const BOARD_CSS: &str = include_str!("board.css");
const BOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// The waiting-room page (open it once as `/board/{clinic_id}?key=BOARD_KEY`: the page moves
/// the key into its storage and out of the address bar). Like the desk pages it sends
/// `Referrer-Policy: no-referrer`, so the address with the key never reaches a `Referer`.
pub async fn board_page(headers: HeaderMap) -> Response {
    crate::http::pages::html(&headers, BOARD_HTML, BOARD_CSP)
}

pub async fn board_script(headers: HeaderMap) -> Response {
    crate::http::pages::static_file(&headers, BOARD_JS, "text/javascript; charset=utf-8")
}

pub async fn board_style(headers: HeaderMap) -> Response {
    crate::http::pages::static_file(&headers, BOARD_CSS, "text/css; charset=utf-8")
}
