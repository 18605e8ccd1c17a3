//! IAM as deployed. `scripts/with-moto.sh` starts moto enforcing IAM
//! (`scripts/moto-iam.py`) and creates one user per function of
//! `template.yaml`, with exactly that function's policy; table ARNs are
//! matched as AWS matches them. Each function of a test [`crate::Stack`] calls
//! DynamoDB and EventBridge with its own user's keys, so a call its template
//! policy does not allow is refused here, as it would be on AWS.
//!
//! A refusal is recorded, printed at once, and fails the test when its stack
//! is dropped, naming the function, the action, the table and the template
//! line to change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Credentials, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use serde_json::Value;

/// A function's moto user and where its policy is in the template.
#[derive(Debug, Clone)]
pub struct FunctionUser {
    /// Template logical id, e.g. `InstancesFunction`.
    pub function: String,
    pub user: String,
    pub credentials: Credentials,
    /// Line of the function's `Policies:` key.
    pub policies_line: Option<u64>,
    /// (line of `Action:`, actions, table resources such as `InstancesTable/index/by-org`).
    pub statements: Vec<(u64, Vec<String>, Vec<String>)>,
}

/// The four functions' users, made from one template.
#[derive(Debug, Clone)]
pub struct Users {
    pub template: PathBuf,
    pub functions: HashMap<String, FunctionUser>,
}

impl Users {
    pub fn from_json(doc: &Value) -> Users {
        let functions = doc["functions"]
            .as_object()
            .expect("functions")
            .iter()
            .map(|(name, f)| {
                let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
                let strings = |v: &Value| -> Vec<String> {
                    v.as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                };
                let user = FunctionUser {
                    function: name.clone(),
                    user: s("user"),
                    credentials: Credentials::new(
                        s("access_key_id"),
                        s("secret_access_key"),
                        None,
                        None,
                        "moto-iam",
                    ),
                    policies_line: f["policies_line"].as_u64(),
                    statements: f["statements"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|st| st["effect"] == "Allow")
                        .map(|st| {
                            (
                                st["line"].as_u64().unwrap_or(0),
                                strings(&st["actions"]),
                                strings(&st["resources"]),
                            )
                        })
                        .collect(),
                };
                (name.clone(), user)
            })
            .collect();
        Users {
            template: PathBuf::from(doc["template"].as_str().unwrap_or("template.yaml")),
            functions,
        }
    }

    pub fn function(&self, name: &str) -> &FunctionUser {
        self.functions
            .get(name)
            .unwrap_or_else(|| panic!("template.yaml has no function {name}"))
    }
}

/// The users `scripts/with-moto.sh` made from `template.yaml`.
pub fn users() -> &'static Users {
    static USERS: OnceLock<Users> = OnceLock::new();
    USERS.get_or_init(|| {
        let path = std::env::var("CE_IAM_USERS").expect(
            "CE_IAM_USERS is not set: the tests run each function with its own IAM user on a \
             moto server that enforces IAM. Run `make test` (scripts/with-moto.sh sets it up).",
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Users::from_json(&serde_json::from_str(&text).expect("CE_IAM_USERS is JSON"))
    })
}

/// Users for another template (e.g. a copy with one action removed), created
/// on the running moto server with the admin keys of the environment.
pub fn users_for_template(template: &Path, suffix: &str) -> Users {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/moto-iam.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg("users")
        .arg(template)
        .arg(suffix)
        .output()
        .expect("python3 runs scripts/moto-iam.py");
    assert!(
        out.status.success(),
        "moto-iam.py users: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Users::from_json(&serde_json::from_slice(&out.stdout).expect("moto-iam.py prints JSON"))
}

/// What moto refused during one stack's life, as explained messages.
#[derive(Debug, Clone)]
pub struct Denials {
    users: Users,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Denials {
    pub fn new(users: Users) -> Denials {
        Denials {
            users,
            seen: Arc::default(),
        }
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    /// Records moto's refusal `User: <arn>/<user> is not authorized to
    /// perform: <action> on resource: <arn>` with what to change.
    fn record(&self, message: &str) {
        let explained = explain(&self.users, message);
        eprintln!("{explained}");
        let mut seen = self.seen.lock().unwrap();
        if !seen.contains(&explained) {
            seen.push(explained);
        }
    }
}

/// Turns moto's refusal into a message naming the function, the action, the
/// table and the template line to change.
pub fn explain(users: &Users, message: &str) -> String {
    let between = |from: &str, to: &str| -> String {
        message
            .split_once(from)
            .map(|(_, rest)| rest.split(to).next().unwrap_or(rest).trim().to_string())
            .unwrap_or_default()
    };
    let user = between("user/", " ");
    let action: String = between("perform: ", " ")
        .chars()
        .take_while(|c| *c != '<')
        .collect();
    let resource = between(" on resource: ", "\"");
    let template = users.template.display();
    let Some(f) = users.functions.values().find(|f| f.user == user) else {
        return format!("IAM: {message} (not a function user: test scaffolding should use Stack::store, the admin's)");
    };
    if !action.starts_with("dynamodb:") {
        // moto checks other services by action only.
        return format!(
            "IAM: {} may not call {action}; AWS would refuse it too. To fix: add `{action}` to a \
             statement under Policies at {template}:{}.",
            f.function,
            f.policies_line.unwrap_or(0)
        );
    }
    // `...:table/<prefix><LogicalId>[/index/<name>]` -> `<LogicalId>[/index/<name>]`.
    let path = resource.split_once(":table/").map(|(_, p)| p).unwrap_or("");
    let (table_name, index) = match path.split_once("/index/") {
        Some((t, i)) => (t, Some(i)),
        None => (path, None),
    };
    let table = shared::store::TABLE_BINDINGS
        .iter()
        .map(|b| b.logical_id)
        .find(|id| table_name.ends_with(id))
        .unwrap_or(table_name);
    let wanted = match index {
        Some(i) => format!("{table}/index/{i}"),
        None => table.to_string(),
    };
    let reference = match index {
        Some(i) => format!("!Sub \"${{{table}.Arn}}/index/{i}\""),
        None => format!("!GetAtt {table}.Arn"),
    };
    let fix = match f.statements.iter().find(|(_, _, r)| r.contains(&wanted)) {
        Some((line, _, _)) => format!(
            "add `{action}` to the Action list at {template}:{line} (the statement on {reference})"
        ),
        None => format!(
            "add a statement allowing `{action}` on {reference} under Policies at {template}:{}",
            f.policies_line.unwrap_or(0)
        ),
    };
    format!(
        "IAM: {} may not call {action} on {wanted}; AWS would refuse it too. To fix: {fix}. \
         (If this call is the test's own set-up or check, make it through Stack::store instead.)",
        f.function
    )
}

/// Records every AccessDenied answer of a client.
#[derive(Debug, Clone)]
struct RecordDenials(Denials);

impl Intercept for RecordDenials {
    fn name(&self) -> &'static str {
        "RecordDenials"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        if response.status().as_u16() >= 400 {
            if let Some(body) = response.body().bytes() {
                let text = String::from_utf8_lossy(body);
                if text.contains("is not authorized to perform") {
                    self.0.record(&text);
                }
            }
        }
        Ok(())
    }
}

/// `base` (the admin's client) with a function user's keys, recording refusals.
pub fn dynamodb_client_as(
    base: &aws_sdk_dynamodb::Client,
    user: &FunctionUser,
    denials: &Denials,
) -> aws_sdk_dynamodb::Client {
    let config = base
        .config()
        .to_builder()
        .credentials_provider(user.credentials.clone())
        .interceptor(RecordDenials(denials.clone()))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// An EventBridge client with a function user's keys, recording refusals.
pub fn eventbridge_client_as(
    sdk: &aws_config::SdkConfig,
    user: &FunctionUser,
    denials: &Denials,
) -> aws_sdk_eventbridge::Client {
    let config = aws_sdk_eventbridge::config::Builder::from(sdk)
        .credentials_provider(user.credentials.clone())
        .interceptor(RecordDenials(denials.clone()))
        .build();
    aws_sdk_eventbridge::Client::from_conf(config)
}

/// An SQS client with a function user's keys, recording refusals.
pub fn sqs_client_as(
    sdk: &aws_config::SdkConfig,
    user: &FunctionUser,
    denials: &Denials,
) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::config::Builder::from(sdk)
        .credentials_provider(user.credentials.clone())
        .interceptor(RecordDenials(denials.clone()))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// Fails the test when its stack goes out of scope after a refusal; while a
/// test is already failing, prints the refusals beside its own message.
#[derive(Debug)]
pub struct DenialCheck(pub Denials);

impl Drop for DenialCheck {
    fn drop(&mut self) {
        let denied = self.0.take();
        if denied.is_empty() {
            return;
        }
        let report = denied.join("\n");
        if std::thread::panicking() {
            eprintln!("{report}");
        } else {
            panic!("{report}");
        }
    }
}
