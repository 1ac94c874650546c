//! The ground floor of careq: what a query sends and reads back ([`Value`], [`Row`]), how
//! storage fails ([`StoreError`]), the two kinds of connection a unit of work gets ([`Read`],
//! [`Write`]: a read unit cannot call a write) and the [`Store`] handle that runs typed units
//! on an [`Engine`]. This crate imports nothing of careq: no feature, no HTTP, no roles.
//!
//! A unit is a plain closure over a connection. It runs on an engine's own thread next to its
//! connection, so a statement costs a function call, not a hand-off between threads; the
//! `async` caller awaits only the unit's answer. Units are typed end to end: the closure's own
//! `Result<T, E>` comes back, with no `dyn Any` in between.
#![forbid(unsafe_code)]

pub mod access;
pub mod appointments;
pub mod clinics;
mod error;
pub mod jobs;
pub mod patients;
pub mod queue;
pub mod schema;
mod store;
pub mod users;
mod value;

pub use error::StoreError;
pub use store::{Engine, ReadJob, Store, WriteJob};
pub use value::{Dialect, EachRow, Read, ReadExt, Row, Value, Write};
