//! The date macros of Cloud Elements poller URLs, each standing for the
//! last poll time: `${date:FMT}` in the resource's time zone (UTC unless
//! configured), `${gmtDate:FMT}` in GMT, `${epoch}` in milliseconds.

use chrono::{DateTime, FixedOffset, Utc};

use crate::error::ApiError;
use crate::javadate::JavaDateFormat;

/// Checks every macro of a text (at configuration time).
pub fn validate(text: &str, field: &str) -> Result<(), ApiError> {
    expand(
        text,
        Utc::now(),
        FixedOffset::east_opt(0).expect("zero offset"),
        field,
    )
    .map(|_| ())
}

pub fn expand(
    text: &str,
    at: DateTime<Utc>,
    zone: FixedOffset,
    field: &str,
) -> Result<String, ApiError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| ApiError::field(field, format!("unterminated macro '${{{after}'")))?;
        let body = &after[..end];
        let (kind, pattern) = body.split_once(':').unwrap_or((body, ""));
        let expanded = match kind.trim() {
            "epoch" => at.timestamp_millis().to_string(),
            "date" | "gmtDate" => {
                let format = JavaDateFormat::compile(pattern)
                    .map_err(|e| ApiError::field(field, format!("macro '${{{body}}}': {e}")))?;
                let offset = if kind.trim() == "date" { zone } else { FixedOffset::east_opt(0).expect("zero offset") };
                format.format(at.with_timezone(&offset))
            }
            other => {
                return Err(ApiError::field(
                    field,
                    format!("unknown macro '${{{other}}}'; known: ${{date:FMT}}, ${{gmtDate:FMT}}, ${{epoch}}"),
                ))
            }
        };
        out.push_str(&expanded);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T10:15:30Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn expands_the_three_macros() {
        let utc = FixedOffset::east_opt(0).unwrap();
        assert_eq!(
            expand("${date:EEE, dd MMM yyyy HH:mm:ss Z}", at(), utc, "f").unwrap(),
            "Mon, 23 Nov 2026 10:15:30 +0000"
        );
        assert_eq!(
            expand("${date:EE, dd MMM yyyy HH:mm:ss Z}", at(), utc, "f").unwrap(),
            "Mon, 23 Nov 2026 10:15:30 +0000"
        );
        let plus2 = FixedOffset::east_opt(7200).unwrap();
        assert_eq!(
            expand("x=${date:HH:mm}&y=${gmtDate:HH:mm}", at(), plus2, "f").unwrap(),
            "x=12:15&y=10:15"
        );
        assert_eq!(expand("${epoch}", at(), utc, "f").unwrap(), "1795428930000");
        assert_eq!(
            expand("${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}", at(), utc, "f").unwrap(),
            "2026-11-23T10:15:30Z"
        );
        assert_eq!(expand("no macros", at(), utc, "f").unwrap(), "no macros");
    }

    #[test]
    fn names_bad_macros() {
        let utc = FixedOffset::east_opt(0).unwrap();
        for bad in ["${nope}", "${date:GGG}", "${date:yyyy"] {
            let err = expand(bad, at(), utc, "the.field").unwrap_err();
            assert_eq!(err.field_name(), Some("the.field"), "{bad}");
        }
    }
}
