//! Organizations and users, keyed by the digest of their secrets.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use chrono::Utc;

use super::attrs::{get_s, s, Item};
use super::{classify, Store, StoreError};

/// What authenticating a user secret yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub org_id: String,
    pub org_secret_hash: String,
    pub user_name: String,
    /// The `Element <token>` part of the request's `Authorization`, if any:
    /// it must then belong to the instance the request addresses.
    pub element_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub org_id: String,
    pub org_name: String,
    pub org_secret_hash: String,
    pub user_secret_hash: String,
    pub user_name: String,
}

fn user_pk(user_hash: &str) -> String {
    format!("USER#{user_hash}")
}

fn org_pk(org_id: &str) -> String {
    format!("ORG#{org_id}")
}

impl Store {
    /// Both puts of an account under one condition. `binds_values` says
    /// whether the condition uses `:h`/`:o` (DynamoDB rejects unused values).
    fn account_puts(
        &self,
        a: &NewAccount,
        condition: &str,
        binds_values: bool,
    ) -> Result<[TransactWriteItem; 2], StoreError> {
        let now = crate::model::format_date(Utc::now());
        let build = |item: Item| -> Result<TransactWriteItem, StoreError> {
            let mut put = Put::builder()
                .table_name(&self.tables.accounts)
                .set_item(Some(item))
                .condition_expression(condition);
            if binds_values {
                put = put
                    .expression_attribute_values(":h", s(&a.org_secret_hash))
                    .expression_attribute_values(":o", s(&a.org_id));
            }
            let put = put.build().map_err(|e| StoreError::Config(e.to_string()))?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        let org = Item::from([
            ("pk".into(), s(org_pk(&a.org_id))),
            ("org_id".into(), s(&a.org_id)),
            ("name".into(), s(&a.org_name)),
            ("org_secret_hash".into(), s(&a.org_secret_hash)),
            ("created_at".into(), s(&now)),
        ]);
        let user = Item::from([
            ("pk".into(), s(user_pk(&a.user_secret_hash))),
            ("org_id".into(), s(&a.org_id)),
            ("org_secret_hash".into(), s(&a.org_secret_hash)),
            ("user_name".into(), s(&a.user_name)),
            ("created_at".into(), s(&now)),
        ]);
        Ok([build(org)?, build(user)?])
    }

    /// Creates an organization and its first user, both or neither. Fails
    /// with `ConditionFailed` if either exists already.
    pub async fn create_account(&self, account: &NewAccount) -> Result<(), StoreError> {
        let [org, user] = self.account_puts(account, "attribute_not_exists(pk)", false)?;
        self.client
            .transact_write_items()
            .transact_items(org)
            .transact_items(user)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Creates the account if missing; succeeds if it exists with the same
    /// organization and secret (so restarting the local stack is harmless).
    pub async fn ensure_account(&self, account: &NewAccount) -> Result<(), StoreError> {
        let [org, user] = self.account_puts(
            account,
            "attribute_not_exists(pk) OR (org_id = :o AND org_secret_hash = :h)",
            true,
        )?;
        self.client
            .transact_write_items()
            .transact_items(org)
            .transact_items(user)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    pub async fn find_user(&self, user_secret_hash: &str) -> Result<Option<Account>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.accounts)
            .key("pk", s(user_pk(user_secret_hash)))
            .send()
            .await
            .map_err(classify)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        Ok(Some(Account {
            org_id: get_s(&item, "org_id")?,
            org_secret_hash: get_s(&item, "org_secret_hash")?,
            user_name: get_s(&item, "user_name")?,
            element_token: None,
        }))
    }
}
