//! The Cloud Elements `where` clause of a poller URL, as the docs write it:
//! `min_date_modified='${date:EEE, dd MMM yyyy HH:mm:ss Z}'`, conditions
//! joined with `and`. Each condition becomes one vendor query parameter.

use crate::error::ApiError;

/// One `name op 'value'` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub name: String,
    pub op: String,
    pub value: String,
}

pub fn parse(clause: &str, field: &str) -> Result<Vec<Condition>, ApiError> {
    let mut conditions = Vec::new();
    let mut rest = clause.trim();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty() {
            return Err(ApiError::field(
                field,
                format!("expected a field name in the where clause at '{rest}'"),
            ));
        }
        rest = rest[name_end..].trim_start();
        let op = ["<=", ">=", "!=", "=", "<", ">"]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .ok_or_else(|| {
                ApiError::field(
                    field,
                    format!("expected an operator after '{name}' in the where clause"),
                )
            })?;
        rest = rest[op.len()..].trim_start();
        let (value, after) = if let Some(quoted) = rest.strip_prefix('\'') {
            let end = closing_quote(quoted).ok_or_else(|| {
                ApiError::field(
                    field,
                    format!("unterminated quote in the where clause after '{name}'"),
                )
            })?;
            (quoted[..end].replace("''", "'"), &quoted[end + 1..])
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            (rest[..end].to_string(), &rest[end..])
        };
        conditions.push(Condition {
            name: name.to_string(),
            op: op.to_string(),
            value,
        });
        rest = after.trim_start();
        if rest.is_empty() {
            break;
        }
        let lower = rest.to_ascii_lowercase();
        if let Some(stripped) = lower.strip_prefix("and ") {
            rest = rest[rest.len() - stripped.len()..].trim_start();
        } else {
            return Err(ApiError::field(
                field,
                format!("conditions must be joined with 'and', at '{rest}'"),
            ));
        }
    }
    Ok(conditions)
}

/// The closing quote of a quoted value; `''` is an escaped quote, and a
/// quote inside a `${…}` macro (a date pattern's literal) does not close it.
fn closing_quote(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut depth = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            b'}' if depth > 0 => depth -= 1,
            b'\'' if depth == 0 => {
                if bytes.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                return Some(i);
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_clauses() {
        let c = parse(
            "min_date_modified='${date:EEE, dd MMM yyyy HH:mm:ss Z}'",
            "f",
        )
        .unwrap();
        assert_eq!(
            c,
            [Condition {
                name: "min_date_modified".into(),
                op: "=".into(),
                value: "${date:EEE, dd MMM yyyy HH:mm:ss Z}".into()
            }]
        );
        let c = parse("lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'", "f").unwrap();
        assert_eq!(c[0].value, "${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}");
        assert_eq!(c[0].op, ">");
        let c = parse("status='processing' AND modified_after='${epoch}'", "f").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].name, "modified_after");
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        for bad in ["='x'", "a 'x'", "a='x", "a='x' or b='y'"] {
            assert!(parse(bad, "f").is_err(), "{bad}");
        }
    }
}
