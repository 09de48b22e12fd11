//! What the admin endpoint answers to `peers` and `book`: the node's view of its peers and of
//! its address book as JSON (the fields are listed in docs/CONFIGURATION.md, `[admin]`).

use std::time::{Duration, Instant};

use ringwire::node::Node;
use ringwire::proto::conn::Mode;
use ringwire::router::Direction;
use serde_json::{Value, json};

fn secs(d: Duration) -> f64 {
    // Milliseconds are precise enough for an operator.
    (d.as_millis() as f64) / 1000.0
}

/// One object per connected peer.
pub(crate) fn peers(node: &Node) -> Vec<Value> {
    let now = Instant::now();
    let traffic = node.peer_traffic();
    node.peers()
        .into_iter()
        .map(|p| {
            let id = p.info.node_id;
            let channels: Vec<Value> = traffic
                .iter()
                .find(|t| t.node_id == id)
                .map(|t| {
                    t.channels
                        .iter()
                        .map(|c| {
                            json!({
                                "channel": format!("{:#04x}", c.channel),
                                "sent_bytes": c.sent_bytes,
                                "received_bytes": c.received_bytes,
                                "queued_messages": c.queued_messages,
                                "pending_bytes": c.pending_bytes,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let queue_depth: u64 = channels
                .iter()
                .filter_map(|c| c.get("queued_messages").and_then(Value::as_u64))
                .sum();
            json!({
                "id": id.to_string(),
                "direction": match p.direction {
                    Direction::Inbound => "inbound",
                    Direction::Outbound => "outbound",
                },
                "addr": p.addr.map(|a| a.to_string()),
                "moniker": p.info.node_info.moniker,
                "protocol": match p.info.mode {
                    Mode::Native => "native",
                    Mode::Compat => "compat",
                },
                "native": p.info.mode == Mode::Native,
                "capabilities": p.info.capabilities,
                "score": node.peer_score(&id),
                "uptime_s": secs(now.saturating_duration_since(p.connected_at)),
                "rtt_ms": p.rtt.map(|r| r.as_secs_f64() * 1000.0),
                "queue_depth": queue_depth,
                "channels": channels,
                "shard": p.shard,
            })
        })
        .collect()
}

/// The address book (`"book"`, one object per address) and the bans in force (`"bans"`).
pub(crate) fn book(node: &Node) -> Value {
    let rows: Vec<Value> = node
        .address_book()
        .into_iter()
        .map(|e| {
            json!({
                "addr": format!("{}@{}", e.addr.id, std::net::SocketAddr::new(e.addr.ip, e.addr.port)),
                "id": e.addr.id.to_string(),
                "source": e.source.id.to_string(),
                "table": if e.tried { "tried" } else { "new" },
                "buckets": e.buckets,
                "attempts": e.attempts,
                "last_attempt_s_ago": e.last_attempt.map(secs),
                "last_success_s_ago": e.last_success.map(secs),
                "banned_for_s": e.banned_for.map(secs),
                "capabilities": e.capabilities.as_ref().map(|c| &c.capabilities),
                "capabilities_confirmed": e.capabilities.as_ref().map(|c| c.confirmed),
            })
        })
        .collect();
    let now = Instant::now();
    let bans = node.bans().unwrap_or_default();
    let left = |until: Instant| secs(until.saturating_duration_since(now));
    json!({
        "book": rows,
        "bans": {
            "ids": bans.ids.iter().map(|(id, until)| json!({
                "id": id.to_string(),
                "for_s": left(*until),
            })).collect::<Vec<_>>(),
            "ips": bans.ips.iter().map(|(ip, until)| json!({
                "ip": ip.to_string(),
                "for_s": left(*until),
            })).collect::<Vec<_>>(),
        },
    })
}
