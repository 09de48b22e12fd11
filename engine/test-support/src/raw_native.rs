//! A raw native-protocol peer for tests: a blocking socket that speaks `docs/PROTOCOL.md`
//! through the protocol core's public pieces only (the SecretConnection handshake, NodeInfo,
//! the native record layer and frame codec), without a multiplexer, so that a test can send
//! exactly the frames it wants (floods of control frames, frames out of place) and see what
//! the node answers.
//!
//! The sequence is the one of `docs/PROTOCOL.md` §2: TCP, SecretConnection handshake, NodeInfo
//! (listing the capability channel 0xF0) in SecretConnection frames, then native records, the
//! first of each side starting with its HELLO.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ringwire::proto::native::frame::{
    DATA_END, DATA_REQUEST, DATA_START, DataFrame, Frame, FrameDecoder, Hello, HelloChannel,
};
use ringwire::proto::native::{
    MAX_RECORD_PLAINTEXT, PROTOCOL_VERSION, RecordOpener, RecordSealer, ResetCode,
};
use ringwire::proto::nodeinfo::{
    NodeInfo, NodeInfoOther, ProtocolVersion, RINGWIRE_CAPABILITY_CHANNEL, STOCK_BLOCK_PROTOCOL,
    STOCK_P2P_PROTOCOL,
};
use ringwire::proto::secret::{FRAME_SEALED_SIZE, Handshake, NodeKey, SecretSession};

/// The window the raw peer announces on each of its channels: generous, so that the node never
/// waits for credit, and far enough below 2^31 − 1 that window updates cannot overflow it.
pub const RAW_WINDOW: u32 = 1 << 24;

/// The largest message the raw peer announces it accepts on each of its channels.
pub const RAW_MAX_MESSAGE: u32 = 1 << 24;

/// The first request id [`RawNativePeer::cancel_flood`] cancels: far above any id a test sends,
/// so the node holds none of them.
pub const UNKNOWN_REQUEST_BASE: u64 = 1 << 40;

/// How the node ended a connection, as [`RawNativePeer::wait_closed`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The node sent RESET with this code and reason, then closed the socket.
    Reset {
        /// The reset code (`ResetCode::PROTOCOL_ERROR` and so on).
        code: ResetCode,
        /// The reason text.
        reason: String,
    },
    /// The node sent CLOSE with this reason, then closed the socket.
    Close {
        /// The reason text.
        reason: String,
    },
    /// The node closed the socket without a RESET or CLOSE.
    Silent,
}

/// A native-protocol peer over a blocking [`TcpStream`], written with the protocol core.
///
/// It keeps no multiplexer state: it does not track credit, answer PINGs or reassemble
/// messages. Writes ignore errors (the node may already have closed the connection; the test
/// then learns why from [`wait_closed`](Self::wait_closed)).
pub struct RawNativePeer {
    stream: TcpStream,
    sealer: RecordSealer,
    opener: RecordOpener,
    /// Bytes read from the socket that the record opener has not taken yet.
    inbuf: Vec<u8>,
    node_info: NodeInfo,
    node_hello: Hello,
    /// The last RESET or CLOSE the node sent.
    said: Option<Closed>,
    /// The socket reached its end (EOF or a TCP reset).
    eof: bool,
    next_ping: u64,
}

impl std::fmt::Debug for RawNativePeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawNativePeer")
            .field("stream", &self.stream)
            .field("said", &self.said)
            .finish_non_exhaustive()
    }
}

impl RawNativePeer {
    /// Connects to `addr` as node `seed` on `network`, announcing `channels` (ascending, without
    /// 0xF0) in NodeInfo (plus the capability channel) and HELLO (each with [`RAW_WINDOW`] and
    /// [`RAW_MAX_MESSAGE`]), and returns once the node's HELLO has arrived.
    ///
    /// Panics if any step fails or the node does not offer the native protocol.
    pub fn connect(addr: SocketAddr, seed: u8, network: &str, channels: &[u8]) -> RawNativePeer {
        let stream = TcpStream::connect(addr).expect("TCP connect");
        Self::handshake(stream, seed, network, channels)
    }

    /// Like [`connect`](Self::connect), from the loopback address `from` (bound before
    /// connecting; see [`crate::node::connect_from`]).
    pub fn connect_from(
        from: [u8; 4],
        addr: SocketAddr,
        seed: u8,
        network: &str,
        channels: &[u8],
    ) -> RawNativePeer {
        let stream = crate::node::connect_from(from, addr).expect("TCP connect");
        Self::handshake(stream, seed, network, channels)
    }

    fn handshake(mut stream: TcpStream, seed: u8, network: &str, channels: &[u8]) -> Self {
        assert!(
            !channels.contains(&RINGWIRE_CAPABILITY_CHANNEL),
            "0xF0 is the capability channel, never a native channel"
        );
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let key = NodeKey::from_seed([seed; 32]);

        // SecretConnection handshake (Appendix A.2).
        let mut hs = Handshake::new(key.clone(), [seed; 32]);
        let mut out = Vec::new();
        let mut inbuf = Vec::new();
        loop {
            out.clear();
            hs.poll_transmit(&mut out);
            stream.write_all(&out).expect("write handshake");
            if hs.is_complete() {
                break;
            }
            read_some(&mut stream, &mut inbuf).expect("the node closed during the handshake");
            let used = hs.handle_input(&inbuf).expect("handshake");
            inbuf.drain(..used);
        }
        let mut session = hs.into_session().expect("session");

        // Our NodeInfo, with the capability channel (§2), sent without waiting for the node's.
        let mut nodeinfo_channels = channels.to_vec();
        nodeinfo_channels.push(RINGWIRE_CAPABILITY_CHANNEL);
        let info = NodeInfo {
            protocol_version: ProtocolVersion {
                p2p: STOCK_P2P_PROTOCOL,
                block: STOCK_BLOCK_PROTOCOL,
                app: 0,
            },
            node_id: key.node_id().to_string(),
            listen_addr: "tcp://127.0.0.1:1".into(),
            network: network.into(),
            version: "0.1.0".into(),
            channels: nodeinfo_channels,
            moniker: format!("raw-native-{seed}"),
            other: NodeInfoOther {
                tx_index: "off".into(),
                rpc_address: String::new(),
            },
        };
        let mut plain = Vec::new();
        info.encode_delimited(&mut plain);
        out.clear();
        session.sealer_mut().seal(&plain, &mut out).expect("seal");
        stream.write_all(&out).expect("write NodeInfo");

        // The node's NodeInfo; its native stream starts right after the frame that ends it.
        let node_info = read_node_info(&mut stream, &mut session, &mut inbuf);
        assert!(
            node_info.advertises_native(),
            "the node does not offer the native protocol: {:?}",
            node_info.channels
        );
        let keys = session.native_keys();
        let mut peer = RawNativePeer {
            stream,
            sealer: RecordSealer::new(&keys.send),
            opener: RecordOpener::new(&keys.recv),
            inbuf,
            node_info,
            node_hello: Hello {
                min_version: 1,
                max_version: 1,
                features: 0,
                max_inflight_requests: 0,
                capabilities: Vec::new(),
                channels: Vec::new(),
            },
            said: None,
            eof: false,
            next_ping: 1,
        };

        // Our HELLO (§6) opens our first record.
        let mut ids = channels.to_vec();
        ids.sort_unstable();
        let hello = Hello {
            min_version: PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            features: 0,
            max_inflight_requests: 256,
            capabilities: Vec::new(),
            channels: ids
                .iter()
                .map(|&id| HelloChannel {
                    id,
                    initial_window: RAW_WINDOW,
                    max_message: RAW_MAX_MESSAGE,
                })
                .collect(),
        };
        peer.send_frames(&[Frame::Hello(hello)]);

        // The node's HELLO is the first frame of its first record.
        let deadline = Instant::now() + Duration::from_secs(10);
        let first = peer
            .read_record(deadline)
            .expect("the node closed the connection before its HELLO");
        match FrameDecoder::new(&first).next() {
            Some(Ok(Frame::Hello(h))) => peer.node_hello = h,
            other => panic!("the node's first frame is not a HELLO: {other:?}"),
        }
        peer
    }

    /// The NodeInfo the node sent.
    pub fn node_info(&self) -> &NodeInfo {
        &self.node_info
    }

    /// The HELLO the node sent.
    pub fn node_hello(&self) -> &Hello {
        &self.node_hello
    }

    /// The local address of the socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local address")
    }

    /// Encodes `frames` into as few records as they fit (each up to 65536 bytes of plaintext;
    /// a frame never spans records), seals them and writes them in one go.
    ///
    /// Panics on a frame the codec refuses to encode; write errors are ignored.
    pub fn send_frames(&mut self, frames: &[Frame<'_>]) {
        let mut wire = Vec::new();
        let mut plain = Vec::with_capacity(MAX_RECORD_PLAINTEXT);
        let mut one = Vec::new();
        for f in frames {
            one.clear();
            f.encode(&mut one).expect("an encodable frame");
            assert!(one.len() <= MAX_RECORD_PLAINTEXT, "a frame fits one record");
            if plain.len() + one.len() > MAX_RECORD_PLAINTEXT {
                self.sealer.seal(&plain, &mut wire).expect("seal a record");
                plain.clear();
            }
            plain.extend_from_slice(&one);
        }
        if !plain.is_empty() {
            self.sealer.seal(&plain, &mut wire).expect("seal a record");
        }
        let _ = self.stream.write_all(&wire);
    }

    /// Sends `n` PINGs (distinct values) at once, packed into as few records as they fit.
    pub fn ping_flood(&mut self, n: usize) {
        let frames: Vec<Frame<'_>> = (0..n).map(|_| Frame::Ping(self.fresh_ping())).collect();
        self.send_frames(&frames);
    }

    /// Sends `n` WINDOW_UPDATEs of one byte each on `channel` at once. The node sent no DATA
    /// they could return credit for (unless the test made it), so each one is a control frame
    /// charged to the peer's budget.
    pub fn window_update_flood(&mut self, channel: u8, n: usize) {
        let frames = vec![
            Frame::WindowUpdate {
                channel,
                increment: 1,
            };
            n
        ];
        self.send_frames(&frames);
    }

    /// Sends `n` CANCELs at once, of request ids the node never saw (from
    /// [`UNKNOWN_REQUEST_BASE`] up): not owed by a well-behaved peer, so each one is charged
    /// (`docs/PROTOCOL.md` §15).
    pub fn cancel_flood(&mut self, n: usize) {
        let frames: Vec<Frame<'_>> = (0..n as u64)
            .map(|i| Frame::Cancel(UNKNOWN_REQUEST_BASE + i))
            .collect();
        self.send_frames(&frames);
    }

    /// Sends a request with id `id` (nonzero) on `channel`: one DATA frame with
    /// START|END|REQUEST.
    pub fn send_request(&mut self, channel: u8, id: u64, payload: &[u8]) {
        self.send_frames(&[request_frame(channel, id, payload)]);
    }

    /// Sends a plain message on `channel`: one DATA frame with START|END.
    pub fn send_message(&mut self, channel: u8, payload: &[u8]) {
        self.send_frames(&[Frame::Data(DataFrame {
            ttl_ms: None,
            channel,
            flags: DATA_START | DATA_END,
            request_id: None,
            chunk: payload,
        })]);
    }

    /// Sends one PING with a fresh value and reads until the node's PONG with that value:
    /// proves that the node has processed everything sent before it and still holds the
    /// connection. The PING is a control frame like any other.
    ///
    /// Panics with what the node said if it ends the connection instead, or if no PONG
    /// arrives `within`.
    pub fn roundtrip(&mut self, within: Duration) {
        let value = self.fresh_ping();
        self.send_frames(&[Frame::Ping(value)]);
        let deadline = Instant::now() + within;
        loop {
            let Some(record) = self.read_record(deadline) else {
                panic!(
                    "the node ended the connection instead of answering PING {value}: {:?}",
                    self.said.clone().unwrap_or(Closed::Silent)
                );
            };
            let pong =
                FrameDecoder::new(&record).any(|f| matches!(f, Ok(Frame::Pong(v)) if v == value));
            if pong {
                return;
            }
        }
    }

    /// Reads the next record the node sends and returns its plaintext (decode it with
    /// [`FrameDecoder`]), or `None` when the node has closed the connection.
    ///
    /// Panics if no record arrives `within`, or one fails to open.
    pub fn recv_record(&mut self, within: Duration) -> Option<Vec<u8>> {
        self.read_record(Instant::now() + within)
    }

    /// Reads (and opens) records until the node closes the socket, and returns the last RESET
    /// or CLOSE it sent, if any.
    ///
    /// Panics if the node keeps the connection open longer than `within`.
    pub fn wait_closed(mut self, within: Duration) -> Closed {
        let deadline = Instant::now() + within;
        while self.read_record(deadline).is_some() {}
        self.said.take().unwrap_or(Closed::Silent)
    }

    fn fresh_ping(&mut self) -> u64 {
        let v = self.next_ping;
        self.next_ping += 1;
        v
    }

    /// The next record's plaintext, or `None` at the end of the stream. Remembers the last
    /// RESET or CLOSE it carries.
    fn read_record(&mut self, deadline: Instant) -> Option<Vec<u8>> {
        loop {
            if let Some(plain) = self.opener.next_record().expect("a record from the node") {
                let plain = plain.to_vec();
                self.note_ending(&plain);
                return Some(plain);
            }
            if !self.inbuf.is_empty() {
                let used = self.opener.feed(&self.inbuf).expect("a record header");
                self.inbuf.drain(..used);
                continue;
            }
            if self.eof {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the node neither sent a record nor closed the connection in time"
            );
            self.stream
                .set_read_timeout(Some(left))
                .expect("read timeout");
            match read_some(&mut self.stream, &mut self.inbuf) {
                Ok(()) => {}
                Err(End::Closed) => self.eof = true,
                Err(End::TimedOut) => {
                    panic!("the node neither sent a record nor closed the connection in time")
                }
            }
        }
    }

    fn note_ending(&mut self, plain: &[u8]) {
        for frame in FrameDecoder::new(plain) {
            match frame {
                Ok(Frame::Reset { code, reason }) => {
                    self.said = Some(Closed::Reset {
                        code: ResetCode(code),
                        reason: reason.to_owned(),
                    });
                }
                Ok(Frame::Close { reason }) => {
                    self.said = Some(Closed::Close {
                        reason: reason.to_owned(),
                    });
                }
                Ok(_) => {}
                Err(e) => panic!("the node sent a malformed frame: {e}"),
            }
        }
    }
}

/// A request: one DATA frame with START|END|REQUEST, id `id` (nonzero).
pub fn request_frame(channel: u8, id: u64, payload: &[u8]) -> Frame<'_> {
    Frame::Data(DataFrame {
        ttl_ms: None,
        channel,
        flags: DATA_START | DATA_END | DATA_REQUEST,
        request_id: Some(id),
        chunk: payload,
    })
}

/// Why a read got nothing.
#[derive(Debug)]
enum End {
    /// EOF or a TCP reset.
    Closed,
    /// The read timeout passed.
    TimedOut,
}

/// Appends what one read returns to `buf`.
fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), End> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Err(End::Closed),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(End::TimedOut);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return Err(End::Closed);
            }
            Err(e) => panic!("read from the node: {e}"),
        }
    }
}

/// Reads SecretConnection frames until they hold the node's whole NodeInfo; leaves in `inbuf`
/// the bytes after the last of them (the start of the node's native stream, §2).
fn read_node_info(
    stream: &mut TcpStream,
    session: &mut SecretSession,
    inbuf: &mut Vec<u8>,
) -> NodeInfo {
    let mut received = session.take_early_data();
    loop {
        if let Some((info, used)) = NodeInfo::decode_delimited(&received).expect("node info") {
            assert_eq!(
                used,
                received.len(),
                "the node's NodeInfo frame continues past the NodeInfo (§2)"
            );
            return info;
        }
        while inbuf.len() < FRAME_SEALED_SIZE {
            if read_some(stream, inbuf).is_err() {
                panic!("the node closed or stalled before its NodeInfo");
            }
        }
        let mut frame = [0u8; FRAME_SEALED_SIZE];
        frame.copy_from_slice(&inbuf[..FRAME_SEALED_SIZE]);
        inbuf.drain(..FRAME_SEALED_SIZE);
        let data = session
            .opener_mut()
            .open_frame(&mut frame)
            .expect("a NodeInfo frame");
        received.extend_from_slice(data);
    }
}
