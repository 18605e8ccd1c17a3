//! One EventBridge rule per distinct polling interval, named
//! `<prefix>poll-every-<N>m`, with schedule `rate(N minutes)` and the poller
//! as its target (input `{"intervalMinutes": N}`). A rule exists while at
//! least one instance polls at its interval.

use aws_sdk_eventbridge::types::{RuleState, Target};
use shared::error::ApiError;
use shared::store::Store;

#[derive(Debug, Clone)]
pub struct PollSchedules {
    client: aws_sdk_eventbridge::Client,
    rule_prefix: String,
    poller_arn: String,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "EventBridge call failed: {what}");
    ApiError::Unavailable("the scheduler is unavailable; retry later".into())
}

pub fn schedule_expression(minutes: u32) -> String {
    if minutes == 1 {
        "rate(1 minute)".into()
    } else {
        format!("rate({minutes} minutes)")
    }
}

impl PollSchedules {
    pub fn new(client: aws_sdk_eventbridge::Client, rule_prefix: &str, poller_arn: &str) -> Self {
        Self {
            client,
            rule_prefix: rule_prefix.to_string(),
            poller_arn: poller_arn.to_string(),
        }
    }

    /// From `POLLER_FUNCTION_ARN` and `POLL_RULE_PREFIX`; `None` when the
    /// poller's ARN is not configured.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Option<Self> {
        let arn = std::env::var("POLLER_FUNCTION_ARN")
            .ok()
            .filter(|a| !a.trim().is_empty())?;
        let prefix =
            std::env::var("POLL_RULE_PREFIX").unwrap_or_else(|_| "connector-events-".into());
        Some(Self::new(
            aws_sdk_eventbridge::Client::new(sdk),
            &prefix,
            &arn,
        ))
    }

    pub fn rule_prefix(&self) -> String {
        format!("{}poll-every-", self.rule_prefix)
    }

    pub fn rule_name(&self, minutes: u32) -> String {
        format!("{}{minutes}m", self.rule_prefix())
    }

    /// Creates or updates the interval's rule and its target; idempotent.
    pub async fn ensure(&self, minutes: u32) -> Result<(), ApiError> {
        let name = self.rule_name(minutes);
        self.client
            .put_rule()
            .name(&name)
            .schedule_expression(schedule_expression(minutes))
            .state(RuleState::Enabled)
            .description(format!(
                "connector-events: poll the instances whose refresh interval is {minutes} min"
            ))
            .send()
            .await
            .map_err(|e| {
                unavailable(
                    "PutRule",
                    aws_sdk_eventbridge::error::DisplayErrorContext(&e),
                )
            })?;
        let target = Target::builder()
            .id("poller")
            .arn(&self.poller_arn)
            .input(serde_json::json!({ "intervalMinutes": minutes }).to_string())
            .build()
            .map_err(|e| unavailable("target", e))?;
        let out = self
            .client
            .put_targets()
            .rule(&name)
            .targets(target)
            .send()
            .await
            .map_err(|e| {
                unavailable(
                    "PutTargets",
                    aws_sdk_eventbridge::error::DisplayErrorContext(&e),
                )
            })?;
        if out.failed_entry_count() > 0 {
            return Err(unavailable("PutTargets", "a target was rejected"));
        }
        Ok(())
    }

    /// Removes the interval's rule when no instance polls at it any more. An
    /// instance created meanwhile may have just ensured it: its membership
    /// was recorded before that, so checking the memberships again (strongly
    /// consistent) after the removal, and restoring the rule, closes that race.
    pub async fn remove_if_unused(&self, store: &Store, minutes: u32) -> Result<(), ApiError> {
        if store.interval_in_use(minutes).await? {
            return Ok(());
        }
        let name = self.rule_name(minutes);
        let _ = self
            .client
            .remove_targets()
            .rule(&name)
            .ids("poller")
            .send()
            .await;
        match self.client.delete_rule().name(&name).send().await {
            Ok(_) => {}
            Err(e) => {
                use aws_sdk_eventbridge::error::ProvideErrorMetadata;
                if e.code() != Some("ResourceNotFoundException") {
                    return Err(unavailable(
                        "DeleteRule",
                        aws_sdk_eventbridge::error::DisplayErrorContext(&e),
                    ));
                }
            }
        }
        if store.interval_in_use(minutes).await? {
            self.ensure(minutes).await?;
        }
        Ok(())
    }
}
