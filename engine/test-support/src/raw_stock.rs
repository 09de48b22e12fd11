//! A raw stock-protocol peer over a blocking socket, written with the protocol core's pieces:
//! its own SecretConnection handshake and NodeInfo, then exactly the MConnection packets a test
//! wants (ping floods, messages left unfinished). Tests use it to misbehave on purpose.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ringwire::proto::mconn::packet::{PING_ENCODED, encode_msg};
use ringwire::proto::nodeinfo::{
    NodeInfo, NodeInfoOther, ProtocolVersion, STOCK_BLOCK_PROTOCOL, STOCK_P2P_PROTOCOL,
};
use ringwire::proto::secret::{Handshake, NodeKey, SecretSession};

use crate::node::connect_from;

/// Who the raw peer claims to be.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Its node key comes from this seed.
    pub key_seed: [u8; 32],
    /// The network (chain ID) its NodeInfo names.
    pub network: String,
    /// The channels its NodeInfo lists (no capability channel: the node speaks stock to it).
    pub channels: Vec<u8>,
    /// Its moniker.
    pub moniker: String,
}

impl Identity {
    /// Node `seed` on `network` with `channels`.
    pub fn new(seed: u8, network: &str, channels: &[u8]) -> Identity {
        Identity {
            key_seed: [seed; 32],
            network: network.to_owned(),
            channels: channels.to_vec(),
            moniker: format!("raw-{seed}"),
        }
    }
}

/// A stock (compat) peer speaking through the protocol core's pieces, over a blocking socket.
pub struct RawStockPeer {
    stream: TcpStream,
    session: SecretSession,
}

/// Runs the SecretConnection handshake on `stream` as `key` (ephemeral secret from `seed`).
pub fn handshake(
    stream: &mut TcpStream,
    key: NodeKey,
    ephemeral: [u8; 32],
) -> std::io::Result<SecretSession> {
    let mut hs = Handshake::new(key, ephemeral);
    let mut out = Vec::new();
    let mut inbuf = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        out.clear();
        hs.poll_transmit(&mut out);
        stream.write_all(&out)?;
        if hs.is_complete() {
            break;
        }
        let n = match stream.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r?,
        };
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        inbuf.extend_from_slice(&buf[..n]);
        let used = hs
            .handle_input(&inbuf)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        inbuf.drain(..used);
    }
    hs.into_session()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

impl RawStockPeer {
    /// Handshakes with `addr` as `who` and sends its NodeInfo.
    pub fn connect(addr: SocketAddr, who: &Identity) -> std::io::Result<RawStockPeer> {
        Self::over(TcpStream::connect(addr)?, who)
    }

    /// As [`RawStockPeer::connect`], from the loopback address `from`.
    pub fn connect_from(
        from: [u8; 4],
        addr: SocketAddr,
        who: &Identity,
    ) -> std::io::Result<RawStockPeer> {
        Self::over(connect_from(from, addr)?, who)
    }

    fn over(mut stream: TcpStream, who: &Identity) -> std::io::Result<RawStockPeer> {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let key = NodeKey::from_seed(who.key_seed);
        let session = handshake(&mut stream, key.clone(), who.key_seed)?;
        let info = NodeInfo {
            protocol_version: ProtocolVersion {
                p2p: STOCK_P2P_PROTOCOL,
                block: STOCK_BLOCK_PROTOCOL,
                app: 0,
            },
            node_id: key.node_id().to_string(),
            listen_addr: "tcp://127.0.0.1:1".into(),
            network: who.network.clone(),
            version: "0.38.0".into(),
            channels: who.channels.clone(),
            moniker: who.moniker.clone(),
            other: NodeInfoOther {
                tx_index: "off".into(),
                rpc_address: String::new(),
            },
        };
        let mut peer = RawStockPeer { stream, session };
        let mut plain = Vec::new();
        info.encode_delimited(&mut plain);
        peer.send(&plain);
        Ok(peer)
    }

    /// Seals `plain` into SecretConnection frames and writes them (errors ignored: the node
    /// may already have closed).
    pub fn send(&mut self, plain: &[u8]) {
        let mut wire = Vec::new();
        self.session
            .sealer_mut()
            .seal(plain, &mut wire)
            .expect("sealing");
        let _ = self.stream.write_all(&wire);
    }

    /// Sends `kib` KiB on `channel` in 1 KiB packets, the last one ending the message if `eof`.
    pub fn send_kib(&mut self, channel: u8, kib: usize, eof: bool) {
        let mut plain = Vec::new();
        for i in 0..kib {
            encode_msg(channel, eof && i + 1 == kib, &[0x5A; 1024], &mut plain);
        }
        self.send(&plain);
    }

    /// Sends `n` ping packets at once.
    pub fn send_pings(&mut self, n: usize) {
        self.send(&PING_ENCODED.repeat(n));
    }

    /// Whether the node has closed the socket, waiting up to `within`; what it sent meanwhile
    /// is read and discarded.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }

    /// Reads (and discards) until the node closes the socket; panics after 10 s.
    pub fn expect_closed(mut self) {
        assert!(
            self.closed_within(Duration::from_secs(10)),
            "the node kept the connection open"
        );
    }
}
