//! One test binary for every API test: the app is spawned on a free port per test.
mod auth;
mod catalogue;
mod clinics;
mod global_http;
mod helpers;
mod idempotency;
mod logs;
mod ops;
mod patients;
mod patients_batch;
mod permissions;
mod raw_http;
mod readme;
mod users;
