//! Counts what a [`super::Store`] asks of DynamoDB: requests by operation,
//! and the capacity units the responses report.
//!
//! Every DynamoDB request is money and latency on AWS, so each later change
//! to the store's access pattern is measured, not guessed: `ce-load` reads
//! these counters and reports them per delivered event.
//!
//! The interceptor asks for `ReturnConsumedCapacity = TOTAL` on every
//! operation that takes it (when the caller did not ask for more), and adds
//! up the `ConsumedCapacity` of each answer, a single object or a list (one
//! per table, for batches and transactions). AWS reports real units from
//! item sizes ("Read/write capacity mode", DynamoDB Developer Guide); moto,
//! the local server, reports a constant per call (moto/dynamodb/responses.py,
//! `include_consumed_capacity`: 1.0 for writes, 0.5 for reads), so locally the
//! units are counted but only the request counts are meaningful.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

/// What one operation cost, summed over its calls.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OperationCount {
    pub requests: u64,
    /// Capacity units as the server reported them (reads and writes).
    pub capacity_units: f64,
}

/// Counters by operation name (`PutItem`, `UpdateItem`, …).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metered {
    pub operations: BTreeMap<String, OperationCount>,
}

impl Metered {
    pub fn requests(&self) -> u64 {
        self.operations.values().map(|c| c.requests).sum()
    }

    pub fn capacity_units(&self) -> f64 {
        self.operations.values().map(|c| c.capacity_units).sum()
    }

    /// The counts of `self` since `earlier` (a snapshot of the same meter).
    pub fn since(&self, earlier: &Metered) -> Metered {
        let mut operations = BTreeMap::new();
        for (name, now) in &self.operations {
            let before = earlier.operations.get(name).copied().unwrap_or_default();
            let delta = OperationCount {
                requests: now.requests - before.requests,
                capacity_units: now.capacity_units - before.capacity_units,
            };
            if delta.requests > 0 {
                operations.insert(name.clone(), delta);
            }
        }
        Metered { operations }
    }

    /// Adds another meter's counts (several functions' stores of one run).
    pub fn add(&mut self, other: &Metered) {
        for (name, count) in &other.operations {
            let sum = self.operations.entry(name.clone()).or_default();
            sum.requests += count.requests;
            sum.capacity_units += count.capacity_units;
        }
    }

    /// `PutItem 2, UpdateItem 4` in name order: for reports.
    pub fn summary(&self) -> String {
        self.operations
            .iter()
            .map(|(name, c)| format!("{name} {}", c.requests))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One meter per store (each function has its own), cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RequestMeter {
    counts: Arc<Mutex<Metered>>,
}

impl RequestMeter {
    pub fn snapshot(&self) -> Metered {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn record(&self, operation: &str, capacity_units: f64) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.operations.entry(operation.to_string()).or_default();
        count.requests += 1;
        count.capacity_units += capacity_units;
    }

    /// `client` with this meter's interceptor added.
    pub fn wrap(&self, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        let config = client
            .config()
            .to_builder()
            .interceptor(Meter(self.clone()))
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}

#[derive(Debug)]
struct Meter(RequestMeter);

/// Sets `return_consumed_capacity` on the inputs of these operations, unless
/// the caller chose a value.
macro_rules! ask_for_capacity {
    ($input:expr, $($ty:path),+ $(,)?) => {
        $(
            if let Some(input) = $input.downcast_mut::<$ty>() {
                input.return_consumed_capacity.get_or_insert(ReturnConsumedCapacity::Total);
                return;
            }
        )+
    };
}

fn ask(input: &mut aws_smithy_runtime_api::client::interceptors::context::Input) {
    use aws_sdk_dynamodb::operation as op;
    ask_for_capacity!(
        input,
        op::get_item::GetItemInput,
        op::put_item::PutItemInput,
        op::update_item::UpdateItemInput,
        op::delete_item::DeleteItemInput,
        op::query::QueryInput,
        op::scan::ScanInput,
        op::batch_get_item::BatchGetItemInput,
        op::batch_write_item::BatchWriteItemInput,
        op::transact_get_items::TransactGetItemsInput,
        op::transact_write_items::TransactWriteItemsInput,
    );
}

/// The units of one answer's `ConsumedCapacity`: an object, or a list of
/// them (batches and transactions report one per table).
fn reported_units(body: &[u8]) -> f64 {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Consumed {
        One(Units),
        Many(Vec<Units>),
    }
    #[derive(serde::Deserialize)]
    struct Units {
        #[serde(rename = "CapacityUnits", default)]
        capacity_units: f64,
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "ConsumedCapacity")]
        consumed: Option<Consumed>,
    }
    match serde_json::from_slice::<Answer>(body)
        .ok()
        .and_then(|a| a.consumed)
    {
        Some(Consumed::One(u)) => u.capacity_units,
        Some(Consumed::Many(list)) => list.iter().map(|u| u.capacity_units).sum(),
        None => 0.0,
    }
}

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "RequestMeter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        ask(context.input_mut());
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_string())
            .unwrap_or_else(|| "unknown".into());
        let units = context
            .response()
            .body()
            .bytes()
            .map(reported_units)
            .unwrap_or(0.0);
        self.0.record(&operation, units);
        Ok(())
    }
}

/// An item's size as DynamoDB bills it ("Item sizes and formats", DynamoDB
/// Developer Guide, docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
/// each attribute's UTF-8 name plus its value; a string its UTF-8 length, a
/// number about one byte per two significant digits plus one, a binary its
/// length, a Boolean or null one byte, a list or map 3 bytes plus one per
/// element plus its elements (and a map's names). Writes cost one unit per
/// started KB of the larger of the item before and after; strongly
/// consistent reads one unit per started 4 KB.
pub fn item_size(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &aws_sdk_dynamodb::types::AttributeValue) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    match value {
        V::S(s) => s.len(),
        V::N(n) => {
            let digits = n.chars().filter(char::is_ascii_digit).count();
            digits.div_ceil(2) + 1
        }
        V::B(b) => b.as_ref().len(),
        V::Bool(_) | V::Null(_) => 1,
        V::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        V::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        V::Ss(set) => set.iter().map(String::len).sum(),
        V::Ns(set) => set.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        V::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

/// A stored item's size, and the part of it that is the attempt log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemSample {
    pub bytes: usize,
    pub attempt_log_bytes: usize,
}

impl ItemSample {
    pub fn of(
        item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    ) -> Self {
        ItemSample {
            bytes: item_size(item),
            attempt_log_bytes: item
                .get("attempt_log")
                .map(|v| "attempt_log".len() + value_size(v))
                .unwrap_or(0),
        }
    }
}

/// Write units for an item of `bytes`.
pub fn write_units(bytes: usize) -> u64 {
    bytes.div_ceil(1024).max(1) as u64
}

/// Strongly consistent read units for an item of `bytes`.
pub fn read_units(bytes: usize) -> u64 {
    bytes.div_ceil(4096).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_units_read_objects_and_lists() {
        assert_eq!(
            reported_units(br#"{"ConsumedCapacity":{"TableName":"t","CapacityUnits":2.5}}"#),
            2.5
        );
        assert_eq!(
            reported_units(
                br#"{"ConsumedCapacity":[{"TableName":"a","CapacityUnits":2},{"TableName":"b","CapacityUnits":4}]}"#
            ),
            6.0
        );
        assert_eq!(reported_units(b"{}"), 0.0);
        assert_eq!(reported_units(b"<html>"), 0.0);
    }

    #[test]
    fn item_sizes_follow_the_documented_rules() {
        use aws_sdk_dynamodb::types::AttributeValue as V;
        let item = std::collections::HashMap::from([
            ("id".to_string(), V::S("evt_1".into())),
            ("n".to_string(), V::N("12345".into())),
            ("ok".to_string(), V::Bool(true)),
        ]);
        // id: 2 + 5; n: 1 + (3 + 1); ok: 2 + 1.
        assert_eq!(item_size(&item), 7 + 5 + 3);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
        assert_eq!(read_units(4097), 2);
    }

    #[test]
    fn since_subtracts_and_drops_idle_operations() {
        let meter = RequestMeter::default();
        meter.record("GetItem", 0.5);
        let before = meter.snapshot();
        meter.record("PutItem", 1.0);
        meter.record("PutItem", 1.0);
        let delta = meter.snapshot().since(&before);
        assert_eq!(delta.requests(), 2);
        assert_eq!(delta.capacity_units(), 2.0);
        assert_eq!(delta.summary(), "PutItem 2");
    }
}
