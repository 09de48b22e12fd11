//! `[metrics]`: the Prometheus endpoint, with CometBFT's metric names.

use std::net::SocketAddr;
use std::time::Duration;

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
        /// A series not updated for this long leaves /metrics (2s to 24h). The series of
        /// connected peers and the node's own are updated every second, so what goes is the
        /// per-peer series of peers that are gone.
        #[serde(with = "super::duration::serde_text")]
        idle_series_timeout: Duration = Duration::from_secs(60),
    }
}

impl MetricsConfig {
    pub(crate) fn check(&self, p: &mut Problems) {
        p.duration(
            "metrics",
            "idle_series_timeout",
            self.idle_series_timeout,
            true,
            Duration::from_secs(86_400),
        );
        if self.idle_series_timeout < Duration::from_secs(2) {
            p.push(
                "metrics",
                "idle_series_timeout",
                "must be at least 2s (the series of live peers are updated every second)",
            );
        }
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
