//! Tickets and the queue order.
//!
//! Order: the effective priority first, then arrival. A ticket's effective priority is its base
//! level (`normal` 0, `urgent` 1, `emergency` 2) plus one level for every
//! `CAREQ_QUEUE_AGING_MINUTES` (default 30) it has waited, so a normal ticket that has waited an
//! hour ranks with an urgent one that just arrived, and nobody waits for ever.
use serde::{Deserialize, Serialize};

use crate::versioned::Versioned;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Normal,
    Urgent,
    Emergency,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::Normal, Priority::Urgent, Priority::Emergency];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::Urgent => "urgent",
            Priority::Emergency => "emergency",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Priority::Normal, Priority::Urgent, Priority::Emergency]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
    pub fn level(self) -> i64 {
        match self {
            Priority::Normal => 0,
            Priority::Urgent => 1,
            Priority::Emergency => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Waiting,
    Called,
    Served,
    NoShow,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Waiting => "waiting",
            Status::Called => "called",
            Status::Served => "served",
            Status::NoShow => "no_show",
            Status::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Status::Waiting,
            Status::Called,
            Status::Served,
            Status::NoShow,
            Status::Cancelled,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// The statuses a client may move a ticket to (`called` comes from call-next only): what the
/// spec offers for `PATCH /v1/tickets/{id}`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum TicketMove {
    Waiting,
    Served,
    NoShow,
    Cancelled,
}

/// The transitions a ticket may make; `recalled` says whether its one recall is used up.
/// `NoShow → Waiting` is the recall.
pub fn may_move(from: Status, to: Status, recalled: bool) -> bool {
    use Status::*;
    matches!(
        (from, to),
        (Waiting, Cancelled) | (Called, Served) | (Called, NoShow) | (Called, Cancelled)
    ) || (from == NoShow && to == Waiting && !recalled)
}

/// A ticket as served.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: String,
    pub clinic_id: String,
    /// Prefix and daily sequence in the clinic's time zone, e.g. `A-017`.
    pub number: String,
    /// The clinic's local day the ticket belongs to.
    pub day: String,
    pub patient_id: Option<String>,
    pub priority: Priority,
    pub status: Status,
    pub counter: Option<String>,
    pub recalled: bool,
    pub issued_at: String,
    pub called_at: Option<String>,
    pub finished_at: Option<String>,
    /// 1 for the next to be called; null unless waiting.
    pub position: Option<u32>,
    /// Estimated seconds until called, from recent service times; null unless waiting.
    pub estimated_wait_seconds: Option<u64>,
    pub version: i64,
    pub updated_at: String,
    #[serde(skip)]
    pub issued_ms: i64,
}

impl Versioned for Ticket {
    fn version(&self) -> i64 {
        self.version
    }
    fn updated_at(&self) -> &str {
        &self.updated_at
    }
}

/// The milliseconds of waiting that raise a ticket one level.
pub fn aging_step_ms(aging_minutes: u64) -> i64 {
    (aging_minutes.max(1) * 60_000) as i64
}

/// Tickets of `base` priority that rank ahead of a ticket of `level` issued at `now_ms` are those
/// issued at or before the bound (`None`: all of them): they have aged up to its level.
pub fn ahead_bound(base: Priority, level: i64, now_ms: i64, aging_minutes: u64) -> Option<i64> {
    let gap = level - base.level();
    (gap > 0).then(|| now_ms - gap * aging_step_ms(aging_minutes))
}

/// Sorts waiting tickets into calling order at `now_ms`.
pub fn order(waiting: &mut [Ticket], now_ms: i64, aging_minutes: u64) {
    let step = aging_step_ms(aging_minutes);
    let score = |t: &Ticket| t.priority.level() + (now_ms - t.issued_ms).max(0) / step;
    waiting.sort_by(|a, b| score(b).cmp(&score(a)).then(a.issued_ms.cmp(&b.issued_ms)));
}

/// A new ticket as stored.
pub struct NewTicket<'a> {
    pub id: &'a str,
    pub clinic_id: &'a str,
    pub day: &'a str,
    pub seq: i64,
    pub number: &'a str,
    pub patient_id: Option<&'a str>,
    pub priority: Priority,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DayReport {
    pub date: String,
    pub issued: u32,
    pub served: u32,
    pub no_shows: u32,
    pub cancelled: u32,
    /// From issue to call, over tickets that were called.
    pub average_wait_seconds: Option<f64>,
    pub p90_wait_seconds: Option<f64>,
}

impl DayReport {
    /// The figures of a day from each ticket's status and, once called, the seconds it waited.
    pub fn of(date: String, rows: &[(String, Option<f64>)]) -> DayReport {
        let count = |s: &str| rows.iter().filter(|(st, _)| st == s).count() as u32;
        let mut waits: Vec<f64> = rows.iter().filter_map(|(_, w)| *w).collect();
        waits.sort_by(|a, b| a.total_cmp(b));
        let average = (!waits.is_empty()).then(|| waits.iter().sum::<f64>() / waits.len() as f64);
        // The nearest-rank 90th percentile.
        let p90 = (!waits.is_empty())
            .then(|| waits[((waits.len() as f64 * 0.9).ceil() as usize).clamp(1, waits.len()) - 1]);
        DayReport {
            date,
            issued: rows.len() as u32,
            served: count("served"),
            no_shows: count("no_show"),
            cancelled: count("cancelled"),
            average_wait_seconds: average,
            p90_wait_seconds: p90,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: &str, p: Priority, issued_ms: i64) -> Ticket {
        Ticket {
            id: n.into(),
            clinic_id: "c".into(),
            number: n.into(),
            day: "d".into(),
            patient_id: None,
            priority: p,
            status: Status::Waiting,
            counter: None,
            recalled: false,
            issued_at: String::new(),
            called_at: None,
            finished_at: None,
            position: None,
            estimated_wait_seconds: None,
            version: 1,
            updated_at: String::new(),
            issued_ms,
        }
    }

    #[test]
    fn priority_comes_first_then_arrival_and_waiting_ages_a_ticket_up() {
        let min = 60_000;
        let mut q = vec![
            t("n1", Priority::Normal, 0),
            t("u1", Priority::Urgent, 50 * min),
            t("e1", Priority::Emergency, 55 * min),
            t("n2", Priority::Normal, 40 * min),
        ];
        order(&mut q, 56 * min, 30);
        let names: Vec<&str> = q.iter().map(|t| t.number.as_str()).collect();
        // n1 waited 56 min: two half-hours up, level 1 like u1 but earlier; e1 is level 2.
        assert_eq!(names, ["e1", "n1", "u1", "n2"]);
    }

    #[test]
    fn only_the_allowed_transitions_and_one_recall() {
        use Status::*;
        assert!(may_move(Called, Served, false));
        assert!(may_move(NoShow, Waiting, false));
        assert!(!may_move(NoShow, Waiting, true));
        assert!(!may_move(Served, Waiting, false));
        assert!(!may_move(Waiting, Served, false));
    }
}
