//! Appointments: `/v1/appointments`.
pub mod domain;
pub mod routes;
pub mod store;

pub use routes::router;
