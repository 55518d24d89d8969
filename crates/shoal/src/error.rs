//! What can stop a Shoal server from starting or serving.

use std::net::SocketAddr;

use crate::settings::SettingsErrors;

/// Why a Shoal server did not start, or stopped. Its `Debug` is its message and causes, so
/// that `main() -> Result<(), shoal::Error>` prints what an operator needs.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Settings are wrong (every wrong one is listed).
    #[error(transparent)]
    Settings(#[from] SettingsErrors),
    /// The session host refused its settings.
    #[error("cannot use the session host")]
    Host(#[source] shoal_core::host::HostError),
    /// Authentication could not start (in jwt mode: the issuer could not be discovered).
    #[error("starting authentication")]
    Auth(#[source] shoal_auth::Error),
    /// An address could not be bound.
    #[error("binding {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A bound listener failed.
    #[error("the listener failed")]
    Listener(#[source] std::io::Error),
    /// The task serving connections failed.
    #[error("the server task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")?;
        let mut cause = std::error::Error::source(self);
        while let Some(error) = cause {
            write!(f, "\n  caused by: {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}
