//! What bounds the work one client can make the server do: requests in flight
//! (`--max-requests`), the time a body may take to arrive (`--body-timeout`), and lists
//! of a request read only up to their limit ([`Capped`]).

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;

use super::errors::ApiError;
use super::State as AppState;

/// How long a request past `--max-requests` waits for a slot before its 503: smooths a
/// burst without letting a queue grow.
pub const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

tokio::task_local! {
    /// The request's slot, for [`current_slot`]: the blocking call of a request holds it
    /// too, so a query answered `Timeout` keeps its slot until its work really ends.
    static SLOT: Arc<OwnedSemaphorePermit>;
}

/// The slot of the request being handled (none outside [`admit`]).
pub fn current_slot() -> Option<Arc<OwnedSemaphorePermit>> {
    SLOT.try_with(Arc::clone).ok()
}

fn seconds(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

/// After the gate: take one of `--max-requests` slots (waiting at most [`QUEUE_WAIT`]),
/// then read the whole body within `--body-timeout`, so a slow or stalled client holds
/// a slot for a bounded time only.
pub async fn admit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.limits.max_requests;
    let permit = match tokio::time::timeout(QUEUE_WAIT, state.slots.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        // The semaphore is never closed; a closed one would mean the server is stopping.
        Ok(Err(_)) => return ApiError::shutting_down().into_response(),
        Err(_) => {
            let mut r = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Overloaded",
                format!(
                    "the server is handling its limit of {limit} requests at once \
                     (--max-requests); retry shortly"
                ),
            )
            .with("limit", limit)
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
    };
    if state.stopping.load(Ordering::SeqCst) {
        return ApiError::shutting_down().into_response();
    }
    let (parts, body) = req.into_parts();
    let head = parts.clone();
    let wait = state.limits.body_timeout;
    let read = Bytes::from_request(Request::from_parts(parts, body), &());
    let body = match tokio::time::timeout(wait, read).await {
        Ok(b) => match super::routes::bytes(b) {
            Ok(b) => b,
            Err(e) => return e.into_response(),
        },
        Err(_) => {
            let mut r = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "BodyTimeout",
                format!(
                    "the request body did not arrive within {} s (--body-timeout)",
                    seconds(wait)
                ),
            )
            .with("limit_seconds", seconds(wait))
            .into_response();
            // The rest of the body may still come: this connection cannot be reused.
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    let req = Request::from_parts(head, Body::from(body));
    SLOT.scope(Arc::new(permit), next.run(req)).await
}

/// A JSON list read up to a limit: past it, the rest is counted but not kept, so a
/// request's list costs memory for `limit` elements at most whatever its length.
#[derive(Debug)]
pub enum Capped<T> {
    List(Vec<T>),
    /// The list's length, past the limit.
    Over(usize),
}

impl<T> Capped<T> {
    /// The list's length.
    pub fn len(&self) -> usize {
        match self {
            Capped::List(v) => v.len(),
            Capped::Over(n) => *n,
        }
    }

    /// The list when it holds 1 to `limit` elements, else the length.
    pub fn within(self, limit: usize) -> Result<Vec<T>, usize> {
        match self {
            Capped::List(v) if !v.is_empty() && v.len() <= limit => Ok(v),
            other => Err(other.len()),
        }
    }
}

/// Reads a JSON array as [`Capped`] with the limit `limit`.
pub struct CappedSeed<T> {
    pub limit: usize,
    _t: PhantomData<T>,
}

impl<T> CappedSeed<T> {
    pub fn new(limit: usize) -> Self {
        CappedSeed {
            limit,
            _t: PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for CappedSeed<T> {
    type Value = Capped<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Capped<T>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for CappedSeed<T> {
    type Value = Capped<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Capped<T>, A::Error> {
        // The size hint comes from the request: never trusted past the limit.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.limit));
        while out.len() < self.limit {
            match seq.next_element()? {
                Some(x) => out.push(x),
                None => return Ok(Capped::List(out)),
            }
        }
        let mut n = out.len();
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(if n == out.len() {
            Capped::List(out)
        } else {
            Capped::Over(n)
        })
    }
}

/// The ids of a batched request (`users` of `recommend`, `items` of `rank`), read up to
/// [`super::MAX_BATCH`].
#[derive(Debug)]
pub struct Batch(pub Capped<String>);

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Batch, D::Error> {
        CappedSeed::new(super::MAX_BATCH).deserialize(d).map(Batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capped(json: &str, limit: usize) -> Capped<String> {
        let mut d = serde_json::Deserializer::from_str(json);
        CappedSeed::new(limit).deserialize(&mut d).unwrap()
    }

    #[test]
    fn a_list_past_its_limit_is_counted_not_kept() {
        assert!(matches!(capped(r#"["a","b"]"#, 2), Capped::List(v) if v == ["a", "b"]));
        assert!(matches!(capped(r#"["a","b","c"]"#, 2), Capped::Over(3)));
        assert_eq!(capped("[]", 2).within(2), Err(0));
        assert_eq!(capped(r#"["a"]"#, 2).within(2), Ok(vec!["a".to_owned()]));
        assert_eq!(capped(r#"["a","b","c"]"#, 2).within(2), Err(3));
        // What is past the limit is still checked as JSON.
        let mut d = serde_json::Deserializer::from_str(r#"["a","b",}"#);
        assert!(CappedSeed::<String>::new(1).deserialize(&mut d).is_err());
    }
}
