//! The PostgreSQL engine against the local server: each test has a database of its own.
mod concurrency;
mod connections;
mod helpers;
mod migrations;
mod units;
