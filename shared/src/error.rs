//! The one error type every handler answers with. Each variant carries what the
//! client needs to fix its request; internal details are logged, never returned.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// A field of the request is missing or wrong. `field` is the path a client
    /// would use to find it, e.g. `configuration.store.url`.
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// The store's API failed or could not be reached.
    #[error("{0}")]
    BadGateway(String),
    /// A dependency (DynamoDB, the store) failed; the client may retry.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an invariant broken; the message is generic on purpose.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn required(field: impl Into<String>) -> Self {
        Self::field(field, "is required and must not be empty")
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidField { .. } | ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Conflict(_) => 409,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::TooManyRequests(_) => 429,
            ApiError::BadGateway(_) => 502,
            ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// The field a 400 names, for the `field` member of the error body.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            ApiError::InvalidField { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The JSON error body: `{"message", "requestId"[, "field"]}` as Cloud Elements sent.
    pub fn to_body(&self, request_id: &str) -> serde_json::Value {
        let mut body = serde_json::json!({
            "message": self.to_string(),
            "requestId": request_id,
        });
        if let Some(field) = self.field_name() {
            body["field"] = serde_json::Value::String(field.to_string());
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_name_the_field_in_message_and_body() {
        let err = ApiError::required("configuration.store.url");
        assert_eq!(err.status(), 400);
        let body = err.to_body("req-1");
        assert_eq!(body["field"], "configuration.store.url");
        assert_eq!(
            body["message"],
            "configuration.store.url: is required and must not be empty"
        );
        assert_eq!(body["requestId"], "req-1");
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let err = ApiError::Internal("dynamodb said: secret-ish detail".into());
        assert_eq!(err.to_body("r")["message"], "internal error");
        assert_eq!(err.status(), 500);
    }
}
