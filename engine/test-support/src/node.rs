//! Nodes for the engine's integration tests: builders on the test network with the driver
//! under test, channels, payloads and waits.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringwire::node::{Node, NodeBuilder};
use ringwire::proto::conn::{ChannelDescriptor, Compression};
use ringwire::proto::secret::NodeKey;
use ringwire::router::PeerEvent;
use ringwire::rt::Driver;

/// The driver under test: `RINGWIRE_DRIVER=epoll|io_uring|auto` (default auto).
pub fn driver() -> Driver {
    std::env::var("RINGWIRE_DRIVER")
        .ok()
        .map(|s| s.parse().expect("RINGWIRE_DRIVER"))
        .unwrap_or(Driver::Auto)
}

/// `n` seconds from now.
pub fn secs(n: u64) -> Instant {
    Instant::now() + Duration::from_secs(n)
}

/// A builder for node `seed` on the test network with the driver under test.
pub fn builder(seed: u8) -> NodeBuilder {
    Node::builder(NodeKey::from_seed([seed; 32]), "test-chain")
        .driver(driver())
        .shards(2)
}

/// A builder for node number `n` (any `u32`), for tests with many nodes.
pub fn builder_n(n: u32) -> NodeBuilder {
    let mut seed = [0xA5u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    Node::builder(NodeKey::from_seed(seed), "test-chain")
        .driver(driver())
        .shards(1)
}

/// A listening node on loopback.
pub fn tcp_node(seed: u8, native: bool, channels: &[ChannelDescriptor]) -> Node {
    let mut b = builder(seed)
        .listen("127.0.0.1:0".parse().unwrap())
        .offer_native(native);
    for c in channels {
        b = b.channel(c.clone());
    }
    b.start().expect("node starts")
}

/// A listening node with channel 0x20 (1 MiB messages) whose receive queues hold at most
/// `recv_queue_capacity` messages: the peer of backpressure tests.
pub fn queue_node(seed: u8, native: bool, recv_queue_capacity: usize) -> Node {
    builder(seed)
        .listen("127.0.0.1:0".parse().unwrap())
        .offer_native(native)
        .limits(ringwire::node::Limits {
            recv_queue_capacity,
            ..Default::default()
        })
        .channel(chan(0x20, 1, 1 << 20))
        .start()
        .unwrap()
}

/// A channel descriptor.
pub fn chan(id: u8, priority: u32, recv_cap: usize) -> ChannelDescriptor {
    ChannelDescriptor {
        id,
        priority,
        send_queue_capacity: 16,
        recv_message_capacity: recv_cap,
        compression: Compression::Off,
    }
}

/// Deterministic content for a message of `len` bytes (up to 32 MiB): a slice of one shared
/// pseudo-random buffer, offset by `tag`, so tests do not spend their time generating bytes.
pub fn payload(len: usize, tag: u8) -> Bytes {
    static BASE: OnceLock<Bytes> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut v = Vec::with_capacity((32 << 20) + 4096);
        while v.len() < v.capacity() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
        Bytes::from(v)
    });
    let start = usize::from(tag) * 13;
    base.slice(start..start + len)
}

/// Waits for `n` peers to be up on `node`.
pub fn wait_peers(node: &Node, n: usize) {
    let deadline = secs(10);
    while node.peers().len() < n {
        assert!(
            Instant::now() < deadline,
            "peers did not come up: {}",
            node.peers().len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for the next Down event.
pub fn wait_down(events: &mut ringwire::router::PeerEvents) -> PeerEvent {
    let deadline = secs(10);
    loop {
        match events.recv_blocking(deadline) {
            Some(e @ PeerEvent::Down { .. }) => return e,
            Some(_) => continue,
            None => panic!("no down event"),
        }
    }
}

/// A builder for node `seed` made from a configuration file's text the way `ringwire node`
/// makes one (`NodeBuilder::from_config`), with the driver under test.
pub fn builder_from_toml(seed: u8, toml: &str) -> NodeBuilder {
    let mut config = ringwire::config::Config::from_toml_str(toml).expect("test configuration");
    config.engine.driver = driver();
    NodeBuilder::from_config(&config, NodeKey::from_seed([seed; 32])).expect("from_config")
}

/// Whether the node closed `s` without a handshake byte (refused at accept) rather than holding
/// it in a handshake (it sent its ephemeral key); waits up to `within` for either.
pub fn refused_at_accept(s: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read as _;
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).expect("a read timeout");
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => return false,
            // A signal that interrupted the read (EINTR) is not an answer: read again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                );
            }
        }
    }
}

/// A TCP connection to `to` from the loopback address `from` (bound before connecting), so one
/// test can play peers from many addresses.
pub fn connect_from(
    from: [u8; 4],
    to: std::net::SocketAddr,
) -> std::io::Result<std::net::TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&std::net::SocketAddr::from((from, 0)).into())?;
    socket.connect(&to.into())?;
    Ok(socket.into())
}
