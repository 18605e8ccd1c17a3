//! Settings every function reads from its environment at init.

use crate::crypto::SecretBox;
use crate::netguard::NetGuard;

/// Largest request body the API accepts (API Gateway itself allows 10 MB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct Settings {
    pub secrets: SecretBox,
    pub guard: NetGuard,
    pub max_body_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("CE_ENCRYPTION_KEY is not set; it must be base64 of 32 random bytes (e.g. `openssl rand -base64 32`)")]
    MissingKey,
    #[error(transparent)]
    BadKey(#[from] crate::crypto::CryptoError),
    #[error("{name} must be {expected}, got '{value}'")]
    BadValue {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
}

impl Settings {
    pub fn from_env() -> Result<Self, SettingsError> {
        let key = std::env::var("CE_ENCRYPTION_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
            .ok_or(SettingsError::MissingKey)?;
        Ok(Self {
            secrets: SecretBox::from_base64_key(&key)?,
            guard: NetGuard::new(env_flag("ALLOW_PRIVATE_NETWORK")?),
            max_body_bytes: env_usize("MAX_BODY_BYTES")?.unwrap_or(DEFAULT_MAX_BODY_BYTES),
        })
    }
}

pub fn env_flag(name: &'static str) -> Result<bool, SettingsError> {
    match std::env::var(name) {
        Err(_) => Ok(false),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "" | "0" | "false" | "no" => Ok(false),
            "1" | "true" | "yes" => Ok(true),
            _ => Err(SettingsError::BadValue {
                name,
                expected: "true or false",
                value: v,
            }),
        },
    }
}

fn env_usize(name: &'static str) -> Result<Option<usize>, SettingsError> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| SettingsError::BadValue {
                name,
                expected: "a whole number",
                value: v,
            }),
    }
}
