//! The shell of the testkit's binaries (`shoal-faults`, `rr-proxy`): the parsed arguments or
//! exit 2 with the usage, a multi-thread tokio runtime, the run, and its error as exit 1.

use std::future::Future;
use std::process::ExitCode;

/// A binary's `main`: prints a parse error of `args` with `usage` and exits 2; otherwise runs
/// `run(args)` on a multi-thread tokio runtime and exits with the code it returns, or prints
/// its error as `name: error` and exits 1 (a run that already said why it failed returns
/// `Ok(ExitCode::FAILURE)`).
pub fn main<A, F>(
    name: &str,
    usage: &str,
    args: Result<A, String>,
    run: impl FnOnce(A) -> F,
) -> ExitCode
where
    F: Future<Output = Result<ExitCode, String>>,
{
    let args = match args {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{name}: {error}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{name}: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}
