//! The clock as careq reads it: every stored and sent time comes from here.
/// Now, as careq stores and sends times: RFC 3339 UTC with millisecond precision.
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Unix seconds of an RFC 3339 timestamp (0 if unparsable).
pub fn unix_of(rfc3339: &str) -> i64 {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .unwrap_or(0)
}

/// Now, in milliseconds since the Unix epoch (ticket times).
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Now, in seconds since the Unix epoch (token and idempotency lifetimes).
pub fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}
