//! The v3 list endpoints: pagination, filters, zones, trash, short pages,
//! old versions, the index.

use std::time::Duration;

use serde_json::{json, Value};

use super::super::*;
use super::{client, ids, t, wc_get};

#[tokio::test]
async fn catalog_pagination_headers_and_links() {
    let store = start_store("ck", "cs").await;
    for id in 1..=25 {
        let at = t("2026-01-01T00:00:00") + chrono::Duration::minutes(id as i64);
        store.upsert("orders", id, at, at);
    }
    assert_eq!(store.object_count("orders"), 25);
    let url = store.catalog_url("orders");
    let q = "modified_after=2025-12-31T23:00:00%2B00:00&orderby=modified&order=asc&per_page=10";

    let (status, h, body) = wc_get(&format!("{url}?{q}")).await;
    assert_eq!(status, 200);
    assert_eq!(h["x-wp-total"], "25");
    assert_eq!(h["x-wp-totalpages"], "3");
    assert_eq!(ids(&body), (1..=10).collect::<Vec<_>>());
    // Values are NOT urlencoded in the link (the `+` comes back raw), and
    // `page` is appended after the request's own parameters...
    let next = format!(
        "{url}?modified_after=2025-12-31T23:00:00+00:00&orderby=modified&order=asc&per_page=10&page=2"
    );
    assert_eq!(h["link"], format!("<{next}>; rel=\"next\"").as_str());
    // ...so following it verbatim turns `+` into a space: 400.
    let (status, _, err) = wc_get(&next).await;
    assert_eq!(status, 400);
    assert_eq!(err["data"]["params"]["modified_after"], "Invalid date.");
    let o = &body[0];
    assert_eq!(o["date_modified_gmt"], "2026-01-01T00:01:00");
    // New York, EST: five hours behind.
    assert_eq!(o["date_modified"], "2025-12-31T19:01:00");
    assert_eq!(o["status"], "processing");
    assert_eq!(o["_links"]["self"][0]["href"], format!("{url}/1").as_str());

    let (_, h, body) = wc_get(&format!("{url}?per_page=10&page=2&orderby=id&order=asc")).await;
    assert_eq!(ids(&body), (11..=20).collect::<Vec<_>>());
    assert_eq!(
        h["link"],
        format!(
            "<{url}?per_page=10&page=1&orderby=id&order=asc>; rel=\"prev\", \
             <{url}?per_page=10&page=3&orderby=id&order=asc>; rel=\"next\""
        )
        .as_str()
    );

    // The default order is date desc; the last page has no `next`.
    let (_, h, body) = wc_get(&format!("{url}?page=3")).await;
    assert_eq!(ids(&body), (1..=5).rev().collect::<Vec<_>>());
    assert_eq!(h["link"], format!("<{url}?page=2>; rel=\"prev\"").as_str());

    // Past the last page: 200 with [] and the real totals (WC-CRUD re-counts).
    let (status, h, body) = wc_get(&format!("{url}?page=9")).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!([]));
    assert_eq!(h["x-wp-total"], "25");
    assert_eq!(h["x-wp-totalpages"], "3");
    assert_eq!(h["link"], format!("<{url}?page=3>; rel=\"prev\"").as_str());

    // An empty result: no Link at all.
    let (status, h, body) = wc_get(&format!("{url}?modified_after=2030-01-01T00:00:00")).await;
    assert_eq!((status, body), (200, json!([])));
    assert_eq!(h["x-wp-totalpages"], "0");
    assert!(h.get("link").is_none());

    // Arg validation.
    let (status, _, body) = wc_get(&format!("{url}?per_page=101&orderby=bogus")).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "rest_invalid_param");
    assert_eq!(body["message"], "Invalid parameter(s): per_page, orderby");
    assert_eq!(
        body["data"]["params"]["per_page"],
        "per_page must be between 1 (inclusive) and 100 (inclusive)"
    );
    assert_eq!(
        body["data"]["params"]["orderby"],
        "orderby is not one of date, id, include, title, slug, and modified."
    );
    let (status, _, body) = wc_get(&format!("{url}?modified_after=2026-01-01")).await;
    assert_eq!(status, 400);
    assert_eq!(body["data"]["params"]["modified_after"], "Invalid date.");
    let (status, _, _) = wc_get(&format!("{url}?status=nonsense")).await;
    assert_eq!(status, 400);

    // Without credentials: args are validated first, then 401.
    let anon = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = anon.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "woocommerce_rest_cannot_view");
}

#[tokio::test]
async fn customers_have_no_modified_filter() {
    let store = start_store("ck", "cs").await;
    store.upsert(
        "customers",
        7,
        t("2026-01-02T00:00:00"),
        t("2026-01-01T00:00:00"),
    );
    store.upsert(
        "customers",
        3,
        t("2020-01-02T00:00:00"),
        t("2020-01-01T00:00:00"),
    );
    let url = store.catalog_url("customers");
    // Unregistered params are ignored: both customers come back, ordered
    // by the default orderby=name, order=asc.
    let (status, h, body) = wc_get(&format!(
        "{url}?modified_after=2025-01-01T00:00:00&dates_are_gmt=true"
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body), [3, 7]);
    assert_eq!(h["x-wp-total"], "2");
    // ...but orderby is validated against the customers enum.
    let (status, _, body) = wc_get(&format!("{url}?orderby=modified")).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["data"]["params"]["orderby"],
        "orderby is not one of id, include, name, and registered_date."
    );
    let (_, _, body) = wc_get(&format!("{url}?orderby=registered_date&order=desc")).await;
    assert_eq!(ids(&body), [7, 3]);
    assert_eq!(body[0]["email"], "customer7@example.com");
    // Deleting a customer removes it; there is no trash.
    store.delete("customers", 7);
    let (_, _, body) = wc_get(&url).await;
    assert_eq!(ids(&body), [3]);
    let (status, _, body) = wc_get(&format!("{url}/7")).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "woocommerce_rest_invalid_id");
}

#[tokio::test]
async fn modified_bounds_are_exclusive_and_zone_aware() {
    let store = start_store("ck", "cs").await;
    store.set_site_offset_hours(0);
    let base = t("2026-03-01T12:00:00");
    for (id, secs) in [(1, -1), (2, 0), (3, 1)] {
        store.upsert("products", id, base + chrono::Duration::seconds(secs), base);
    }
    let url = store.catalog_url("products");
    let list = |q: String| {
        let url = url.clone();
        async move { ids(&wc_get(&format!("{url}?orderby=id&order=asc&{q}")).await.2) }
    };
    // Strictly greater / strictly less (WP_Date_Query without `inclusive`).
    assert_eq!(
        list("modified_after=2026-03-01T12:00:00&dates_are_gmt=true".into()).await,
        [3]
    );
    assert_eq!(
        list("modified_before=2026-03-01T12:00:00&dates_are_gmt=1".into()).await,
        [1]
    );
    assert_eq!(
        list("modified_after=2026-03-01T11:59:59&modified_before=2026-03-01T12:00:01".into()).await,
        [2]
    );
    // Fractions are dropped, not rounded: .999 still means 12:00:00.
    assert_eq!(
        list("modified_after=2026-03-01T12:00:00.999".into()).await,
        [3]
    );

    // A UTC+2 site: the plain columns are site-local.
    store.set_site_offset_hours(2);
    let (_, _, body) = wc_get(&format!("{url}/2")).await;
    assert_eq!(body["date_modified_gmt"], "2026-03-01T12:00:00");
    assert_eq!(body["date_modified"], "2026-03-01T14:00:00");
    // Zone-less bound against the local column (dates_are_gmt=false).
    assert_eq!(list("modified_after=2026-03-01T14:00:00".into()).await, [3]);
    // A bound with an offset is converted to site-local time first...
    assert_eq!(
        list("modified_after=2026-03-01T12:00:00Z".into()).await,
        [3]
    );
    // ...even when it is then compared with the GMT column: `...12:00:00Z`
    // becomes 14:00:00 and filters out all three GMT 12:00:xx objects.
    assert!(
        list("modified_after=2026-03-01T12:00:00Z&dates_are_gmt=true".into())
            .await
            .is_empty()
    );
    // `after`/`before` act on the created date.
    store.upsert("products", 4, base, t("2026-03-02T00:00:00"));
    assert_eq!(
        list("after=2026-03-01T23:59:59&dates_are_gmt=true".into()).await,
        [4]
    );
}

#[tokio::test]
async fn adversity_failures_delay_and_mid_scan_changes() {
    let store = start_store("ck", "cs").await;
    let at = t("2026-04-01T00:00:00");
    for id in 1..=4 {
        store.upsert("orders", id, at + chrono::Duration::seconds(id as i64), at);
    }
    let url = format!(
        "{}?orderby=modified&order=asc&per_page=2&dates_are_gmt=true",
        store.catalog_url("orders")
    );
    // Order 1 is modified right after the first page is answered: it
    // moves to the end, everything shifts left, and order 3 is never seen.
    store.schedule_upsert_after_calls(1, "orders", 1, at + chrono::Duration::seconds(60), at);
    let (_, _, p1) = wc_get(&format!("{url}&page=1")).await;
    assert_eq!(ids(&p1), [1, 2]);
    let (_, h, p2) = wc_get(&format!("{url}&page=2")).await;
    assert_eq!(ids(&p2), [4, 1]);
    assert_eq!(h["x-wp-totalpages"], "2");
    store.schedule_delete_after_calls(2, "orders", 2);
    let (_, _, p1) = wc_get(&format!("{url}&page=1")).await;
    assert_eq!(ids(&p1), [3, 4]);
    assert_eq!(store.list_calls(), 3);

    // Injected failures count as list calls.
    store.fail_next(503, 1);
    let (status, _, body) = wc_get(&url).await;
    assert_eq!(status, 503);
    assert_eq!(body["data"]["status"], 503);
    assert_eq!(store.list_calls(), 4);
    let (status, _, _) = wc_get(&format!("{}/1", store.catalog_url("orders"))).await;
    assert_eq!(status, 200);
    assert_eq!(store.list_calls(), 4, "item GETs are not list calls");

    store.set_delay(Duration::from_millis(150));
    let started = std::time::Instant::now();
    let (status, _, _) = wc_get(&url).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn trash_bumps_modified_and_lists_follow_each_controller() {
    let store = start_store("ck", "cs").await;
    let at = t("2026-02-01T00:00:00");
    for id in [10, 11] {
        store.upsert("orders", id, at, at);
        store.upsert("coupons", id, at, at);
        store.upsert("products", id, at, at);
    }
    store.freeze_clock(Some(t("2026-02-03T04:05:06")));
    store.delete("orders", 10);
    store.delete("coupons", 11);
    store.delete("products", 11);
    assert_eq!(
        store.modified_gmt("orders", 10),
        Some(t("2026-02-03T04:05:06"))
    );
    assert_eq!(store.modified_gmt("orders", 11), Some(at));
    assert_eq!(store.object_count("orders"), 1);

    let url = store.catalog_url("orders");
    let (_, h, body) = wc_get(&format!("{url}?status=any")).await;
    assert_eq!(ids(&body), [11]);
    assert_eq!(h["x-wp-total"], "1");
    let (_, _, body) = wc_get(&url).await;
    assert_eq!(ids(&body), [11], "the default is any");
    let (_, _, body) = wc_get(&format!("{url}?status=trash")).await;
    assert_eq!(ids(&body), [10]);
    assert_eq!(body[0]["status"], "trash");
    assert_eq!(body[0]["date_modified_gmt"], "2026-02-03T04:05:06");
    let (_, _, body) = wc_get(&format!(
        "{url}?status=processing,trash&orderby=id&order=asc"
    ))
    .await;
    assert_eq!(ids(&body), [10, 11]);
    // A trash sweep by modified date finds the trashed order.
    let (_, _, body) = wc_get(&format!(
        "{url}?status=trash&modified_after=2026-02-02T00:00:00&dates_are_gmt=true"
    ))
    .await;
    assert_eq!(ids(&body), [10]);

    // Products: `status` is one string; trash hidden from `any`.
    let products = store.catalog_url("products");
    let (_, _, body) = wc_get(&products).await;
    assert_eq!(ids(&body), [10]);
    let (_, _, body) = wc_get(&format!("{products}?status=trash")).await;
    assert_eq!(ids(&body), [11]);

    // `status[]=` makes a PHP array, which WooCommerce signs as `status[0]`
    // (see the auth tests); over "TLS" with Basic credentials it is fine.
    store.set_https(true);
    let basic_get = |u: String| async move {
        let r = client()
            .get(u)
            .basic_auth("ck", Some("cs"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    for q in [
        "status[]=trash",
        "status%5B%5D=trash&status%5B%5D=completed",
    ] {
        let (status, body) = basic_get(format!("{url}?{q}")).await;
        assert_eq!((status, ids(&body)), (200, vec![10]), "{q}");
    }
    let (status, body) = basic_get(format!("{products}?status[]=trash")).await;
    assert_eq!(status, 400, "products take one string: {body}");
    store.set_https(false);

    // Coupons v3: no status → `post_status = 'all'` → no filter: trash listed.
    let coupons = store.catalog_url("coupons");
    let (_, h, body) = wc_get(&format!("{coupons}?orderby=id&order=asc")).await;
    assert_eq!(ids(&body), [10, 11]);
    assert_eq!(h["x-wp-total"], "2");
    assert_eq!(body[1]["date_modified_gmt"], "2026-02-03T04:05:06");
    let (_, _, body) = wc_get(&format!("{coupons}?status=trash")).await;
    assert_eq!(ids(&body), [11]);
    let (_, _, body) = wc_get(&format!("{coupons}?status=any")).await;
    assert_eq!(ids(&body), [10]);

    // A trashed order can still be fetched by id.
    let (status, _, body) = wc_get(&format!("{url}/10")).await;
    assert_eq!((status, body["status"].clone()), (200, json!("trash")));
    let (status, _, body) = wc_get(&format!("{url}/99")).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "woocommerce_rest_shop_order_invalid_id");
    // Upserting restores it.
    store.upsert("orders", 10, at, at);
    assert_eq!(store.object_count("orders"), 2);
}

#[tokio::test]
async fn dates_are_site_local_with_dst() {
    let store = start_store("ck", "cs").await;
    assert_eq!(store.site_zone(), SiteZone::default());
    // 2026-11-01: New York falls back at 06:00 UTC (02:00 EDT → 01:00 EST).
    store.upsert(
        "orders",
        1,
        t("2026-11-01T05:30:00"),
        t("2026-07-01T12:00:00"),
    );
    store.upsert(
        "orders",
        2,
        t("2026-11-01T06:10:00"),
        t("2026-01-15T12:00:00"),
    );
    let url = store.catalog_url("orders");
    let (_, _, one) = wc_get(&format!("{url}/1")).await;
    assert_eq!(one["date_modified"], "2026-11-01T01:30:00");
    assert_eq!(one["date_modified_gmt"], "2026-11-01T05:30:00");
    assert_eq!(one["date_created"], "2026-07-01T08:00:00");
    let (_, _, two) = wc_get(&format!("{url}/2")).await;
    assert_eq!(two["date_modified"], "2026-11-01T01:10:00");
    assert_eq!(two["date_created"], "2026-01-15T07:00:00");

    // orderby=modified sorts on the local column: 2 (01:10) before 1 (01:30),
    // although 2 was modified 40 minutes later.
    let (_, _, body) = wc_get(&format!("{url}?orderby=modified&order=asc")).await;
    assert_eq!(ids(&body), [2, 1]);
    // A zone-less bound without dates_are_gmt is compared with local times:
    // the later change (2) is missed.
    let (_, _, body) = wc_get(&format!("{url}?modified_after=2026-11-01T01:20:00")).await;
    assert_eq!(ids(&body), [1]);
    // With dates_are_gmt=true the GMT column is used.
    let (_, _, body) = wc_get(&format!(
        "{url}?modified_after=2026-11-01T05:45:00&dates_are_gmt=true"
    ))
    .await;
    assert_eq!(ids(&body), [2]);
    // A bound with an offset becomes site-local first (05:45Z = 01:45 EDT),
    // then meets the local column: nothing, though 2 is after 05:45Z.
    let (_, _, body) = wc_get(&format!("{url}?modified_after=2026-11-01T05:45:00Z")).await;
    assert_eq!(ids(&body), Vec::<u64>::new());

    store.set_timezone("Asia/Kolkata");
    let (_, _, one) = wc_get(&format!("{url}/1")).await;
    assert_eq!(one["date_modified"], "2026-11-01T11:00:00");
}

#[tokio::test]
async fn the_index_and_system_status_tell_zone_and_version() {
    let store = start_store("ck", "cs").await;
    store.freeze_clock(Some(t("2026-07-04T12:00:00")));
    for path in ["/wp-json/", "/wp-json", "/?rest_route=/"] {
        let r = client()
            .get(format!("{}{path}", store.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let raw = r.text().await.unwrap();
        assert!(raw.contains(r#""gmt_offset":-4.0"#), "{raw}");
        let v: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(v["timezone_string"], "America/New_York");
        assert!(v["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!("wc/v3")));
        assert_eq!(v["name"], "WooCommerce Simulator");
    }
    assert_eq!(store.index_url(), format!("{}/wp-json/", store.base_url));
    store.freeze_clock(Some(t("2026-01-04T12:00:00")));
    let v: Value = client()
        .get(store.index_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["gmt_offset"], json!(-5.0));
    store.set_site_offset_hours(2);
    let v: Value = client()
        .get(store.index_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["gmt_offset"].clone(), v["timezone_string"].clone()),
        (json!("2"), json!(""))
    );

    let status_url = format!("{}/wp-json/wc/v3/system_status", store.base_url);
    let (status, _, v) = wc_get(&status_url).await;
    assert_eq!(status, 200);
    assert_eq!(v["environment"]["version"], "9.8.1");
    store.set_version("5.7.2");
    let (_, _, v) = wc_get(&status_url).await;
    assert_eq!(v["environment"]["version"], "5.7.2");
    let r = client().get(&status_url).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn before_5_8_modified_filters_are_ignored() {
    let store = start_store("ck", "cs").await;
    store.upsert(
        "products",
        1,
        t("2020-01-01T00:00:00"),
        t("2020-01-01T00:00:00"),
    );
    store.upsert(
        "products",
        2,
        t("2026-01-01T00:00:00"),
        t("2020-01-01T00:00:00"),
    );
    let url = store.catalog_url("products");
    let q = "modified_after=2025-01-01T00:00:00&dates_are_gmt=true&orderby=id&order=asc";
    let (_, _, body) = wc_get(&format!("{url}?{q}")).await;
    assert_eq!(ids(&body), [2]);
    store.set_version("5.7.2");
    let (status, h, body) = wc_get(&format!("{url}?{q}")).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body), [1, 2]);
    assert_eq!(h["x-wp-total"], "2");
    // Unregistered, so not even validated.
    let (status, _, _) = wc_get(&format!("{url}?modified_before=yesterday")).await;
    assert_eq!(status, 200);
    store.set_version("5.8.0");
    let (status, _, _) = wc_get(&format!("{url}?modified_before=yesterday")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn hidden_objects_make_short_pages() {
    let store = start_store("ck", "cs").await;
    let at = t("2026-06-01T00:00:00");
    for id in 1..=5 {
        store.upsert("orders", id, at, at);
    }
    store.hide_from_api("orders", 2);
    store.hide_from_api("orders", 4);
    let url = store.catalog_url("orders");
    let (_, h, body) = wc_get(&format!("{url}?orderby=id&order=asc&per_page=3")).await;
    assert_eq!(ids(&body), [1, 3], "a short page");
    assert_eq!(h["x-wp-total"], "5");
    assert_eq!(h["x-wp-totalpages"], "2");
    assert!(h["link"].to_str().unwrap().contains("rel=\"next\""));
    let (_, h, body) = wc_get(&format!("{url}?orderby=id&order=asc&per_page=3&page=2")).await;
    assert_eq!(ids(&body), [5]);
    assert!(!h["link"].to_str().unwrap().contains("rel=\"next\""));
    // A page made only of hidden objects is empty but not the end.
    let (_, h, body) = wc_get(&format!("{url}?orderby=id&order=asc&per_page=1&page=2")).await;
    assert_eq!(body, json!([]));
    assert!(h["link"]
        .to_str()
        .unwrap()
        .contains("page=3>; rel=\"next\""));
    let (status, _, body) = wc_get(&format!("{url}/2")).await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "woocommerce_rest_cannot_view");
    assert_eq!(store.object_count("orders"), 5);
}
