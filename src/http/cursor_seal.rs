//! Opaque cursors for lists ordered by personal data (patient names): the sort key is encrypted
//! so names never reach URLs, proxy logs or browser history, and authenticated so only a cursor
//! careq made for the same list opens.
//!
//! The cipher is AES-256-GCM-SIV (RFC 8452, the RustCrypto `aes-gcm-siv` crate), used as a
//! deterministic AEAD: one fixed nonce, which GCM-SIV is built to tolerate (a repeated nonce
//! reveals only that two cursors stand for the same position). Deterministic cursors keep a
//! list's bytes, and so its `ETag`, the same from one identical request to the next. The key is
//! derived (HKDF-SHA256) from a 32-byte secret made once and kept in the database's `meta`
//! table, so cursors survive restarts and are shared by every process on the same database.
//! The list a cursor belongs to is the associated data: a cursor of one list does not open in
//! another. Keys are padded to 32-byte blocks so name lengths do not show.
//!
//! A cursor is `a` + unpadded URL-safe base64 (RFC 4648 §5) of ciphertext ‖ 16-byte tag; the
//! shortest is 65 characters. Anything else, a changed or cut one, one made under another
//! secret or for another list, and the `s…` cursors of earlier versions, is 400 at the
//! cursor parameter.
use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::Sha256;

use crate::error::ApiError;
use crate::store::Store;

/// The `meta` key under which the secret is stored (hex).
const META_KEY: &str = "patient_cursor_secret";
/// What sets these cursors apart from plain ones (`c…`) and from the earlier sealed ones (`s…`).
const PREFIX: char = 'a';
const BLOCK: usize = 32;
const TAG_LEN: usize = 16;

/// The OpenAPI pattern of a sealed cursor: `a` and URL-safe base64 of at least one padded block
/// and the tag (48 bytes, 64 characters).
pub const PATTERN: &str = "^(a[A-Za-z0-9_-]{64,})?$";

/// The list a cursor belongs to; sealed into the cursor as associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `GET /v1/patients`.
    Patients,
    /// `GET /fhir/r4/Patient`.
    FhirPatients,
}

impl Scope {
    fn aad(self) -> &'static [u8] {
        match self {
            Scope::Patients => b"careq cursor: /v1/patients",
            Scope::FhirPatients => b"careq cursor: /fhir/r4/Patient",
        }
    }

    /// The query parameter that carries the cursor, for the 400's pointer.
    fn param(self) -> &'static str {
        match self {
            Scope::Patients => "cursor",
            Scope::FhirPatients => "_cursor",
        }
    }
}

/// Seals and opens cursors under a key derived from a 32-byte secret.
#[derive(Clone)]
pub struct CursorSeal {
    cipher: Aes256GcmSiv,
}

impl std::fmt::Debug for CursorSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSeal(<redacted>)")
    }
}

impl CursorSeal {
    pub fn new(secret: [u8; 32]) -> Self {
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(Some(b"careq cursor seal"), &secret)
            .expand(b"AES-256-GCM-SIV key, v1", &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            cipher: Aes256GcmSiv::new(&key.into()),
        }
    }

    /// The database's secret, made on first start. Two processes starting together agree:
    /// the first insert wins and both read it back.
    pub async fn load(db: &Store) -> Result<Self, ApiError> {
        let mut fresh = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        let fresh = hex::encode(fresh);
        let stored: String = db
            .write(move |conn| {
                Ok(crate::access::records::setting_or_insert(
                    conn, META_KEY, &fresh,
                )?)
            })
            .await?;
        let secret = hex::decode(stored.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| ApiError::internal(format!("meta.{META_KEY} is not 32 bytes of hex")))?;
        Ok(Self::new(secret))
    }

    /// The cursor for a sort key of the list `scope`. The same key always gives the same cursor.
    pub fn seal(&self, scope: Scope, key: &str) -> String {
        // Sort keys never hold NUL (the text rule refuses controls), so NUL pads unambiguously.
        let mut data = key.as_bytes().to_vec();
        data.resize(data.len().div_ceil(BLOCK).max(1) * BLOCK, 0);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::default(),
                Payload {
                    msg: &data,
                    aad: scope.aad(),
                },
            )
            .expect("a cursor is far below GCM-SIV's message limit");
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The sort key a cursor of the list `scope` stands for; 400 at the list's cursor parameter
    /// unless careq sealed it, unchanged, for that list under this database's secret.
    pub fn open(&self, scope: Scope, cursor: &str) -> Result<String, ApiError> {
        let refused = || {
            ApiError::bad_param(
                scope.param(),
                "not a cursor careq made for this list (changed, cut short, from another \
                 server, or from before an upgrade); start again without a cursor",
            )
        };
        let bytes = cursor
            .strip_prefix(PREFIX)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .filter(|b| b.len() >= BLOCK + TAG_LEN && (b.len() - TAG_LEN).is_multiple_of(BLOCK))
            .ok_or_else(refused)?;
        let mut data = self
            .cipher
            .decrypt(
                &Nonce::default(),
                Payload {
                    msg: &bytes,
                    aad: scope.aad(),
                },
            )
            .map_err(|_| refused())?;
        while data.last() == Some(&0) {
            data.pop();
        }
        String::from_utf8(data).map_err(|_| refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "núñez\u{1f}josé\u{1f}pat_0123456789abcdef0123";

    #[test]
    fn sealed_cursors_open_to_their_key_and_hide_it() {
        let seal = CursorSeal::new([7; 32]);
        let cursor = seal.seal(Scope::Patients, KEY);
        assert_eq!(seal.open(Scope::Patients, &cursor).unwrap(), KEY);
        assert_eq!(seal.seal(Scope::Patients, KEY), cursor, "deterministic");
        assert!(!cursor.to_lowercase().contains(&hex::encode("núñez")));
        // Two blocks of key and the tag: 80 bytes, 107 base64 characters.
        assert_eq!(cursor.len(), 1 + 107);
        assert!(regex_free_match(&cursor), "{cursor}");
        let short = seal.seal(Scope::Patients, "a");
        assert_eq!(short.len(), 65, "{short}");
    }

    /// The spec's pattern, checked by hand (the library has no regex engine).
    fn regex_free_match(cursor: &str) -> bool {
        cursor.strip_prefix('a').is_some_and(|b| {
            b.len() >= 64
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
    }

    #[test]
    fn a_changed_cut_foreign_or_other_list_cursor_does_not_open() {
        let seal = CursorSeal::new([7; 32]);
        let cursor = seal.seal(Scope::Patients, KEY);
        let refused = |scope: Scope, c: &str| {
            let e = seal.open(scope, c).unwrap_err();
            assert_eq!(e.status().code, 400, "{c}");
            e
        };
        // Every single character changed in turn (to another base64 letter).
        for i in 1..cursor.len() {
            let mut bytes = cursor.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            refused(Scope::Patients, std::str::from_utf8(&bytes).unwrap());
        }
        refused(Scope::Patients, &cursor[..cursor.len() - 1]);
        refused(Scope::Patients, &cursor[..65]);
        refused(Scope::Patients, &format!("{cursor}A"));
        let other = CursorSeal::new([8; 32]);
        refused(Scope::Patients, &other.seal(Scope::Patients, KEY));
        let e = refused(Scope::FhirPatients, &cursor);
        assert_eq!(e.problem().errors[0].pointer, "query/_cursor");
        for bad in [
            "",
            "a",
            "s00",
            &format!("s{}", "ab".repeat(48)),
            &format!("a{}", "A".repeat(64)),
            &format!("c{}", hex::encode(KEY)),
        ] {
            let e = refused(Scope::Patients, bad);
            assert_eq!(e.problem().errors[0].pointer, "query/cursor");
        }
    }

    #[test]
    fn the_patient_search_spec_states_the_sealed_cursor_pattern() {
        let spec = crate::openapi::spec();
        let params = spec["paths"]["/v1/patients"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let cursor = params.iter().find(|p| p["name"] == "cursor").unwrap();
        assert_eq!(cursor["schema"]["pattern"], PATTERN);
    }
}
