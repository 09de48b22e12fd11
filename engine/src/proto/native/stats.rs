//! Counters a multiplexer keeps for metrics and for the events it drops instead of failing.

/// Counters of one multiplexer. All count since creation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MuxStats {
    /// Record plaintexts handled.
    pub records_in: u64,
    /// Record plaintexts produced.
    pub records_out: u64,
    /// Frames decoded.
    pub frames_in: u64,
    /// DATA chunk bytes received.
    pub data_bytes_in: u64,
    /// DATA chunk bytes sent.
    pub data_bytes_out: u64,
    /// Whole messages received (including discarded ones).
    pub messages_in: u64,
    /// Whole messages sent.
    pub messages_out: u64,
    /// Messages sent compressed.
    pub compressed_out: u64,
    /// Messages received compressed.
    pub compressed_in: u64,
    /// WINDOW_UPDATE frames received.
    pub window_updates_in: u64,
    /// WINDOW_UPDATE frames sent.
    pub window_updates_out: u64,
    /// PING frames sent.
    pub pings_sent: u64,
    /// PINGs answered by a later PING's PONG (only the latest PING is answered).
    pub pings_coalesced: u64,
    /// PONGs that matched no outstanding PING.
    pub unexpected_pongs: u64,
    /// Responses to unknown, cancelled or timed-out request ids, dropped.
    pub unknown_responses: u64,
    /// CANCELs for request ids we do not hold, ignored.
    pub unknown_cancels: u64,
    /// Requests that passed their deadline.
    pub requests_timed_out: u64,
    /// Requests the peer cancelled.
    pub requests_cancelled_by_peer: u64,
    /// Empty responses sent to acknowledge the peer's CANCELs (once the application was done
    /// with the request).
    pub cancel_acks_out: u64,
    /// Responses to our cancelled requests received (acknowledgements, or answers that crossed
    /// the CANCEL), dropped.
    pub cancel_acks_in: u64,
    /// Queued outgoing messages dropped (closed, reset, or the peer lacks the channel).
    pub dropped_outgoing: u64,
    /// Received messages dropped undelivered (peer reset, local reset, cancelled requests).
    pub dropped_incoming: u64,
    /// Queued outgoing messages whose delivery deadline passed before their first chunk was
    /// written, dropped.
    pub expired_before_send: u64,
    /// Received messages whose time-to-live ran out before the application took them, dropped.
    pub expired_before_delivery: u64,
    /// DATA frames received while `recv_queue_capacity` messages waited for the application,
    /// held unassembled (within the peer's credit) until the application took messages.
    pub data_frames_held: u64,
}
