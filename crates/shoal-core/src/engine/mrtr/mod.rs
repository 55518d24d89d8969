//! Multi round-trip requests of the stateless era (2026-07-28): `tools/call`, `prompts/get` and
//! `resources/read` may end with `input_required`, and the client's retry brings the answers.
//!
//! The engine keeps nothing between rounds: what a retry needs travels in its `requestState`,
//! sealed by the configured [`KeyRing`](crate::request_state::KeyRing) (so any replica holding
//! the ring takes the retry) and bound to the principal, the method, a digest of the params and
//! an expiry. Each state is spent on first use, across replicas, through the host's key-value
//! store (`SET NX` with an expiry on Redis): one write per retry that brings a state.
//!
//! A handler's run replays its asks from the start: the answers of earlier rounds come back out
//! of the state, this round's from `inputResponses`. The answers a run used are sealed into the
//! next state; keys the handler never asked for are ignored.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::Shared;
use crate::handler::{Answer, InputRequest};
use crate::host::{KvKey, KvNamespace};
use crate::jsonrpc::{self, INTERNAL_ERROR, INVALID_PARAMS, Request, RpcError};
use crate::session::Principal;

/// Where spent states' nonces are kept until the states expire.
const SPENT_STATES: KvNamespace = KvNamespace::new("mrtr-spent");

/// Clocks of replicas disagree a little: a spent nonce outlives its state by this much.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The methods that may answer `input_required`.
pub(crate) fn may_ask(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

/// The answers one run of a handler may use, and what it asked that has no answer yet.
#[derive(Debug, Default)]
pub(crate) struct InputRound {
    /// 1 for a request without a state; one more than the state's round otherwise.
    round: u32,
    /// Answers of earlier rounds (from the state) and of this one (from `inputResponses`).
    available: Map<String, Value>,
    /// The answers the run used: sealed into the next state.
    used: Map<String, Value>,
    /// What the run asked and has no answer to: the next `inputRequests`.
    asked: Map<String, Value>,
    /// An answer that is not what its request asks for, described.
    malformed: Option<String>,
    /// How many keys [`auto_key`](Self::auto_key) has made, per kind.
    auto_keys: BTreeMap<&'static str, u32>,
}

/// What an ask finds in the round.
pub(crate) enum Lookup {
    Answered(Answer),
    Missing,
    Malformed,
}

impl InputRound {
    /// Which round of the request this run is (1 for the first).
    pub(crate) fn number(&self) -> u32 {
        self.round
    }

    /// Whether the run asked for something it lacks, or got a malformed answer.
    pub(crate) fn awaits_input(&self) -> bool {
        !self.asked.is_empty() || self.malformed.is_some()
    }

    /// The answer to `request` under `key`, recording what is missing or wrong.
    pub(crate) fn answer(&mut self, key: &str, request: &InputRequest) -> Lookup {
        let Some(value) = self.available.get(key) else {
            self.asked.insert(
                key.to_owned(),
                json!({ "method": request.method(), "params": request.params() }),
            );
            return Lookup::Missing;
        };
        match request.answer(value.clone()) {
            Ok(answer) => {
                self.used.insert(key.to_owned(), value.clone());
                Lookup::Answered(answer)
            }
            Err(error) => {
                self.malformed.get_or_insert_with(|| {
                    format!(
                        "inputResponses.{key} must be the {} answering {}: {error}",
                        request.answer_type(),
                        request.method()
                    )
                });
                Lookup::Malformed
            }
        }
    }

    /// A key for an ask that names none (`elicit`, `create_message`, `list_roots`): its kind and
    /// how many of that kind the run asked before, which a replay reproduces.
    pub(crate) fn auto_key(&mut self, kind: &'static str) -> String {
        let count = self.auto_keys.entry(kind).or_insert(0);
        *count += 1;
        format!("{kind}-{count}")
    }
}

/// The sealed part of a `requestState`. Short names: it travels in every retry.
#[derive(Debug, Serialize, Deserialize)]
struct SealedState {
    /// The principal's id.
    #[serde(rename = "p")]
    principal: Option<String>,
    /// The method.
    #[serde(rename = "m")]
    method: String,
    /// SHA-256 of the params (without `_meta`, `inputResponses`, `requestState`).
    #[serde(rename = "d")]
    digest: String,
    /// Expiry, in milliseconds since the epoch.
    #[serde(rename = "x")]
    expires_at: u64,
    /// Spent on first use.
    #[serde(rename = "n")]
    nonce: String,
    /// The round that sealed it.
    #[serde(rename = "r")]
    round: u32,
    /// The answers of the rounds so far.
    #[serde(rename = "a")]
    answers: Map<String, Value>,
}

/// Why a retry's state or answers were refused: each a `-32602` with a `reason` in its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    StateNotText,
    StateUnreadable(crate::request_state::OpenError),
    Expired,
    OtherPrincipal,
    OtherRequest,
    Spent,
    ResponsesNotAnObject,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::StateNotText => "malformed",
            Refusal::StateUnreadable(crate::request_state::OpenError::Malformed) => "malformed",
            Refusal::StateUnreadable(crate::request_state::OpenError::UnknownKey) => "unknown-key",
            Refusal::StateUnreadable(crate::request_state::OpenError::Forged) => "forged",
            Refusal::Expired => "expired",
            Refusal::OtherPrincipal => "other-principal",
            Refusal::OtherRequest => "other-request",
            Refusal::Spent => "spent",
            Refusal::ResponsesNotAnObject => "malformed-input-responses",
        }
    }

    fn message(self) -> String {
        match self {
            Refusal::StateNotText => "requestState must be a string".into(),
            Refusal::StateUnreadable(error) => format!("requestState {error}"),
            Refusal::Expired => {
                "requestState has expired; send the request again without it".into()
            }
            Refusal::OtherPrincipal => "requestState was issued to another principal".into(),
            Refusal::OtherRequest => {
                "requestState was issued for another request (method or params differ)".into()
            }
            Refusal::Spent => {
                "requestState was already used; each one is good for one retry".into()
            }
            Refusal::ResponsesNotAnObject => {
                "inputResponses must be an object mapping each key of inputRequests to its answer"
                    .into()
            }
        }
    }
}

impl From<Refusal> for RpcError {
    fn from(refusal: Refusal) -> Self {
        super::metrics::request_state_refused(refusal.reason());
        RpcError {
            code: INVALID_PARAMS,
            message: refusal.message(),
            data: Some(json!({ "reason": refusal.reason() })),
        }
    }
}

/// Opens a request's round: checks and spends its `requestState`, and gathers the answers it
/// and `inputResponses` bring.
pub(crate) async fn begin(
    shared: &Shared,
    principal: Option<&Principal>,
    request: &Request,
) -> Result<InputRound, RpcError> {
    let params = request.params.as_ref();
    let mut available = match params.and_then(|p| p.get("inputResponses")) {
        None => Map::new(),
        Some(Value::Object(responses)) => responses.clone(),
        Some(_) => return Err(Refusal::ResponsesNotAnObject.into()),
    };
    let Some(state) = params.and_then(|p| p.get("requestState")) else {
        return Ok(InputRound {
            round: 1,
            available,
            ..InputRound::default()
        });
    };
    let state = state.as_str().ok_or(Refusal::StateNotText)?;
    let sealed = open(shared, principal, request, state)?;
    let remaining = Duration::from_millis(sealed.expires_at.saturating_sub(now_ms()));
    let spent = shared
        .host
        .put_if_absent(
            &KvKey::new(SPENT_STATES, sealed.nonce),
            Bytes::from_static(b"1"),
            remaining + CLOCK_SKEW,
        )
        .await
        .map_err(|error| {
            tracing::warn!(%error, "cannot spend a requestState: the session host is unavailable");
            jsonrpc::rpc_error(
                INTERNAL_ERROR,
                "the request state cannot be checked now; retry later",
            )
        })?;
    if !spent {
        return Err(Refusal::Spent.into());
    }
    // Earlier rounds' answers are sealed: a retry cannot replace them.
    for (key, answer) in sealed.answers {
        available.insert(key, answer);
    }
    Ok(InputRound {
        round: sealed.round.saturating_add(1),
        available,
        ..InputRound::default()
    })
}

fn open(
    shared: &Shared,
    principal: Option<&Principal>,
    request: &Request,
    state: &str,
) -> Result<SealedState, Refusal> {
    let plaintext = shared
        .config
        .request_state_keys
        .open(state)
        .map_err(Refusal::StateUnreadable)?;
    let sealed: SealedState = serde_json::from_slice(&plaintext)
        .map_err(|_| Refusal::StateUnreadable(crate::request_state::OpenError::Malformed))?;
    if sealed.expires_at <= now_ms() {
        return Err(Refusal::Expired);
    }
    if sealed.principal.as_deref() != principal.map(|p| p.id.as_str()) {
        return Err(Refusal::OtherPrincipal);
    }
    if sealed.method != request.method || sealed.digest != params_digest(request) {
        return Err(Refusal::OtherRequest);
    }
    Ok(sealed)
}

/// How a run that asked ends: `input_required` with a new state when it asked for something
/// unanswered, an error when an answer was malformed; `None` when it asked nothing it lacked.
pub(crate) fn finish(
    shared: &Shared,
    principal: Option<&Principal>,
    request: &Request,
    round: InputRound,
) -> Option<Result<Value, RpcError>> {
    if let Some(message) = round.malformed {
        super::metrics::request_state_refused("malformed-input-response");
        return Some(Err(RpcError {
            code: INVALID_PARAMS,
            message,
            data: Some(json!({ "reason": "malformed-input-response" })),
        }));
    }
    if round.asked.is_empty() {
        return None;
    }
    let ttl = shared.config.request_state_ttl;
    let sealed = SealedState {
        principal: principal.map(|p| p.id.clone()),
        method: request.method.clone(),
        digest: params_digest(request),
        expires_at: now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
        nonce: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
        round: round.round,
        answers: round.used,
    };
    let plaintext = serde_json::to_vec(&sealed).unwrap_or_default();
    super::metrics::input_required(super::metrics::method_label(&request.method));
    Some(Ok(json!({
        "resultType": "input_required",
        "inputRequests": round.asked,
        "requestState": shared.config.request_state_keys.seal(&plaintext),
    })))
}

/// SHA-256 of the params a state is bound to: all but `_meta` (per request: the client's
/// capabilities may differ between rounds) and the round's own `inputResponses` and
/// `requestState`. `serde_json` maps are ordered, so the serialization is canonical.
fn params_digest(request: &Request) -> String {
    let mut params = request.params.clone().unwrap_or_default();
    for key in ["_meta", "inputResponses", "requestState"] {
        params.remove(key);
    }
    let bytes = serde_json::to_vec(&params).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(digest(&SHA256, &bytes))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
