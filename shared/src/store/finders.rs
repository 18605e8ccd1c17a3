//! The payload paths instance finders look at, per element
//! (`config::finder`): a webhook without an instance id reads them to know
//! where in its payload to look, then finds the instances through the
//! `by-store` index. Kept in PollStateTable:
//!
//! | pk | sk | written | read |
//! |---|---|---|---|
//! | `finders#<element>` | `path#<payload path>` | PutItem if absent, when an instance with a finder is stored | Query, at most [`MAX_FINDER_PATHS`] |
//!
//! A path outlives the instances that use it (it only costs a lookup that
//! finds nothing), so entries are never removed.

use super::attrs::{get_s, s};
use super::{classify, Store, StoreError};

/// Distinct finder paths per element a webhook may look at: each is one
/// index Query on the webhook's path.
pub const MAX_FINDER_PATHS: i32 = 10;

fn pk(element_key: &str) -> String {
    format!("finders#{element_key}")
}

impl Store {
    /// Records that instances of `element_key` are found at `path`.
    pub async fn register_finder_path(
        &self,
        element_key: &str,
        path: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.poll_state)
            .item("pk", s(pk(element_key)))
            .item("sk", s(format!("path#{path}")))
            .item("path", s(path))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(classify);
        match result {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The payload paths instances of `element_key` are found at.
    pub async fn finder_paths(&self, element_key: &str) -> Result<Vec<String>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.poll_state)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk(element_key)))
            .limit(MAX_FINDER_PATHS)
            .send()
            .await
            .map_err(classify)?;
        out.items().iter().map(|i| get_s(i, "path")).collect()
    }
}
