//! Argon2id password hashing. Hashing and verifying run on the blocking pool: they are meant to be
//! slow.
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

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
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY.clone());
    tokio::task::spawn_blocking(move || {
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
}
