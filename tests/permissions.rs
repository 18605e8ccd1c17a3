//! The IAM check itself (tests/support/iam.rs, scripts/moto-iam.py): moto
//! refuses what a function's template policy does not allow, down to the
//! table and the index, and a template missing one needed action fails the
//! test with a message naming the function, the action and the line.

use ce_tests::{call, iam, stack, stack_as, Stack};
use serde_json::json;

fn woo_body() -> serde_json::Value {
    json!({
        "element": {"key": "woocommercerest"},
        "name": "IAM check",
        "configuration": {
            "store.url": "https://shop.example.com",
            "oauth.api.key": "ck_1", "oauth.api.secret": "cs_1",
            "event.notification.enabled": "false"
        }
    })
}

/// A copy of template.yaml without the first line equal to `line` after the
/// line `after`; returns its path and the 1-based number of the nearest
/// `Action:` line above the removed one (the line the message must name).
fn template_without(after: &str, line: &str, name: &str) -> (std::path::PathBuf, usize) {
    let text = ce_local::tables::TEMPLATE_YAML;
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| *l == after).expect("anchor line");
    let at = start
        + lines[start..]
            .iter()
            .position(|l| l.trim() == line)
            .expect("line to remove");
    let action_line = (0..at)
        .rev()
        .find(|&i| lines[i].trim() == "Action:")
        .expect("an Action: above")
        + 1;
    let mut kept = lines.clone();
    kept.remove(at);
    let path = std::env::temp_dir().join(format!(
        "{name}-{}.yaml",
        &shared::ids::new_request_id()[..12]
    ));
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    (path, action_line)
}

fn suffix() -> String {
    format!("-{}", &shared::ids::new_request_id()[..12])
}

#[tokio::test]
async fn moto_refuses_what_the_template_does_not_allow_down_to_the_table() {
    let s = stack().await;
    let tables = s.store.tables().clone();
    let key = |k: &str| {
        (
            k.to_string(),
            aws_sdk_dynamodb::types::AttributeValue::S("1".into()),
        )
    };
    // The webhooks function may read instances, not accounts.
    let webhooks = s.webhooks.store.client();
    webhooks
        .get_item()
        .table_name(&tables.instances)
        .set_key(Some([key("id")].into()))
        .send()
        .await
        .expect("GetItem on InstancesTable is in the webhooks policy");
    let refused = webhooks
        .get_item()
        .table_name(&tables.accounts)
        .set_key(Some([key("pk")].into()))
        .send()
        .await;
    assert!(refused.is_err(), "GetItem on AccountsTable must be refused");
    let denied = s.denials.take();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert!(
        denied[0].contains("WebhooksFunction may not call dynamodb:GetItem on AccountsTable"),
        "{}",
        denied[0]
    );
    // The admin's store (tests' own set-up) is not checked against any function.
    s.store.get_instance(1).await.unwrap();
}

#[tokio::test]
async fn a_template_missing_a_needed_action_fails_naming_function_action_and_line() {
    // InstancesFunction's statement on InstancesTable, without PutItem.
    let (path, line) = template_without("  InstancesFunction:", "- dynamodb:PutItem", "no-put");
    let s: Stack = stack_as(iam::users_for_template(&path, &suffix())).await;
    let reply = call(
        &s.app,
        "POST",
        "/elements/api-v2/instances",
        Some(&s.auth),
        Some(&woo_body().to_string()),
    )
    .await;
    assert_ne!(reply.status, 200, "{}", reply.body);
    let denied = s.denials.take();
    let expected = format!(
        "InstancesFunction may not call dynamodb:PutItem on InstancesTable; AWS would refuse it \
         too. To fix: add `dynamodb:PutItem` to the Action list at {}:{line}",
        path.display()
    );
    assert!(
        denied.iter().any(|d| d.contains(&expected)),
        "expected {expected:?} in {denied:#?}"
    );
    // The same template, unchanged, creates the instance.
    let ok = stack().await;
    ok.create(woo_body()).await;
}

#[tokio::test]
async fn a_template_missing_an_index_resource_is_refused_on_that_index() {
    let (path, _) = template_without(
        "  InstancesFunction:",
        "- !Sub \"${InstancesTable.Arn}/index/by-org\"",
        "no-by-org",
    );
    let s = stack_as(iam::users_for_template(&path, &suffix())).await;
    let list = call(
        &s.app,
        "GET",
        "/elements/api-v2/instances",
        Some(&s.auth),
        None,
    )
    .await;
    assert_ne!(list.status, 200, "{}", list.body);
    let denied = s.denials.take();
    assert!(
        denied.iter().any(|d| d.contains(
            "InstancesFunction may not call dynamodb:Query on InstancesTable/index/by-org"
        ) && d.contains("!Sub \"${InstancesTable.Arn}/index/by-org\"")),
        "{denied:#?}"
    );
}

#[tokio::test]
async fn a_refusal_left_unchecked_fails_the_test_when_the_stack_is_dropped() {
    let (path, _) = template_without("  InstancesFunction:", "- dynamodb:PutItem", "no-put");
    let s = stack_as(iam::users_for_template(&path, &suffix())).await;
    let reply = call(
        &s.app,
        "POST",
        "/elements/api-v2/instances",
        Some(&s.auth),
        Some(&woo_body().to_string()),
    )
    .await;
    assert_ne!(reply.status, 200);
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(s)));
    let message = dropped.expect_err("dropping the stack fails the test");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("InstancesFunction may not call dynamodb:PutItem"),
        "{message}"
    );
}
