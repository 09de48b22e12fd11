//! Peer bytes into a whole `Connection`: handshake, NodeInfo exchange, then compat
//! (MConnection in SecretConnection frames) or native (records and the multiplexer).
//!
//! Three modes, chosen by the input:
//! - raw: the fuzzer's bytes are the peer's wire bytes from the first byte on;
//! - compat: a real peer completes the handshake (its transcript is computed once from fixed
//!   keys and ephemerals), then the fuzzer's bytes are sealed into frames with the peer's frame
//!   sealer, optionally after the peer's genuine NodeInfo, so they reach NodeInfo decoding and
//!   MConnection parsing;
//! - native: the same handshake and a genuine NodeInfo that advertises the native protocol,
//!   then the fuzzer's bytes are sealed into records with the peer's record sealer, optionally
//!   after a genuine HELLO, so they reach the multiplexer.
//!
//! Raw wire bytes may also be injected mid-stream in every mode. The connection is driven as a
//! runtime drives it: input only while it wants input, transmit, events, timers on a
//! fuzzer-driven clock, sends and a local close. Nothing may panic; every error closes the
//! connection, is the close reason, and is reported once as `Event::Closed`; no event follows
//! it; delivered messages fit their channels; a transmit stays within its budget (plus one
//! record). A genuine prefix must connect, in the mode the NodeInfos call for.

#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringwire::proto::conn::{ChannelDescriptor, Connection, ConnectionConfig, Event, Mode};
use ringwire::proto::native::{Mux, NativeChannelConfig, NativeConfig, RecordSealer};
use ringwire::proto::nodeinfo::{
    NodeInfo, NodeInfoOther, ProtocolVersion, STOCK_BLOCK_PROTOCOL, STOCK_P2P_PROTOCOL,
    ringwire_channels, stock_channels,
};
use ringwire::proto::secret::{FrameSealer, Handshake, NodeId, NodeKey};

const LOCAL_SEED: [u8; 32] = [0x11; 32];
const LOCAL_EPHEMERAL: [u8; 32] = [0x22; 32];
const PEER_SEED: [u8; 32] = [0x33; 32];
const PEER_EPHEMERAL: [u8; 32] = [0x44; 32];
/// Most bytes one `poll_transmit` may append beyond the budget: one sealed record or frame
/// batch, plus what the handshake stages queue.
const TRANSMIT_SLACK: usize = 80 * 1024;

struct Fixture {
    config: ConnectionConfig,
    peer_id: NodeId,
    /// The peer's handshake transcript: ephemeral message and authentication frame.
    transcript: Vec<u8>,
    /// The peer's frame send key; nonce 0 went to the authentication frame.
    frame_key: [u8; 32],
    /// The peer's native record send key.
    record_key: [u8; 32],
    /// The peer's delimited NodeInfo without, and with, the native capability channel.
    compat_info: Vec<u8>,
    native_info: Vec<u8>,
    /// The plaintext of a genuine first native record (the peer's HELLO).
    hello: Vec<u8>,
}

fn node_info(network: &str, channels: Vec<u8>) -> NodeInfo {
    NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: STOCK_P2P_PROTOCOL,
            block: STOCK_BLOCK_PROTOCOL,
            app: 1,
        },
        node_id: String::new(),
        listen_addr: "tcp://127.0.0.1:26656".to_owned(),
        network: network.to_owned(),
        version: "0.40.0".to_owned(),
        channels,
        moniker: "fuzz".to_owned(),
        other: NodeInfoOther {
            tx_index: "on".to_owned(),
            rpc_address: "tcp://127.0.0.1:26657".to_owned(),
        },
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut config = ConnectionConfig::new(
            NodeKey::from_seed(LOCAL_SEED),
            node_info("fuzz-chain", Vec::new()),
        );
        config.transmit_budget = 16 * 1024;
        let now = Instant::now();
        let mut conn = Connection::new(config.clone(), LOCAL_EPHEMERAL, now).expect("config");
        let mut peer = Handshake::new(NodeKey::from_seed(PEER_SEED), PEER_EPHEMERAL);
        let mut transcript = Vec::new();
        peer.poll_transmit(&mut transcript);
        let mut ours = Vec::new();
        conn.poll_transmit(now, &mut ours);
        assert_eq!(peer.handle_input(&ours).expect("ours"), ours.len());
        peer.poll_transmit(&mut transcript);
        conn.handle_input(now, &transcript)
            .expect("the peer's transcript");
        ours.clear();
        conn.poll_transmit(now, &mut ours);
        // Our authentication frame, then our NodeInfo frame.
        let used = peer.handle_input(&ours).expect("our authentication");
        assert!(peer.is_complete());
        assert!(used < ours.len(), "our NodeInfo follows our authentication");
        let session = peer.into_session().expect("complete");
        let peer_id = NodeKey::from_seed(PEER_SEED).node_id();

        let mut compat_info = Vec::new();
        let mut info = node_info("fuzz-chain", stock_channels());
        info.node_id = peer_id.to_string();
        info.encode_delimited(&mut compat_info);
        let mut native_info = Vec::new();
        info.channels = ringwire_channels();
        info.node_id = peer_id.to_string();
        info.encode_delimited(&mut native_info);

        let channels = ChannelDescriptor::stock()
            .iter()
            .map(|c| NativeChannelConfig::new(c.id, c.priority, c.recv_message_capacity))
            .collect();
        let mut mux = Mux::new(NativeConfig::with_channels(channels), now).expect("config");
        let mut hello = Vec::new();
        assert!(mux.poll_record(now, &mut hello, 65536));

        Fixture {
            config,
            peer_id,
            transcript,
            frame_key: session.derived().send_key,
            record_key: session.native_keys().send,
            compat_info,
            native_info,
            hello,
        }
    })
}

#[derive(Arbitrary, Debug)]
enum Input {
    Raw {
        steps: Vec<Step>,
    },
    Compat {
        genuine_node_info: bool,
        steps: Vec<Step>,
    },
    Native {
        genuine_hello: bool,
        steps: Vec<Step>,
    },
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// Peer bytes: raw in raw mode, sealed into frames (compat) or one record (native).
    Input(Vec<u8>),
    /// Raw wire bytes whatever the mode.
    Wire(Vec<u8>),
    Transmit,
    PollEvent,
    /// Time passes, in units of 64 ms; due timers fire.
    Advance(u16),
    /// Queue a message on a stock channel (by index).
    Send {
        channel: u8,
        len: u16,
    },
    Close,
}

/// How the peer seals what it sends after the handshake.
enum PeerSealer {
    Raw,
    Frames(FrameSealer),
    Records(RecordSealer),
}

impl PeerSealer {
    fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        match self {
            PeerSealer::Raw => out.extend_from_slice(plain),
            PeerSealer::Frames(s) => s.seal(plain, out).expect("nonces remain"),
            PeerSealer::Records(s) => {
                if !plain.is_empty() {
                    s.seal(plain, out).expect("a record fits");
                }
            }
        }
    }
}

struct Driver {
    conn: Connection,
    now: Instant,
    closed_events: usize,
    channels: Vec<ChannelDescriptor>,
    out: Vec<u8>,
}

impl Driver {
    fn input(&mut self, wire: &[u8]) {
        if !self.conn.wants_input() {
            // A driver stops reading; the application catches up first.
            while !self.conn.wants_input() && !self.conn.is_closed() {
                if !self.event() {
                    break;
                }
            }
            if !self.conn.wants_input() {
                return;
            }
        }
        let was_closed = self.conn.is_closed();
        match self.conn.handle_input(self.now, wire) {
            Ok(()) => {}
            Err(e) => {
                assert!(!was_closed, "a closed connection returned an error");
                assert!(self.conn.is_closed(), "an error left the connection open");
                assert_eq!(self.conn.close_reason(), Some(&e));
            }
        }
    }

    /// Takes one event and checks it; returns whether there was one.
    fn event(&mut self) -> bool {
        let Some(event) = self.conn.poll_event() else {
            return false;
        };
        assert_eq!(self.closed_events, 0, "an event after Closed: {event:?}");
        match event {
            Event::Closed(reason) => {
                assert!(self.conn.is_closed());
                assert_eq!(self.conn.close_reason(), Some(&reason));
                self.closed_events += 1;
            }
            Event::Message(m) => {
                let channel = self
                    .channels
                    .iter()
                    .find(|c| c.id == m.channel)
                    .expect("a message on a channel we run");
                assert!(m.payload.len() <= channel.recv_message_capacity);
            }
            Event::Connected(_)
            | Event::RequestTimedOut(_)
            | Event::RequestFailed(_)
            | Event::Cancelled(_) => {}
        }
        true
    }

    fn transmit(&mut self) {
        self.out.clear();
        let budget = fixture().config.transmit_budget;
        self.conn.poll_transmit(self.now, &mut self.out);
        assert!(
            self.out.len() <= budget + TRANSMIT_SLACK,
            "transmitted {} bytes for a budget of {budget}",
            self.out.len()
        );
    }

    fn step(&mut self, step: &Step, sealer: &mut PeerSealer) {
        match step {
            Step::Input(plain) => {
                let mut wire = Vec::new();
                sealer.seal(plain, &mut wire);
                self.input(&wire);
            }
            Step::Wire(wire) => self.input(wire),
            Step::Transmit => self.transmit(),
            Step::PollEvent => {
                self.event();
            }
            Step::Advance(units) => {
                self.now += Duration::from_millis(u64::from(*units) * 64);
                if self.conn.poll_timeout().is_some_and(|t| t <= self.now) {
                    let was_closed = self.conn.is_closed();
                    if let Err(e) = self.conn.handle_timeout(self.now) {
                        assert!(!was_closed && self.conn.is_closed());
                        assert_eq!(self.conn.close_reason(), Some(&e));
                    }
                }
            }
            Step::Send { channel, len } => {
                let id = self.channels[usize::from(*channel) % self.channels.len()].id;
                let _ = self
                    .conn
                    .send(id, Bytes::from(vec![*channel; usize::from(*len)]));
            }
            Step::Close => self.conn.close(self.now, "fuzz"),
        }
    }

    /// Drains events; returns the first `Connected`, if any.
    fn connected(&mut self) -> Option<(NodeId, Mode)> {
        let mut found = None;
        for _ in 0..16 {
            match self.conn.poll_event() {
                Some(Event::Connected(p)) => found = found.or(Some((p.node_id, p.mode))),
                Some(Event::Closed(e)) => panic!("a genuine peer was rejected: {e}"),
                Some(_) => {}
                None => break,
            }
        }
        found
    }
}

fuzz_target!(|input: Input| {
    let fx = fixture();
    let now = Instant::now();
    let conn = Connection::new(fx.config.clone(), LOCAL_EPHEMERAL, now).expect("valid config");
    let mut d = Driver {
        conn,
        now,
        closed_events: 0,
        channels: fx.config.channels.clone(),
        out: Vec::new(),
    };
    d.transmit();
    let (mut sealer, steps) = match input {
        Input::Raw { steps } => (PeerSealer::Raw, steps),
        Input::Compat {
            genuine_node_info,
            steps,
        } => {
            let mut wire = fx.transcript.clone();
            let mut frames = FrameSealer::new(&fx.frame_key);
            frames.seal(&[0], &mut Vec::new()).expect("nonce 0");
            if genuine_node_info {
                frames.seal(&fx.compat_info, &mut wire).expect("nonce 1");
            }
            d.input(&wire);
            d.transmit();
            if genuine_node_info {
                assert_eq!(d.connected(), Some((fx.peer_id, Mode::Compat)));
            }
            (PeerSealer::Frames(frames), steps)
        }
        Input::Native {
            genuine_hello,
            steps,
        } => {
            let mut wire = fx.transcript.clone();
            let mut frames = FrameSealer::new(&fx.frame_key);
            frames.seal(&[0], &mut Vec::new()).expect("nonce 0");
            frames.seal(&fx.native_info, &mut wire).expect("nonce 1");
            let mut records = RecordSealer::new(&fx.record_key);
            if genuine_hello {
                records.seal(&fx.hello, &mut wire).expect("a record");
            }
            d.input(&wire);
            d.transmit();
            assert_eq!(d.conn.mode(), Some(Mode::Native));
            if genuine_hello {
                assert_eq!(d.connected(), Some((fx.peer_id, Mode::Native)));
            }
            (PeerSealer::Records(records), steps)
        }
    };
    for step in &steps {
        d.step(step, &mut sealer);
    }
    // Wind down: drain what is left, then everything must still hold.
    d.transmit();
    while d.event() {}
    if d.conn.is_closed() {
        assert!(d.conn.close_reason().is_some());
        assert_eq!(d.conn.handle_input(d.now, b"late"), Ok(()));
    }
});
