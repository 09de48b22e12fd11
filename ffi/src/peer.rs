//! Connected peers: who they are, how they are connected, and the NodeInfo they sent.

use std::ffi::c_char;

use ringwire::proto::conn::Mode;
use ringwire::proto::secret::NodeId;
use ringwire::router::Direction;

use crate::node::{NODES, ringwire_node, ringwire_node_id};
use crate::result::fail;
use crate::{guard, non_null, read, ringwire_result};

/// The longest NodeInfo a peer can have sent, in bytes (stock's limit): a buffer this large
/// always holds `ringwire_peer_info`'s NodeInfo.
pub const RINGWIRE_MAX_NODE_INFO_SIZE: usize = 10_240;

/// A connected peer, as `ringwire_node_peer_info` describes it. The caller sets `size` to
/// `sizeof(ringwire_peer_info)`; the library writes no byte past it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringwire_peer_info {
    /// `sizeof(ringwire_peer_info)`, set by the caller.
    pub size: usize,
    /// The peer.
    pub peer: ringwire_node_id,
    /// 1 when this node dialed the peer, 0 when the peer dialed.
    pub outbound: u32,
    /// 1 when the connection speaks ringwire's native protocol, 0 for stock MConnection.
    pub native: u32,
    /// The peer's socket address (`"IP:PORT"`) and a NUL; empty when unknown.
    pub remote_addr: [c_char; 64],
    /// Length of the peer's NodeInfo written to the caller's buffer: the protobuf encoding of
    /// stock's `tendermint.p2p.DefaultNodeInfo`, without a length prefix.
    pub node_info_len: usize,
}

/// Writes the IDs of up to `cap` connected peers into `peers` and their number to
/// `*out_count`; `*out_total` (when non-NULL) receives how many are connected, which may be
/// more than `cap`.
///
/// # Safety
/// `node` is a live node handle; `peers` is valid for writes of `cap` elements; `out_count`
/// for one write; `out_total` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_peers(
    node: *const ringwire_node,
    peers: *mut ringwire_node_id,
    cap: usize,
    out_count: *mut usize,
    out_total: *mut usize,
) -> ringwire_result {
    guard(|| {
        non_null(out_count)?;
        if cap > 0 {
            non_null(peers)?;
        }
        let list = NODES.get(node)?.live()?.peers();
        let n = list.len().min(cap);
        for (i, p) in list.iter().take(n).enumerate() {
            // SAFETY: i < n <= cap and `peers` is valid for `cap` elements by contract.
            unsafe { peers.add(i).write(p.info.node_id.into()) };
        }
        // SAFETY: checked non-NULL; valid for a write by the caller's contract.
        unsafe { *out_count = n };
        if !out_total.is_null() {
            // SAFETY: non-NULL; valid for a write by the caller's contract.
            unsafe { *out_total = list.len() };
        }
        Ok(())
    })
}

/// Describes connected peer `peer`: fills `*out_info` (whose `size` the caller set) and writes
/// the peer's NodeInfo into `node_info` (`node_info_cap` bytes; `RINGWIRE_MAX_NODE_INFO_SIZE`
/// always suffice). Fails with `RINGWIRE_RESULT_PEER_GONE` when the peer is not connected and
/// with `RINGWIRE_RESULT_BUFFER_TOO_SMALL` (writing only `node_info_len`) when the buffer is
/// too small.
///
/// # Safety
/// `node` is a live node handle; `peer` is valid for one read; `out_info` is valid for reads
/// and writes of its `size` bytes; `node_info` for `node_info_cap` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringwire_node_peer_info(
    node: *const ringwire_node,
    peer: *const ringwire_node_id,
    out_info: *mut ringwire_peer_info,
    node_info: *mut u8,
    node_info_cap: usize,
) -> ringwire_result {
    guard(|| {
        non_null(out_info)?;
        non_null(node_info)?;
        // SAFETY: NULL or valid for a read, by this function's contract.
        let id = NodeId::from(unsafe { read(peer) }?);
        // SAFETY: non-NULL; the caller set the `size` field.
        let size = unsafe { out_info.cast::<usize>().read_unaligned() };
        if size < size_of::<ringwire_peer_info>() {
            return Err(fail(
                ringwire_result::InvalidArgument,
                "ringwire_peer_info.size is smaller than this library's struct",
            ));
        }
        let n = NODES.get(node)?.live()?;
        let p = n
            .peers()
            .into_iter()
            .find(|p| p.info.node_id == id)
            .ok_or(ringwire_result::PeerGone)?;
        let mut encoded = Vec::new();
        p.info.node_info.encode(&mut encoded);
        let mut info = ringwire_peer_info {
            size: size_of::<ringwire_peer_info>(),
            peer: id.into(),
            outbound: u32::from(p.direction == Direction::Outbound),
            native: u32::from(p.info.mode == Mode::Native),
            remote_addr: [0; 64],
            node_info_len: encoded.len(),
        };
        if let Some(addr) = p.addr {
            let text = addr.to_string();
            for (dst, b) in info.remote_addr.iter_mut().zip(text.bytes().take(63)) {
                *dst = b as c_char;
            }
        }
        if encoded.len() > node_info_cap {
            // SAFETY: non-NULL and valid for a write of the struct (size checked above).
            unsafe { (&raw mut (*out_info).node_info_len).write_unaligned(encoded.len()) };
            return Err(ringwire_result::BufferTooSmall);
        }
        // SAFETY: `node_info` is valid for `node_info_cap` >= len bytes by contract; the
        // regions cannot overlap (ours is a fresh vector); `out_info` is valid for the struct.
        unsafe {
            std::ptr::copy_nonoverlapping(encoded.as_ptr(), node_info, encoded.len());
            out_info.write_unaligned(info);
        }
        Ok(())
    })
}
