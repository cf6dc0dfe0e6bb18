//! The one Tokio runtime npyflow's requests run on.

use std::future::Future;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The runtime, started on first use: two worker threads named `npyflow-io`.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("npyflow-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Pipeline(format!("cannot start the I/O runtime: {e}")))
}

/// Runs `f` to completion on npyflow's runtime, blocking this thread. Called from inside
/// another Tokio runtime (a user's), it waits on a thread of its own, since a runtime's
/// thread must not block.
pub(crate) fn block_on<F>(f: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime()?;
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(|| rt.block_on(f))
                .join()
                .map_err(|_| Error::Pipeline("an I/O wait panicked".into()))
        })
    } else {
        Ok(rt.block_on(f))
    }
}

/// Starts `f` on npyflow's runtime and returns at once.
pub(crate) fn spawn<F>(f: F) -> Result<tokio::task::JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(runtime()?.spawn(f))
}
