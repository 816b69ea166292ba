//! The signals that stop the long-running commands (`dev`, `ui`): SIGINT (Ctrl-C) and, where
//! there is one, SIGTERM.
//!
//! Both are listened for from the moment [`StopSignals::listen`] returns, which the commands
//! call before they print where they listen: a supervisor or a test that stops the process as
//! soon as it reads that line gets a clean stop, never the default action of a signal that
//! arrived before anyone listened (tokio's `ctrl_c()` only starts listening when first polled).

use std::io;

/// Listens for SIGINT and SIGTERM.
pub(crate) struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(not(unix))]
    interrupt: std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<()>> + Send>>,
}

impl StopSignals {
    /// Starts listening; needs a tokio runtime with signals enabled.
    pub(crate) fn listen() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            // Elsewhere Ctrl-C alone, listened for from the first wait.
            Ok(Self {
                interrupt: Box::pin(tokio::signal::ctrl_c()),
            })
        }
    }

    /// Returns when one of the signals arrives (or arrived since [`StopSignals::listen`]).
    pub(crate) async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = (&mut self.interrupt).await;
        }
    }
}
