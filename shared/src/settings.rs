//! Settings every function reads from its environment at init.

use crate::crypto::SecretBox;
use crate::netguard::NetGuard;

/// Largest request body the API accepts (API Gateway itself allows 10 MB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// Largest webhook body ingestion accepts: what API Gateway accepts. A
/// WooCommerce order with many line items or plugin meta passes 256 KiB, and
/// WooCommerce never re-sends a refused delivery.
pub const DEFAULT_MAX_WEBHOOK_BODY_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Settings {
    pub secrets: SecretBox,
    pub guard: NetGuard,
    pub max_body_bytes: usize,
    /// The webhook ingestion route's body limit.
    pub max_webhook_body_bytes: usize,
    /// The public base URL of this API (`https://…execute-api…`, or
    /// `http://127.0.0.1:3000` locally), for the webhook URLs we hand out.
    pub public_base_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("neither CE_ENCRYPTION_KEY (base64 of 32 random bytes, e.g. `openssl rand -base64 32`) nor CE_ENCRYPTION_KEY_PARAMETER (the name of an SSM SecureString holding it) is set")]
    MissingKey,
    #[error("reading the encryption key from SSM parameter {name}: {detail}")]
    Parameter { name: String, detail: String },
    #[error(transparent)]
    BadKey(#[from] crate::crypto::CryptoError),
    #[error("{name} must be {expected}, got '{value}'")]
    BadValue {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
}

/// Where the encryption key comes from: the key itself (local development)
/// or the name of an SSM SecureString holding it (AWS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Inline(String),
    SsmParameter(String),
}

impl KeySource {
    pub fn from_env() -> Result<Self, SettingsError> {
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match (
            read("CE_ENCRYPTION_KEY"),
            read("CE_ENCRYPTION_KEY_PARAMETER"),
        ) {
            (Some(key), _) => Ok(KeySource::Inline(key)),
            (None, Some(name)) => Ok(KeySource::SsmParameter(name)),
            (None, None) => Err(SettingsError::MissingKey),
        }
    }

    /// The base64 key, fetched and decrypted from SSM when it lives there.
    pub async fn resolve(&self, sdk: &aws_config::SdkConfig) -> Result<String, SettingsError> {
        match self {
            KeySource::Inline(key) => Ok(key.clone()),
            KeySource::SsmParameter(name) => {
                let failed = |detail: String| SettingsError::Parameter {
                    name: name.clone(),
                    detail,
                };
                let out = aws_sdk_ssm::Client::new(sdk)
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| failed(aws_sdk_ssm::error::DisplayErrorContext(&e).to_string()))?;
                out.parameter()
                    .and_then(|p| p.value())
                    .map(str::to_string)
                    .ok_or_else(|| failed("the parameter has no value".into()))
            }
        }
    }
}

impl Settings {
    /// Reads every setting from the environment, fetching the key from SSM
    /// if configured so. Runs once per container, at init.
    pub async fn load(sdk: &aws_config::SdkConfig) -> Result<Self, SettingsError> {
        let key = KeySource::from_env()?.resolve(sdk).await?;
        Self::with_key(&key)
    }

    /// Every setting from the environment except the key, which is given.
    pub fn with_key(key_b64: &str) -> Result<Self, SettingsError> {
        Ok(Self {
            secrets: SecretBox::from_base64_key(key_b64)?,
            guard: NetGuard::new(env_flag("ALLOW_PRIVATE_NETWORK")?),
            max_body_bytes: env_usize("MAX_BODY_BYTES")?.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            max_webhook_body_bytes: env_usize("MAX_WEBHOOK_BODY_BYTES")?
                .unwrap_or(DEFAULT_MAX_WEBHOOK_BODY_BYTES),
            public_base_url: std::env::var("PUBLIC_BASE_URL")
                .ok()
                .map(|u| u.trim().trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty()),
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

/// What every function builds at init: the AWS SDK configuration (one per
/// container, shared by every client), its settings and the state store.
pub async fn function_context() -> Result<
    (aws_config::SdkConfig, Settings, crate::store::Store),
    Box<dyn std::error::Error + Send + Sync>,
> {
    let sdk = crate::store::sdk_config_from_env().await;
    let settings = Settings::load(&sdk).await?;
    let store = crate::store::Store::from_env(&sdk)?;
    store.warm_up().await;
    Ok((sdk, settings, store))
}
