//! Account administration behind `ce-admin`.

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
