//! Account and key administration behind `ce-admin`.

use shared::crypto::SecretBox;
use shared::store::{NewAccount, Store, StoreError};

/// The secrets of a new account, shown once and stored only as hashes.
pub struct CreatedAccount {
    pub org_id: String,
    pub org_secret: String,
    pub user_secret: String,
}

impl CreatedAccount {
    pub fn authorization_header(&self) -> String {
        format!(
            "User {}, Organization {}",
            self.user_secret, self.org_secret
        )
    }
}

/// Creates an organization and its first user with fresh 256-bit secrets.
pub async fn create_account(
    store: &Store,
    org_name: &str,
    user_name: &str,
) -> Result<CreatedAccount, StoreError> {
    let created = CreatedAccount {
        org_id: shared::ids::new_request_id(),
        org_secret: shared::ids::new_secret_token(),
        user_secret: shared::ids::new_secret_token(),
    };
    store
        .create_account(&NewAccount {
            org_id: created.org_id.clone(),
            org_name: org_name.to_string(),
            org_secret_hash: shared::auth::org_secret_hash(&created.org_secret),
            user_secret_hash: shared::auth::user_secret_hash(&created.user_secret),
            user_name: user_name.to_string(),
        })
        .await?;
    Ok(created)
}

/// What `ce-admin reseal` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResealReport {
    pub instances: usize,
    pub resealed: usize,
    /// Already under the sealing key.
    pub current: usize,
    /// Changed meanwhile by a PATCH (which sealed them under the new key).
    pub changed: usize,
    /// Open with none of the configured keys: listed for a person.
    pub unreadable: Vec<u64>,
}

/// Re-seals every instance's secrets under the sealing key of `secrets`
/// (its first key), each a conditional write on the old sealed value.
/// Resumable: run it again and it does only what is left.
pub async fn reseal_all(store: &Store, secrets: &SecretBox) -> Result<ResealReport, StoreError> {
    let mut report = ResealReport::default();
    let mut after = None;
    loop {
        let (page, next) = store.sealed_secrets_page(after, 100).await?;
        for (id, sealed) in page {
            report.instances += 1;
            if !secrets.needs_reseal(&sealed) {
                report.current += 1;
                continue;
            }
            let context = shared::model::secrets_context(id);
            let Ok(plain) = secrets.open(&sealed, &context) else {
                report.unreadable.push(id);
                continue;
            };
            let resealed = secrets.seal(&plain, &context);
            if store.reseal_instance(id, &sealed, &resealed).await? {
                report.resealed += 1;
            } else {
                report.changed += 1;
            }
        }
        match next {
            Some(id) => after = Some(id),
            None => return Ok(report),
        }
    }
}
