//! Opaque cursors for lists ordered by personal data (patient names): the sort key is encrypted
//! so names never reach URLs, proxy logs or browser history.
//!
//! The scheme is deterministic and SIV-like, built from HMAC-SHA256 alone: the key is padded to
//! a multiple of 32 bytes (hiding name lengths), `iv = HMAC(secret, "iv" ‖ padded)[..16]`, and
//! the key is XORed with the keystream `HMAC(secret, "ks" ‖ iv ‖ counter)`. The cursor is
//! `s` + hex(iv ‖ ciphertext). The secret is made once and kept in the database's `meta` table,
//! so cursors survive restarts and are shared by every process on the same database.
//!
//! Opening does not verify the iv: any well-formed cursor (at least 16 bytes) opens to *some*
//! position in the keyset order, which is all a cursor is, and the query behind it still shows
//! only what the caller may see. This keeps schema-valid cursors (any hex of that length)
//! answerable, as the OpenAPI pattern promises. Only confidentiality is wanted here.
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::error::ApiError;
use crate::http::paging::bad_cursor;
use crate::store::Store;

/// The `meta` key under which the secret is stored (hex).
const META_KEY: &str = "patient_cursor_secret";
const IV_LEN: usize = 16;
const BLOCK: usize = 32;

/// The OpenAPI pattern of a sealed cursor: `s` and at least the iv's 16 bytes, in hex.
pub const PATTERN: &str = "^(s([0-9a-f]{2}){16,})?$";

/// Seals and opens cursors with a 32-byte secret.
#[derive(Clone)]
pub struct CursorSeal {
    secret: [u8; 32],
}

impl std::fmt::Debug for CursorSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSeal(<redacted>)")
    }
}

impl CursorSeal {
    pub fn new(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    /// The database's secret, made on first start. Two processes starting together agree:
    /// the first insert wins and both read it back.
    pub async fn load(db: &Store) -> Result<Self, ApiError> {
        let mut fresh = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        let fresh = hex::encode(fresh);
        let stored: String = db
            .write(move |tx| {
                let fresh = fresh.clone();
                Box::pin(async move { Ok(tx.setting_or_insert(META_KEY, &fresh).await?) })
            })
            .await?;
        let secret = hex::decode(stored.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| ApiError::internal(format!("meta.{META_KEY} is not 32 bytes of hex")))?;
        Ok(Self::new(secret))
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.secret).expect("any key length works");
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// XORs `data` with the keystream that belongs to `iv`.
    fn apply_keystream(&self, iv: &[u8], data: &mut [u8]) {
        for (n, chunk) in data.chunks_mut(BLOCK).enumerate() {
            let block = self.mac(&[b"ks", iv, &(n as u64).to_be_bytes()]);
            chunk.iter_mut().zip(block).for_each(|(b, k)| *b ^= k);
        }
    }

    /// The cursor for a sort key. The same key always gives the same cursor.
    pub fn seal(&self, key: &str) -> String {
        // Sort keys never hold NUL (the text rule refuses controls), so NUL pads unambiguously.
        let mut data = key.as_bytes().to_vec();
        data.resize(data.len().div_ceil(BLOCK).max(1) * BLOCK, 0);
        let iv = self.mac(&[b"iv", &data]);
        let iv = &iv[..IV_LEN];
        self.apply_keystream(iv, &mut data);
        format!("s{}{}", hex::encode(iv), hex::encode(data))
    }

    /// The sort key a cursor stands for; 400 unless it is `s`, hex and at least the iv long.
    pub fn open(&self, cursor: &str) -> Result<String, ApiError> {
        let bytes = cursor
            .strip_prefix('s')
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() >= IV_LEN)
            .ok_or_else(bad_cursor)?;
        let (iv, sealed) = bytes.split_at(IV_LEN);
        let mut data = sealed.to_vec();
        self.apply_keystream(iv, &mut data);
        while data.last() == Some(&0) {
            data.pop();
        }
        Ok(String::from_utf8_lossy(&data).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_cursors_open_to_their_key_and_hide_it() {
        let seal = CursorSeal::new([7; 32]);
        let key = "núñez\u{1f}josé\u{1f}pat_0123456789abcdef0123";
        let cursor = seal.seal(key);
        assert_eq!(seal.open(&cursor).unwrap(), key);
        assert_eq!(seal.seal(key), cursor, "deterministic");
        assert!(!cursor.contains(&hex::encode("núñez")));
        assert_eq!(
            cursor.len(),
            1 + 2 * (IV_LEN + 2 * BLOCK),
            "padded to whole blocks"
        );
        let other = CursorSeal::new([8; 32]);
        assert_ne!(
            other.open(&cursor).unwrap(),
            key,
            "another secret opens to elsewhere"
        );
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

    #[test]
    fn any_long_enough_hex_cursor_is_a_position_and_others_are_refused() {
        let seal = CursorSeal::new([1; 32]);
        assert!(seal.open(&format!("s{}", "ab".repeat(16))).is_ok());
        assert!(seal.open(&format!("s{}", "ff".repeat(40))).is_ok());
        for bad in ["s00", "c0011", "s0g", &format!("c{}", "ab".repeat(16))] {
            assert_eq!(seal.open(bad).unwrap_err().status().code, 400, "{bad}");
        }
    }
}
