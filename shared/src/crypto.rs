//! Encryption at rest for store credentials and signature keys (AES-256-GCM).
//!
//! The key comes from configuration (`CE_ENCRYPTION_KEY`, base64 of 32 bytes);
//! in AWS the SAM template feeds it from an SSM SecureString. Every
//! ciphertext is bound to the record it belongs to through the AEAD's
//! associated data, so a sealed blob copied onto another instance fails to open.
//!
//! **Key rotation.** The configured value may be a comma-separated list of
//! keys: the first seals, every one opens. Each sealed value names its key
//! (`v2:<key id>:<base64>`; the id is derived from the key, so nothing else
//! needs configuring), so opening picks the right key at once; values sealed
//! before key ids (`v1:`) are tried against each key. `ce-admin reseal`
//! re-seals every instance under the first key, after which the old keys can
//! be dropped (runbook: docs/deploy.md).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The format before key ids: `v1:<base64(nonce ‖ ciphertext)>`.
const FORMAT_V1: &str = "v1:";
/// `v2:<key id>:<base64(nonce ‖ ciphertext)>`.
const FORMAT_V2: &str = "v2:";
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("CE_ENCRYPTION_KEY must be base64 of exactly 32 bytes (or a comma-separated list of such keys, the sealing key first)")]
    BadKey,
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value failed authentication (wrong key or tampered)")]
    Unauthentic,
    #[error("sealed value is under key {0}, which is not configured")]
    UnknownKey(String),
}

#[derive(Clone)]
struct Key {
    id: String,
    cipher: Aes256Gcm,
}

/// The sealing key and every key that may open.
#[derive(Clone)]
pub struct SecretBox {
    /// `keys[0]` seals; all open.
    keys: Vec<Key>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material; ids are safe.
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "SecretBox({})", ids.join(","))
    }
}

/// A key's public id: the first 8 bytes of SHA-256 over a label and the key,
/// hex. Stable, and reveals nothing usable about the key.
pub fn key_id(key: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"connector-events key id\0");
    h.update(key);
    hex::encode(&h.finalize()[..8])
}

impl SecretBox {
    /// One key, or a comma-separated list: the first seals, all open.
    pub fn from_base64_key(keys_b64: &str) -> Result<Self, CryptoError> {
        let mut keys = Vec::new();
        for part in keys_b64.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let key = B64.decode(part).map_err(|_| CryptoError::BadKey)?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(CryptoError::BadKey);
        }
        Self::from_keys(&keys)
    }

    pub fn from_key_bytes(key: &[u8]) -> Result<Self, CryptoError> {
        Self::from_keys(&[key.to_vec()])
    }

    /// The first key seals, every key opens.
    pub fn from_keys(keys: &[Vec<u8>]) -> Result<Self, CryptoError> {
        let keys = keys
            .iter()
            .map(|key| {
                if key.len() != 32 {
                    return Err(CryptoError::BadKey);
                }
                Ok(Key {
                    id: key_id(key),
                    cipher: Aes256Gcm::new_from_slice(key).map_err(|_| CryptoError::BadKey)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(CryptoError::BadKey);
        }
        Ok(Self { keys })
    }

    /// A fresh random key, base64-encoded, for local development.
    pub fn generate_key_base64() -> String {
        B64.encode(crate::ids::random_bytes::<32>())
    }

    /// The id of the key that seals.
    pub fn sealing_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Whether a sealed value is under a key other than the sealing key (or
    /// predates key ids): `ce-admin reseal` seals it again.
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        match sealed
            .strip_prefix(FORMAT_V2)
            .and_then(|r| r.split_once(':'))
        {
            Some((id, _)) => id != self.sealing_key_id(),
            None => true,
        }
    }

    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let key = &self.keys[0];
        let nonce_bytes = crate::ids::random_bytes::<NONCE_LEN>();
        let nonce = Nonce::from_slice(&nonce_bytes);
        let ciphertext = key
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
        format!("{FORMAT_V2}{}:{}", key.id, B64.encode(blob))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, CryptoError> {
        if let Some(rest) = sealed.strip_prefix(FORMAT_V2) {
            let (id, encoded) = rest.split_once(':').ok_or(CryptoError::Malformed)?;
            let key = self
                .keys
                .iter()
                .find(|k| k.id == id)
                .ok_or_else(|| CryptoError::UnknownKey(id.to_string()))?;
            return decrypt(&key.cipher, encoded, context);
        }
        let encoded = sealed
            .strip_prefix(FORMAT_V1)
            .ok_or(CryptoError::Malformed)?;
        // Before key ids: each key in turn, the sealing key first.
        let mut last = CryptoError::Unauthentic;
        for key in &self.keys {
            match decrypt(&key.cipher, encoded, context) {
                Ok(plain) => return Ok(plain),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

fn decrypt(cipher: &Aes256Gcm, encoded: &str, context: &str) -> Result<Vec<u8>, CryptoError> {
    let blob = B64.decode(encoded).map_err(|_| CryptoError::Malformed)?;
    if blob.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| CryptoError::Unauthentic)
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
        assert!(sealed.starts_with(&format!("v2:{}:", sb.sealing_key_id())));
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
        assert!(matches!(
            other.open(&sealed, "c"),
            Err(CryptoError::UnknownKey(_))
        ));
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

    #[test]
    fn rotation_opens_old_values_and_seals_under_the_first_key() {
        let (old, new) = ([7u8; 32].to_vec(), [9u8; 32].to_vec());
        let before = SecretBox::from_keys(std::slice::from_ref(&old)).unwrap();
        let sealed_old = before.seal(b"s", "c");
        // Pre-key-id values (v1) from the old key, too.
        let v1 = {
            let blob = sealed_old.splitn(3, ':').nth(2).unwrap();
            format!("v1:{blob}")
        };
        let rotated = SecretBox::from_keys(&[new.clone(), old.clone()]).unwrap();
        assert_eq!(rotated.open(&sealed_old, "c").unwrap(), b"s");
        assert_eq!(rotated.open(&v1, "c").unwrap(), b"s");
        assert!(rotated.needs_reseal(&sealed_old) && rotated.needs_reseal(&v1));
        let resealed = rotated.seal(b"s", "c");
        assert!(!rotated.needs_reseal(&resealed));
        // Once every value is resealed, the old key can go.
        let only_new = SecretBox::from_keys(&[new]).unwrap();
        assert_eq!(only_new.open(&resealed, "c").unwrap(), b"s");
        assert!(matches!(
            only_new.open(&sealed_old, "c"),
            Err(CryptoError::UnknownKey(_))
        ));
        // The list form of the setting.
        let listed = format!("{}, {}", B64.encode([9u8; 32]), B64.encode(&old));
        let from_setting = SecretBox::from_base64_key(&listed).unwrap();
        assert_eq!(from_setting.sealing_key_id(), rotated.sealing_key_id());
        assert_eq!(from_setting.open(&sealed_old, "c").unwrap(), b"s");
    }
}
