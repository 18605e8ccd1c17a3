//! The instance routes: create, list, get, patch, delete.

use chrono::Utc;
use serde_json::{json, Map, Value};
use shared::api::{ApiRequest, ApiResponse};
use shared::auth::instance_token_hash;
use shared::config::{self, values::json_type, InstanceBody};
use shared::elements::RegistrationContext;
use shared::error::ApiError;
use shared::events::{EventFilter, StoredNotification};
use shared::model::Instance;
use shared::store::{Account, EventScope, PageCursor, StoreError};

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
    // Cloud Elements' OAuth instances carry what the vendor's app callback
    // gave the client; the element exchanges it for the store's token.
    if let Some(provider_data) = body.get("providerData").filter(|v| !v.is_null()) {
        element
            .exchange_provider_data(
                shared::elements::ProviderDataContext {
                    provider_data,
                    login_url: &app.bigcommerce_login_url,
                },
                &mut configuration,
            )
            .await?;
    }
    let events = config::validate_configuration(element, &mut configuration, &app.settings.guard)?;
    check_store_capacity(app, element, &configuration).await?;
    let token = shared::ids::new_secret_token();
    let now = Utc::now();
    let id = shared::ids::new_instance_id();
    shared::logging::record_instance(id);
    let mut instance = Instance {
        id,
        org_id: account.org_id.clone(),
        element_key: element.key().to_string(),
        name,
        tags,
        configuration,
        events,
        token_hash: instance_token_hash(&token),
        registered_webhooks: Vec::new(),
        events_paused: None,
        delivery_epoch: 0,
        poll_invalid: None,
        webhook_health: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    // Quotas before anything leaves the service (webhooks, rules).
    crate::quotas::check(app, &account.org_id, None, polling_interval(&instance)).await?;
    let subscribes = instance.events.enabled && instance.receives_webhooks();
    if subscribes {
        element.prepare_webhook_configuration(&mut instance.configuration);
        let delivery_url = webhook_url(app, req, &instance)?;
        instance.registered_webhooks = element
            .register_webhooks(RegistrationContext {
                cfg: &instance.configuration,
                delivery_url: &delivery_url,
                guard: &app.settings.guard,
            })
            .await?;
    }
    // The schedule first: an instance is never stored without its rule.
    let joined = match polling_interval(&instance) {
        Some(minutes) => match join_schedule(app, minutes, instance.id).await {
            Ok(joined) => joined,
            Err(e) => {
                unregister(app, &instance).await;
                return Err(e);
            }
        },
        None => None,
    };
    // Before the instance exists, so that a webhook can never miss it.
    register_finder(app, &instance).await?;
    match app
        .store
        .create_instance(&instance.seal(&app.settings.secrets))
        .await
    {
        Ok(()) => {
            tracing::info!(
                element = %instance.element_key, webhooks = instance.registered_webhooks.len(), "instance created");
            let mut answer = instance_json(app, req, &instance, Some(&token));
            let warnings =
                element.configuration_warnings(&instance.configuration, instance.events.enabled);
            if !warnings.is_empty() {
                answer["warnings"] = serde_json::json!(warnings);
            }
            Ok(ApiResponse::json(200, &answer))
        }
        Err(e) => {
            // Nothing half-written: what was registered at the store goes too.
            // (A 53-bit random id collision lands here as well, as a 409.)
            unregister(app, &instance).await;
            if let Some(joined) = joined {
                undo_join(app, joined, instance.id).await;
            }
            Err(e.into())
        }
    }
}

/// Webhooks without an instance id are routed to every instance of their
/// store with one batch read, so a store has at most
/// `MAX_INSTANCES_PER_STORE` instances here (a race of creations may pass
/// it; routing then logs the excess).
async fn check_store_capacity(
    app: &App,
    element: &dyn shared::elements::Element,
    configuration: &shared::config::values::Configuration,
) -> Result<(), ApiError> {
    let Some(identity) = element.store_identity(configuration) else {
        return Ok(());
    };
    let cap = shared::store::MAX_INSTANCES_PER_STORE;
    let key = format!("{}#{identity}", element.key());
    if app.store.count_instances_by_store(&key, cap).await? >= cap {
        return Err(ApiError::Conflict(format!(
            "this store already has {cap} instances, the most one store may have"
        )));
    }
    Ok(())
}

/// Records the payload path of the instance's finder, if it has one and is
/// routed by it (`shared::config::finder`). Idempotent.
async fn register_finder(app: &App, instance: &Instance) -> Result<(), ApiError> {
    // Elements with a store identity route by it; the finder is for the rest
    // (the same rule as `Instance::seal`'s `store_key`).
    if instance
        .element()
        .store_identity(&instance.configuration)
        .is_some()
    {
        return Ok(());
    }
    if let Some(finder) = config::finder::parse(&instance.configuration)? {
        app.store
            .register_finder_path(&instance.element_key, &finder.payload_path)
            .await?;
    }
    Ok(())
}

/// Where this API is reached from outside: `PUBLIC_BASE_URL`, or else the
/// host the request came to (API Gateway sets it to its own domain).
fn public_base_url(app: &App, req: &ApiRequest) -> Option<String> {
    if let Some(base) = &app.settings.public_base_url {
        return Some(base.clone());
    }
    let host = req.header("host")?.trim();
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    valid.then(|| format!("https://{host}"))
}

/// The interval an instance is polled at (polling, or webhook reconciliation).
fn polling_interval(instance: &Instance) -> Option<u32> {
    instance.events.poll_interval()
}

async fn ensure_schedule(app: &App, minutes: u32) -> Result<(), ApiError> {
    match &app.schedules {
        Some(schedules) => schedules.ensure(minutes).await,
        None => Ok(()),
    }
}

/// A membership this request wrote, to take back if its write fails.
struct Joined {
    minutes: u32,
    writer: String,
}

/// Makes the instance a member of its polling interval, then ensures the
/// interval's rule: in this order, a concurrent removal of the rule either
/// sees the membership or is undone by the ensure (`shared::store::intervals`).
async fn join_schedule(
    app: &App,
    minutes: u32,
    instance_id: u64,
) -> Result<Option<Joined>, ApiError> {
    if app.schedules.is_none() {
        return Ok(None);
    }
    let writer = app
        .store
        .add_interval_member(minutes, instance_id, Utc::now())
        .await?;
    let joined = Joined { minutes, writer };
    if let Err(e) = ensure_schedule(app, minutes).await {
        undo_join(app, joined, instance_id).await;
        return Err(e);
    }
    Ok(Some(joined))
}

/// The write after `join_schedule` failed: the membership goes, unless a
/// concurrent request wrote it since, then the rule if nothing uses it.
/// What is left behind keeps an idle rule for a few minutes at most
/// (`UNCONFIRMED_MEMBER_GRACE_MINUTES`), so failures are logged only.
async fn undo_join(app: &App, joined: Joined, instance_id: u64) {
    if let Err(e) = app
        .store
        .undo_interval_member(joined.minutes, instance_id, &joined.writer)
        .await
    {
        tracing::warn!(interval = joined.minutes, error = %e, "interval membership not taken back");
    }
    release_schedule(app, joined.minutes).await;
}

/// The instance no longer polls every `minutes` (deleted, or moved to
/// another interval): its membership goes, then the rule if nothing else
/// uses it.
async fn leave_schedule(app: &App, minutes: u32, instance_id: u64) {
    if app.schedules.is_none() {
        return;
    }
    if let Err(e) = app.store.remove_interval_member(minutes, instance_id).await {
        tracing::warn!(interval = minutes, error = %e, "interval membership not removed");
    }
    release_schedule(app, minutes).await;
}

/// Removes an interval's rule if no instance uses it; a failure leaves an
/// idle rule behind (the poller finds nothing to poll), so it is logged only.
async fn release_schedule(app: &App, minutes: u32) {
    if let Some(schedules) = &app.schedules {
        if let Err(e) = schedules.remove_if_unused(&app.store, minutes).await {
            tracing::warn!(interval = minutes, error = %e, "poll rule not removed");
        }
    }
}

fn webhook_url(app: &App, req: &ApiRequest, instance: &Instance) -> Result<String, ApiError> {
    let base = public_base_url(app, req).ok_or_else(|| {
        ApiError::Internal(
            "neither PUBLIC_BASE_URL nor a Host header gives this API's address".into(),
        )
    })?;
    instance
        .webhook_url(&base)
        .ok_or_else(|| ApiError::Internal("webhook URL asked for a polling instance".into()))
}

/// Removes the instance's webhooks at the store. Best effort: a store that is
/// down must not keep an instance from being deleted; failures are logged.
async fn unregister(app: &App, instance: &Instance) {
    if instance.registered_webhooks.is_empty() {
        return;
    }
    let ctx = RegistrationContext {
        cfg: &instance.configuration,
        delivery_url: "",
        guard: &app.settings.guard,
    };
    if let Err(e) = instance
        .element()
        .unregister_webhooks(ctx, &instance.registered_webhooks)
        .await
    {
        tracing::warn!(error = %e, "could not remove webhooks at the store");
    }
}

fn instance_json(app: &App, req: &ApiRequest, instance: &Instance, token: Option<&str>) -> Value {
    instance.to_api_json(token, public_base_url(app, req).as_deref())
}

/// `pageSize` and `nextPage`, as Cloud Elements paged.
fn page_params(req: &ApiRequest) -> Result<(i32, Option<PageCursor>), ApiError> {
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
    Ok((page_size, cursor))
}

fn paged(items: Vec<Value>, next: Option<PageCursor>) -> ApiResponse {
    let resp = ApiResponse::json(200, &Value::Array(items));
    match next {
        // Cloud Elements' paging header.
        Some(next) => resp.with_header("elements-next-page-token", next.encode()),
        None => resp,
    }
}

pub async fn list(app: &App, account: &Account, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let (page_size, cursor) = page_params(req)?;
    let (records, next) = app
        .store
        .list_instances(&account.org_id, page_size, cursor.as_ref())
        .await?;
    let items = records
        .iter()
        .map(|r| {
            r.open(&app.settings.secrets)
                .map(|i| instance_json(app, req, &i, None))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(paged(items, next))
}

/// `GET /instances/{id}/events`: the instance's notifications, newest
/// first; `?status=` in our words or Cloud Elements' (`NOTIFIED`, …),
/// `?since=`/`?until=` (RFC 3339) on the creation time.
pub async fn list_events(
    app: &App,
    account: &Account,
    req: &ApiRequest,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let instance = load_owned(app, account, id).await?;
    list_in(app, req, EventScope::Instance(instance.id)).await
}

/// `GET /instances/events`: the organization's notifications across its
/// instances, with the same paging and filters.
pub async fn list_org_events(
    app: &App,
    account: &Account,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    if account.element_token.is_some() {
        // A token names one instance; the organization's log is not its own.
        return Err(ApiError::Unauthorized(
            "an Element token reaches one instance's events only".into(),
        ));
    }
    list_in(app, req, EventScope::Organization(&account.org_id)).await
}

async fn list_in(
    app: &App,
    req: &ApiRequest,
    scope: EventScope<'_>,
) -> Result<ApiResponse, ApiError> {
    let (page_size, cursor) = page_params(req)?;
    let mut filter = match req.query_param("status") {
        None => EventFilter::default(),
        Some(raw) => shared::events::status_filter(raw.trim()).ok_or_else(|| {
            ApiError::field(
                "status",
                format!(
                    "must be pending, delivered, failed or queued, or Cloud Elements' NEW, RECEIVED, DISPATCHED, CONSUMED or NOTIFIED; got '{raw}'"
                ),
            )
        })?,
    };
    filter.since = time_param(req, "since")?;
    filter.until = time_param(req, "until")?;
    let (items, next) = app
        .store
        .list_events(scope, &filter, page_size, cursor.as_ref())
        .await?;
    Ok(paged(
        items.iter().map(StoredNotification::to_api_json).collect(),
        next,
    ))
}

fn time_param(req: &ApiRequest, name: &str) -> Result<Option<chrono::DateTime<Utc>>, ApiError> {
    match req.query_param(name) {
        None => Ok(None),
        Some(raw) => chrono::DateTime::parse_from_rfc3339(raw.trim())
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| ApiError::field(name, format!("must be an RFC 3339 time, got '{raw}'"))),
    }
}

/// `GET /instances/events/{eventId}`: one notification of the caller's.
pub async fn get_event(
    app: &App,
    account: &Account,
    _req: &ApiRequest,
    event_id: &str,
) -> Result<ApiResponse, ApiError> {
    let stored = app
        .store
        .get_notification(event_id)
        .await?
        .filter(|n| n.notification.org_id == account.org_id)
        .ok_or_else(|| ApiError::NotFound(format!("no event with id {event_id}")))?;
    if account.element_token.is_some() {
        // The token must be the event's instance's.
        load_owned(app, account, &stored.notification.instance_id.to_string()).await?;
    }
    Ok(ApiResponse::json(200, &stored.to_api_json()))
}

/// `GET /instances/{id}/events/{eventId}`: one notification of the instance.
pub async fn get_instance_event(
    app: &App,
    account: &Account,
    _req: &ApiRequest,
    id: &str,
    event_id: &str,
) -> Result<ApiResponse, ApiError> {
    let instance = load_owned(app, account, id).await?;
    let stored = app
        .store
        .get_notification(event_id)
        .await?
        .filter(|n| n.notification.instance_id == instance.id)
        .ok_or_else(|| ApiError::NotFound(format!("no event {event_id} of instance {id}")))?;
    Ok(ApiResponse::json(200, &stored.to_api_json()))
}

pub async fn get(
    app: &App,
    account: &Account,
    req: &ApiRequest,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let instance = load_owned(app, account, id).await?;
    Ok(ApiResponse::json(
        200,
        &instance_json(app, req, &instance, None),
    ))
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
    // Before anything reaches the new host: a changed store or callback URL
    // needs the secrets bound to it sent again.
    crate::rebind::check(
        current.element(),
        &current.configuration,
        &mut next.configuration,
        patch.get("configuration").and_then(Value::as_object),
    )?;
    next.events = config::validate_configuration(
        next.element(),
        &mut next.configuration,
        &app.settings.guard,
    )?;
    next.version = current.version + 1;
    next.updated_at = Utc::now();
    let was_polling = polling_interval(&current);
    // Polling starts when it is turned on: no history before that.
    next.events.poll_since = match (was_polling, polling_interval(&next)) {
        (None, Some(_)) => Some(next.updated_at),
        (Some(_), Some(_)) => current.events.poll_since,
        _ => None,
    };
    if polling_interval(&next) != was_polling {
        crate::quotas::check(
            app,
            &account.org_id,
            Some(current.id),
            polling_interval(&next),
        )
        .await?;
    }
    let joined = match polling_interval(&next) {
        Some(minutes) if Some(minutes) != was_polling => {
            join_schedule(app, minutes, next.id).await?
        }
        Some(minutes) => {
            ensure_schedule(app, minutes).await?;
            None
        }
        None => None,
    };
    register_finder(app, &next).await?;
    let result = write_patch(app, req, &current, next).await;
    match (&result, joined) {
        (Err(_), Some(joined)) => undo_join(app, joined, current.id).await,
        (Ok(next), _) => {
            if let Some(old) = was_polling.filter(|m| Some(*m) != polling_interval(next)) {
                leave_schedule(app, old, current.id).await;
            }
        }
        _ => {}
    }
    let next = result?;
    Ok(ApiResponse::json(
        200,
        &instance_json(app, req, &next, None),
    ))
}

/// The part of a PATCH between the schedule and the answer: webhooks at the
/// store, then the conditional write.
async fn write_patch(
    app: &App,
    req: &ApiRequest,
    current: &Instance,
    mut next: Instance,
) -> Result<Instance, ApiError> {
    // Webhooks at the store follow the configuration: subscribe when events
    // are turned on or the store or its credentials change, before the write
    // (so a refusal changes nothing); the old subscription goes after it.
    let subscribed = current.events.enabled && current.receives_webhooks();
    let subscribes = next.events.enabled && next.receives_webhooks();
    let store_changed = ["store.url", "oauth.api.key", "oauth.api.secret"]
        .iter()
        .any(|k| current.configuration.get(*k) != next.configuration.get(*k));
    let resubscribe = subscribes && (!subscribed || store_changed);
    if resubscribe {
        next.element()
            .prepare_webhook_configuration(&mut next.configuration);
        let delivery_url = webhook_url(app, req, &next)?;
        next.registered_webhooks = next
            .element()
            .register_webhooks(RegistrationContext {
                cfg: &next.configuration,
                delivery_url: &delivery_url,
                guard: &app.settings.guard,
            })
            .await?;
    } else if !subscribes {
        next.registered_webhooks = Vec::new();
    }
    let written = app
        .store
        .replace_instance(&next.seal(&app.settings.secrets), current.version)
        .await
        .map_err(|e| match e {
            StoreError::ConditionFailed => ApiError::Conflict(format!(
                "instance {} was changed or deleted concurrently; read it again and retry",
                current.id
            )),
            other => other.into(),
        });
    if let Err(e) = written {
        if resubscribe {
            unregister(app, &next).await;
        }
        return Err(e);
    }
    if resubscribe || !subscribes {
        unregister(app, current).await;
    }
    tracing::info!(version = next.version, "instance updated");
    Ok(next)
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
    _req: &ApiRequest,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let id_num = parse_id(id)?;
    match app.store.delete_instance(id_num, &account.org_id).await {
        Ok(old) => {
            shared::logging::record_instance(id_num);
            tracing::info!("instance deleted");
            if let Some(minutes) = old.poll_interval {
                leave_schedule(app, minutes, id_num).await;
            }
            // Its notifications expire through TTL; its webhooks at the store
            // are removed now.
            match old.open(&app.settings.secrets) {
                Ok(instance) => unregister(app, &instance).await,
                Err(e) => {
                    tracing::warn!(error = %e, "deleted instance unreadable; webhooks not removed")
                }
            }
            Ok(ApiResponse::json(
                200,
                &json!({ "id": id_num, "deleted": true }),
            ))
        }
        Err(StoreError::ConditionFailed) => Err(not_found(id)),
        Err(e) => Err(e.into()),
    }
}

fn no_event(event_id: &str, id: &str) -> ApiError {
    ApiError::NotFound(format!("no event {event_id} on instance {id}"))
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
    shared::logging::record_instance(record.id);
    shared::auth::check_instance_token(account, &record.token_hash)?;
    record.open(&app.settings.secrets)
}

/// `POST /instances/{id}/events/{eventId}/retry`: puts one notification back
/// in the queue, due now, with a fresh retry schedule.
pub async fn retry_event(
    app: &App,
    account: &Account,
    _req: &ApiRequest,
    id: &str,
    event_id: &str,
) -> Result<ApiResponse, ApiError> {
    let instance = load_owned(app, account, id).await?;
    let requeued = app
        .store
        .requeue_notification(event_id, &account.org_id, instance.id, Utc::now())
        .await?;
    if !requeued {
        return Err(no_event(event_id, id));
    }
    let stored = app
        .store
        .get_notification(event_id)
        .await?
        .ok_or_else(|| no_event(event_id, id))?;
    Ok(ApiResponse::json(202, &stored.to_api_json()))
}

/// `POST /instances/{id}/events/recover?since=<RFC 3339>[&cursor=<token>]`:
/// resumes delivery for the instance (on the first call, without a cursor)
/// and re-queues its failed and queued notifications created since `since`,
/// oldest first. Each call does a bounded piece of the work (at most
/// `recover_page` notifications read) and answers `nextCursor` until the
/// walk is `done`; the client calls again with it. Nothing is lost between
/// calls: what is not re-queued yet stays queued or failed.
pub async fn recover_events(
    app: &App,
    account: &Account,
    req: &ApiRequest,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let instance = load_owned(app, account, id).await?;
    let now = Utc::now();
    let since = match req.query_param("since") {
        None => now - chrono::Duration::days(shared::store::RETENTION_DAYS),
        Some(raw) => chrono::DateTime::parse_from_rfc3339(raw.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::field(
                    "since",
                    format!("must be an RFC 3339 time such as 2026-11-23T10:00:00Z, got '{raw}'"),
                )
            })?,
    };
    let cursor = match req.query_param("cursor") {
        None => None,
        Some(token) => Some(
            PageCursor::decode(&token)
                .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API handed out"))?,
        ),
    };
    if cursor.is_none() {
        // Counts as a resume: a pause based on an earlier read now fails.
        app.store
            .resume_instance_events(instance.id, &account.org_id)
            .await?;
    }
    let (requeued, next) = app
        .store
        .requeue_stuck_page(
            instance.id,
            &account.org_id,
            since,
            now,
            cursor.as_ref(),
            app.recover_page.max(1),
        )
        .await?;
    tracing::info!(requeued, done = next.is_none(), "events recovered");
    Ok(ApiResponse::json(
        202,
        &json!({
            "instanceId": instance.id,
            "requeued": requeued,
            "since": shared::model::format_date(since),
            "eventsPaused": false,
            "done": next.is_none(),
            "nextCursor": next.map(|c| c.encode()),
        }),
    ))
}

/// `GET /instances/{id}/events/{eventId}/deliveries`: every delivery attempt.
pub async fn list_deliveries(
    app: &App,
    account: &Account,
    _req: &ApiRequest,
    id: &str,
    event_id: &str,
) -> Result<ApiResponse, ApiError> {
    let instance = load_owned(app, account, id).await?;
    let stored = app
        .store
        .get_notification(event_id)
        .await?
        .filter(|n| {
            n.notification.instance_id == instance.id && n.notification.org_id == account.org_id
        })
        .ok_or_else(|| no_event(event_id, id))?;
    let attempts = app.store.list_attempts(&stored.notification.id).await?;
    Ok(ApiResponse::json(
        200,
        &Value::Array(attempts.iter().map(|a| a.to_api_json()).collect()),
    ))
}

/// `POST /instances/{id}/events/poll`: polls the instance now, with the
/// poller's code, and answers with what the poll did.
pub async fn poll_now(
    app: &App,
    account: &Account,
    _req: &ApiRequest,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let instance = load_owned(app, account, id).await?;
    if polling_interval(&instance).is_none() {
        return Err(ApiError::Conflict(format!(
            "instance {id} is not polled (events off, or webhook mode for an element without reconciliation)"
        )));
    }
    let report = poller::poll_instance(&app.poller, &instance, Utc::now()).await;
    tracing::info!(outcome = ?report.outcome, "polled on request");
    let status = match report.outcome {
        poller::PollOutcome::Busy => 409,
        _ => 200,
    };
    Ok(ApiResponse::json(status, &report.to_json()))
}
