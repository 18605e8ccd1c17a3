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
