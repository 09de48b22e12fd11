//! Peer scores, sans-IO: misbehaviour lowers a peer's score, useful traffic and a long-lived
//! connection raise it (bounded), and a score that falls to the ban threshold bans the peer's
//! node ID; a source address whose IDs keep getting banned is banned as well.
//!
//! The rules (constants, documented in docs/ARCHITECTURE.md; no operator setting):
//!
//! - Each [`Offence`] costs its [`Offence::penalty`] points. Penalties fade at
//!   [`PENALTY_DECAY_PER_MINUTE`] points a minute, so rare faults of an honest peer (a timeout
//!   on a bad link) never add up to a ban, while a peer that keeps misbehaving does.
//! - Credit comes from the peer's current connection: one point per [`CREDIT_BYTES`] of payload
//!   received and one per [`CREDIT_UPTIME`] connected, at most [`MAX_CREDIT`] together. Credit
//!   only softens penalties: a peer with full credit still reaches the threshold after a few
//!   violations in a row.
//! - Score = credit − penalty. At or below −[`BAN_THRESHOLD`] the ID is banned for
//!   [`BAN_DURATION`], and its penalty and credit start over (it would start over at its next
//!   connection anyway).
//! - Repeat offenders by address: when [`IP_BAN_AFTER`] IDs seen at one IP address are banned
//!   within [`IP_BAN_WINDOW`], the address is banned for [`BAN_DURATION`] too. Loopback and
//!   unspecified addresses are never banned (every local process shares them); their IDs are.
//! - The state is bounded: at most [`MAX_SCORED`] peers and [`MAX_IP_RECORDS`] addresses are
//!   remembered; when full, the entry updated longest ago gives way.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::proto::secret::NodeId;

/// Score at or below whose negative a peer is banned.
pub const BAN_THRESHOLD: i64 = 100;
/// How long a ban by score lasts (stock CometBFT's default ban time).
pub const BAN_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Penalty points that fade per minute.
pub const PENALTY_DECAY_PER_MINUTE: i64 = 2;
/// Payload bytes received for one credit point.
pub const CREDIT_BYTES: u64 = 1 << 20;
/// Time connected for one credit point.
pub const CREDIT_UPTIME: Duration = Duration::from_secs(600);
/// Most credit a peer holds.
pub const MAX_CREDIT: i64 = 50;
/// IDs banned from one address within [`IP_BAN_WINDOW`] that ban the address.
pub const IP_BAN_AFTER: usize = 3;
/// The window of [`IP_BAN_AFTER`].
pub const IP_BAN_WINDOW: Duration = Duration::from_secs(3600);
/// Most peers whose score is remembered.
pub const MAX_SCORED: usize = 4096;
/// Most addresses whose recent ID bans are remembered.
pub const MAX_IP_RECORDS: usize = 1024;

/// What a peer did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offence {
    /// It broke the wire protocol (a malformed frame or message, an unknown channel, an
    /// oversized message).
    ProtocolViolation,
    /// It broke the PEX rules (requests too often, unsolicited or oversized answers).
    PexAbuse,
    /// It held more partially received bytes than its budget allows.
    BudgetExceeded,
    /// It sent control frames (pings and the like) faster than allowed.
    ControlFlood,
    /// It stopped answering (keepalive or I/O timeout).
    Timeout,
}

impl Offence {
    /// Every offence, in declaration order.
    pub const ALL: [Offence; 5] = [
        Offence::ProtocolViolation,
        Offence::PexAbuse,
        Offence::BudgetExceeded,
        Offence::ControlFlood,
        Offence::Timeout,
    ];

    /// The points it costs. PEX abuse bans at once whatever the peer's credit, as stock's PEX
    /// reactor does; a violation,
    /// a budget overrun or a flood costs half the threshold, so a second one soon after bans;
    /// a timeout costs little, since links fail without anyone's fault.
    pub const fn penalty(self) -> i64 {
        match self {
            Offence::ProtocolViolation | Offence::BudgetExceeded | Offence::ControlFlood => {
                BAN_THRESHOLD / 2
            }
            Offence::PexAbuse => BAN_THRESHOLD + MAX_CREDIT,
            Offence::Timeout => BAN_THRESHOLD / 10,
        }
    }

    /// The name used in metrics, logs and the bans file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Offence::ProtocolViolation => "protocol_violation",
            Offence::PexAbuse => "pex_abuse",
            Offence::BudgetExceeded => "budget_exceeded",
            Offence::ControlFlood => "control_flood",
            Offence::Timeout => "timeout",
        }
    }

    /// The offence named `s` by [`Offence::as_str`].
    pub fn parse(s: &str) -> Option<Offence> {
        Offence::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Offences and bans counted by reason since start. A plain snapshot for the metrics layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScoreCounts {
    /// Offences recorded, indexed as [`Offence::ALL`].
    pub offences: [u64; 5],
    /// ID bans by score, indexed by the offence that crossed the threshold.
    pub bans: [u64; 5],
    /// Addresses banned as repeat offenders.
    pub ip_bans: u64,
}

impl ScoreCounts {
    /// Offences of one kind.
    pub fn offences(&self, o: Offence) -> u64 {
        self.offences.get(index(o)).copied().unwrap_or(0)
    }

    /// Bans whose last offence was `o`.
    pub fn bans(&self, o: Offence) -> u64 {
        self.bans.get(index(o)).copied().unwrap_or(0)
    }
}

fn index(o: Offence) -> usize {
    Offence::ALL.iter().position(|x| *x == o).unwrap_or(0)
}

fn bump(counts: &mut [u64; 5], o: Offence) {
    if let Some(c) = counts.get_mut(index(o)) {
        *c = c.saturating_add(1);
    }
}

/// What [`Scores::offend`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ban {
    /// The ID is banned until then.
    pub until: Instant,
    /// The address, when it is banned as well (until the same time).
    pub ip: Option<IpAddr>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    penalty: i64,
    credit: i64,
    /// When `penalty` was last decayed or raised.
    at: Instant,
}

impl Entry {
    fn decay(&mut self, now: Instant) {
        let minutes = now.saturating_duration_since(self.at).as_secs() / 60;
        if minutes == 0 {
            return;
        }
        let fade = i64::try_from(minutes)
            .unwrap_or(i64::MAX)
            .saturating_mul(PENALTY_DECAY_PER_MINUTE);
        self.penalty = self.penalty.saturating_sub(fade).max(0);
        self.at += Duration::from_secs(minutes.saturating_mul(60));
    }
}

/// The scores of the peers seen lately, and the recent bans per address.
#[derive(Debug, Default)]
pub struct Scores {
    peers: HashMap<NodeId, Entry>,
    /// Per address: when each recent ID ban happened (at most [`IP_BAN_AFTER`] kept).
    ips: HashMap<IpAddr, Vec<Instant>>,
    counts: ScoreCounts,
}

impl Scores {
    /// No scores yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&mut self, id: NodeId, now: Instant) -> &mut Entry {
        if !self.peers.contains_key(&id) && self.peers.len() >= MAX_SCORED {
            let oldest = self.peers.iter().min_by_key(|(_, e)| e.at).map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.peers.remove(&k);
            }
        }
        self.peers.entry(id).or_insert(Entry {
            penalty: 0,
            credit: 0,
            at: now,
        })
    }

    /// `id`'s score at `now` (0 for a peer not seen).
    pub fn score(&self, id: &NodeId, now: Instant) -> i64 {
        self.peers.get(id).map_or(0, |e| {
            let mut e = *e;
            e.decay(now);
            e.credit.saturating_sub(e.penalty)
        })
    }

    /// Sets `id`'s credit from its current connection: `received` payload bytes over
    /// `connected` time. Credit never falls while one connection lasts.
    pub fn credit(&mut self, id: NodeId, received: u64, connected: Duration, now: Instant) {
        let bytes = received / CREDIT_BYTES;
        let uptime = connected.as_secs() / CREDIT_UPTIME.as_secs().max(1);
        let credit = i64::try_from(bytes.saturating_add(uptime))
            .unwrap_or(MAX_CREDIT)
            .min(MAX_CREDIT);
        let e = self.entry(id, now);
        e.credit = e.credit.max(credit);
    }

    /// A new connection of `id` starts: the credit of the last one is dropped.
    pub fn connected(&mut self, id: &NodeId) {
        if let Some(e) = self.peers.get_mut(id) {
            e.credit = 0;
        }
    }

    /// `id`, connected from `ip` (if known), committed `offence` at `now`. Returns the ban
    /// when its score reached the threshold.
    pub fn offend(
        &mut self,
        id: NodeId,
        ip: Option<IpAddr>,
        offence: Offence,
        now: Instant,
    ) -> Option<Ban> {
        bump(&mut self.counts.offences, offence);
        let e = self.entry(id, now);
        e.decay(now);
        e.penalty = e.penalty.saturating_add(offence.penalty());
        e.at = now;
        if e.credit.saturating_sub(e.penalty) > -BAN_THRESHOLD {
            return None;
        }
        e.penalty = 0;
        e.credit = 0;
        bump(&mut self.counts.bans, offence);
        let until = now + BAN_DURATION;
        let ip = ip
            .map(|ip| ip.to_canonical())
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
            .filter(|ip| self.repeat_offender(*ip, now));
        if ip.is_some() {
            self.counts.ip_bans = self.counts.ip_bans.saturating_add(1);
        }
        Some(Ban { until, ip })
    }

    /// Records an ID ban from `ip`; whether the address is now a repeat offender.
    fn repeat_offender(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.ips.contains_key(&ip) && self.ips.len() >= MAX_IP_RECORDS {
            let oldest = self
                .ips
                .iter()
                .min_by_key(|(_, v)| v.last().copied())
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.ips.remove(&k);
            }
        }
        let recent = self.ips.entry(ip).or_default();
        recent.retain(|t| now.saturating_duration_since(*t) < IP_BAN_WINDOW);
        recent.push(now);
        if recent.len() >= IP_BAN_AFTER {
            recent.clear();
            return true;
        }
        false
    }

    /// Offences and bans so far.
    pub fn counts(&self) -> ScoreCounts {
        self.counts
    }

    /// Peers whose score is remembered.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no score is remembered.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn id(n: u16) -> NodeId {
        let mut b = [0u8; 20];
        b[..2].copy_from_slice(&n.to_be_bytes());
        NodeId(b)
    }

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

    #[test]
    fn two_violations_in_a_row_ban_one_does_not() {
        let t = Instant::now();
        let mut s = Scores::new();
        assert_eq!(
            s.offend(id(1), Some(IP), Offence::ProtocolViolation, t),
            None
        );
        assert_eq!(s.score(&id(1), t), -50);
        let ban = s
            .offend(id(1), Some(IP), Offence::ControlFlood, t)
            .expect("banned");
        assert_eq!(ban.until, t + BAN_DURATION);
        assert_eq!(ban.ip, None, "one ID is no repeat offence of its address");
        // The ban starts the score over.
        assert_eq!(s.score(&id(1), t), 0);
        assert_eq!(s.counts().bans(Offence::ControlFlood), 1);
        assert_eq!(s.counts().offences(Offence::ProtocolViolation), 1);
        assert_eq!(s.counts().offences(Offence::ControlFlood), 1);
    }

    #[test]
    fn pex_abuse_bans_at_once() {
        let t = Instant::now();
        let mut s = Scores::new();
        assert!(s.offend(id(1), None, Offence::PexAbuse, t).is_some());
        s.credit(id(2), u64::MAX, Duration::MAX, t);
        assert_eq!(s.score(&id(2), t), MAX_CREDIT);
        assert!(
            s.offend(id(2), None, Offence::PexAbuse, t).is_some(),
            "even with full credit"
        );
        assert_eq!(s.counts().bans(Offence::PexAbuse), 2);
    }

    #[test]
    fn penalties_fade_so_rare_faults_never_ban() {
        let t = Instant::now();
        let mut s = Scores::new();
        // A violation every half hour: 50 points, faded by 60 before the next one.
        for i in 0..20u64 {
            let now = t + Duration::from_secs(i * 1800);
            assert_eq!(
                s.offend(id(1), Some(IP), Offence::ProtocolViolation, now),
                None
            );
        }
        // Timeouts every minute cost 10 and fade 2: they add up, slowly.
        let mut banned_after = None;
        for i in 0..100u64 {
            let now = t + Duration::from_secs(40_000 + i * 60);
            if s.offend(id(2), None, Offence::Timeout, now).is_some() {
                banned_after = Some(i + 1);
                break;
            }
        }
        let n = banned_after.expect("a peer timing out every minute is banned");
        assert!((12..=14).contains(&n), "after {n} timeouts");
        assert_eq!(s.score(&id(3), t), 0, "an unknown peer scores 0");
    }

    #[test]
    fn credit_is_bounded_and_softens_but_does_not_prevent_a_ban() {
        let t = Instant::now();
        let mut s = Scores::new();
        s.credit(id(1), 10 * CREDIT_BYTES, Duration::from_secs(1200), t);
        assert_eq!(s.score(&id(1), t), 12);
        s.credit(id(1), u64::MAX, Duration::MAX, t);
        assert_eq!(s.score(&id(1), t), MAX_CREDIT);
        // Lower totals from the same connection do not lower it.
        s.credit(id(1), 0, Duration::ZERO, t);
        assert_eq!(s.score(&id(1), t), MAX_CREDIT);
        assert_eq!(s.offend(id(1), None, Offence::ProtocolViolation, t), None);
        assert_eq!(s.offend(id(1), None, Offence::ProtocolViolation, t), None);
        assert!(
            s.offend(id(1), None, Offence::ProtocolViolation, t)
                .is_some()
        );
        // A new connection drops the old credit.
        s.credit(id(2), 5 * CREDIT_BYTES, Duration::ZERO, t);
        s.connected(&id(2));
        assert_eq!(s.score(&id(2), t), 0);
    }

    #[test]
    fn repeat_offenders_get_their_address_banned() {
        let t = Instant::now();
        let mut s = Scores::new();
        let mut ip_bans = Vec::new();
        for n in 0..IP_BAN_AFTER as u16 {
            let ban = s
                .offend(id(n), Some(IP), Offence::PexAbuse, t)
                .expect("banned");
            ip_bans.push(ban.ip);
        }
        assert_eq!(ip_bans.last().copied().flatten(), Some(IP));
        assert!(ip_bans.iter().rev().skip(1).all(Option::is_none));
        assert_eq!(s.counts().ip_bans, 1);
        // Spread beyond the window, the same bans do not ban the address.
        let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        for n in 0..(2 * IP_BAN_AFTER) as u16 {
            let now = t + IP_BAN_WINDOW * u32::from(n);
            let ban = s.offend(id(100 + n), Some(other), Offence::PexAbuse, now);
            assert_eq!(ban.map(|b| b.ip), Some(None));
        }
        // Loopback is never banned.
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for n in 0..(2 * IP_BAN_AFTER) as u16 {
            let ban = s.offend(id(200 + n), Some(lo), Offence::PexAbuse, t);
            assert_eq!(ban.map(|b| b.ip), Some(None));
        }
    }

    #[test]
    fn state_is_bounded() {
        let t = Instant::now();
        let mut s = Scores::new();
        for n in 0..(MAX_SCORED + 100) as u16 {
            s.offend(
                id(n),
                None,
                Offence::Timeout,
                t + Duration::from_secs(u64::from(n)),
            );
        }
        assert_eq!(s.len(), MAX_SCORED);
        for n in 0..(MAX_IP_RECORDS + 50) as u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
            s.offend(id(60_000), Some(ip), Offence::PexAbuse, t);
        }
        assert!(s.ips.len() <= MAX_IP_RECORDS);
    }

    #[test]
    fn names_round_trip() {
        for o in Offence::ALL {
            assert_eq!(Offence::parse(o.as_str()), Some(o));
        }
        assert_eq!(Offence::parse("nope"), None);
    }
}
