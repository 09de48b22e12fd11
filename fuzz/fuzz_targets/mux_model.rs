//! The native multiplexer against a reference model: two honest `Mux`es talk to each other
//! under a fuzzer-chosen schedule, and a model of what the application asked for says what each
//! side must see.
//!
//! Operations on either side: send, request (with a deadline), answer the oldest request held,
//! drop a held request unanswered, cancel one of its requests, take events, carry records either
//! way with a fuzzer-chosen budget, and let time pass. Channels have small windows, chunks and
//! queues so that flow control, chunking, scheduling and backpressure all run.
//!
//! Safety, at every event:
//! - each channel delivers exactly the plain messages the peer's `send` accepted on it, in order;
//! - a request arrives at most once, on the channel it was sent on, with its payload;
//! - each request we sent ends at most once: a response carrying exactly the peer's answer, or a
//!   timeout no earlier than its deadline; never after we cancelled it; never a failure (both
//!   sides share channels and limits);
//! - a `Cancelled` names a request delivered to the application (it may have answered it since:
//!   the event was queued when the CANCEL came in), at most once, which the peer did cancel or
//!   let expire;
//! - neither side rejects the other's records, and nothing resets or closes the connection.
//!
//! Liveness, once both sides answer everything they hold and carry records until nothing moves
//! (no time passing): every accepted plain message was delivered, every request we sent ended or
//! was cancelled, nothing is left queued, held or reassembled, and each side can again have its
//! full `max_inflight_requests` in flight, which are then all answered. A stuck window, a lost
//! credit or a request slot never given back fails here.

#![no_main]

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringwire::proto::native::{
    MessageKind, Mux, MuxEvent, NativeChannelConfig, NativeConfig, RequestId,
};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Who {
    A,
    B,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// `who` sends a plain message on a channel (by index).
    Send { who: Who, channel: u8, len: u16 },
    /// `who` sends a request that expires `deadline_ms` from now.
    Request {
        who: Who,
        channel: u8,
        len: u16,
        deadline_ms: u16,
    },
    /// `who` answers the oldest request it holds.
    Respond { who: Who, len: u16 },
    /// `who` drops the oldest request it holds without answering.
    Drop(Who),
    /// `who` cancels one of its open requests.
    Cancel { who: Who, pick: u8 },
    /// `who` takes up to this many events.
    Events { who: Who, count: u8 },
    /// `who` writes one record with this budget; the other side reads it.
    Carry { who: Who, budget: u16 },
    /// Time passes, in units of 16 ms; both sides fire their timers.
    Advance(u8),
}

/// Channel ids, both sides alike.
const CHANNELS: [u8; 3] = [0x20, 0x30, 0x40];
const MAX_MESSAGE: usize = 5000;
const MAX_INFLIGHT: u32 = 4;
/// Rounds the settling phase may take before "nothing moves" counts as stuck.
const SETTLE_ROUNDS: usize = 10_000;

fn config() -> NativeConfig {
    let channels = CHANNELS
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let mut c = NativeChannelConfig::new(id, 1 + 4 * i as u32, MAX_MESSAGE);
            c.initial_window = 1024 + 1100 * i as u32;
            c.send_queue_capacity = 3;
            c
        })
        .collect();
    NativeConfig {
        max_chunk: 600,
        max_inflight_requests: MAX_INFLIGHT,
        recv_queue_capacity: 5,
        // Keepalive is the other target's business: here time passes without records moving,
        // which a real keepalive would rightly end.
        ping_interval: Duration::from_secs(1 << 30),
        pong_timeout: Duration::from_secs(1 << 30),
        // The smallest busy cap: a lower channel yields all but 1024 bytes of credit while a
        // higher one is busy, so the capped top-ups are what must keep every message moving.
        busy_window: 1024,
        ..NativeConfig::with_channels(channels)
    }
}

/// Where a request this side sent stands, in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Open,
    Cancelled,
    Ended,
}

/// A request this side sent.
struct Sent {
    channel: u8,
    payload: Bytes,
    deadline: Instant,
    outcome: Outcome,
    /// The peer's answer, once its `respond` accepted one for this request.
    answer: Option<Bytes>,
}

struct Side {
    mux: Mux,
    /// Requests this side sent, by id.
    sent: HashMap<u64, Sent>,
    /// Requests from the peer the application holds: (channel, id).
    held: VecDeque<(u8, RequestId)>,
    /// Requests from the peer delivered so far (each at most once).
    delivered: HashSet<u64>,
    /// Peer requests the peer cancelled while the application held them.
    cancelled_by_peer: HashSet<u64>,
    /// Peer requests whose `Cancelled` event came.
    cancels: HashSet<u64>,
    /// Peer requests the application dropped unanswered (the peer waits for its deadline).
    dropped: HashSet<u64>,
    /// Per channel, the plain messages the peer's `send` accepted, not yet delivered here.
    expected: [VecDeque<Bytes>; 3],
}

impl Side {
    fn new(now: Instant) -> Self {
        Self {
            mux: Mux::new(config(), now).unwrap_or_else(|e| panic!("config: {e}")),
            sent: HashMap::new(),
            held: VecDeque::new(),
            delivered: HashSet::new(),
            cancelled_by_peer: HashSet::new(),
            cancels: HashSet::new(),
            dropped: HashSet::new(),
            expected: Default::default(),
        }
    }

    fn open_requests(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .sent
            .iter()
            .filter(|(_, s)| s.outcome == Outcome::Open)
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// Both sides and the model's clock.
struct World {
    now: Instant,
    a: Side,
    b: Side,
    counter: u32,
}

fn slot(channel: u8) -> usize {
    CHANNELS
        .iter()
        .position(|&c| c == channel)
        .expect("one of ours")
}

impl World {
    fn sides(&mut self, who: Who) -> (&mut Side, &mut Side) {
        match who {
            Who::A => (&mut self.a, &mut self.b),
            Who::B => (&mut self.b, &mut self.a),
        }
    }

    /// A payload unlike any other of this run, `len` bytes (capped to the channel maximum).
    fn payload(&mut self, len: u16) -> Bytes {
        self.counter += 1;
        let len = usize::from(len) % (MAX_MESSAGE + 1);
        let tag = self.counter.to_be_bytes();
        Bytes::from(
            (0..len)
                .map(|i| tag[i % 4] ^ (i / 4) as u8)
                .collect::<Vec<u8>>(),
        )
    }

    fn send(&mut self, who: Who, channel: u8, len: u16) {
        let id = CHANNELS[usize::from(channel) % CHANNELS.len()];
        let msg = self.payload(len);
        let (me, peer) = self.sides(who);
        if me.mux.send(id, msg.clone()).is_ok() {
            peer.expected[slot(id)].push_back(msg);
        }
    }

    fn request(&mut self, who: Who, channel: u8, len: u16, deadline_ms: u16) {
        let channel = CHANNELS[usize::from(channel) % CHANNELS.len()];
        let payload = self.payload(len);
        let deadline = self.now + Duration::from_millis(u64::from(deadline_ms));
        let (me, _) = self.sides(who);
        if let Ok(id) = me.mux.request(channel, payload.clone(), deadline) {
            let old = me.sent.insert(
                id.0,
                Sent {
                    channel,
                    payload,
                    deadline,
                    outcome: Outcome::Open,
                    answer: None,
                },
            );
            assert!(old.is_none(), "request id {} given twice", id.0);
        }
    }

    /// Answers the oldest held request; returns whether one was answered (or finished).
    fn respond(&mut self, who: Who, len: u16) -> bool {
        let answer = self.payload(len);
        let (me, peer) = self.sides(who);
        let Some((channel, id)) = me.held.pop_front() else {
            return false;
        };
        match me.mux.respond(channel, id, answer.clone()) {
            Ok(()) => {
                me.cancelled_by_peer.remove(&id.0);
                let sent = peer.sent.get_mut(&id.0).expect("held requests were sent");
                if sent.outcome == Outcome::Open {
                    sent.answer = Some(answer);
                }
                true
            }
            Err(e) => {
                assert!(
                    matches!(e, ringwire::proto::native::MuxQueueError::Full),
                    "answering held request {} failed: {e}",
                    id.0
                );
                me.held.push_front((channel, id));
                false
            }
        }
    }

    fn drop_held(&mut self, who: Who) {
        let (me, _) = self.sides(who);
        if let Some((_, id)) = me.held.pop_front() {
            assert!(me.mux.finish_request(id), "a held request is unknown");
            me.cancelled_by_peer.remove(&id.0);
            me.dropped.insert(id.0);
        }
    }

    fn cancel(&mut self, who: Who, pick: u8) {
        let (me, _) = self.sides(who);
        let open = me.open_requests();
        if open.is_empty() {
            return;
        }
        let id = open[usize::from(pick) % open.len()];
        // False when its end is already decided inside the mux (an event on its way).
        if me.mux.cancel(RequestId(id)) {
            me.sent.get_mut(&id).expect("open").outcome = Outcome::Cancelled;
        }
    }

    /// Takes one event at `who`; returns whether there was one.
    fn event(&mut self, who: Who) -> bool {
        let now = self.now;
        let (me, peer) = self.sides(who);
        let Some(event) = me.mux.poll_event() else {
            return false;
        };
        match event {
            MuxEvent::Hello { .. } => {}
            MuxEvent::Message {
                channel,
                payload,
                kind,
                ..
            } => {
                assert!(payload.len() <= MAX_MESSAGE);
                match kind {
                    MessageKind::Plain => {
                        let want = me.expected[slot(channel)].pop_front();
                        assert_eq!(Some(payload), want, "wrong message on {channel:#x}");
                    }
                    MessageKind::Request(id) => {
                        let sent = peer.sent.get(&id.0).expect("a request the peer sent");
                        assert_eq!(sent.channel, channel, "request {} moved channel", id.0);
                        assert_eq!(sent.payload, payload, "request {} changed", id.0);
                        assert!(me.delivered.insert(id.0), "request {} twice", id.0);
                        me.held.push_back((channel, id));
                    }
                    MessageKind::Response(id) => {
                        let sent = me.sent.get_mut(&id.0).expect("a response to our request");
                        assert_eq!(
                            sent.outcome,
                            Outcome::Open,
                            "response {} after its end",
                            id.0
                        );
                        assert_eq!(sent.channel, channel, "response {} moved channel", id.0);
                        assert_eq!(
                            sent.answer.as_ref(),
                            Some(&payload),
                            "answer {} changed",
                            id.0
                        );
                        sent.outcome = Outcome::Ended;
                    }
                }
            }
            MuxEvent::RequestTimedOut(id) => {
                let sent = me.sent.get_mut(&id.0).expect("a timeout of our request");
                assert_eq!(
                    sent.outcome,
                    Outcome::Open,
                    "timeout {} after its end",
                    id.0
                );
                assert!(now >= sent.deadline, "request {} timed out early", id.0);
                sent.outcome = Outcome::Ended;
            }
            MuxEvent::Cancelled(id) => {
                // The CANCEL may have come in before the application answered or dropped the
                // request, with its event taken after.
                assert!(
                    me.delivered.contains(&id.0),
                    "cancel of request {} never delivered",
                    id.0
                );
                assert!(me.cancels.insert(id.0), "request {} cancelled twice", id.0);
                let sent = peer.sent.get(&id.0).expect("the peer sent it");
                assert!(
                    sent.outcome != Outcome::Open || now >= sent.deadline,
                    "request {} cancelled though open and in time",
                    id.0
                );
                me.cancelled_by_peer.insert(id.0);
            }
            other => panic!("an honest connection saw {other:?}"),
        }
        true
    }

    /// `who` writes one record with `budget`; the other side reads it. Returns whether one
    /// was written.
    fn carry(&mut self, who: Who, budget: usize) -> bool {
        let now = self.now;
        let (me, peer) = self.sides(who);
        let mut record = Vec::new();
        if !me.mux.poll_record(now, &mut record, budget) {
            return false;
        }
        peer.mux
            .handle_record(now, &record)
            .expect("an honest record was rejected");
        true
    }

    fn advance(&mut self, units: u8) {
        self.now += Duration::from_millis(u64::from(units) * 16);
        self.fire_timers();
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        for side in [&mut self.a, &mut self.b] {
            if side.mux.poll_timeout().is_some_and(|t| t <= now) {
                side.mux
                    .handle_timeout(now)
                    .expect("an honest timer failed");
            }
        }
    }

    /// Both sides answer all they hold, take every event and carry every record, with no time
    /// passing, until nothing moves.
    fn settle(&mut self) {
        for _ in 0..SETTLE_ROUNDS {
            let mut moved = false;
            for who in [Who::A, Who::B] {
                while self.event(who) {
                    moved = true;
                }
                while self.respond(who, 7) {
                    moved = true;
                }
                while self.carry(who, usize::from(u16::MAX)) {
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
        panic!("still moving after {SETTLE_ROUNDS} rounds");
    }

    /// After settling with no time passing, a request may be open only when the peer dropped
    /// it unanswered: it ends at its deadline. Returns the latest such deadline.
    fn check_only_dropped_open(&self) -> Option<Instant> {
        let mut latest = None;
        for (name, me, peer) in [("A", &self.a, &self.b), ("B", &self.b, &self.a)] {
            for id in me.open_requests() {
                assert!(
                    peer.dropped.contains(&id),
                    "{name}: request {id} neither answered nor dropped"
                );
                let deadline = me.sent[&id].deadline;
                latest = latest.max(Some(deadline));
            }
        }
        latest
    }

    fn check_quiet(&self) {
        for (name, side) in [("A", &self.a), ("B", &self.b)] {
            for (i, q) in side.expected.iter().enumerate() {
                assert!(
                    q.is_empty(),
                    "{name}: {} messages on {:#x} never arrived",
                    q.len(),
                    CHANNELS[i]
                );
            }
            let open = side.open_requests();
            assert!(open.is_empty(), "{name}: requests {open:?} never ended");
            assert!(side.held.is_empty(), "{name}: held requests left");
            assert_eq!(
                side.mux.queued_messages(),
                0,
                "{name}: messages left queued"
            );
            assert_eq!(side.mux.held_bytes(), 0, "{name}: bytes left held");
            assert_eq!(side.mux.partial_bytes(), 0, "{name}: partial messages left");
        }
    }

    /// Each side puts `MAX_INFLIGHT` requests in flight at once (every earlier slot must have
    /// come back), and all are answered.
    fn check_slots(&mut self) {
        let far = self.now + Duration::from_secs(3600);
        for who in [Who::A, Who::B] {
            for i in 0..MAX_INFLIGHT {
                let channel = CHANNELS[i as usize % CHANNELS.len()];
                let payload = self.payload(100);
                let (me, _) = self.sides(who);
                match me.mux.request(channel, payload.clone(), far) {
                    Ok(id) => {
                        me.sent.insert(
                            id.0,
                            Sent {
                                channel,
                                payload,
                                deadline: far,
                                outcome: Outcome::Open,
                                answer: None,
                            },
                        );
                    }
                    Err(e) => panic!("request slot {i} not given back: {e}"),
                }
            }
        }
        self.settle();
        self.check_quiet();
    }
}

fn run(ops: &[Op]) {
    let now = Instant::now();
    let mut world = World {
        now,
        a: Side::new(now),
        b: Side::new(now),
        counter: 0,
    };
    for op in ops {
        match *op {
            Op::Send { who, channel, len } => world.send(who, channel, len),
            Op::Request {
                who,
                channel,
                len,
                deadline_ms,
            } => world.request(who, channel, len, deadline_ms),
            Op::Respond { who, len } => {
                world.respond(who, len);
            }
            Op::Drop(who) => world.drop_held(who),
            Op::Cancel { who, pick } => world.cancel(who, pick),
            Op::Events { who, count } => {
                for _ in 0..count {
                    if !world.event(who) {
                        break;
                    }
                }
            }
            Op::Carry { who, budget } => {
                world.carry(who, usize::from(budget));
            }
            Op::Advance(units) => world.advance(units),
        }
    }
    world.fire_timers();
    world.settle();
    if let Some(deadline) = world.check_only_dropped_open() {
        world.now = world.now.max(deadline);
        world.fire_timers();
        world.settle();
    }
    world.check_quiet();
    world.check_slots();
}

fuzz_target!(|ops: Vec<Op>| run(&ops));
