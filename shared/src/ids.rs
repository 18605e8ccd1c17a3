//! Random identifiers and secrets. All randomness comes from the OS CSPRNG.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).expect("the OS random number generator is unavailable");
    buf
}

/// A numeric instance id, as Cloud Elements used. Kept below 2^53 so that
/// JavaScript clients read it back exactly; 53 random bits make a collision
/// vanishingly rare, and the create path's conditional write catches one anyway.
pub fn new_instance_id() -> u64 {
    let n = u64::from_le_bytes(random_bytes::<8>()) & ((1u64 << 53) - 1);
    n.max(1)
}

/// A high-entropy secret token (256 bits), URL-safe.
pub fn new_secret_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// A request id for error bodies and logs when the platform gave none.
pub fn new_request_id() -> String {
    hex::encode(random_bytes::<16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_json_safe_and_nonzero() {
        for _ in 0..1000 {
            let id = new_instance_id();
            assert!(id > 0 && id < (1u64 << 53));
        }
    }

    #[test]
    fn secret_tokens_are_long_and_distinct() {
        let a = new_secret_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_secret_token());
    }
}
