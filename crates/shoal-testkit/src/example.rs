//! [`Example`]: an example binary (a program on the `shoal` facade) started the way a user
//! runs it, configured by `SHOAL_*` variables alone, and stopped on drop.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::cluster::{EXIT_TIMEOUT, READY_TIMEOUT, free_ports, sigterm_and_wait};

/// A running example binary, listening on free loopback ports it was given through
/// `SHOAL_LISTEN` and `SHOAL_ADMIN_LISTEN`.
#[derive(Debug)]
pub struct Example {
    child: Child,
    listen: SocketAddr,
    admin: SocketAddr,
}

impl Example {
    /// Starts `binary` with `SHOAL_LISTEN`, `SHOAL_ADMIN_LISTEN` and `variables` set (and no
    /// other `SHOAL_*` variable of the test's environment), then waits until `/readyz`
    /// answers 200.
    ///
    /// # Panics
    ///
    /// When the binary cannot start, exits, or is not ready within [`READY_TIMEOUT`].
    pub async fn start(binary: impl AsRef<Path>, variables: &[(&str, &str)]) -> Example {
        let binary = binary.as_ref();
        let [listen, admin] = free_ports();
        let mut command = Command::new(binary);
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SHOAL_")) {
            command.env_remove(name);
        }
        let child = command
            .env("SHOAL_LISTEN", listen.to_string())
            .env("SHOAL_ADMIN_LISTEN", admin.to_string())
            .envs(variables.iter().copied())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", binary.display()));
        let mut example = Example {
            child,
            listen,
            admin,
        };
        example.wait_ready(binary).await;
        example
    }

    /// `http://127.0.0.1:<port>/mcp`.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.listen)
    }

    /// `http://127.0.0.1:<admin port>`.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// Sends SIGTERM, as an orchestrator stopping the program does, and waits for it to exit.
    ///
    /// # Panics
    ///
    /// When it exited already, or does not exit within [`EXIT_TIMEOUT`].
    pub async fn terminate(&mut self) -> ExitStatus {
        sigterm_and_wait(&mut self.child).await.unwrap_or_else(|| {
            panic!("the example did not exit within {EXIT_TIMEOUT:?} of SIGTERM")
        })
    }

    async fn wait_ready(&mut self, binary: &Path) {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(1))
            .build()
            .expect("building the HTTP client");
        let url = format!("{}/readyz", self.admin_url());
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited before it was ready ({status})", binary.display());
            }
            let last = match http.get(&url).send().await {
                Ok(response) if response.status() == reqwest::StatusCode::OK => return,
                Ok(response) => format!("HTTP {}", response.status()),
                Err(error) => error.to_string(),
            };
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} was not ready within {READY_TIMEOUT:?} (last /readyz: {last})",
                binary.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        // Errors mean it is already gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
