//! careq: patient records and clinic queues over HTTP, where every status code means exactly one
//! documented thing.
#![forbid(unsafe_code)]

pub mod access;
pub mod appointments;
pub mod auth;
pub mod catalogue;
pub mod cli;
pub mod clinics;
pub mod clock;
pub mod config;
pub mod desk;
pub mod error;
pub mod exports;
pub mod fhir;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod openapi;
pub mod ops;
pub mod patients;
pub mod private_files;
pub mod queue;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod users;
pub mod versioned;

#[cfg(test)]
mod bodies_test;
