//! [`Cause`]: the underlying error a public error keeps as its `source`.

use std::sync::Arc;

/// The underlying error of a failure (a Redis client's, a JSON parser's), kept as an error
/// rather than flattened into text: the `source` of [`HostError::Unavailable`],
/// [`ParseError::NotJson`] and [`PeerError::InvalidResponse`].
///
/// Shared, so that those enums stay `Clone`; it reads as the error it holds, and two causes
/// are equal when they read the same (what comparing the message used to mean).
///
/// [`HostError::Unavailable`]: crate::host::HostError::Unavailable
/// [`ParseError::NotJson`]: crate::jsonrpc::ParseError::NotJson
/// [`PeerError::InvalidResponse`]: crate::handler::PeerError::InvalidResponse
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    /// Keeps `cause`.
    pub fn new(cause: impl std::error::Error + Send + Sync + 'static) -> Cause {
        Cause(Arc::new(cause))
    }

    /// The error held, to downcast to its type.
    pub fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

/// A cause told in words, where there is no underlying error to keep.
impl From<&str> for Cause {
    fn from(message: &str) -> Cause {
        Cause(Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(
            message,
        )))
    }
}

/// A cause told in words, where there is no underlying error to keep.
impl From<String> for Cause {
    fn from(message: String) -> Cause {
        Cause(Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(
            message,
        )))
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

/// Transparent: the cause's own source comes next in the chain.
impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Cause) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.to_string() == other.to_string()
    }
}

impl Eq for Cause {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostError;
    use std::error::Error as _;

    #[test]
    fn keeps_the_error_and_reads_as_it() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        let error = HostError::Unavailable(Cause::new(io));
        assert_eq!(
            error.to_string(),
            "session host unavailable: connection reset"
        );
        let HostError::Unavailable(cause) = &error else {
            unreachable!("built above")
        };
        let kept = cause.as_error().downcast_ref::<std::io::Error>();
        assert_eq!(
            kept.map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionReset)
        );
        let source = error.source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("connection reset"));
    }

    #[test]
    fn equal_when_they_read_the_same() {
        let words = Cause::from("pub/sub task stopped");
        assert_eq!(words, Cause::from(String::from("pub/sub task stopped")));
        assert_eq!(words, words.clone());
        assert_ne!(words, Cause::from("pub/sub connection down"));
    }
}
