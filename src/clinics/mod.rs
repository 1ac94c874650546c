//! Clinics: `/v1/clinics`. Admins write; members read; others get 404 as if it did not exist.
pub mod domain;
pub mod routes;
pub mod store;

pub use routes::router;
