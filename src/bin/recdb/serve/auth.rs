//! The gate in front of every route but `/v1/health`: shutdown, the bearer token, and a
//! declared body size past the limit (refused before the body is read).

use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::errors::ApiError;
use super::{State as AppState, MAX_BODY};

/// Whether `a` equals `b`, in time that depends on their lengths only, not on where
/// they first differ (so the token cannot be guessed byte by byte from timings).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    // Walk the expected token's length whatever was sent.
    for (i, x) in b.iter().enumerate() {
        diff |= x ^ a.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

pub async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.stopping.load(Ordering::SeqCst) {
        return ApiError::shutting_down().into_response();
    }
    if let Some(token) = &state.token {
        let sent = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        if !constant_time_eq(sent.as_bytes(), token) {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "this server needs `Authorization: Bearer TOKEN` (the token in its --token-file)",
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BodyTooLarge",
            format!("the request body is larger than the limit of {MAX_BODY} bytes"),
        )
        .with("limit", MAX_BODY)
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn eq() {
        use super::constant_time_eq as eq;
        assert!(eq(b"secret", b"secret"));
        assert!(!eq(b"secreT", b"secret"));
        assert!(!eq(b"secret!", b"secret"));
        assert!(!eq(b"", b"secret"));
        assert!(!eq(b"secre", b"secret"));
    }
}
