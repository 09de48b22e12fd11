//! A deterministic in-memory network for sans-IO endpoints.
//!
//! [`Sim`] wires endpoints (anything implementing [`Endpoint`], such as
//! [`Connection`](super::conn::Connection)) through byte-stream links with simulated time. Nothing
//! here reads a clock or touches a socket: time starts at the `Instant` given to [`Sim::new`] and
//! only moves when the simulation advances it, so every run is reproducible.
//!
//! Each [`LinkConfig`] can add one-way latency, cut writes into small deliveries (to exercise
//! partial-input paths), drop a fraction of deliveries (a corrupting network, seeded), or turn
//! into a black hole that swallows everything (a silent peer). A receiver that reports
//! `wants_input() == false` is not fed: bytes wait in the link, as they would in a TCP window.
#![allow(
    clippy::indexing_slicing,
    reason = "the simulator indexes its own endpoints and links, never by peer input"
)]
//!
//! Usage, as in quinn-proto's test `Pair`: set up → act → [`Sim::drive`] or
//! [`Sim::run_until`] → assert on polled events.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A sans-IO endpoint the simulator can drive: bytes in, bytes out, timers polled.
pub trait Endpoint {
    /// Feeds bytes that arrived from the peer.
    fn handle_input(&mut self, now: Instant, data: &[u8]);
    /// Appends bytes the endpoint wants to send now to `out`.
    fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>);
    /// The next instant at which [`Endpoint::handle_timeout`] must be called, if any.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Tells the endpoint that `now` has reached its timeout.
    fn handle_timeout(&mut self, now: Instant);
    /// Whether the endpoint accepts more input now (backpressure). Defaults to always.
    fn wants_input(&self) -> bool {
        true
    }
}

/// How one direction of a link behaves.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// One-way delay added to every write.
    pub latency: Duration,
    /// Largest delivery handed to the receiver at once; `None` delivers each write whole.
    pub max_chunk: Option<usize>,
    /// Probability in `[0, 1]` that a delivery is silently dropped (a corrupting network).
    pub drop_probability: f64,
    /// Seed for the drop decisions.
    pub seed: u64,
    /// Upper bound on bytes in flight on this link; writes beyond it wait in the sender's
    /// output (a full TCP window).
    pub capacity: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Duration::ZERO,
            max_chunk: None,
            drop_probability: 0.0,
            seed: 1,
            capacity: 64 * 1024 * 1024,
        }
    }
}

/// One direction of a link: bytes in flight with their delivery time.
#[derive(Debug)]
struct Link {
    from: usize,
    to: usize,
    config: LinkConfig,
    in_flight: VecDeque<(Instant, Vec<u8>)>,
    bytes_in_flight: usize,
    /// Bytes the sender produced that did not fit the link capacity yet.
    backlog: Vec<u8>,
    blackhole: bool,
    rng: u64,
    delivered_bytes: u64,
    dropped_deliveries: u64,
}

impl Link {
    fn next_random(&mut self) -> f64 {
        // xorshift64*: small, deterministic, good enough for drop decisions.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Identifies a directed link returned by [`Sim::connect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkId(usize);

/// Counters of one directed link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Bytes handed to the receiver.
    pub delivered_bytes: u64,
    /// Deliveries dropped by `drop_probability` or a black hole.
    pub dropped_deliveries: u64,
    /// Bytes currently in flight.
    pub bytes_in_flight: usize,
}

/// The simulated network: endpoints, links between them, and a clock.
pub struct Sim<E> {
    now: Instant,
    endpoints: Vec<E>,
    links: Vec<Link>,
    scratch: Vec<u8>,
}

impl<E: Endpoint> Sim<E> {
    /// Creates an empty network whose clock starts at `start`.
    pub fn new(start: Instant) -> Self {
        Sim {
            now: start,
            endpoints: Vec::new(),
            links: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Adds an endpoint and returns its index.
    pub fn add(&mut self, endpoint: E) -> usize {
        self.endpoints.push(endpoint);
        self.endpoints.len() - 1
    }

    /// Wires `a` and `b` with one link each way, both configured by `config` (the seed of the
    /// `b → a` direction is offset so the two directions drop independently). An endpoint has
    /// one peer: it is a connection, not a host.
    pub fn connect(&mut self, a: usize, b: usize, config: LinkConfig) -> (LinkId, LinkId) {
        let mut back = config.clone();
        back.seed = config.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let ab = self.add_link(a, b, config);
        let ba = self.add_link(b, a, back);
        (ab, ba)
    }

    fn add_link(&mut self, from: usize, to: usize, config: LinkConfig) -> LinkId {
        let rng = config.seed.max(1);
        self.links.push(Link {
            from,
            to,
            config,
            in_flight: VecDeque::new(),
            bytes_in_flight: 0,
            backlog: Vec::new(),
            blackhole: false,
            rng,
            delivered_bytes: 0,
            dropped_deliveries: 0,
        });
        LinkId(self.links.len() - 1)
    }

    /// The current simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The endpoint at `index`.
    pub fn endpoint(&self, index: usize) -> &E {
        &self.endpoints[index]
    }

    /// The endpoint at `index`, mutably (to queue sends or poll events).
    pub fn endpoint_mut(&mut self, index: usize) -> &mut E {
        &mut self.endpoints[index]
    }

    /// Makes a link swallow everything written to it from now on (or stop doing so).
    pub fn set_blackhole(&mut self, link: LinkId, on: bool) {
        self.links[link.0].blackhole = on;
    }

    /// The counters of a link.
    pub fn link_stats(&self, link: LinkId) -> LinkStats {
        let l = &self.links[link.0];
        LinkStats {
            delivered_bytes: l.delivered_bytes,
            dropped_deliveries: l.dropped_deliveries,
            bytes_in_flight: l.bytes_in_flight,
        }
    }

    /// Does all work possible at the current instant without advancing time: collects every
    /// endpoint's output and delivers every byte that is due. Returns whether anything moved.
    pub fn step(&mut self) -> bool {
        let mut progressed = false;
        loop {
            let mut moved = false;
            moved |= self.collect_output();
            moved |= self.deliver_due();
            if !moved {
                return progressed;
            }
            progressed = true;
        }
    }

    fn collect_output(&mut self) -> bool {
        let mut moved = false;
        for li in 0..self.links.len() {
            let from = self.links[li].from;
            self.scratch.clear();
            self.endpoints[from].poll_transmit(self.now, &mut self.scratch);
            let link = &mut self.links[li];
            if !self.scratch.is_empty() {
                link.backlog.extend_from_slice(&self.scratch);
                moved = true;
            }
            let room = link.config.capacity.saturating_sub(link.bytes_in_flight);
            let take = room.min(link.backlog.len());
            if take == 0 {
                continue;
            }
            let write: Vec<u8> = link.backlog.drain(..take).collect();
            let deliver_at = self.now + link.config.latency;
            let chunk = link.config.max_chunk.unwrap_or(usize::MAX).max(1);
            for piece in write.chunks(chunk) {
                link.bytes_in_flight += piece.len();
                link.in_flight.push_back((deliver_at, piece.to_vec()));
            }
            moved = true;
        }
        moved
    }

    fn deliver_due(&mut self) -> bool {
        let mut moved = false;
        for li in 0..self.links.len() {
            loop {
                let link = &mut self.links[li];
                let due = matches!(link.in_flight.front(), Some((at, _)) if *at <= self.now);
                if !due || !self.endpoints[link.to].wants_input() {
                    break;
                }
                let Some((_, bytes)) = link.in_flight.pop_front() else {
                    break;
                };
                link.bytes_in_flight -= bytes.len();
                let dropped = link.blackhole
                    || (link.config.drop_probability > 0.0
                        && link.next_random() < link.config.drop_probability);
                moved = true;
                if dropped {
                    link.dropped_deliveries += 1;
                    continue;
                }
                link.delivered_bytes += bytes.len() as u64;
                let to = link.to;
                self.endpoints[to].handle_input(self.now, &bytes);
            }
        }
        moved
    }

    /// The earliest instant at which something is scheduled: a delivery or a timer.
    pub fn next_event(&self) -> Option<Instant> {
        let deliveries = self
            .links
            .iter()
            .filter(|l| self.endpoints[l.to].wants_input())
            .filter_map(|l| l.in_flight.front().map(|(at, _)| *at));
        let timers = self.endpoints.iter().filter_map(|e| e.poll_timeout());
        deliveries.chain(timers).min()
    }

    /// Advances the clock to `to` (never backwards), firing timers and deliveries on the way in
    /// order.
    pub fn advance_to(&mut self, to: Instant) {
        self.step();
        while let Some(next) = self.next_event() {
            if next > to {
                break;
            }
            self.now = self.now.max(next);
            self.fire_timers();
            self.step();
        }
        self.now = self.now.max(to);
        self.fire_timers();
        self.step();
    }

    /// Advances the clock by `by`.
    pub fn advance(&mut self, by: Duration) {
        let to = self.now + by;
        self.advance_to(to);
    }

    fn fire_timers(&mut self) {
        for e in &mut self.endpoints {
            if let Some(t) = e.poll_timeout()
                && t <= self.now
            {
                e.handle_timeout(self.now);
            }
        }
    }

    /// Runs until nothing is in flight and nothing is due before `now + horizon` (timers that
    /// always re-arm, like keepalives, do not count once they are beyond the horizon). Returns
    /// `false` if `max_steps` passed without settling.
    pub fn drive_bounded(&mut self, horizon: Duration, max_steps: usize) -> bool {
        for _ in 0..max_steps {
            self.step();
            let in_flight = self.links.iter().any(|l| !l.in_flight.is_empty());
            match self.next_event() {
                Some(next) if in_flight || next <= self.now + horizon => {
                    self.now = self.now.max(next);
                    self.fire_timers();
                }
                _ if in_flight => return false, // bytes stuck behind a receiver that wants none
                _ => return true,
            }
        }
        false
    }

    /// Drives the network until it settles (see [`Sim::drive_bounded`]), with a one-second
    /// horizon and a generous step budget. Panics if it never settles: a test helper.
    pub fn drive(&mut self) {
        assert!(
            self.drive_bounded(Duration::from_secs(1), 1_000_000),
            "simulated network did not settle"
        );
    }

    /// Drives until `done(self)` holds or simulated time passes `deadline`; returns whether
    /// `done` held. The predicate is checked after every step.
    pub fn run_until(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&mut Self) -> bool,
    ) -> bool {
        loop {
            self.step();
            if done(self) {
                return true;
            }
            let next = match self.next_event() {
                Some(n) if n <= deadline => n,
                _ => {
                    self.now = self.now.max(deadline);
                    self.fire_timers();
                    self.step();
                    return done(self);
                }
            };
            self.now = self.now.max(next);
            self.fire_timers();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy endpoint: sends a fixed script, records what it receives, has one timer.
    #[derive(Default)]
    struct Echo {
        to_send: Vec<u8>,
        received: Vec<u8>,
        timer: Option<Instant>,
        fired: u32,
        accept: bool,
    }

    impl Endpoint for Echo {
        fn handle_input(&mut self, _now: Instant, data: &[u8]) {
            self.received.extend_from_slice(data);
        }
        fn poll_transmit(&mut self, _now: Instant, out: &mut Vec<u8>) {
            out.append(&mut self.to_send);
        }
        fn poll_timeout(&self) -> Option<Instant> {
            self.timer
        }
        fn handle_timeout(&mut self, _now: Instant) {
            self.fired += 1;
            self.timer = None;
        }
        fn wants_input(&self) -> bool {
            self.accept
        }
    }

    fn echo(bytes: &[u8]) -> Echo {
        Echo {
            to_send: bytes.to_vec(),
            accept: true,
            ..Echo::default()
        }
    }

    #[test]
    fn delivers_after_latency_in_chunks() {
        let t0 = Instant::now();
        let mut sim = Sim::new(t0);
        let a = sim.add(echo(&[7; 1000]));
        let b = sim.add(echo(b""));
        let cfg = LinkConfig {
            latency: Duration::from_millis(50),
            max_chunk: Some(3),
            ..LinkConfig::default()
        };
        let (ab, _) = sim.connect(a, b, cfg);
        sim.step();
        assert!(sim.endpoint(b).received.is_empty(), "latency not applied");
        sim.advance(Duration::from_millis(49));
        assert!(sim.endpoint(b).received.is_empty());
        sim.advance(Duration::from_millis(1));
        assert_eq!(sim.endpoint(b).received, vec![7; 1000]);
        assert_eq!(sim.link_stats(ab).delivered_bytes, 1000);
    }

    #[test]
    fn blackhole_swallows_and_timers_fire() {
        let t0 = Instant::now();
        let mut sim = Sim::new(t0);
        let a = sim.add(echo(b"hello"));
        let mut eb = echo(b"");
        eb.timer = Some(t0 + Duration::from_secs(10));
        let b = sim.add(eb);
        let (ab, _) = sim.connect(a, b, LinkConfig::default());
        sim.set_blackhole(ab, true);
        assert!(sim.drive_bounded(Duration::from_secs(60), 1000));
        assert!(sim.endpoint(b).received.is_empty());
        assert_eq!(sim.endpoint(b).fired, 1);
        assert_eq!(sim.now(), t0 + Duration::from_secs(10));
        assert_eq!(sim.link_stats(ab).dropped_deliveries, 1);
    }

    #[test]
    fn backpressure_holds_bytes_in_the_link() {
        let t0 = Instant::now();
        let mut sim = Sim::new(t0);
        let a = sim.add(echo(b"abc"));
        let mut eb = echo(b"");
        eb.accept = false;
        let b = sim.add(eb);
        let (ab, _) = sim.connect(a, b, LinkConfig::default());
        assert!(
            !sim.drive_bounded(Duration::from_secs(1), 100),
            "must not settle"
        );
        assert_eq!(sim.link_stats(ab).bytes_in_flight, 3);
        sim.endpoint_mut(b).accept = true;
        sim.drive();
        assert_eq!(sim.endpoint(b).received, b"abc");
    }

    #[test]
    fn drops_are_seeded_and_reproducible() {
        let run = || {
            let mut sim = Sim::new(Instant::now());
            let a = sim.add(echo(&[1; 10_000]));
            let b = sim.add(echo(b""));
            let cfg = LinkConfig {
                max_chunk: Some(100),
                drop_probability: 0.3,
                seed: 42,
                ..LinkConfig::default()
            };
            let (ab, _) = sim.connect(a, b, cfg);
            sim.drive();
            (sim.endpoint(b).received.len(), sim.link_stats(ab))
        };
        let (len1, s1) = run();
        let (len2, s2) = run();
        assert_eq!((len1, s1), (len2, s2));
        assert!(s1.dropped_deliveries > 10 && s1.dropped_deliveries < 60);
        assert_eq!(len1 as u64, s1.delivered_bytes);
    }

    #[test]
    fn capacity_limits_bytes_in_flight() {
        let mut sim = Sim::new(Instant::now());
        let a = sim.add(echo(&[9; 500]));
        let mut eb = echo(b"");
        eb.accept = false;
        let b = sim.add(eb);
        let cfg = LinkConfig {
            capacity: 100,
            ..LinkConfig::default()
        };
        let (ab, _) = sim.connect(a, b, cfg);
        sim.step();
        assert_eq!(sim.link_stats(ab).bytes_in_flight, 100);
        sim.endpoint_mut(b).accept = true;
        sim.drive();
        assert_eq!(sim.endpoint(b).received.len(), 500);
    }
}
