//! What the live queue passes around, below every handler: the event each change of a queue
//! becomes, its broadcast channel, and the count of open live sockets per clinic. The app's
//! state holds these, so they import nothing of the app above the queue's domain.
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::domain::{Status, Ticket};

/// What a board (or any live client) sees of a ticket.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BoardTicket {
    pub number: String,
    pub status: Status,
    pub counter: Option<String>,
}

impl From<&Ticket> for BoardTicket {
    fn from(t: &Ticket) -> Self {
        BoardTicket {
            number: t.number.clone(),
            status: t.status,
            counter: t.counter.clone(),
        }
    }
}

/// One change to a clinic's queue.
#[derive(Debug, Clone, Serialize)]
pub struct QueueEvent {
    #[serde(skip)]
    pub clinic_id: String,
    /// `issued`, `called`, `updated`, `closed`, `reopened`, or `snapshot` on connect.
    pub kind: &'static str,
    pub ticket: Option<BoardTicket>,
}

/// The broadcast channel every queue change goes through.
pub fn channel() -> broadcast::Sender<QueueEvent> {
    broadcast::channel(1024).0
}

/// Which room of a clinic's live sockets a socket takes: board screens have their own, small
/// one (`CAREQ_MAX_BOARD_SOCKETS_PER_CLINIC`), so a board key, which sits on a wall screen and
/// may leak, can never take the room of the staff screens (`CAREQ_MAX_SOCKETS_PER_CLINIC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Room {
    Staff,
    Board,
}

/// Open live sockets per clinic and room.
#[derive(Default)]
pub struct SocketCounts(std::sync::Mutex<std::collections::HashMap<(String, Room), usize>>);

/// One open socket's place in its clinic's count; dropping it (the socket ends, or the upgrade
/// never happens) frees the place.
pub struct SocketSlot {
    counts: std::sync::Arc<SocketCounts>,
    key: (String, Room),
}

impl SocketCounts {
    /// Open sockets over all clinics.
    pub fn total(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    pub fn take(
        counts: &std::sync::Arc<SocketCounts>,
        clinic_id: &str,
        room: Room,
        max: usize,
    ) -> Option<SocketSlot> {
        let key = (clinic_id.to_string(), room);
        let mut map = counts.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key.clone()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SocketSlot {
            counts: counts.clone(),
            key,
        })
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut map = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}
