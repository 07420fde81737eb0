//! Errors as JSON: `{"error": {"kind": ..., "message": ..., <the variant's fields>}}`
//! with the status that says whose fault it is (400 bad input, 404 unknown id or model,
//! 408 body too slow, 409 conflicting job, 413 body too large or too many records, 401
//! no token, 503 busy, overloaded, timed out or shutting down: retry later, 500 ours).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use recdb::Error;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// The `error` object: `kind`, `message` and the variant's fields.
    pub body: Map<String, Value>,
}

impl ApiError {
    /// 503 while the server stops: it takes no new work.
    pub fn shutting_down() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ShuttingDown",
            "the server is shutting down",
        )
    }

    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> ApiError {
        let mut body = Map::new();
        body.insert("kind".into(), kind.into());
        body.insert("message".into(), message.into().into());
        ApiError { status, body }
    }

    /// Add a field to the error object.
    pub fn with(mut self, key: &str, v: impl Into<Value>) -> ApiError {
        self.body.insert(key.into(), v.into());
        self
    }

    pub fn bad_request(kind: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, kind, message)
    }

    pub fn param(name: &str, msg: impl Into<String>) -> ApiError {
        ApiError::from(Error::InvalidParameter {
            name: name.into(),
            msg: msg.into(),
        })
    }

    /// The error object alone (the shell endpoint nests it beside the output).
    pub fn json(&self) -> Value {
        Value::Object(self.body.clone())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.body }))).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let message = e.to_string();
        let (status, kind, fields) = describe(&e);
        let mut a = ApiError::new(status, kind, message);
        if let Value::Object(m) = fields {
            a.body.extend(m);
        }
        a
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        match e.downcast::<Error>() {
            Ok(e) => e.into(),
            // The shell's own checks (a bad flag, an unknown mode): the caller's input.
            Err(e) => ApiError::bad_request("Invalid", format!("{e:#}")),
        }
    }
}

/// The status, the kind name and the fields of a library error.
fn describe(e: &Error) -> (StatusCode, &'static str, Value) {
    use StatusCode as S;
    match e {
        Error::Parse {
            file,
            line,
            field,
            msg,
        } => (
            S::BAD_REQUEST,
            "Parse",
            json!({"file": file, "line": line, "field": field, "msg": msg}),
        ),
        Error::UnknownUser(id) => (S::NOT_FOUND, "UnknownUser", json!({"id": id})),
        Error::UnknownItem(id) => (S::NOT_FOUND, "UnknownItem", json!({"id": id})),
        Error::UnknownTable(name) => (S::NOT_FOUND, "UnknownTable", json!({"table": name})),
        Error::UnknownJob(id) => (S::NOT_FOUND, "UnknownJob", json!({"id": id})),
        Error::UnknownRow { id, table } => (
            S::NOT_FOUND,
            "UnknownRow",
            json!({"id": id, "table": table}),
        ),
        Error::UnknownModel {
            name,
            known,
            suggestion,
        } => (
            S::NOT_FOUND,
            "UnknownModel",
            json!({"name": name, "known": known, "suggestion": suggestion}),
        ),
        Error::NotInModel { kind, id, model } => (
            S::NOT_FOUND,
            "NotInModel",
            json!({"what": kind, "id": id, "model": model}),
        ),
        Error::RowDeleted { kind, id, table } => (
            S::NOT_FOUND,
            "RowDeleted",
            json!({"what": kind, "id": id, "table": table}),
        ),
        Error::NoVectors {
            model,
            kind,
            models,
        } => (
            S::BAD_REQUEST,
            "NoVectors",
            json!({"model": model, "what": kind, "models": models}),
        ),
        Error::AmbiguousItem {
            text,
            matches,
            candidates,
        } => (
            S::BAD_REQUEST,
            "AmbiguousItem",
            json!({"text": text, "matches": matches, "candidates": candidates}),
        ),
        Error::InvalidEvent {
            file,
            index,
            reason,
        } => (
            S::BAD_REQUEST,
            "InvalidEvent",
            json!({"file": file, "index": index, "reason": reason}),
        ),
        Error::InvalidParameter { name, msg } => (
            S::BAD_REQUEST,
            "InvalidParameter",
            json!({"param": name, "msg": msg}),
        ),
        Error::DimensionMismatch { expected, got } => (
            S::BAD_REQUEST,
            "DimensionMismatch",
            json!({"expected": expected, "got": got}),
        ),
        Error::ZeroVector(what) => (S::BAD_REQUEST, "ZeroVector", json!({"what": what})),
        Error::EmptyTable { table, what } => (
            S::BAD_REQUEST,
            "EmptyTable",
            json!({"table": table, "what": what}),
        ),
        Error::NoEvents { what } => (S::BAD_REQUEST, "NoEvents", json!({"what": what})),
        Error::Empty(what) => (S::BAD_REQUEST, "Empty", json!({"what": what})),
        Error::InvalidInput(msg) => (S::BAD_REQUEST, "InvalidInput", json!({"msg": msg})),
        Error::TooLarge { what, limit } => (
            S::BAD_REQUEST,
            "TooLarge",
            json!({"what": what, "limit": limit}),
        ),
        // A limit on work at once (the jobs running): the same request later may pass.
        Error::Busy { what, limit } => (
            S::SERVICE_UNAVAILABLE,
            "Busy",
            json!({"what": what, "limit": limit}),
        ),
        Error::OutOfMemory {
            param,
            needed,
            available,
        } => (
            S::BAD_REQUEST,
            "OutOfMemory",
            json!({"param": param, "needed": needed, "available": available}),
        ),
        // A job stopped by `cancel` (or by shutdown): it conflicts with the request.
        Error::Cancelled => (S::CONFLICT, "Cancelled", json!({})),
        Error::JobFailed(msg) => (S::INTERNAL_SERVER_ERROR, "JobFailed", json!({"msg": msg})),
        Error::Io { path, .. } => (
            S::INTERNAL_SERVER_ERROR,
            "Io",
            json!({"path": path.display().to_string()}),
        ),
        Error::Storage { .. } => (S::INTERNAL_SERVER_ERROR, "Storage", json!({})),
        Error::System { what, .. } => (S::INTERNAL_SERVER_ERROR, "System", json!({"what": what})),
        Error::LockPoisoned { what } => (
            S::INTERNAL_SERVER_ERROR,
            "LockPoisoned",
            json!({"what": what}),
        ),
        Error::Corrupted { what } => (S::INTERNAL_SERVER_ERROR, "Corrupted", json!({"what": what})),
        Error::UnsupportedFormat { found, supported } => (
            S::INTERNAL_SERVER_ERROR,
            "UnsupportedFormat",
            json!({"found": found, "supported": supported}),
        ),
        Error::IncompleteRestore { dump } => (
            S::INTERNAL_SERVER_ERROR,
            "IncompleteRestore",
            json!({"dump": dump}),
        ),
        Error::Locked { pid, program, .. } => (
            S::CONFLICT,
            "Locked",
            json!({"pid": pid, "program": program}),
        ),
        // A variant added later: its message still says what happened.
        _ => (S::INTERNAL_SERVER_ERROR, "Other", json!({})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_fields() {
        let a = ApiError::from(Error::UnknownItem("x".into()));
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(a.body["kind"], "UnknownItem");
        assert_eq!(a.body["id"], "x");
        let a = ApiError::from(Error::Parse {
            file: "body".into(),
            line: 3,
            field: "value".into(),
            msg: "not a number".into(),
        });
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(a.body["line"], 3);
        assert_eq!(a.body["field"], "value");
        let a = ApiError::from(anyhow::Error::from(Error::UnknownJob(7)));
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(a.body["id"], 7);
        let a = ApiError::from(Error::Busy {
            what: "jobs running".into(),
            limit: 16,
        });
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            (&a.body["kind"], &a.body["limit"]),
            (&json!("Busy"), &json!(16))
        );
    }
}
