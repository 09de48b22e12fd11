//! Prometheus metrics through the [`metrics`] facade, with CometBFT's names and labels.
//!
//! Policy:
//! - The hot path pays one relaxed atomic add per message: each connected peer keeps byte
//!   counters per channel on the shard that owns it ([`crate::router::PeerTraffic`]). A
//!   [`Reporter`] turns snapshots of those counters into metrics, typically once a second
//!   from a thread of the application, so no lock or map lookup is taken per message.
//! - Stock names are CometBFT v0.40's `p2p` subsystem (`p2p/metrics.go`): `p2p_peers`,
//!   `p2p_peer_receive_bytes_total` and `p2p_peer_send_bytes_total` (labels `peer_id`, `chID`,
//!   the channel as `0x20`), `p2p_peer_send_queue_size` (label `peer_id`), and
//!   `p2p_message_receive_bytes_total` / `p2p_message_send_bytes_total` (label `message_type`).
//!   Stock prefixes them with the namespace `cometbft`; [`Reporter::new`] takes the namespace
//!   (`[metrics] namespace`, default `cometbft`), so `cometbft_p2p_peers` is what dashboards
//!   built for stock nodes find. Stock derives `message_type` from the Go type of each
//!   message (`consensus_Vote`); ringwire does not decode application messages, so it labels
//!   by channel with the name of the stock reactor message family ([`message_type`]).
//!   v0.38's `p2p_peer_pending_send_bytes` (label `peer_id`) is replaced in v0.40 by
//!   `p2p_peer_send_queue_size` (messages); ringwire reports both, so dashboards built for
//!   either release work: the payload bytes and the number of messages accepted for a peer
//!   and not yet handed to its connection.
//! - Series of gone peers do not stay forever: the exporter drops a series that was not
//!   updated for `[metrics] idle_series_timeout`, and [`Reporter::report`] updates every series
//!   it keeps alive on each call — the connected peers' (an increment of 0 when nothing moved),
//!   the message families seen so far, the disconnect reasons and the node's own gauges — so
//!   only the per-peer series of peers that are gone expire.
//! - Byte counters count payload bytes (before framing, encryption and compression) and are
//!   monotonic: when a peer reconnects its counters restart and the reporter adds from zero.
//! - ringwire's own metrics are always under `ringwire_` ([`DRIVER`], [`SHARD_INBOX_DEPTH`],
//!   [`DROPS_TOTAL`], [`REFUSED_TOTAL`], [`DISCONNECTS_TOTAL`], [`BUDGET_DISCONNECTS_TOTAL`],
//!   [`PEER_OFFENCES_TOTAL`], [`PEER_BANS_TOTAL`], [`ADDRESS_BANS_TOTAL`],
//!   [`MESSAGE_LATENCY_SECONDS`] with the fixed [`LATENCY_BUCKETS`]).
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::node::Node;
use crate::proto::secret::NodeId;
use crate::router::{DownReason, NodeStats};

/// Number of connected peers (gauge; stock name without namespace).
pub const PEERS: &str = "p2p_peers";
/// Payload bytes received per peer and channel (counter; labels `peer_id`, `chID`).
pub const PEER_RECEIVE_BYTES_TOTAL: &str = "p2p_peer_receive_bytes_total";
/// Payload bytes sent per peer and channel (counter; labels `peer_id`, `chID`).
pub const PEER_SEND_BYTES_TOTAL: &str = "p2p_peer_send_bytes_total";
/// Messages waiting to be sent to a peer (gauge; label `peer_id`).
pub const PEER_SEND_QUEUE_SIZE: &str = "p2p_peer_send_queue_size";
/// Payload bytes waiting to be sent to a peer (gauge; label `peer_id`; CometBFT v0.38's name).
pub const PEER_PENDING_SEND_BYTES: &str = "p2p_peer_pending_send_bytes";
/// Payload bytes received per message type (counter; label `message_type`).
pub const MESSAGE_RECEIVE_BYTES_TOTAL: &str = "p2p_message_receive_bytes_total";
/// Payload bytes sent per message type (counter; label `message_type`).
pub const MESSAGE_SEND_BYTES_TOTAL: &str = "p2p_message_send_bytes_total";

/// The I/O driver in use (gauge set to 1; label `driver`: `io_uring` or `epoll`).
pub const DRIVER: &str = "ringwire_driver";
/// Commands waiting in a shard's inbox (gauge; label `shard`).
pub const SHARD_INBOX_DEPTH: &str = "ringwire_shard_inbox_depth";
/// Messages or events dropped (counter; label `reason`: `fanout_lagging`,
/// `refused_by_connection`, `late_response`, `expired_before_send`, `expired_before_delivery`
/// (delivery deadlines), `events_lagged`, `read_buffers_exhausted`; PEX addresses:
/// `pex_rate_limited`,
/// `pex_refused`, `pex_evicted`).
pub const DROPS_TOTAL: &str = "ringwire_drops_total";
/// Connections refused (counter; label `reason`: `admission`, `accept_limit`).
pub const REFUSED_TOTAL: &str = "ringwire_connections_refused_total";
/// Peers that went down (counter; label `reason`: `protocol`, `io`, `local`).
pub const DISCONNECTS_TOTAL: &str = "ringwire_disconnects_total";
/// Connections closed for exceeding a per-peer or node-wide budget (counter; label `budget`:
/// `control_frames`, `partial_bytes`); also counted as `protocol` disconnects.
pub const BUDGET_DISCONNECTS_TOTAL: &str = "ringwire_budget_disconnects_total";
/// Misbehaviour recorded against peers' scores (counter; label `reason`:
/// `protocol_violation`, `pex_abuse`, `budget_exceeded`, `control_flood`, `timeout`).
pub const PEER_OFFENCES_TOTAL: &str = "ringwire_peer_offences_total";
/// Node IDs banned by score (counter; label `reason`: the offence that crossed the threshold,
/// as [`PEER_OFFENCES_TOTAL`]).
pub const PEER_BANS_TOTAL: &str = "ringwire_peer_bans_total";
/// Addresses banned as repeat offenders (counter).
pub const ADDRESS_BANS_TOTAL: &str = "ringwire_address_bans_total";
/// One-way message latency measured by the application (histogram, seconds).
pub const MESSAGE_LATENCY_SECONDS: &str = "ringwire_message_latency_seconds";

/// Fixed buckets of [`MESSAGE_LATENCY_SECONDS`]: 50 µs to 5 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// The `message_type` label of a channel: the stock reactor family that uses it
/// (`consensus_State`, `mempool_Txs`, ...), or `channel_0xNN` for other channels.
pub fn message_type(channel: u8) -> String {
    let name = match channel {
        0x00 => "p2p_PexMessage",
        0x20 => "consensus_State",
        0x21 => "consensus_Data",
        0x22 => "consensus_Vote",
        0x23 => "consensus_VoteSetBits",
        0x30 => "mempool_Txs",
        0x38 => "evidence_List",
        0x40 => "blocksync_Message",
        0x60 => "statesync_Snapshots",
        0x61 => "statesync_Chunks",
        _ => return format!("channel_{channel:#04x}"),
    };
    name.to_owned()
}

/// Every label [`down_reason_label`] gives.
const DOWN_REASONS: [&str; 3] = ["protocol", "io", "local"];

/// The `reason` label of a [`DownReason`].
pub fn down_reason_label(reason: &DownReason) -> &'static str {
    match reason {
        DownReason::Protocol(_) => "protocol",
        DownReason::Io(_) => "io",
        DownReason::Local(_) => "local",
    }
}

/// Counts one peer going down under [`DISCONNECTS_TOTAL`].
pub fn record_down(reason: &DownReason) {
    metrics::counter!(DISCONNECTS_TOTAL, "reason" => down_reason_label(reason)).increment(1);
}

/// Records one measured message latency under [`MESSAGE_LATENCY_SECONDS`].
pub fn record_latency(latency: std::time::Duration) {
    metrics::histogram!(MESSAGE_LATENCY_SECONDS).record(latency.as_secs_f64());
}

/// Turns snapshots of a node's counters into metrics (see the module policy).
#[derive(Debug)]
pub struct Reporter {
    names: Names,
    /// Last seen `(sent, received)` per peer and channel.
    last: HashMap<(NodeId, u8), (u64, u64)>,
    /// The channels whose message families have been reported (at most 256).
    channels: BTreeSet<u8>,
    /// Last seen node counters.
    stats: NodeStats,
}

#[derive(Debug)]
struct Names {
    peers: String,
    peer_recv: String,
    peer_send: String,
    peer_queue: String,
    peer_pending: String,
    msg_recv: String,
    msg_send: String,
}

impl Reporter {
    /// A reporter whose stock names are prefixed with `namespace` and `_` (none when empty).
    pub fn new(namespace: &str) -> Self {
        let name = |n: &str| {
            if namespace.is_empty() {
                n.to_owned()
            } else {
                format!("{namespace}_{n}")
            }
        };
        Reporter {
            names: Names {
                peers: name(PEERS),
                peer_recv: name(PEER_RECEIVE_BYTES_TOTAL),
                peer_send: name(PEER_SEND_BYTES_TOTAL),
                peer_queue: name(PEER_SEND_QUEUE_SIZE),
                peer_pending: name(PEER_PENDING_SEND_BYTES),
                msg_recv: name(MESSAGE_RECEIVE_BYTES_TOTAL),
                msg_send: name(MESSAGE_SEND_BYTES_TOTAL),
            },
            last: HashMap::new(),
            channels: BTreeSet::new(),
            stats: NodeStats::default(),
        }
    }

    /// Reads `node`'s counters and updates the metrics.
    pub fn report(&mut self, node: &Node) {
        let n = &self.names;
        metrics::gauge!(DRIVER, "driver" => node.driver().to_string()).set(1.0);
        for (shard, depth) in node.inbox_depths().into_iter().enumerate() {
            metrics::gauge!(SHARD_INBOX_DEPTH, "shard" => shard.to_string()).set(depth as f64);
        }
        let traffic = node.peer_traffic();
        metrics::gauge!(n.peers.clone()).set(traffic.len() as f64);
        let mut seen = HashMap::with_capacity(self.last.len());
        // Payload bytes per channel moved since the last call, over all peers.
        let mut moved: BTreeMap<u8, (u64, u64)> = BTreeMap::new();
        for peer in &traffic {
            let peer_id = peer.node_id.to_string();
            let mut queued = 0usize;
            let mut pending = 0u64;
            for ch in &peer.channels {
                queued = queued.saturating_add(ch.queued_messages);
                pending = pending.saturating_add(ch.pending_bytes);
                let key = (peer.node_id, ch.channel);
                let (last_sent, last_recv) = self.last.get(&key).copied().unwrap_or((0, 0));
                // A smaller value means the peer reconnected and its counters restarted.
                let sent = delta(ch.sent_bytes, last_sent);
                let recv = delta(ch.received_bytes, last_recv);
                seen.insert(key, (ch.sent_bytes, ch.received_bytes));
                let ch_id = format!("{:#x}", ch.channel);
                // Every call updates the series of a connected peer (by 0 when nothing moved),
                // so only a gone peer's series reach the exporter's idle timeout.
                metrics::counter!(n.peer_send.clone(), "peer_id" => peer_id.clone(), "chID" => ch_id.clone())
                    .increment(sent);
                metrics::counter!(n.peer_recv.clone(), "peer_id" => peer_id.clone(), "chID" => ch_id)
                    .increment(recv);
                let family = moved.entry(ch.channel).or_insert((0, 0));
                family.0 = family.0.saturating_add(sent);
                family.1 = family.1.saturating_add(recv);
            }
            metrics::gauge!(n.peer_queue.clone(), "peer_id" => peer_id.clone()).set(queued as f64);
            metrics::gauge!(n.peer_pending.clone(), "peer_id" => peer_id).set(pending as f64);
        }
        self.last = seen;
        // A message family, once seen, is updated on every call (at most 256 of them).
        self.channels.extend(moved.keys().copied());
        for &channel in &self.channels {
            let (sent, recv) = moved.get(&channel).copied().unwrap_or((0, 0));
            metrics::counter!(n.msg_send.clone(), "message_type" => message_type(channel))
                .increment(sent);
            metrics::counter!(n.msg_recv.clone(), "message_type" => message_type(channel))
                .increment(recv);
        }
        for reason in DOWN_REASONS {
            metrics::counter!(DISCONNECTS_TOTAL, "reason" => reason).increment(0);
        }

        let s = node.stats();
        let old = std::mem::replace(&mut self.stats, s);
        let drops = [
            ("fanout_lagging", s.fanout_dropped, old.fanout_dropped),
            (
                "refused_by_connection",
                s.queued_dropped,
                old.queued_dropped,
            ),
            ("late_response", s.late_responses, old.late_responses),
            (
                "expired_before_send",
                s.expired_before_send,
                old.expired_before_send,
            ),
            (
                "expired_before_delivery",
                s.expired_before_delivery,
                old.expired_before_delivery,
            ),
            ("events_lagged", s.events_lagged, old.events_lagged),
            (
                "read_buffers_exhausted",
                s.read_buffers_exhausted,
                old.read_buffers_exhausted,
            ),
            (
                "pex_rate_limited",
                s.pex_addresses_rate_limited,
                old.pex_addresses_rate_limited,
            ),
            (
                "pex_refused",
                s.pex_addresses_refused,
                old.pex_addresses_refused,
            ),
            (
                "pex_evicted",
                s.pex_addresses_evicted,
                old.pex_addresses_evicted,
            ),
        ];
        count_deltas(DROPS_TOTAL, "reason", drops);
        let refused = [
            ("admission", s.refused, old.refused),
            ("accept_limit", s.accept_refused, old.accept_refused),
        ];
        count_deltas(REFUSED_TOTAL, "reason", refused);
        let budgets = [
            ("control_frames", s.control_floods, old.control_floods),
            (
                "partial_bytes",
                s.partial_budget_exceeded,
                old.partial_budget_exceeded,
            ),
        ];
        count_deltas(BUDGET_DISCONNECTS_TOTAL, "budget", budgets);
        let offences = [
            (
                "protocol_violation",
                s.offences_protocol_violation,
                old.offences_protocol_violation,
            ),
            ("pex_abuse", s.offences_pex_abuse, old.offences_pex_abuse),
            (
                "budget_exceeded",
                s.offences_budget_exceeded,
                old.offences_budget_exceeded,
            ),
            (
                "control_flood",
                s.offences_control_flood,
                old.offences_control_flood,
            ),
            ("timeout", s.offences_timeout, old.offences_timeout),
        ];
        count_deltas(PEER_OFFENCES_TOTAL, "reason", offences);
        let bans = [
            (
                "protocol_violation",
                s.bans_protocol_violation,
                old.bans_protocol_violation,
            ),
            ("pex_abuse", s.bans_pex_abuse, old.bans_pex_abuse),
            (
                "budget_exceeded",
                s.bans_budget_exceeded,
                old.bans_budget_exceeded,
            ),
            (
                "control_flood",
                s.bans_control_flood,
                old.bans_control_flood,
            ),
            ("timeout", s.bans_timeout, old.bans_timeout),
        ];
        count_deltas(PEER_BANS_TOTAL, "reason", bans);
        metrics::counter!(ADDRESS_BANS_TOTAL)
            .increment(s.address_bans.saturating_sub(old.address_bans));
    }
}

/// Adds to counter `name` what each `(label value, now, before)` row counted since the last pass.
fn count_deltas<const N: usize>(
    name: &'static str,
    label: &'static str,
    rows: [(&'static str, u64, u64); N],
) {
    for (value, now, before) in rows {
        metrics::counter!(name, label => value).increment(now.saturating_sub(before));
    }
}

fn delta(now: u64, before: u64) -> u64 {
    if now >= before { now - before } else { now }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_types_follow_stock_families() {
        assert_eq!(message_type(0x22), "consensus_Vote");
        assert_eq!(message_type(0x7f), "channel_0x7f");
    }

    #[test]
    fn deltas_survive_a_counter_restart() {
        assert_eq!(delta(10, 4), 6);
        assert_eq!(delta(3, 40), 3);
    }

    #[test]
    fn latency_buckets_ascend() {
        assert!(LATENCY_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }
}
