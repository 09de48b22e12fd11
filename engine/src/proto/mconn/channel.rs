//! MConnection channels: configuration, the bounded send queue with the message being chunked,
//! and the bounded reassembly buffer.
//!
//! Policy, as in stock `p2p/conn/connection.go`:
//! - The send queue holds at most `send_queue_capacity` messages; a send beyond that is `Full`
//!   (the caller owns waiting and timeouts). When the scheduler looks at a channel with nothing in
//!   flight, the queue's head moves out of the queue to become the message being chunked, freeing
//!   its slot.
//! - A message is cut into chunks of at most the payload size; the last chunk has `eof` set. A
//!   zero-length message is one empty chunk with `eof` set, and arrives as a zero-length message.
//!   (Stock can lose a zero-length message whose turn is taken by another channel, because it
//!   treats an empty message in flight as "nothing in flight"; ringwire always sends it.)
//! - Received chunks are appended to the channel's buffer; if the buffered bytes plus the new
//!   chunk exceed `recv_message_capacity`, the connection fails (stock disconnects). Bytes are
//!   reserved from the connection's partial-message budget before the buffer grows and
//!   returned when the message completes (`proto::budget`); a message in one chunk reserves
//!   nothing.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::varint::uvarint_len;
use crate::proto::budget::{PartialBudgetError, PartialBytes};

/// How one channel behaves on an MConnection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChannelConfig {
    /// The channel id, as advertised in NodeInfo.
    pub id: u8,
    /// Share of the send bandwidth relative to other channels; at least 1.
    pub priority: u32,
    /// Messages that may wait to be sent, besides the one being chunked; at least 1.
    pub send_queue_capacity: usize,
    /// Largest message accepted from the peer, in bytes.
    pub recv_message_capacity: usize,
}

/// Stock v0.40's default `mempool.max_tx_bytes` (4 MiB; v0.38 used 1 MiB).
pub const STOCK_MAX_TX_BYTES: usize = 4 * 1024 * 1024;

/// The mempool channel's receive capacity as stock computes it: the encoded size of a mempool
/// `Message{txs: Txs{txs: [one tx of max_tx_bytes]}}`.
pub const fn mempool_recv_message_capacity(max_tx_bytes: usize) -> usize {
    let txs = 1 + uvarint_len(max_tx_bytes as u64) + max_tx_bytes;
    1 + uvarint_len(txs as u64) + txs
}

/// Stock consensus and evidence message limit (1 MiB).
const ONE_MIB: usize = 1 << 20;

/// The channels of the stock reactors with stock's settings, in stock's NodeInfo order
/// (blocksync, consensus ×4, mempool, evidence, statesync ×2, PEX). The mempool capacity uses
/// [`STOCK_MAX_TX_BYTES`]; a node with another `max_tx_bytes` should replace it with
/// [`mempool_recv_message_capacity`].
pub fn stock_channels() -> Vec<ChannelConfig> {
    let ch = |id, priority, send_queue_capacity, recv_message_capacity| ChannelConfig {
        id,
        priority,
        send_queue_capacity,
        recv_message_capacity,
    };
    vec![
        // Blocksync: MaxBlockSizeBytes (100 MiB) + 4-byte prefix + 1-byte field key.
        ch(0x40, 5, 1000, 104_857_605),
        ch(0x20, 6, 100, ONE_MIB),
        ch(0x21, 10, 100, ONE_MIB),
        ch(0x22, 7, 100, ONE_MIB),
        ch(0x23, 1, 2, ONE_MIB),
        ch(
            0x30,
            5,
            1,
            mempool_recv_message_capacity(STOCK_MAX_TX_BYTES),
        ),
        ch(0x38, 6, 1, ONE_MIB),
        ch(0x60, 5, 10, 4_000_000),
        ch(0x61, 3, 10, 16_000_000),
        // PEX: 256 bytes per address × 250 addresses.
        ch(0x00, 1, 10, 64_000),
    ]
}

/// The reassembled message would exceed the channel's receive capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OverCapacity {
    /// The channel's `recv_message_capacity`.
    pub(crate) capacity: usize,
    /// Bytes the message would have with the new chunk.
    pub(crate) received: usize,
}

/// Why a received chunk was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecvError {
    /// The message would exceed the channel's receive capacity.
    OverCapacity(OverCapacity),
    /// The reassembly buffer may not grow: the partial-message budget is spent.
    Budget(PartialBudgetError),
}

/// Per-channel state of one connection.
#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) config: ChannelConfig,
    /// Largest payload per chunk on this channel.
    chunk_size: usize,
    queue: VecDeque<Bytes>,
    /// The rest of the message being chunked.
    sending: Option<Bytes>,
    /// Bytes written recently (decayed by the scheduler), stock `recentlySent`.
    pub(crate) recently_sent: u64,
    recving: BytesMut,
}

impl Channel {
    pub(crate) fn new(config: ChannelConfig, chunk_size: usize) -> Self {
        Self {
            config,
            chunk_size,
            queue: VecDeque::with_capacity(config.send_queue_capacity.min(64)),
            sending: None,
            recently_sent: 0,
            recving: BytesMut::new(),
        }
    }

    /// Queues a message; gives it back when the queue is full.
    pub(crate) fn push(&mut self, msg: Bytes) -> Result<(), Bytes> {
        if !self.can_send() {
            return Err(msg);
        }
        self.queue.push_back(msg);
        Ok(())
    }

    /// True when a send would be accepted now.
    pub(crate) fn can_send(&self) -> bool {
        self.queue.len() < self.config.send_queue_capacity
    }

    /// True when anything waits to be sent (without moving the queue head).
    pub(crate) fn has_pending(&self) -> bool {
        self.sending.is_some() || !self.queue.is_empty()
    }

    /// Stock `isSendPending`: with nothing in flight, the queue head becomes the message being
    /// chunked. True when a chunk is ready.
    pub(crate) fn is_send_pending(&mut self) -> bool {
        if self.sending.is_none() {
            self.sending = self.queue.pop_front();
        }
        self.sending.is_some()
    }

    /// Takes the next chunk of the message in flight and whether it is the last one.
    pub(crate) fn next_chunk(&mut self) -> Option<(Bytes, bool)> {
        let rest = self.sending.as_mut()?;
        if rest.len() <= self.chunk_size {
            let last = self.sending.take()?;
            return Some((last, true));
        }
        Some((rest.split_to(self.chunk_size), false))
    }

    /// Appends a received chunk, reserving its bytes from `partial` first; returns the whole
    /// message on `eof` (its bytes then go back to `partial`).
    pub(crate) fn recv(
        &mut self,
        data: &[u8],
        eof: bool,
        partial: &mut PartialBytes,
    ) -> Result<Option<Bytes>, RecvError> {
        let received = self.recving.len().saturating_add(data.len());
        if received > self.config.recv_message_capacity {
            return Err(RecvError::OverCapacity(OverCapacity {
                capacity: self.config.recv_message_capacity,
                received,
            }));
        }
        if eof && self.recving.is_empty() {
            return Ok(Some(Bytes::copy_from_slice(data)));
        }
        partial.reserve(data.len()).map_err(RecvError::Budget)?;
        self.recving.extend_from_slice(data);
        if eof {
            partial.release(self.recving.len());
            return Ok(Some(self.recving.split().freeze()));
        }
        Ok(None)
    }

    /// Bytes of a partly received message.
    pub(crate) fn recv_buffered(&self) -> usize {
        self.recving.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chan(cap: usize) -> Channel {
        Channel::new(
            ChannelConfig {
                id: 1,
                priority: 1,
                send_queue_capacity: cap,
                recv_message_capacity: 10,
            },
            4,
        )
    }

    #[test]
    fn stock_table() {
        let chs = stock_channels();
        let ids: Vec<u8> = chs.iter().map(|c| c.id).collect();
        assert_eq!(ids, crate::proto::nodeinfo::STOCK_CHANNELS);
        // 4 MiB tx: Txs = 1 + 4 + 4194304; Message = 1 + 4 + 4194309.
        assert_eq!(mempool_recv_message_capacity(STOCK_MAX_TX_BYTES), 4_194_314);
        assert_eq!(mempool_recv_message_capacity(1 << 20), 1_048_584);
        assert!(
            chs.iter()
                .all(|c| c.priority >= 1 && c.send_queue_capacity >= 1)
        );
    }

    #[test]
    fn queue_is_bounded_and_head_moves_out() {
        let mut c = chan(1);
        assert!(c.push(Bytes::from_static(b"a")).is_ok());
        assert!(c.push(Bytes::from_static(b"b")).is_err());
        assert!(c.is_send_pending());
        // The head left the queue, so one more fits, as in stock.
        assert!(c.push(Bytes::from_static(b"b")).is_ok());
        assert!(c.push(Bytes::from_static(b"c")).is_err());
    }

    #[test]
    fn chunks_and_zero_length() {
        let mut c = chan(2);
        c.push(Bytes::from_static(b"0123456789")).unwrap();
        c.push(Bytes::new()).unwrap();
        let mut got = Vec::new();
        while c.is_send_pending() {
            got.push(c.next_chunk().unwrap());
        }
        let lens: Vec<(usize, bool)> = got.iter().map(|(b, e)| (b.len(), *e)).collect();
        assert_eq!(lens, [(4, false), (4, false), (2, true), (0, true)]);
    }

    #[test]
    fn reassembly_cap() {
        let mut c = chan(1);
        let mut p = PartialBytes::new(crate::proto::budget::PartialBudget::default());
        assert_eq!(c.recv(b"12345", false, &mut p), Ok(None));
        assert_eq!(p.held(), 5);
        assert_eq!(
            c.recv(b"12345", true, &mut p),
            Ok(Some(Bytes::from_static(b"1234512345")))
        );
        assert_eq!(p.held(), 0);
        assert_eq!(c.recv(b"", true, &mut p), Ok(Some(Bytes::new())));
        assert_eq!(c.recv(b"123456", false, &mut p), Ok(None));
        assert_eq!(
            c.recv(b"12345", true, &mut p),
            Err(RecvError::OverCapacity(OverCapacity {
                capacity: 10,
                received: 11
            }))
        );
    }

    #[test]
    fn reassembly_reserves_from_the_budget_before_growing() {
        let mut c = chan(1);
        let budget = crate::proto::budget::PartialBudget::new(6, 100);
        let pool = budget.pool.clone().unwrap();
        let mut p = PartialBytes::new(budget);
        // A whole message in one chunk is never buffered.
        assert_eq!(
            c.recv(b"1234567", true, &mut p),
            Ok(Some(Bytes::from_static(b"1234567")))
        );
        assert_eq!(c.recv(b"1234", false, &mut p), Ok(None));
        assert_eq!(pool.used(), 4);
        assert_eq!(
            c.recv(b"567", false, &mut p),
            Err(RecvError::Budget(PartialBudgetError::Peer {
                wanted: 7,
                limit: 6
            }))
        );
        assert_eq!(c.recv_buffered(), 4, "the buffer did not grow");
        assert_eq!(
            c.recv(b"56", true, &mut p),
            Ok(Some(Bytes::from_static(b"123456")))
        );
        assert_eq!(pool.used(), 0);
    }
}
