//! Capability targets (`[p2p] capability_targets`): how many outbound peers should carry a
//! capability, and the dialer's part in keeping them, sans-IO.
//!
//! Each round of [`Pex::ensure_peers`] counts, for every target, the connected peers holding
//! outbound places (as the peer manager counts them: a peer whose connection came in while this
//! node was dialing it holds the place the dial reserved) whose HELLO listed the capability. While some capability is below its target:
//! - the addresses the book knows to carry it are dialed first: confirmed ones (this node saw
//!   the HELLO) before hearsay (a peer's native PEX answer), each tier in random order, at
//!   most three per missing peer;
//! - when the outbound slots are full and such an address can be dialed, one outbound peer
//!   that carries no capability below target (and whose loss would put no other target below)
//!   is let go ([`Action::Release`]); once it is gone the next round runs at once and fills
//!   the slot, capable addresses first. One peer per round, and none while the previous one
//!   is still leaving;
//! - when the book knows no capable address it can dial, a random peer not asked lately is
//!   asked for addresses, even with the outbound slots full (stock asks only while it lacks
//!   peers or addresses).

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::proto::secret::NodeId;

use super::discover::Outbound;
use super::{Pex, PexAddr};

/// Why a peer is let go to make room for a capable one.
pub(super) const REPLACED: &str = "replaced by a peer with a capability below its target";

/// How many outbound peers should carry a capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapabilityTarget {
    /// This percentage (0 to 100) of `max_num_outbound_peers`, rounded up (written `"30%"`).
    Percent(u8),
    /// At least this many outbound peers (written as a number), at most
    /// `max_num_outbound_peers`.
    AtLeast(u32),
}

impl CapabilityTarget {
    /// The peers wanted when the node keeps `max_outbound` outbound peers.
    pub fn peers(self, max_outbound: usize) -> usize {
        match self {
            CapabilityTarget::Percent(p) => (max_outbound * usize::from(p.min(100))).div_ceil(100),
            CapabilityTarget::AtLeast(n) => (n as usize).min(max_outbound),
        }
    }

    /// Parses `"30%"` (a percentage) or `"3"` (a count).
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Some(p) = t.strip_suffix('%') {
            let p: u8 = p
                .trim()
                .parse()
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| format!("{text:?} is not a percentage from 0% to 100%"))?;
            return Ok(CapabilityTarget::Percent(p));
        }
        t.parse()
            .map(CapabilityTarget::AtLeast)
            .map_err(|_| format!("{text:?} is neither a count nor a percentage such as \"30%\""))
    }
}

impl fmt::Display for CapabilityTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapabilityTarget::Percent(p) => write!(f, "{p}%"),
            CapabilityTarget::AtLeast(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for CapabilityTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CapabilityTarget::Percent(_) => s.serialize_str(&self.to_string()),
            CapabilityTarget::AtLeast(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for CapabilityTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(i64),
            Text(String),
        }
        let raw = Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a count such as 3 or a percentage such as \"30%\"")
        })?;
        match raw {
            Raw::Count(n) => u32::try_from(n)
                .map(CapabilityTarget::AtLeast)
                .map_err(|_| serde::de::Error::custom(format!("{n} is not a peer count"))),
            Raw::Text(t) => CapabilityTarget::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

impl Pex {
    /// The capabilities below their target with `out`'s outbound target, each with the peers
    /// it lacks, in the configuration's order.
    pub fn capability_deficits(&self, out: Outbound) -> Vec<(String, usize)> {
        self.config
            .capability_targets
            .iter()
            .filter_map(|(cap, t)| {
                let want = t.peers(out.target);
                let have = self.outbound_with(cap);
                (have < want).then(|| (cap.clone(), want - have))
            })
            .collect()
    }

    /// Records which connected peers hold the node's outbound places, as the peer manager
    /// counts them (the node passes them before each round). A peer whose connection came in
    /// while this node was dialing it holds the place the dial reserved, though it dialed: the
    /// targets count it, as the outbound limit does, and it may be replaced like any other.
    pub fn set_outbound_places(&mut self, places: impl IntoIterator<Item = NodeId>) {
        let places: HashSet<NodeId> = places.into_iter().collect();
        for (id, s) in self.peers.iter_mut() {
            s.outbound_place = places.contains(id);
        }
    }

    /// Connected peers holding outbound places (not being let go) whose HELLO listed `cap`.
    fn outbound_with(&self, cap: &str) -> usize {
        self.peers
            .values()
            .filter(|s| s.outbound_place && !s.released && s.capabilities.iter().any(|c| c == cap))
            .count()
    }

    /// The dialable addresses the book knows to carry one of `deficits`' capabilities:
    /// confirmed first, then hearsay, each in random order; at most three per missing peer.
    pub(super) fn capable_candidates(
        &mut self,
        deficits: &[(String, usize)],
        now: std::time::Instant,
    ) -> Vec<PexAddr> {
        let limit: usize = deficits.iter().map(|(_, n)| n.saturating_mul(3)).sum();
        let mut seen: HashSet<NodeId> = HashSet::new();
        let (mut confirmed, mut hearsay) = (Vec::new(), Vec::new());
        for (cap, _) in deficits {
            for (a, sure) in self.book.with_capability(cap) {
                if seen.insert(a.id) {
                    if sure {
                        confirmed.push(a);
                    } else {
                        hearsay.push(a);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for mut tier in [confirmed, hearsay] {
            self.discovery.shuffle(&mut tier);
            for a in tier {
                if out.len() >= limit {
                    return out;
                }
                if !self.discovery.is_seed(&a.id) && self.dialable(&a, now) {
                    out.push(a);
                }
            }
        }
        out
    }

    /// With the outbound slots full and a capable address to dial: lets go of one peer holding
    /// an outbound place that carries none of `deficits`' capabilities and whose loss puts no target below
    /// (not a seed, not a persistent peer), unless one is still leaving. Returns it.
    pub(super) fn replace_one(
        &mut self,
        deficits: &[(String, usize)],
        out: Outbound,
    ) -> Option<NodeId> {
        if self.peers.values().any(|s| s.replaced) {
            return None;
        }
        let needed: Vec<&str> = deficits.iter().map(|(c, _)| c.as_str()).collect();
        // A target met exactly must not lose a peer that counts towards it.
        let tight: Vec<&str> = self
            .config
            .capability_targets
            .iter()
            .filter(|(c, t)| self.outbound_with(c) <= t.peers(out.target))
            .map(|(c, _)| c.as_str())
            .collect();
        let mut spare: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(id, s)| {
                s.outbound_place
                    && !s.released
                    && s.since.is_some()
                    && !self.discovery.is_seed(id)
                    && !self.discovery.is_persistent(id)
                    && !s
                        .capabilities
                        .iter()
                        .any(|c| needed.contains(&c.as_str()) || tight.contains(&c.as_str()))
            })
            .map(|(id, _)| *id)
            .collect();
        spare.sort_unstable();
        let i = self.discovery.rng_below(spare.len());
        let peer = *spare.get(i)?;
        if let Some(s) = self.peers.get_mut(&peer) {
            s.replaced = true;
        }
        self.release(peer, REPLACED);
        self.stats.capability_replacements += 1;
        Some(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_resolve() {
        assert_eq!(
            CapabilityTarget::parse("30%"),
            Ok(CapabilityTarget::Percent(30))
        );
        assert_eq!(
            CapabilityTarget::parse(" 3 "),
            Ok(CapabilityTarget::AtLeast(3))
        );
        assert_eq!(
            CapabilityTarget::parse("100%"),
            Ok(CapabilityTarget::Percent(100))
        );
        for bad in ["101%", "-1", "x", "%", "3.5", "30 %%", ""] {
            assert!(CapabilityTarget::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(CapabilityTarget::Percent(30).peers(10), 3);
        assert_eq!(CapabilityTarget::Percent(30).peers(11), 4, "rounded up");
        assert_eq!(CapabilityTarget::Percent(0).peers(10), 0);
        assert_eq!(CapabilityTarget::AtLeast(3).peers(10), 3);
        assert_eq!(
            CapabilityTarget::AtLeast(30).peers(10),
            10,
            "at most the slots"
        );
        assert_eq!(CapabilityTarget::Percent(30).to_string(), "30%");
    }
}
