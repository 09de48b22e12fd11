//! `[metrics]`: the Prometheus endpoint, with CometBFT's metric names.

use std::net::SocketAddr;

use super::error::Problems;

section! {
    /// `[metrics]`: Prometheus metrics over HTTP.
    pub struct MetricsConfig in "metrics" {
        /// Serve Prometheus metrics under /metrics.
        enabled: bool = false,
        /// Address the metrics endpoint listens on (stock CometBFT uses port 26660).
        #[serde(with = "super::address::serde_text::socket")]
        listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 26660)),
        /// Metric name prefix: "cometbft" gives stock names such as cometbft_p2p_peers, so
        /// existing dashboards work.
        namespace: String = "cometbft".to_owned(),
    }
}

impl MetricsConfig {
    pub(crate) fn check(&self, p: &mut Problems) {
        let valid =
            self.namespace.bytes().enumerate().all(|(i, b)| {
                b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit())
            });
        if !valid {
            p.push(
                "metrics",
                "namespace",
                "must be letters, digits and underscores, not starting with a digit",
            );
        }
    }
}
