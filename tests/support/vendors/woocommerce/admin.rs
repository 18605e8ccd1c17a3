//! What a store administrator does by hand in WP Admin → WooCommerce →
//! Settings → Advanced → Webhooks (`WC_Admin_Webhooks`): edit a hook's
//! delivery URL, or delete a hook. Neither tells the API client.

use super::catalog::catalog_resource;
use super::{lock, store_now, WooStore};

impl WooStore {
    /// Changes a hook's delivery URL, as an edit in the admin screen does
    /// (`WC_Webhook::set_delivery_url`); false if the hook is unknown.
    pub fn set_delivery_url(&self, id: u64, url: &str) -> bool {
        let mut s = lock(&self.state);
        let now = store_now(&s);
        match s.hooks.get_mut(&id) {
            Some(h) => {
                h.delivery_url = url.to_string();
                h.date_modified = now;
                true
            }
            None => false,
        }
    }

    /// Gives an existing catalog object `bytes` of plugin meta (a page
    /// builder's layout), returned in its `meta_data`; false if unknown.
    pub fn set_meta_bytes(&self, resource: &str, id: u64, bytes: usize) -> bool {
        let mut s = lock(&self.state);
        match s
            .catalog
            .get_mut(catalog_resource(resource))
            .and_then(|items| items.get_mut(&id))
        {
            Some(item) => {
                item.meta_bytes = bytes;
                true
            }
            None => false,
        }
    }

    /// Deletes a hook for good, as the admin screen's "Delete permanently"
    /// does (`WC_Webhook::delete(true)`); false if the hook is unknown.
    pub fn remove_hook(&self, id: u64) -> bool {
        lock(&self.state).hooks.remove(&id).is_some()
    }
}
