//! Parsing of the Cloud Elements `Authorization` header and hashing of the
//! account secrets it carries.
//!
//! `Authorization: User <secret>, Organization <secret>[, Element <token>]`.
//! Secrets are stored only as SHA-256 digests: they are generated with 256 bits
//! of entropy, so a plain digest is enough and lets the user record be found
//! by key; the organization secret is then compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user_secret: String,
    pub org_secret: String,
    pub element_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

const HEADER_HINT: &str =
    "expected 'Authorization: User <user secret>, Organization <organization secret>'";

pub fn parse_authorization(header: Option<&str>) -> Result<Credentials, ApiError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized(format!("missing Authorization header; {HEADER_HINT}"))
        })?;
    let mut user = None;
    let mut org = None;
    let mut element = None;
    for part in header.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (scheme, value) = part
            .split_once(char::is_whitespace)
            .map(|(s, v)| (s, v.trim()))
            .unwrap_or((part, ""));
        let slot = match scheme.to_ascii_lowercase().as_str() {
            "user" => &mut user,
            "organization" => &mut org,
            "element" => &mut element,
            _ => {
                return Err(ApiError::Unauthorized(format!(
                    "unknown part '{scheme}' in Authorization header; {HEADER_HINT}"
                )))
            }
        };
        if value.is_empty() {
            return Err(ApiError::Unauthorized(format!(
                "empty {scheme} secret in Authorization header; {HEADER_HINT}"
            )));
        }
        *slot = Some(value.to_string());
    }
    match (user, org) {
        (Some(user_secret), Some(org_secret)) => Ok(Credentials {
            user_secret,
            org_secret,
            element_token: element,
        }),
        _ => Err(ApiError::Unauthorized(format!(
            "Authorization header lacks the User or Organization secret; {HEADER_HINT}"
        ))),
    }
}

/// Hex SHA-256 of a secret, with a domain label so a user secret's digest can
/// never be mistaken for an organization's or an instance token's.
pub fn hash_secret(domain: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(domain.as_bytes());
    hasher.update([0u8]);
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

pub fn user_secret_hash(secret: &str) -> String {
    hash_secret("user", secret)
}

pub fn org_secret_hash(secret: &str) -> String {
    hash_secret("organization", secret)
}

pub fn instance_token_hash(token: &str) -> String {
    hash_secret("instance-token", token)
}

/// Constant-time equality for secrets, digests and signatures.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // `ct_eq` on slices of different length returns false without leaking
    // where they differ; the length itself is not secret.
    a.ct_eq(b).into()
}

/// Authenticates a request's `Authorization` header against the accounts
/// table. Every failure is the same 401, so a caller cannot tell a wrong user
/// secret from a wrong organization secret.
pub async fn authenticate(
    store: &crate::store::Store,
    header: Option<&str>,
) -> Result<crate::store::Account, ApiError> {
    let creds = parse_authorization(header)?;
    let denied = || ApiError::Unauthorized("invalid User or Organization secret".into());
    let mut account = store
        .find_user(&user_secret_hash(&creds.user_secret))
        .await?
        .ok_or_else(denied)?;
    let given = org_secret_hash(&creds.org_secret);
    if !constant_time_eq(given.as_bytes(), account.org_secret_hash.as_bytes()) {
        return Err(denied());
    }
    account.element_token = creds.element_token;
    Ok(account)
}

/// Cloud Elements' instance token: when a request carries `Element <token>`,
/// it must be the token of the instance the request addresses (compared as
/// digests, in constant time); 401 otherwise. Without one, the User and
/// Organization secrets alone reach every instance of the organization.
pub fn check_instance_token(
    account: &crate::store::Account,
    instance_token_hash_stored: &str,
) -> Result<(), ApiError> {
    match &account.element_token {
        None => Ok(()),
        Some(token) => {
            let given = instance_token_hash(token);
            if constant_time_eq(given.as_bytes(), instance_token_hash_stored.as_bytes()) {
                Ok(())
            } else {
                Err(ApiError::Unauthorized(
                    "the Element token does not belong to this instance".into(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_user_and_organization_in_any_case_and_order() {
        let c = parse_authorization(Some("Organization o-1 , user u-1")).unwrap();
        assert_eq!(c.user_secret, "u-1");
        assert_eq!(c.org_secret, "o-1");
        assert_eq!(c.element_token, None);
    }

    #[test]
    fn accepts_a_trailing_element_token() {
        let c = parse_authorization(Some("User u, Organization o, Element tok=")).unwrap();
        assert_eq!(c.element_token.as_deref(), Some("tok="));
    }

    #[test]
    fn rejects_missing_or_partial_headers() {
        for h in [
            None,
            Some(""),
            Some("User u"),
            Some("Bearer abc"),
            Some("User , Organization "),
        ] {
            let err = parse_authorization(h).unwrap_err();
            assert_eq!(err.status(), 401, "{h:?}");
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let c = parse_authorization(Some("User topsecret, Organization alsosecret")).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("topsecret") && !shown.contains("alsosecret"));
    }

    #[test]
    fn hashes_are_domain_separated() {
        assert_ne!(user_secret_hash("x"), org_secret_hash("x"));
        assert_eq!(user_secret_hash("x"), user_secret_hash("x"));
        assert_eq!(user_secret_hash("x").len(), 64);
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
