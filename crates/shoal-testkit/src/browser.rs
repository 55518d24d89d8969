//! [`HeadlessUser`]: a person's browser, without the person, for OAuth authorization flows.
//!
//! It walks from an authorization URL to the client's redirect URI the way a browser would:
//! it follows redirects itself (relative or absolute `Location`), keeps cookies (an OpenID
//! provider's login session, Shoal's pending authorization), and fills the one form of each
//! HTML page it lands on: hidden inputs with their values, a text input named `login` with the
//! user's name (the upstream provider's login page of [`crate::oidc`]), and, when the form has
//! named submit buttons (Shoal's consent page: `decision=approve` / `decision=deny`), the one
//! whose value is the [`Decision`]. It stops, without requesting it, at the first `Location`
//! that starts with the client's redirect URI, and returns that URL.
//!
//! Anything else (a 4xx or 5xx, a page without a form, more than [`MAX_STEPS`] requests) is a
//! [`WalkError`] carrying the status, the URL and the start of the body, so that a failing test
//! says what the page said.
//!
//! ```no_run
//! # async fn example(authorization_url: &str) {
//! use shoal_testkit::browser::{Decision, HeadlessUser};
//!
//! let user = HeadlessUser::new("alice");
//! let walk = user
//!     .authorize(authorization_url, "http://127.0.0.1:9999/callback", Decision::Approve)
//!     .await
//!     .unwrap();
//! let code = walk.param("code").unwrap();
//! # let _ = code;
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use scraper::{ElementRef, Html, Selector};

/// The most requests one walk makes before it gives up.
pub const MAX_STEPS: usize = 20;
/// How many characters of an unexpected page's body a [`WalkError`] carries.
const BODY_PREFIX_CHARS: usize = 500;
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the user answers on a consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The submit button whose value is `approve`.
    Approve,
    /// The submit button whose value is `deny`.
    Deny,
}

/// One request of a walk and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The URL requested.
    pub url: String,
    /// The answer's status code.
    pub status: u16,
}

/// A finished walk.
#[derive(Debug, Clone)]
pub struct Walk {
    /// The redirect that ended it: a URL starting with the `stop_at` given, not requested.
    pub redirect: String,
    /// Every request made, in order.
    pub visits: Vec<Visit>,
    /// The last HTML page whose form was submitted (Shoal's consent page, when there was one).
    pub last_page: Option<String>,
}

/// Why a walk did not reach the stop URL.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// A request failed below HTTP (connection refused, timeout, a bad URL).
    #[error("{method} {url}: {source}")]
    Request {
        /// `GET` or `POST`.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// A page the walk cannot go on from: a status other than a redirect or 200, a redirect
    /// without a usable `Location`, a 200 that is not an HTML page with a form, or a form
    /// without the button the decision needs.
    #[error("{why}: {status} at {url}\n{body}\nvisited: {}", Visits(.visits))]
    Page {
        /// What was wrong with it.
        why: String,
        /// Its status code.
        status: u16,
        /// Its URL.
        url: String,
        /// The first 500 characters of its body.
        body: String,
        /// Every request made, this one last.
        visits: Vec<Visit>,
    },
    /// [`MAX_STEPS`] requests were made without reaching the stop URL.
    #[error("no redirect to the stop URL after {MAX_STEPS} requests\nvisited: {}", Visits(.visits))]
    TooManySteps {
        /// Every request made.
        visits: Vec<Visit>,
    },
}

/// A browser's cookie jar and redirect handling, driven by a walk; see the module docs.
#[derive(Debug, Clone)]
pub struct HeadlessUser {
    login: String,
    http: reqwest::Client,
}

/// The next request of a walk.
enum Step {
    Get(Url),
    Post(Url, Vec<(String, String)>),
}

/// A form of a page, read out of the HTML: where it goes and what it sends.
struct Form {
    method: String,
    action: Option<String>,
    fields: Vec<(String, String)>,
}

// === impl Decision ===

impl Decision {
    /// The value of its submit button: `approve` or `deny`.
    pub fn value(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }
}

// === impl Walk ===

impl Walk {
    /// The first value of query parameter `name` of the final redirect.
    pub fn param(&self, name: &str) -> Option<String> {
        let url = Url::parse(&self.redirect).ok()?;
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

// === impl WalkError ===

impl WalkError {
    /// The status of the page the walk stopped at, when it stopped at one.
    pub fn status(&self) -> Option<u16> {
        match self {
            WalkError::Page { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The start of the body of the page the walk stopped at, when it stopped at one.
    pub fn body(&self) -> Option<&str> {
        match self {
            WalkError::Page { body, .. } => Some(body),
            _ => None,
        }
    }
}

/// `visits` one a line, for error messages.
struct Visits<'a>(&'a [Visit]);

impl fmt::Display for Visits<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for visit in self.0 {
            write!(f, "\n  {} {} -> {}", visit.method, visit.url, visit.status)?;
        }
        Ok(())
    }
}

// === impl HeadlessUser ===

impl HeadlessUser {
    /// A user with an empty cookie jar who types `login` into a login form.
    ///
    /// # Panics
    ///
    /// When the HTTP client cannot be built (no TLS provider).
    pub fn new(login: &str) -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("building the headless user's HTTP client");
        HeadlessUser {
            login: login.to_owned(),
            http,
        }
    }

    /// The name it types into login forms.
    pub fn login(&self) -> &str {
        &self.login
    }

    /// Its HTTP client: the same cookie jar, no automatic redirects.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Walks from `url` until a redirect to a URL starting with `stop_at` (the client's
    /// redirect URI), which it returns without requesting; on a consent page it submits the
    /// button of `decision`.
    ///
    /// # Errors
    ///
    /// [`WalkError::Page`] on any page it cannot go on from (with its status, URL and body),
    /// [`WalkError::Request`] when a request fails, [`WalkError::TooManySteps`] after
    /// [`MAX_STEPS`] requests.
    pub async fn authorize(
        &self,
        url: &str,
        stop_at: &str,
        decision: Decision,
    ) -> Result<Walk, WalkError> {
        let mut visits = Vec::new();
        let mut last_page = None;
        let mut step = match Url::parse(url) {
            Ok(url) => Step::Get(url),
            Err(e) => {
                return Err(WalkError::Page {
                    why: format!("the start URL is not a URL ({e})"),
                    status: 0,
                    url: url.to_owned(),
                    body: String::new(),
                    visits,
                });
            }
        };
        while visits.len() < MAX_STEPS {
            let (method, page_url, request) = match &step {
                Step::Get(url) => ("GET", url.clone(), self.http.get(url.clone())),
                Step::Post(url, form) => {
                    ("POST", url.clone(), self.http.post(url.clone()).form(form))
                }
            };
            let response = request.send().await.map_err(|source| WalkError::Request {
                method,
                url: page_url.to_string(),
                source,
            })?;
            let status = response.status();
            visits.push(Visit {
                method,
                url: page_url.to_string(),
                status: status.as_u16(),
            });
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let is_html = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.starts_with("text/html"));
            let body = response.text().await.map_err(|source| WalkError::Request {
                method,
                url: page_url.to_string(),
                source,
            })?;
            let refuse = |why: &str, visits: Vec<Visit>| WalkError::Page {
                why: why.to_owned(),
                status: status.as_u16(),
                url: page_url.to_string(),
                body: body.chars().take(BODY_PREFIX_CHARS).collect(),
                visits,
            };

            if status.is_redirection() {
                let Some(location) = location else {
                    return Err(refuse("a redirect without Location", visits));
                };
                let Ok(next) = page_url.join(&location) else {
                    return Err(refuse("a redirect whose Location is not a URL", visits));
                };
                if location.starts_with(stop_at) || next.as_str().starts_with(stop_at) {
                    return Ok(Walk {
                        redirect: next.into(),
                        visits,
                        last_page,
                    });
                }
                // 307 and 308 repeat the request as it was; the others become a GET.
                step = match step {
                    Step::Post(_, form)
                        if status == StatusCode::TEMPORARY_REDIRECT
                            || status == StatusCode::PERMANENT_REDIRECT =>
                    {
                        Step::Post(next, form)
                    }
                    _ => Step::Get(next),
                };
                continue;
            }
            if status != StatusCode::OK {
                return Err(refuse("an unexpected status", visits));
            }
            if !is_html {
                return Err(refuse("a 200 that is not an HTML page", visits));
            }
            let form = match read_form(&body, &self.login, decision) {
                Ok(form) => form,
                Err(why) => return Err(refuse(&why, visits)),
            };
            let target = match form.action.as_deref().filter(|a| !a.is_empty()) {
                Some(action) => match page_url.join(action) {
                    Ok(target) => target,
                    Err(_) => return Err(refuse("a form whose action is not a URL", visits)),
                },
                None => page_url.clone(),
            };
            step = if form.method.eq_ignore_ascii_case("post") {
                Step::Post(target, form.fields)
            } else {
                let mut target = target;
                target.set_query(None);
                target.query_pairs_mut().extend_pairs(&form.fields);
                Step::Get(target)
            };
            last_page = Some(body);
        }
        Err(WalkError::TooManySteps { visits })
    }
}

/// The first form of `html`, filled in: hidden inputs with their values, `login` with `login`,
/// other named inputs with their values (checkboxes and radios when checked), and, when the form
/// has named submit buttons, the one whose value is `decision`'s.
fn read_form(html: &str, login: &str, decision: Decision) -> Result<Form, String> {
    let document = Html::parse_document(html);
    let form_selector = selector("form");
    let input_selector = selector("input[name]");
    let button_selector = selector("button[name], input[type=submit][name]");
    let Some(form) = document.select(&form_selector).next() else {
        return Err("an HTML page without a form".to_owned());
    };
    let mut fields = Vec::new();
    for input in form.select(&input_selector) {
        let name = attr(input, "name");
        let kind = attr(input, "type").to_ascii_lowercase();
        let value = attr(input, "value");
        match kind.as_str() {
            "submit" | "button" | "reset" | "image" | "file" => {}
            "checkbox" | "radio" if input.value().attr("checked").is_none() => {}
            _ if name == "login" => fields.push((name.to_owned(), login.to_owned())),
            _ => fields.push((name.to_owned(), value.to_owned())),
        }
    }
    let buttons: Vec<(&str, &str)> = form
        .select(&button_selector)
        .filter(|button| {
            let kind = attr(*button, "type").to_ascii_lowercase();
            // A <button> without a type is a submit button.
            kind.is_empty() || kind == "submit"
        })
        .map(|button| (attr(button, "name"), attr(button, "value")))
        .collect();
    if !buttons.is_empty() {
        let Some((name, value)) = buttons.iter().find(|(_, value)| *value == decision.value())
        else {
            return Err(format!(
                "a form without a `{}` button (its buttons: {buttons:?})",
                decision.value()
            ));
        };
        fields.push(((*name).to_owned(), (*value).to_owned()));
    }
    Ok(Form {
        method: attr(form, "method").to_owned(),
        action: form.value().attr("action").map(str::to_owned),
        fields,
    })
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|e| panic!("the selector {css:?}: {e}"))
}

fn attr<'a>(element: ElementRef<'a>, name: &str) -> &'a str {
    element.value().attr(name).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSENT: &str = r#"<!doctype html><html><body>
        <form method="post" action="/oauth/consent">
          <input type="hidden" name="request" value="r-1">
          <input type="hidden" name="csrf" value="c-2">
          <button type="submit" name="decision" value="approve">Allow</button>
          <button type="submit" name="decision" value="deny">Deny</button>
        </form></body></html>"#;

    #[test]
    fn a_consent_form_sends_its_hidden_inputs_and_the_decision() {
        let form = read_form(CONSENT, "alice", Decision::Deny).unwrap();
        assert_eq!(form.method, "post");
        assert_eq!(form.action.as_deref(), Some("/oauth/consent"));
        let fields: Vec<(&str, &str)> = form
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            fields,
            [("request", "r-1"), ("csrf", "c-2"), ("decision", "deny")]
        );
    }

    #[test]
    fn a_login_form_gets_the_name_and_no_button() {
        let html = r#"<form method="post" action="/interaction/u/login">
            <input type="text" name="login"><button type="submit">Log in</button></form>"#;
        let form = read_form(html, "alice", Decision::Approve).unwrap();
        assert_eq!(form.fields, [("login".to_owned(), "alice".to_owned())]);
    }

    #[test]
    fn a_page_without_a_form_or_without_the_button_is_refused() {
        let none = read_form("<p>hello</p>", "alice", Decision::Approve);
        assert_eq!(none.err().as_deref(), Some("an HTML page without a form"));
        let html = r#"<form><button name="decision" value="approve">ok</button></form>"#;
        let err = read_form(html, "alice", Decision::Deny).err().unwrap();
        assert!(err.starts_with("a form without a `deny` button"), "{err}");
    }
}
