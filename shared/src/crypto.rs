//! Encryption at rest for store credentials and signature keys (AES-256-GCM).
//!
//! The key comes from configuration (`CE_ENCRYPTION_KEY`, base64 of 32 bytes);
//! in AWS the SAM template feeds it from a NoEcho parameter/SSM. Every
//! ciphertext is bound to the record it belongs to through the AEAD's
//! associated data, so a sealed blob copied onto another instance fails to open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// Version prefix on every sealed value, so the key or algorithm can be
/// rotated later without guessing what an old blob is.
const FORMAT_V1: &str = "v1:";
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("CE_ENCRYPTION_KEY must be base64 of exactly 32 bytes")]
    BadKey,
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value failed authentication (wrong key or tampered)")]
    Unauthentic,
}

#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn from_base64_key(key_b64: &str) -> Result<Self, CryptoError> {
        let key = B64
            .decode(key_b64.trim())
            .map_err(|_| CryptoError::BadKey)?;
        Self::from_key_bytes(&key)
    }

    pub fn from_key_bytes(key: &[u8]) -> Result<Self, CryptoError> {
        if key.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| CryptoError::BadKey)?;
        Ok(Self { cipher })
    }

    /// A fresh random key, base64-encoded, for local development.
    pub fn generate_key_base64() -> String {
        B64.encode(crate::ids::random_bytes::<32>())
    }

    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let nonce_bytes = crate::ids::random_bytes::<NONCE_LEN>();
        let nonce = Nonce::from_slice(&nonce_bytes);
        let ciphertext = self
            .cipher
            .encrypt(
                nonce,
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            // AES-GCM encryption only fails for inputs over 64 GiB.
            .expect("AES-GCM encryption of a bounded payload cannot fail");
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&ciphertext);
        format!("{FORMAT_V1}{}", B64.encode(blob))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, CryptoError> {
        let encoded = sealed
            .strip_prefix(FORMAT_V1)
            .ok_or(CryptoError::Malformed)?;
        let blob = B64.decode(encoded).map_err(|_| CryptoError::Malformed)?;
        if blob.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Unauthentic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_box() -> SecretBox {
        SecretBox::from_key_bytes(&[7u8; 32]).unwrap()
    }

    #[test]
    fn round_trips_and_hides_plaintext() {
        let sb = secret_box();
        let sealed = sb.seal(b"ck_live_secret", "instance:42");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("ck_live_secret"));
        assert_eq!(sb.open(&sealed, "instance:42").unwrap(), b"ck_live_secret");
    }

    #[test]
    fn nonces_differ_between_seals() {
        let sb = secret_box();
        assert_ne!(sb.seal(b"x", "c"), sb.seal(b"x", "c"));
    }

    #[test]
    fn a_blob_moved_to_another_record_does_not_open() {
        let sb = secret_box();
        let sealed = sb.seal(b"secret", "instance:1");
        assert_eq!(
            sb.open(&sealed, "instance:2"),
            Err(CryptoError::Unauthentic)
        );
    }

    #[test]
    fn wrong_key_and_tampering_are_detected() {
        let sealed = secret_box().seal(b"secret", "c");
        let other = SecretBox::from_key_bytes(&[8u8; 32]).unwrap();
        assert_eq!(other.open(&sealed, "c"), Err(CryptoError::Unauthentic));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(secret_box().open(&tampered, "c").is_err());
        assert_eq!(
            secret_box().open("garbage", "c"),
            Err(CryptoError::Malformed)
        );
    }

    #[test]
    fn rejects_short_keys() {
        assert_eq!(
            SecretBox::from_base64_key("c2hvcnQ=").unwrap_err(),
            CryptoError::BadKey
        );
        assert!(SecretBox::from_base64_key(&SecretBox::generate_key_base64()).is_ok());
    }
}
