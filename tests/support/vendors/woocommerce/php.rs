//! The PHP and WordPress primitives the rest of the simulator is built on:
//! `json_encode`, `wp_specialchars_decode`, `wp_hash`, `rawurlencode`, and how
//! PHP fills `$_GET` from a query string.

use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use md5::Md5;
use serde_json::Value;

/// PHP `json_encode($v)` with default flags, as `wp_json_encode` (§1.1):
/// `/` → `\/`, non-ASCII → lowercase `\uXXXX` (surrogate pairs above U+FFFF).
///
/// No whitespace is emitted. Object keys come out in `serde_json::Map` order,
/// which is sorted here (the crate is built without `preserve_order`); PHP
/// keeps insertion order, but receivers must not depend on key order anyway.
/// Numbers use serde_json's formatting (identical to PHP for integers and
/// ordinary floats, `-4.0` included; exponent forms differ, e.g. PHP writes
/// `1.0e+25`).
pub fn php_json_encode(v: &Value) -> Vec<u8> {
    let mut out = String::new();
    encode_value(v, &mut out);
    out.into_bytes()
}

fn encode_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => encode_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode_string(k, out);
                out.push(':');
                encode_value(item, out);
            }
            out.push('}');
        }
    }
}

fn encode_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// WordPress `wp_specialchars_decode($s, ENT_QUOTES)`, applied by WooCommerce
/// to the stored secret before using it as the HMAC key (§1.2).
///
/// Decodes `&lt;` `&gt;` `&amp;` `&quot;` and the numeric forms of `<` `>`
/// `&` `"` `'` (decimal with any leading zeros; hex for `&`, `"`, `'`), in a
/// single pass like PHP's `strtr` (so `&amp;lt;` becomes `&lt;`).
pub fn wp_specialchars_decode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match decode_entity(rest) {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes one entity at the start of `s` (which starts with `&`).
fn decode_entity(s: &str) -> Option<(char, usize)> {
    for (name, c) in [
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&amp;", '&'),
        ("&quot;", '"'),
    ] {
        if s.starts_with(name) {
            return Some((c, name.len()));
        }
    }
    let body = s.strip_prefix("&#")?;
    let end = body.find(';')?;
    let digits = &body[..end];
    let len = 2 + end + 1;
    if let Some(hex) = digits
        .strip_prefix('x')
        .or_else(|| digits.strip_prefix('X'))
    {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let trimmed = hex.trim_start_matches('0');
        return match trimmed.to_ascii_lowercase().as_str() {
            "27" => Some(('\'', len)),
            "22" => Some(('"', len)),
            "26" => Some(('&', len)),
            _ => None,
        };
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match digits.trim_start_matches('0') {
        "39" => Some(('\'', len)),
        "34" => Some(('"', len)),
        "60" => Some(('<', len)),
        "62" => Some(('>', len)),
        "38" => Some(('&', len)),
        _ => None,
    }
}

/// The simulated site's `wp_salt('auth')` (AUTH_KEY . AUTH_SALT); fixed, so
/// delivery ids are reproducible across runs.
pub const WP_AUTH_SALT: &str = "sim-auth-key-0123456789abcdef sim-auth-salt-fedcba9876543210";

/// WordPress `wp_hash($data)` (src/wp-includes/pluggable.php):
/// `hash_hmac( 'md5', $data, wp_salt( 'auth' ) )`, 32 lowercase hex chars.
pub fn wp_hash(data: &str) -> String {
    let mut mac = Hmac::<Md5>::new_from_slice(WP_AUTH_SALT.as_bytes()).expect("any key length");
    mac.update(data.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// PHP `rawurlencode()`: every byte but `A-Z a-z 0-9 - _ . ~` as `%XX`
/// (uppercase hex). This is RFC 3986 percent-encoding, the one
/// `wc_rest_urlencode_rfc3986()` uses.
pub fn rawurlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `$_GET`-style decoded `(name, value)` pairs of a query string
/// (`+` is a space, `%XX` decoded).
pub(super) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Query parameters as PHP keeps scalars: a later duplicate replaces the
/// value but keeps the first position.
pub(super) fn php_query(query: Option<&str>) -> Vec<(String, String)> {
    dedup(&query_pairs(query))
}

/// [`php_query`] on already decoded pairs.
pub(super) fn dedup(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in pairs.iter().cloned() {
        match out.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

/// A PHP request variable: a string, or an (ordered) array from `a[]=` /
/// `a[k]=` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PhpValue {
    Str(String),
    Arr(Vec<(String, PhpValue)>),
}

impl PhpValue {
    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            PhpValue::Str(s) => Some(s),
            PhpValue::Arr(_) => None,
        }
    }
}

/// An ordered PHP array with string keys (`$_GET`, `$_POST`).
pub(super) type PhpArray = Vec<(String, PhpValue)>;

/// PHP's `parse_str` / `$_GET` filling from decoded pairs: `.` and ` ` in
/// the base name become `_`; `a[]=x` appends with the next integer key,
/// `a[k]=x` sets key `k` (nested brackets nest); a later scalar replaces an
/// earlier one in place.
pub(super) fn php_array(pairs: &[(String, String)]) -> PhpArray {
    let mut out: PhpArray = Vec::new();
    for (name, value) in pairs {
        let (base, subs) = split_php_name(name);
        if base.is_empty() {
            continue;
        }
        insert_php(&mut out, &base, &subs, value.clone());
    }
    out
}

fn split_php_name(name: &str) -> (String, Vec<String>) {
    let (base, rest) = match name.find('[') {
        Some(at) if name[at..].contains(']') => (&name[..at], &name[at..]),
        _ => (name, ""),
    };
    let base: String = base
        .chars()
        .map(|c| if c == '.' || c == ' ' { '_' } else { c })
        .collect();
    let mut subs = Vec::new();
    let mut rest = rest;
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(end) = inner.find(']') else { break };
        subs.push(inner[..end].to_string());
        rest = &inner[end + 1..];
    }
    (base, subs)
}

fn next_index(arr: &PhpArray) -> String {
    arr.iter()
        .filter_map(|(k, _)| k.parse::<i64>().ok())
        .max()
        .map_or(0, |n| n + 1)
        .to_string()
}

fn insert_php(arr: &mut PhpArray, key: &str, subs: &[String], value: String) {
    let key = if key.is_empty() {
        next_index(arr)
    } else {
        key.to_string()
    };
    let Some((first, rest)) = subs.split_first() else {
        match arr.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = PhpValue::Str(value),
            None => arr.push((key, PhpValue::Str(value))),
        }
        return;
    };
    let pos = match arr.iter().position(|(k, _)| *k == key) {
        Some(p) => p,
        None => {
            arr.push((key, PhpValue::Arr(Vec::new())));
            arr.len() - 1
        }
    };
    if !matches!(arr[pos].1, PhpValue::Arr(_)) {
        arr[pos].1 = PhpValue::Arr(Vec::new());
    }
    if let PhpValue::Arr(inner) = &mut arr[pos].1 {
        insert_php(inner, first, rest, value);
    }
}

/// PHP `empty()` on a request variable: missing, `""` or `"0"`.
pub(super) fn php_empty(v: Option<&PhpValue>) -> bool {
    match v {
        None => true,
        Some(PhpValue::Str(s)) => s.is_empty() || s == "0",
        Some(PhpValue::Arr(a)) => a.is_empty(),
    }
}
