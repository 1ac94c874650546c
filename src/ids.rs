//! Opaque resource ids: a short type prefix and 80 random bits in hex (`pat_1f3a…`).
use rand::RngCore;

pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}
