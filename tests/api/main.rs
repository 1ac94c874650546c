//! One test binary for every API test: the app is spawned on a free port per test.
mod catalogue;
mod global_http;
mod helpers;
mod ops;
mod raw_http;
mod readme;
