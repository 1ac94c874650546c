//! Login throttling (failures per username and client IP in a 15-minute window) and the
//! per-token request rate (a token bucket). Both answer 429 with `Retry-After`.
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{ApiError, RateInfo};

pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Failed logins by (username, IP). A success never clears them: an attacker's IP stays locked
/// even when the real user signs in meanwhile from elsewhere (or from the same network).
pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<(String, IpAddr), VecDeque<Instant>>>,
}

impl LoginThrottle {
    pub fn new(max_failures: u32) -> Self {
        Self {
            max_failures,
            window: LOGIN_WINDOW,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn key(username: &str, ip: IpAddr) -> (String, IpAddr) {
        (username.to_lowercase(), ip)
    }

    /// Refuses an attempt once the limit of failures is reached inside the window.
    pub fn check(&self, username: &str, ip: IpAddr) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = map.get_mut(&Self::key(username, ip)) else {
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

    pub fn record_failure(&self, username: &str, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(Self::key(username, ip))
            .or_default()
            .push_back(Instant::now());
    }
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A token bucket per API token: `burst` requests at once, refilled at `per_second`.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: per_second.max(1) as f64,
            burst: burst.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, key: &str) -> Result<RateInfo, ApiError> {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = map.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.updated).as_secs_f64() * self.per_second)
            .min(self.burst);
        b.updated = now;
        let refill_all = ((self.burst - b.tokens) / self.per_second).ceil() as u64;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(RateInfo {
                limit: self.burst as u32,
                remaining: b.tokens as u32,
                reset_seconds: refill_all.max(1),
            })
        } else {
            let wait = ((1.0 - b.tokens) / self.per_second).ceil().max(1.0) as u64;
            Err(ApiError::TooManyRequests {
                detail: "this token has sent too many requests; slow down".into(),
                retry_after: wait,
                rate: Some(RateInfo {
                    limit: self.burst as u32,
                    remaining: 0,
                    reset_seconds: wait,
                }),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_lock_a_user_and_ip_pair_only() {
        let t = LoginThrottle::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        t.record_failure("nurse", a);
        assert!(t.check("nurse", a).is_ok());
        t.record_failure("Nurse", a);
        let err = t.check("nurse", a).unwrap_err();
        assert_eq!(err.status().code, 429);
        assert!(t.check("nurse", b).is_ok());
        assert!(t.check("doctor", a).is_ok());
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
}
