//! The clock as careq reads it: every stored and sent time comes from here.
/// Now, as careq stores and sends times: RFC 3339 UTC with millisecond precision.
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The moment `ms` (Unix milliseconds) as the stored timestamps write it.
pub fn rfc3339_of_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
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

/// The clock day-based rules read (what "today" and "in the future" mean for a request): the
/// system clock, which a test may move to any moment (the server's other times stay real).
#[derive(Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the system clock; 0 outside tests.
    offset_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> jiff::Timestamp {
        let ms = jiff::Timestamp::now().as_millisecond()
            + self.offset_ms.load(std::sync::atomic::Ordering::Relaxed);
        jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::MAX)
    }

    /// Test-only: from now on this clock reads `at` (and runs on from there).
    pub fn set(&self, at: jiff::Timestamp) {
        let offset = at.as_millisecond() - jiff::Timestamp::now().as_millisecond();
        self.offset_ms
            .store(offset, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The calendar date at `at` in the IANA zone `tz` (UTC when the zone is unknown).
pub fn local_date(at: jiff::Timestamp, tz: &str) -> jiff::civil::Date {
    at.to_zoned(zone(tz)).date()
}

/// The IANA zone `tz`, or UTC when it is unknown.
pub fn zone(tz: &str) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// The instants `[from, to)` (Unix seconds) of the calendar day `day` in the zone `tz`: 23 or
/// 25 hours on the days clocks change.
pub fn day_bounds(day: jiff::civil::Date, tz: &str) -> Result<(i64, i64), jiff::Error> {
    let zone = zone(tz);
    let from = day.to_zoned(zone.clone())?.timestamp().as_second();
    let to = day.tomorrow()?.to_zoned(zone)?.timestamp().as_second();
    Ok((from, to))
}
