//! The instance routes: create, list, get, patch, delete.

use chrono::Utc;
use serde_json::{json, Map, Value};
use shared::api::{ApiRequest, ApiResponse};
use shared::auth::instance_token_hash;
use shared::config::{self, values::json_type, InstanceBody};
use shared::error::ApiError;
use shared::model::Instance;
use shared::store::{Account, PageCursor, StoreError};

use crate::App;

pub const DEFAULT_PAGE_SIZE: i32 = 50;
pub const MAX_PAGE_SIZE: i32 = 200;

pub async fn create(
    app: &App,
    account: &Account,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let body = req.json_body(app.settings.max_body_bytes)?;
    let InstanceBody {
        element,
        name,
        tags,
        mut configuration,
    } = config::parse_instance_body(&body)?;
    let events = config::validate_configuration(element, &mut configuration, &app.settings.guard)?;
    let token = shared::ids::new_secret_token();
    let now = Utc::now();
    let mut instance = Instance {
        id: shared::ids::new_instance_id(),
        org_id: account.org_id.clone(),
        element_key: element.key().to_string(),
        name,
        tags,
        configuration,
        events,
        token_hash: instance_token_hash(&token),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    // A 53-bit random id collides almost never; the conditional write turns a
    // collision into a retry with a fresh id instead of an overwrite.
    for attempt in 0..3 {
        match app
            .store
            .create_instance(&instance.seal(&app.settings.secrets))
            .await
        {
            Ok(()) => {
                tracing::info!(request_id = %req.request_id, instance_id = instance.id,
                    element = %instance.element_key, "instance created");
                return Ok(ApiResponse::json(200, &instance.to_api_json(Some(&token))));
            }
            Err(StoreError::ConditionFailed) if attempt < 2 => {
                instance.id = shared::ids::new_instance_id();
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Internal(
        "could not allocate an instance id".into(),
    ))
}

pub async fn list(app: &App, account: &Account, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let page_size = match req.query_param("pageSize") {
        None => DEFAULT_PAGE_SIZE,
        Some(raw) => match raw.trim().parse::<i32>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                return Err(ApiError::field(
                    "pageSize",
                    format!("must be a whole number from 1 to {MAX_PAGE_SIZE}, got '{raw}'"),
                ))
            }
        },
    };
    let cursor =
        match req.query_param("nextPage") {
            None => None,
            Some(token) if token.trim().is_empty() => None,
            Some(token) => Some(PageCursor::decode(&token).ok_or_else(|| {
                ApiError::field("nextPage", "is not a page token this API issued")
            })?),
        };
    let (records, next) = app
        .store
        .list_instances(&account.org_id, page_size, cursor.as_ref())
        .await?;
    let items = records
        .iter()
        .map(|r| r.open(&app.settings.secrets).map(|i| i.to_api_json(None)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut resp = ApiResponse::json(200, &Value::Array(items));
    if let Some(next) = next {
        // Cloud Elements' paging header.
        resp = resp.with_header("elements-next-page-token", next.encode());
    }
    Ok(resp)
}

pub async fn get(
    app: &App,
    account: &Account,
    _req: &ApiRequest,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let instance = load_owned(app, account, id).await?;
    Ok(ApiResponse::json(200, &instance.to_api_json(None)))
}

pub async fn patch(
    app: &App,
    account: &Account,
    req: &ApiRequest,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let body = req.json_body(app.settings.max_body_bytes)?;
    let patch = body
        .as_object()
        .ok_or_else(|| ApiError::BadRequest("request body must be a JSON object".into()))?;
    let current = load_owned(app, account, id).await?;
    let mut next = current.clone();
    apply_patch(&mut next, patch)?;
    next.events = config::validate_configuration(
        next.element(),
        &mut next.configuration,
        &app.settings.guard,
    )?;
    next.version = current.version + 1;
    next.updated_at = Utc::now();
    app.store
        .replace_instance(&next.seal(&app.settings.secrets), current.version)
        .await
        .map_err(|e| match e {
            StoreError::ConditionFailed => ApiError::Conflict(format!(
                "instance {} was changed or deleted concurrently; read it again and retry",
                current.id
            )),
            other => other.into(),
        })?;
    tracing::info!(request_id = %req.request_id, instance_id = next.id, version = next.version, "instance updated");
    Ok(ApiResponse::json(200, &next.to_api_json(None)))
}

fn apply_patch(instance: &mut Instance, patch: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(element) = patch.get("element") {
        let key = element.get("key").and_then(Value::as_str);
        if key.is_some_and(|k| k != instance.element_key) {
            return Err(ApiError::field(
                "element.key",
                "cannot be changed; create a new instance",
            ));
        }
    }
    match patch.get("name") {
        None => {}
        Some(Value::String(s)) if !s.trim().is_empty() => instance.name = s.trim().to_string(),
        Some(Value::String(_)) | Some(Value::Null) => return Err(ApiError::required("name")),
        Some(other) => {
            return Err(ApiError::field(
                "name",
                format!("must be a string, got {}", json_type(other)),
            ))
        }
    }
    if patch.contains_key("tags") {
        instance.tags = config::parse_tags(patch.get("tags"))?;
    }
    match patch.get("configuration") {
        None => {}
        Some(Value::Object(changes)) => {
            instance.configuration = config::merge_configuration(&instance.configuration, changes);
        }
        Some(other) => {
            return Err(ApiError::field(
                "configuration",
                format!("must be an object, got {}", json_type(other)),
            ))
        }
    }
    Ok(())
}

pub async fn delete(
    app: &App,
    account: &Account,
    req: &ApiRequest,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let id_num = parse_id(id)?;
    match app.store.delete_instance(id_num, &account.org_id).await {
        Ok(_) => {
            tracing::info!(request_id = %req.request_id, instance_id = id_num, "instance deleted");
            Ok(ApiResponse::json(
                200,
                &json!({ "id": id_num, "deleted": true }),
            ))
        }
        Err(StoreError::ConditionFailed) => Err(not_found(id)),
        Err(e) => Err(e.into()),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no instance with id {id}"))
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse::<u64>().map_err(|_| not_found(id))
}

/// Loads an instance of the caller's organization. Another organization's
/// instance is reported exactly like a missing one.
async fn load_owned(app: &App, account: &Account, id: &str) -> Result<Instance, ApiError> {
    let record = app
        .store
        .get_instance(parse_id(id)?)
        .await?
        .filter(|r| r.org_id == account.org_id)
        .ok_or_else(|| not_found(id))?;
    record.open(&app.settings.secrets)
}
