//! Reading and writing DynamoDB attribute values.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;

use super::StoreError;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn get_s(item: &Item, key: &str) -> Result<String, StoreError> {
    get_opt_s(item, key)?.ok_or_else(|| StoreError::Corrupt(format!("missing attribute {key}")))
}

pub(crate) fn get_opt_s(item: &Item, key: &str) -> Result<Option<String>, StoreError> {
    match item.get(key) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(_) => Err(StoreError::Corrupt(format!(
            "attribute {key} is not a string"
        ))),
    }
}

pub(crate) fn get_n<T: FromStr>(item: &Item, key: &str) -> Result<T, StoreError> {
    get_opt_n(item, key)?.ok_or_else(|| StoreError::Corrupt(format!("missing attribute {key}")))
}

pub(crate) fn get_opt_n<T: FromStr>(item: &Item, key: &str) -> Result<Option<T>, StoreError> {
    match item.get(key) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("attribute {key} is not a valid number"))),
        Some(_) => Err(StoreError::Corrupt(format!(
            "attribute {key} is not a number"
        ))),
    }
}

pub(crate) fn string_list(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().map(|v| s(v.clone())).collect())
}

pub(crate) fn get_string_list(item: &Item, key: &str) -> Result<Vec<String>, StoreError> {
    match item.get(key) {
        None => Ok(Vec::new()),
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|v| match v {
                AttributeValue::S(s) => Ok(s.clone()),
                _ => Err(StoreError::Corrupt(format!(
                    "attribute {key} holds a non-string"
                ))),
            })
            .collect(),
        Some(_) => Err(StoreError::Corrupt(format!(
            "attribute {key} is not a list"
        ))),
    }
}

pub(crate) fn get_time(
    item: &Item,
    key: &str,
) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    let text = get_s(item, key)?;
    chrono::DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| StoreError::Corrupt(format!("attribute {key} is not an RFC 3339 time")))
}
