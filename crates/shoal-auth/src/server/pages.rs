//! The two pages a person sees: the consent page and the error page. Plain HTML with inline
//! styles, no script; everything shown is escaped. They may not be framed (clickjacking a
//! consent button), cached, or leak their URL in a Referer.

use axum::response::{Html, IntoResponse, Response};
use http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_FRAME_OPTIONS};
use http::{HeaderValue, StatusCode};

use super::error::no_store;

/// What the consent page shows.
pub(crate) struct Consent<'a> {
    /// The client's name (or its id).
    pub(crate) client: &'a str,
    /// Where the client's id points, for a metadata document client (its URL's host).
    pub(crate) client_host: Option<&'a str>,
    /// Where the browser goes back to (the redirect URI's host, or the URI itself).
    pub(crate) redirect_to: &'a str,
    /// The MCP server's name.
    pub(crate) resource: &'a str,
    /// Who is signed in.
    pub(crate) user: &'a str,
    /// The scopes asked for, each with what it allows.
    pub(crate) scopes: Vec<(String, String)>,
    /// The pending authorization's id and the form's anti-forgery token.
    pub(crate) request: &'a str,
    pub(crate) csrf: &'a str,
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:#f3f5f8;color:#1d2330;margin:0}\
main{max-width:28rem;margin:4rem auto;background:#fff;border-radius:12px;padding:2rem 2.25rem;box-shadow:0 2px 12px rgba(20,30,60,.12)}\
h1{font-size:1.3rem;margin:0 0 1rem}\
p{line-height:1.5;margin:.6rem 0}\
.who{color:#56607a;font-size:.9rem}\
ul{padding-left:0;list-style:none;margin:1rem 0}\
li{border:1px solid #e1e5ee;border-radius:8px;padding:.55rem .8rem;margin:.4rem 0}\
code{font-family:ui-monospace,monospace;font-size:.85rem;background:#eef1f6;padding:.05rem .3rem;border-radius:4px}\
.scope-note{display:block;color:#56607a;font-size:.85rem;margin-top:.2rem}\
.actions{display:flex;gap:.75rem;margin-top:1.5rem}\
button{flex:1;font-size:1rem;padding:.65rem;border-radius:8px;border:1px solid #c4cad8;background:#fff;cursor:pointer}\
button.approve{background:#2457d6;border-color:#2457d6;color:#fff}\
.error h1{color:#a4262c}";

/// The consent page.
pub(crate) fn consent(page: &Consent<'_>) -> Response {
    let scopes = if page.scopes.is_empty() {
        "<li>Use the server's tools, resources and prompts as you</li>".to_owned()
    } else {
        page.scopes
            .iter()
            .map(|(scope, note)| {
                format!(
                    "<li><code>{}</code><span class=\"scope-note\">{}</span></li>",
                    escape(scope),
                    escape(note)
                )
            })
            .collect::<String>()
    };
    let from = page
        .client_host
        .map(|host| format!(" <span class=\"who\">({})</span>", escape(host)))
        .unwrap_or_default();
    let body = format!(
        "<main><h1>Allow {client}{from} to use {resource}?</h1>\
<p class=\"who\">Signed in as <strong>{user}</strong></p>\
<p><strong>{client}</strong> asks for:</p><ul>{scopes}</ul>\
<p class=\"who\">If you allow it, you go back to <strong>{redirect}</strong>.</p>\
<form method=\"post\" action=\"/oauth/consent\">\
<input type=\"hidden\" name=\"request\" value=\"{request}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<div class=\"actions\">\
<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\
<button type=\"submit\" name=\"decision\" value=\"approve\" class=\"approve\">Allow</button>\
</div></form></main>",
        client = escape(page.client),
        resource = escape(page.resource),
        user = escape(page.user),
        redirect = escape(page.redirect_to),
        request = escape(page.request),
        csrf = escape(page.csrf),
    );
    html(StatusCode::OK, "Allow access", &body)
}

/// A page that says why the flow stops here (when there is nowhere safe to redirect to).
pub(crate) fn error(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = format!(
        "<main class=\"error\"><h1>{}</h1><p>{}</p>\
<p class=\"who\">Go back to the application and start signing in again.</p></main>",
        escape(title),
        escape(detail)
    );
    html(status, title, &body)
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    );
    let mut response = (status, Html(page)).into_response();
    let headers = response.headers_mut();
    no_store(headers);
    // No script, no framing; the form posts to this origin and is then redirected to the
    // client (so no `form-action`, which browsers also apply to that redirect).
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// HTML-escapes text for element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_shown_is_escaped() {
        assert_eq!(
            escape(r#"<script>"x"&'y'</script>"#),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
    }
}
