//! The instance id in an ingestion URL: plain (`123`) or base64 of the
//! decimal text (`MTIz`), as Cloud Elements put it in webhook URLs.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;

pub fn parse_instance_id(segment: &str) -> Option<u64> {
    let segment = segment.trim();
    if let Some(id) = decimal(segment) {
        return Some(id);
    }
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(segment).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| decimal(text.trim()))
}

fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&id| id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_base64_ids() {
        assert_eq!(parse_instance_id("123456"), Some(123456));
        assert_eq!(parse_instance_id("MTIzNDU2"), Some(123456));
        assert_eq!(parse_instance_id("MTIzNDU2Nzg5MA=="), Some(1234567890));
        assert_eq!(parse_instance_id("MTIzNDU2Nzg5MA"), Some(1234567890));
        assert_eq!(
            parse_instance_id(&crate::base64_instance_id(4503599627370495)),
            Some(4503599627370495)
        );
        for bad in ["", "0", "abc", "aGVsbG8=", "-1", "99999999999999999999999"] {
            assert_eq!(parse_instance_id(bad), None, "{bad}");
        }
    }
}
