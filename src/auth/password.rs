//! Argon2id password hashing. Hashing and verifying run on the blocking pool: they are meant to be
//! slow.
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

use crate::error::{ApiError, FieldError};

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 256;

/// Checks the length rule; the pointer names where the password was sent.
pub fn validate(password: &str, pointer: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&n) {
        return Err(ApiError::invalid(vec![FieldError::new(
            pointer,
            format!("must be {MIN_LENGTH} to {MAX_LENGTH} characters"),
        )]));
    }
    Ok(())
}

fn hash_now(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with default parameters")
        .to_string()
}

pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(ApiError::internal)
}

/// Verifies a password; with no stored hash (unknown user) it verifies against a fixed dummy so
/// that unknown users and wrong passwords take the same time.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    verify_with(password, stored, None).await
}

async fn verify_with(
    password: String,
    stored: Option<String>,
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
) -> bool {
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY.clone());
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let ok = PasswordHash::new(&stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && known
    })
    .await
    .unwrap_or(false)
}

/// Bounds the Argon2 work a server does at once. Each hash holds about 19 MiB for its duration,
/// so unbounded concurrent sign-ins could exhaust memory: at most `slots` run at a time, at most
/// four times as many wait for a slot, and anyone beyond that gets 503 with `Retry-After`.
pub struct HashGate {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// Decrements the waiting count however the wait ends (a client that hangs up included).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl HashGate {
    /// `slots` of `None` means one per core.
    pub fn new(slots: Option<usize>) -> Self {
        let slots = slots
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            waiting: AtomicUsize::new(0),
            max_waiting: slots * 4,
        }
    }

    async fn enter(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::ServiceUnavailable {
                detail: "too many sign-ins are being checked at once; try again shortly".into(),
                retry_after: 1,
            });
        }
        let _waiting = Waiting(&self.waiting);
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(ApiError::internal)
    }

    /// `verify` inside the gate. The slot moves into the blocking task, so it is held until the
    /// hash is done even when the request that asked is dropped meanwhile.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let permit = self.enter().await?;
        Ok(verify_with(password, stored, Some(permit)).await)
    }

    /// `hash` inside the gate.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let permit = self.enter().await?;
        tokio::task::spawn_blocking(move || {
            let _slot = permit;
            hash_now(&password)
        })
        .await
        .map_err(ApiError::internal)
    }
}

static DUMMY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_now("not a real password, only for timing"));

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_do() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), Some(h.clone())).await);
        assert!(!verify("wrong horse battery".into(), Some(h)).await);
        assert!(!verify("not a real password, only for timing".into(), None).await);
        assert_eq!(
            validate("short", "/password").unwrap_err().status().code,
            422
        );
    }

    #[tokio::test]
    async fn the_gate_refuses_what_it_cannot_queue() {
        let gate = HashGate::new(Some(1));
        let held = gate.enter().await.unwrap();
        let mut waiters = Vec::new();
        for _ in 0..4 {
            let g = &gate;
            waiters.push(Box::pin(async move { g.enter().await.map(drop) }));
        }
        // Poll each waiter once so it registers as waiting.
        for w in waiters.iter_mut() {
            assert!(futures_util::FutureExt::now_or_never(w.as_mut()).is_none());
        }
        let err = gate.enter().await.unwrap_err();
        assert_eq!(err.status().code, 503);
        // Waiters that give up free their place in the queue.
        drop(waiters);
        drop(held);
        assert!(gate.enter().await.is_ok());
    }
}
