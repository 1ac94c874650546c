//! Login throttling (failures per username and client IP in a 15-minute window) and the
//! per-token request rate (a token bucket). Both answer 429 with `Retry-After`.
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{ApiError, RateInfo};

pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// What failed sign-ins are counted against: the account when the username names one (so every
/// spelling that reaches it shares one counter), else the normalized name that was tried.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LoginKey {
    Account(String),
    Name(String),
}

/// Failed logins by (account or name, IP). A success never clears them: an attacker's IP stays
/// locked even when the real user signs in meanwhile from elsewhere (or from the same network).
/// Only the newest `max_failures` times of a key are kept (they alone decide a lockout), and keys
/// whose window has passed are swept out as the map grows, so memory stays bounded by the
/// failures of the last window.
pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    state: Mutex<Failures>,
}

struct Failures {
    by_key: HashMap<(LoginKey, IpAddr), VecDeque<Instant>>,
    /// Size at which the next sweep of expired keys runs.
    sweep_at: usize,
}

const MIN_SWEEP: usize = 1024;

impl LoginThrottle {
    pub fn new(max_failures: u32) -> Self {
        Self::with_window(max_failures, LOGIN_WINDOW)
    }

    pub fn with_window(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window,
            state: Mutex::new(Failures {
                by_key: HashMap::new(),
                sweep_at: MIN_SWEEP,
            }),
        }
    }

    /// Refuses an attempt once the limit of failures is reached inside the window.
    pub fn check(&self, key: &LoginKey, ip: IpAddr) -> Result<(), ApiError> {
        self.check_at(key, ip, Instant::now())
    }

    fn check_at(&self, key: &LoginKey, ip: IpAddr, now: Instant) -> Result<(), ApiError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = state.by_key.get_mut(&(key.clone(), ip)) else {
            return Ok(());
        };
        while list
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            list.pop_front();
        }
        if list.len() as u32 >= self.max_failures {
            let oldest = *list.front().expect("non-empty");
            let wait = self.window.saturating_sub(now.duration_since(oldest));
            return Err(ApiError::TooManyRequests {
                detail: "too many failed sign-ins for this user from this address".into(),
                retry_after: wait.as_secs().max(1),
                rate: None,
            });
        }
        Ok(())
    }

    pub fn record_failure(&self, key: &LoginKey, ip: IpAddr) {
        self.record_failure_at(key, ip, Instant::now())
    }

    fn record_failure_at(&self, key: &LoginKey, ip: IpAddr, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let list = state.by_key.entry((key.clone(), ip)).or_default();
        list.push_back(now);
        while list.len() > self.max_failures as usize {
            list.pop_front();
        }
        if state.by_key.len() >= state.sweep_at {
            let window = self.window;
            state.by_key.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
            // Sweep again once the live keys have doubled, so sweeping stays amortised O(1).
            state.sweep_at = (state.by_key.len() * 2).max(MIN_SWEEP);
        }
    }

    /// How many keys are held now (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.by_key.len()
    }
}

type Keyed = governor::RateLimiter<
    String,
    governor::state::keyed::DefaultKeyedStateStore<String>,
    governor::clock::DefaultClock,
    governor::middleware::StateInformationMiddleware,
>;

/// Requests per API token (GCRA, from the `governor` crate): `burst` at once, refilled at
/// `per_second`. Keys whose bucket is full again are forgotten every so often, so a stream of
/// random tokens cannot grow memory without end.
pub struct RateLimiter {
    /// The time one request's worth of the bucket takes to refill.
    refill: Duration,
    burst: u32,
    keyed: Keyed,
    checks: AtomicU64,
    /// What the 429 says.
    detail: &'static str,
}

/// Checks between sweeps of forgotten keys.
const SWEEP_EVERY: u64 = 4096;

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32) -> Self {
        let per_second = per_second.max(1);
        Self::with_refill(
            Duration::from_secs(1) / per_second,
            burst,
            "this token has sent too many requests; slow down",
        )
    }

    /// A bucket of `burst` refilled at `per_minute` (for slow, public writers such as kiosks).
    pub fn per_minute(per_minute: u32, burst: u32, detail: &'static str) -> Self {
        Self::with_refill(Duration::from_secs(60) / per_minute.max(1), burst, detail)
    }

    fn with_refill(refill: Duration, burst: u32, detail: &'static str) -> Self {
        let burst = burst.max(1);
        let quota = governor::Quota::with_period(refill.max(Duration::from_nanos(1)))
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::new(burst).expect("non-zero"));
        Self {
            refill,
            burst,
            keyed: governor::RateLimiter::keyed(quota).with_middleware(),
            checks: AtomicU64::new(0),
            detail,
        }
    }

    pub fn check(&self, key: &str) -> Result<RateInfo, ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.keyed.retain_recent();
            self.keyed.shrink_to_fit();
        }
        match self.keyed.check_key(&key.to_string()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let refill_all = self.refill * (self.burst - remaining.min(self.burst));
                Ok(RateInfo {
                    limit: self.burst,
                    remaining,
                    reset_seconds: refill_all.as_secs_f64().ceil().max(1.0) as u64,
                })
            }
            Err(not_until) => {
                let now = governor::clock::Clock::now(&governor::clock::DefaultClock::default());
                let wait = not_until.wait_time_from(now).as_secs_f64().ceil().max(1.0) as u64;
                Err(ApiError::TooManyRequests {
                    detail: self.detail.into(),
                    retry_after: wait,
                    rate: Some(RateInfo {
                        limit: self.burst,
                        remaining: 0,
                        reset_seconds: wait,
                    }),
                })
            }
        }
    }

    /// Tokens with state held now (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.keyed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> LoginKey {
        LoginKey::Name(s.into())
    }

    #[test]
    fn failures_lock_a_key_and_ip_pair_only() {
        let t = LoginThrottle::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let nurse = LoginKey::Account("usr_1".into());
        t.record_failure(&nurse, a);
        assert!(t.check(&nurse, a).is_ok());
        t.record_failure(&nurse, a);
        let err = t.check(&nurse, a).unwrap_err();
        assert_eq!(err.status().code, 429);
        assert!(t.check(&nurse, b).is_ok());
        assert!(t.check(&name("doctor"), a).is_ok());
    }

    #[test]
    fn a_hundred_thousand_distinct_names_do_not_pile_up() {
        let t = LoginThrottle::with_window(10, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let start = Instant::now();
        let mut most = 0;
        for i in 0..100_000u64 {
            // One failure a second: at most the last minute's keys may be held.
            let now = start + Duration::from_secs(i);
            t.record_failure_at(&name(&format!("user{i}")), ip, now);
            most = most.max(t.tracked_keys());
        }
        assert!(most <= 2 * MIN_SWEEP, "held {most} keys at once");
        // A burst inside one window is all live, and is kept whole.
        let burst = LoginThrottle::with_window(10, Duration::from_secs(60));
        for i in 0..5_000u64 {
            burst.record_failure_at(&name(&format!("u{i}")), ip, start);
        }
        assert_eq!(burst.tracked_keys(), 5_000);
    }

    #[test]
    fn one_key_keeps_only_the_failures_that_decide_a_lockout() {
        let t = LoginThrottle::with_window(3, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.3".parse().unwrap();
        let start = Instant::now();
        for i in 0..1000 {
            t.record_failure_at(&name("x"), ip, start + Duration::from_millis(i));
        }
        let state = t.state.lock().unwrap();
        assert_eq!(state.by_key[&(name("x"), ip)].len(), 3);
        drop(state);
        assert!(t
            .check_at(&name("x"), ip, start + Duration::from_secs(2))
            .is_err());
        assert!(t
            .check_at(&name("x"), ip, start + Duration::from_secs(61))
            .is_ok());
    }

    #[test]
    fn the_bucket_allows_a_burst_then_refuses() {
        let r = RateLimiter::new(1, 3);
        for _ in 0..3 {
            r.check("t").unwrap();
        }
        match r.check("t").unwrap_err() {
            ApiError::TooManyRequests {
                retry_after, rate, ..
            } => {
                assert!(retry_after >= 1);
                assert_eq!(rate.unwrap().remaining, 0);
            }
            other => panic!("{other:?}"),
        }
        assert!(r.check("other").is_ok());
    }

    #[test]
    fn a_hundred_thousand_distinct_tokens_do_not_pile_up() {
        // A bucket of one refilled a million times a second is full again within a microsecond,
        // so every key is forgettable at the next sweep.
        let r = RateLimiter::new(1_000_000, 1);
        let mut most = 0;
        for i in 0..100_000 {
            r.check(&format!("token-{i}")).unwrap();
            most = most.max(r.tracked_keys());
        }
        assert!(most <= 2 * SWEEP_EVERY as usize, "held {most} keys at once");
    }
}
