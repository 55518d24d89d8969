//! Input a handler asks the client for, written once for both eras.
//!
//! A handler names each thing it needs ([`Inputs`]) and awaits
//! [`RequestContext::ask`](super::RequestContext::ask). In the session era each is a real
//! server→client request on the request's stream, answered while the handler waits. In the
//! stateless era (2026-07-28) there are no server→client requests: the first run that asks for
//! something it has no answer to ends with `input_required`, the client retries with the answers,
//! and the handler runs again from the start, this time getting them. So a handler that asks must
//! not do anything before its asks that it would regret doing twice.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::model::{
    CreateMessageRequest, CreateMessageResult, ElicitRequest, ElicitResult, ListRootsResult,
};

/// One thing to ask the client for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InputRequest {
    /// Ask the user (`elicitation/create`).
    Elicit(ElicitRequest),
    /// Ask the client's model (`sampling/createMessage`).
    Sample(CreateMessageRequest),
    /// Ask for the client's roots (`roots/list`).
    ListRoots,
}

impl InputRequest {
    /// The JSON-RPC method that carries it.
    pub fn method(&self) -> &'static str {
        match self {
            InputRequest::Elicit(_) => "elicitation/create",
            InputRequest::Sample(_) => "sampling/createMessage",
            InputRequest::ListRoots => "roots/list",
        }
    }

    /// The client capability it needs.
    pub fn capability(&self) -> &'static str {
        match self {
            InputRequest::Elicit(_) => "elicitation",
            InputRequest::Sample(_) => "sampling",
            InputRequest::ListRoots => "roots",
        }
    }

    /// Its params.
    pub(crate) fn params(&self) -> Value {
        match self {
            InputRequest::Elicit(request) => serde_json::to_value(request),
            InputRequest::Sample(request) => serde_json::to_value(request),
            InputRequest::ListRoots => Ok(json!({})),
        }
        .unwrap_or(Value::Null)
    }

    /// Reads the client's answer to it.
    pub(crate) fn answer(&self, value: Value) -> Result<Answer, serde_json::Error> {
        Ok(match self {
            InputRequest::Elicit(_) => Answer::Elicit(serde_json::from_value(value)?),
            InputRequest::Sample(_) => Answer::Sample(serde_json::from_value(value)?),
            InputRequest::ListRoots => Answer::Roots(serde_json::from_value(value)?),
        })
    }

    /// What the answer is called, for messages about a wrong one.
    pub(crate) fn answer_type(&self) -> &'static str {
        match self {
            InputRequest::Elicit(_) => "ElicitResult",
            InputRequest::Sample(_) => "CreateMessageResult",
            InputRequest::ListRoots => "ListRootsResult",
        }
    }
}

/// What a handler asks for, each under a key of its choosing (unique within the request; the
/// stateless era shows the keys to the client as `inputRequests`' names).
///
/// ```
/// use shoal_core::handler::Inputs;
/// use shoal_core::model::ElicitRequest;
/// use serde_json::json;
///
/// let inputs = Inputs::new()
///     .elicit("user_name", ElicitRequest {
///         message: "What is your name?".into(),
///         requested_schema: json!({ "type": "object", "properties": { "name": { "type": "string" } } }),
///     })
///     .list_roots("client_roots");
/// assert_eq!(inputs.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    pub(crate) requests: Vec<(String, InputRequest)>,
}

impl Inputs {
    /// Nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `request` under `key`; a second request under a key replaces the first.
    pub fn with(mut self, key: impl Into<String>, request: InputRequest) -> Self {
        let key = key.into();
        self.requests.retain(|(known, _)| *known != key);
        self.requests.push((key, request));
        self
    }

    /// Asks the user.
    pub fn elicit(self, key: impl Into<String>, request: ElicitRequest) -> Self {
        self.with(key, InputRequest::Elicit(request))
    }

    /// Asks the client's model.
    pub fn sample(self, key: impl Into<String>, request: CreateMessageRequest) -> Self {
        self.with(key, InputRequest::Sample(request))
    }

    /// Asks for the client's roots.
    pub fn list_roots(self, key: impl Into<String>) -> Self {
        self.with(key, InputRequest::ListRoots)
    }

    /// How many things are asked.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether nothing is asked.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

/// The client's answer to one [`InputRequest`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Answer {
    /// The user's answer to an elicitation.
    Elicit(ElicitResult),
    /// The client model's reply.
    Sample(CreateMessageResult),
    /// The client's roots.
    Roots(ListRootsResult),
}

/// The answers to an [`Inputs`], by key: every key asked has one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answers {
    pub(crate) answers: BTreeMap<String, Answer>,
}

impl Answers {
    /// The answer under `key`.
    pub fn get(&self, key: &str) -> Option<&Answer> {
        self.answers.get(key)
    }

    /// Removes and returns the answer under `key`.
    pub fn remove(&mut self, key: &str) -> Option<Answer> {
        self.answers.remove(key)
    }

    /// The elicitation answer under `key`.
    pub fn elicitation(&self, key: &str) -> Option<&ElicitResult> {
        match self.get(key)? {
            Answer::Elicit(result) => Some(result),
            _ => None,
        }
    }

    /// The sampling reply under `key`.
    pub fn sampling(&self, key: &str) -> Option<&CreateMessageResult> {
        match self.get(key)? {
            Answer::Sample(result) => Some(result),
            _ => None,
        }
    }

    /// The roots under `key`.
    pub fn roots(&self, key: &str) -> Option<&ListRootsResult> {
        match self.get(key)? {
            Answer::Roots(result) => Some(result),
            _ => None,
        }
    }
}
