//! Staff accounts as typed values: a username can only be built through `Username::parse`.
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::auth::role::Role;
use crate::error::FieldError;
use crate::versioned::Versioned;

/// The most a sign-in's username may be, in bytes as sent, before anything else is done with it.
pub const MAX_USERNAME_BYTES: usize = 256;

/// The one form a username is compared in, wherever it comes from (sign-in, the login throttle,
/// account creation, the CLI): compatibility-normalised (NFKC, so full-width letters are plain
/// ones), without Unicode whitespace around it, lower-cased.
pub fn normalize_username(raw: &str) -> String {
    let composed: String = raw.nfkc().collect();
    composed.trim().to_lowercase()
}

/// 3–64 characters of `a-z 0-9 . _ -`, stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s = normalize_username(raw);
        let ok = (3..=64).contains(&s.len())
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if ok {
            Ok(Username(s))
        } else {
            Err(FieldError::new(
                "/username",
                "3 to 64 characters of a-z, 0-9, '.', '_' or '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A staff account as served (never with its password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub clinic_ids: Vec<String>,
    pub active: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl Versioned for User {
    fn version(&self) -> i64 {
        self.version
    }
    fn updated_at(&self) -> &str {
        &self.updated_at
    }
}

/// `POST /v1/users`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(pattern = r"^[A-Za-z0-9._-]{3,64}$")]
    pub username: String,
    /// At least 12 characters.
    #[schema(min_length = 12, max_length = 256, example = "correct horse battery")]
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub clinic_ids: Vec<String>,
}

/// `PATCH /v1/users/{id}` (merge patch): absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub role: Option<Role>,
    pub clinic_ids: Option<Vec<String>>,
    pub active: Option<bool>,
    /// A new password, at least 12 characters.
    #[schema(
        min_length = 12,
        max_length = 256,
        example = "correct horse battery staple"
    )]
    pub password: Option<String>,
}

/// A stored account: the user, or the fact that it was deleted.
pub enum StoredUser {
    Live(User),
    Deleted,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_short_plain_and_lower_case() {
        assert_eq!(
            Username::parse(" Nurse.Joy ").unwrap().as_str(),
            "nurse.joy"
        );
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("has space").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn every_spelling_of_a_username_normalizes_to_one() {
        for raw in [
            "reca",
            " reca",
            "reca ",
            "\treca",
            "\u{3000}reca",
            "RECA\u{2003}",
            "\u{ff52}\u{ff45}\u{ff43}\u{ff41}",
        ] {
            assert_eq!(normalize_username(raw), "reca", "{raw:?}");
            assert_eq!(Username::parse(raw).unwrap().as_str(), "reca", "{raw:?}");
        }
    }
}
