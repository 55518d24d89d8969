//! [`Backend`]: one replica behind the proxy, named, with its MCP endpoint and admin listener.

use http::Uri;

/// One replica behind the proxy: where its MCP endpoint and its admin listener are.
#[derive(Debug, Clone)]
pub struct Backend {
    pub(super) name: String,
    pub(super) mcp: Uri,
    admin: Uri,
}

// === impl Backend ===

impl Backend {
    /// A backend called `name` whose MCP endpoint is `mcp_url` (`http://127.0.0.1:8081/mcp`)
    /// and whose admin listener is `admin_url` (`http://127.0.0.1:9091`).
    ///
    /// # Panics
    ///
    /// When either URL is not an absolute `http://` URL.
    pub fn new(name: impl Into<String>, mcp_url: &str, admin_url: &str) -> Self {
        let name = name.into();
        Self::try_new(name.clone(), mcp_url, admin_url)
            .unwrap_or_else(|error| panic!("backend {name}: {error}"))
    }

    /// `MCP_URL=ADMIN_URL`, as `rr-proxy --backend` takes it; the name is the MCP URL's
    /// `host:port`.
    ///
    /// # Errors
    ///
    /// When there is no `=` or either URL is not an absolute `http://` URL.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (mcp, admin) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec:?} is not MCP_URL=ADMIN_URL"))?;
        let name = http_uri(mcp)?
            .authority()
            .map(ToString::to_string)
            .unwrap_or_default();
        Self::try_new(name, mcp, admin)
    }

    fn try_new(name: String, mcp_url: &str, admin_url: &str) -> Result<Self, String> {
        Ok(Backend {
            name,
            mcp: http_uri(mcp_url)?,
            admin: http_uri(admin_url)?,
        })
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The backend's MCP endpoint.
    pub fn mcp_url(&self) -> String {
        self.mcp.to_string()
    }

    /// `path_and_query` on this backend.
    pub(super) fn target(&self, path_and_query: Option<&http::uri::PathAndQuery>) -> Uri {
        let mut parts = self.mcp.clone().into_parts();
        parts.path_and_query = Some(
            path_and_query
                .cloned()
                .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
        );
        Uri::from_parts(parts).unwrap_or_else(|_| self.mcp.clone())
    }

    pub(super) fn readyz(&self) -> Uri {
        let mut parts = self.admin.clone().into_parts();
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/readyz"));
        Uri::from_parts(parts).unwrap_or_else(|_| self.admin.clone())
    }
}

fn http_uri(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|error| format!("{url:?} is not a URL: {error}"))?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return Err(format!("{url:?} is not an absolute http:// URL"));
    }
    Ok(uri)
}
