//! careq: patient records and clinic queues over HTTP, where every status code means exactly one
//! documented thing.
#![forbid(unsafe_code)]

pub mod catalogue;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod openapi;
pub mod ops;
pub mod startup;
pub mod telemetry;
