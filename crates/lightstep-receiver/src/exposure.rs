//! Who may connect to a listener: loopback only unless the user asks otherwise.

use std::net::SocketAddr;

use crate::{Error, Result};

/// Who may connect to a listener, and so which addresses it may listen on. Every listener the
/// receiver opens goes through [`check`](Self::check); other listeners (a browser UI) can too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exposure {
    /// Clients on this machine only: listeners bind loopback addresses (127.0.0.0/8, `::1`).
    /// The default.
    #[default]
    Loopback,
    /// Clients on other machines too: listeners may bind any address, and every request must
    /// carry the access token.
    Remote,
}

impl Exposure {
    /// Checks that the listener named `listener` (for messages, such as `"OTLP/gRPC"`) may
    /// listen on `addr`, given whether it requires an access token of every request.
    ///
    /// # Errors
    ///
    /// [`Error::NotLoopback`] for an address other than loopback under
    /// [`Exposure::Loopback`]; [`Error::RemoteWithoutToken`] under [`Exposure::Remote`]
    /// without a token, whatever the address.
    pub fn check(
        self,
        listener: &'static str,
        addr: SocketAddr,
        token_required: bool,
    ) -> Result<()> {
        match self {
            Exposure::Remote if !token_required => Err(Error::RemoteWithoutToken),
            Exposure::Remote => Ok(()),
            Exposure::Loopback if is_loopback(addr.ip()) => Ok(()),
            Exposure::Loopback => Err(Error::NotLoopback { listener, addr }),
        }
    }
}

/// Whether `ip` is a loopback address: in 127.0.0.0/8, or `::1` (either also written as an
/// IPv4-mapped IPv6 address, `::ffff:127.0.0.1`). An unspecified address (`0.0.0.0`, `::`)
/// listens on every interface and is not loopback.
pub fn is_loopback(ip: std::net::IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}
