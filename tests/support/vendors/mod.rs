//! Faithful simulators of the stores and of what they send, written from the
//! vendors' documentation (docs/vendors/webhooks.md) and independently of the
//! production code under test.

pub mod bigcommerce;
pub mod ecwid;
pub mod one;
pub mod woocommerce;
