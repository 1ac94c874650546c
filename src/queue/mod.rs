//! The walk-in queue: tickets with gap-free daily numbers, calling order, transitions, closing
//! the day and the daily report.
pub mod domain;
pub mod live;
pub mod notify;
pub mod routes;
pub mod store;

pub use routes::router;
