//! Why a connection was refused, and a count of refusals per reason for the metrics layer.

/// Why [`Admission`](super::Admission) refused a connection or a dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Refused {
    /// The global cap on inbound handshakes in progress is reached.
    #[error("too many inbound handshakes in progress")]
    PendingFull,
    /// The cap on inbound handshakes in progress from one address is reached.
    #[error("too many inbound handshakes in progress from this address")]
    PendingPerIpFull,
    /// The cap on connections (established and in handshake) from one address is reached.
    #[error("too many connections from this address")]
    PerIpFull,
    /// Another peer is connected from the same IP address and duplicates are not allowed.
    #[error("another peer is already connected from this IP address")]
    DuplicateIp,
    /// The inbound peer limit is reached.
    #[error("inbound peer limit reached")]
    InboundFull,
    /// The outbound peer limit is reached.
    #[error("outbound peer limit reached")]
    OutboundFull,
    /// The remote node is this node.
    #[error("connection to self")]
    SelfConnection,
    /// The peer is already connected and the tie-break keeps the other connection.
    #[error("duplicate connection to a connected peer; the tie-break keeps the other one")]
    Duplicate,
    /// A dial to a peer that is already connected.
    #[error("already connected to this peer")]
    AlreadyConnected,
    /// A dial to a peer that is already being dialed.
    #[error("already dialing this peer")]
    AlreadyDialing,
    /// The peer is banned.
    #[error("peer is banned")]
    Banned,
    /// The peer authenticated with another ID than the one dialed.
    #[error("peer's authenticated ID is not the ID that was dialed")]
    IdMismatch,
    /// The address started more handshakes than its rate allows.
    #[error("too many handshakes started from this address (handshake rate)")]
    HandshakeRate,
}

/// Refusals counted by reason since start. A plain snapshot: the metrics layer reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefusalCounts {
    /// [`Refused::PendingFull`].
    pub pending_full: u64,
    /// [`Refused::PendingPerIpFull`].
    pub pending_per_ip_full: u64,
    /// [`Refused::PerIpFull`].
    pub per_ip_full: u64,
    /// [`Refused::DuplicateIp`].
    pub duplicate_ip: u64,
    /// [`Refused::InboundFull`].
    pub inbound_full: u64,
    /// [`Refused::OutboundFull`].
    pub outbound_full: u64,
    /// [`Refused::SelfConnection`].
    pub self_connection: u64,
    /// [`Refused::Duplicate`].
    pub duplicate: u64,
    /// [`Refused::AlreadyConnected`].
    pub already_connected: u64,
    /// [`Refused::AlreadyDialing`].
    pub already_dialing: u64,
    /// [`Refused::Banned`].
    pub banned: u64,
    /// [`Refused::IdMismatch`].
    pub id_mismatch: u64,
    /// [`Refused::HandshakeRate`].
    pub handshake_rate: u64,
}

impl RefusalCounts {
    /// Counts one refusal.
    pub fn record(&mut self, reason: Refused) {
        let counter = match reason {
            Refused::PendingFull => &mut self.pending_full,
            Refused::PendingPerIpFull => &mut self.pending_per_ip_full,
            Refused::PerIpFull => &mut self.per_ip_full,
            Refused::DuplicateIp => &mut self.duplicate_ip,
            Refused::InboundFull => &mut self.inbound_full,
            Refused::OutboundFull => &mut self.outbound_full,
            Refused::SelfConnection => &mut self.self_connection,
            Refused::Duplicate => &mut self.duplicate,
            Refused::AlreadyConnected => &mut self.already_connected,
            Refused::AlreadyDialing => &mut self.already_dialing,
            Refused::Banned => &mut self.banned,
            Refused::IdMismatch => &mut self.id_mismatch,
            Refused::HandshakeRate => &mut self.handshake_rate,
        };
        *counter = counter.saturating_add(1);
    }

    /// The count for one reason.
    pub fn get(&self, reason: Refused) -> u64 {
        match reason {
            Refused::PendingFull => self.pending_full,
            Refused::PendingPerIpFull => self.pending_per_ip_full,
            Refused::PerIpFull => self.per_ip_full,
            Refused::DuplicateIp => self.duplicate_ip,
            Refused::InboundFull => self.inbound_full,
            Refused::OutboundFull => self.outbound_full,
            Refused::SelfConnection => self.self_connection,
            Refused::Duplicate => self.duplicate,
            Refused::AlreadyConnected => self.already_connected,
            Refused::AlreadyDialing => self.already_dialing,
            Refused::Banned => self.banned,
            Refused::IdMismatch => self.id_mismatch,
            Refused::HandshakeRate => self.handshake_rate,
        }
    }

    /// All refusals together.
    pub fn total(&self) -> u64 {
        Refused::ALL
            .iter()
            .fold(0u64, |sum, r| sum.saturating_add(self.get(*r)))
    }
}

impl Refused {
    /// Every reason, in declaration order.
    pub const ALL: [Refused; 13] = [
        Refused::PendingFull,
        Refused::PendingPerIpFull,
        Refused::PerIpFull,
        Refused::DuplicateIp,
        Refused::InboundFull,
        Refused::OutboundFull,
        Refused::SelfConnection,
        Refused::Duplicate,
        Refused::AlreadyConnected,
        Refused::AlreadyDialing,
        Refused::Banned,
        Refused::IdMismatch,
        Refused::HandshakeRate,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_own_counter() {
        let mut counts = RefusalCounts::default();
        for (i, reason) in Refused::ALL.iter().enumerate() {
            for _ in 0..=i {
                counts.record(*reason);
            }
        }
        for (i, reason) in Refused::ALL.iter().enumerate() {
            assert_eq!(counts.get(*reason), i as u64 + 1, "{reason}");
        }
        assert_eq!(counts.total(), (1..=13).sum::<u64>());
    }
}
