//! `[admin]`: the operator endpoint (`ringwire peers`, `dial`, `disconnect`, `ban`). Off by
//! default; it listens only on a Unix socket (file permissions decide who may use it) or on a
//! loopback TCP address.

use std::path::PathBuf;

use super::address::AdminAddress;
use super::error::Problems;

section! {
    /// `[admin]`: operator control of a running node.
    pub struct AdminConfig in "admin" {
        /// Serve the admin endpoint.
        enabled: bool = false,
        /// "unix://PATH" (a Unix socket, created with mode 0600; a relative PATH is under
        /// node.home) or a loopback "IP:PORT" such as "127.0.0.1:26670".
        #[serde(with = "super::address::serde_text::display")]
        listen: AdminAddress = AdminAddress::Unix(PathBuf::from("data/ringwire-admin.sock")),
    }
}

impl AdminConfig {
    pub(crate) fn check(&self, p: &mut Problems) {
        if let AdminAddress::Tcp(addr) = &self.listen
            && !addr.ip().is_loopback()
        {
            p.push(
                "admin",
                "listen",
                format!("{addr} is not a loopback address; use 127.0.0.1, ::1 or unix://PATH"),
            );
        }
    }
}
