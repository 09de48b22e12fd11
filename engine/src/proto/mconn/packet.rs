//! MConnection packets: encoding, parsing and a streaming decoder.
//!
//! Inside the SecretConnection plaintext stream every packet is a uvarint length followed by a
//! `Packet` proto: `packet_ping = 1 {}`, `packet_pong = 2 {}` or
//! `packet_msg = 3 {channel_id int32 = 1, eof bool = 2, data bytes = 3}`.
//!
//! Policy:
//! - Encoding writes the bytes stock's gogoproto marshaller writes, straight into the output
//!   buffer (ping is `02 0a 00`, pong `02 12 00`).
//! - Parsing reproduces the acceptance of stock's generated `Unmarshal` code: unknown fields
//!   (groups included) are skipped, a repeated field replaces the earlier one (the last packet
//!   kind wins), varints may take up to ten bytes with excess high bits dropped, and `channel_id`
//!   keeps the low 32 bits of its varint. Stock then rejects a packet with no kind ("unknown
//!   message type") and a channel id outside `0..=255`; so does [`parse_packet`].
//! - [`PacketDecoder`] rejects a declared length above its limit before buffering any of it.
//!   Stock's limit is the encoded size of a packet carrying a full payload on channel 1
//!   ([`max_packet_size`]); for 1024-byte payloads that is [`STOCK_MAX_PACKET_SIZE`] = 1034.

use bytes::Bytes;

use super::varint::{MAX_VARINT_LEN, Uvarint, put_uvarint, read_uvarint, uvarint_len};

/// Stock's default (and largest interoperable) payload bytes per `PacketMsg`.
pub const STOCK_MAX_PACKET_MSG_PAYLOAD_SIZE: usize = 1024;

/// Stock's receive limit for a packet body with 1024-byte payloads: `max_packet_size(1024)`.
pub const STOCK_MAX_PACKET_SIZE: usize = 1034;

/// A ping packet on the wire, length prefix included.
pub const PING_ENCODED: [u8; 3] = [0x02, 0x0a, 0x00];

/// A pong packet on the wire, length prefix included.
pub const PONG_ENCODED: [u8; 3] = [0x02, 0x12, 0x00];

/// Stock `maxPacketMsgSize()`: the length (without prefix) of a `Packet` holding a `PacketMsg` on
/// channel 1 with `eof` set and `max_payload` data bytes. Receivers reject longer packets.
pub const fn max_packet_size(max_payload: usize) -> usize {
    packet_body_len(1, true, max_payload)
}

/// Length of the `PacketMsg` fields.
const fn msg_fields_len(channel_id: u8, eof: bool, data_len: usize) -> usize {
    let mut n = 0;
    if channel_id != 0 {
        n += 1 + uvarint_len(channel_id as u64);
    }
    if eof {
        n += 2;
    }
    if data_len > 0 {
        n += 1 + uvarint_len(data_len as u64) + data_len;
    }
    n
}

/// Length of the `Packet` proto (without the outer length prefix) wrapping a `PacketMsg`.
pub(crate) const fn packet_body_len(channel_id: u8, eof: bool, data_len: usize) -> usize {
    let inner = msg_fields_len(channel_id, eof, data_len);
    1 + uvarint_len(inner as u64) + inner
}

/// Total bytes [`encode_msg`] writes for such a packet, length prefix included.
pub const fn encoded_msg_len(channel_id: u8, eof: bool, data_len: usize) -> usize {
    let body = packet_body_len(channel_id, eof, data_len);
    uvarint_len(body as u64) + body
}

/// One MConnection packet, owning its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// Keepalive request; the peer answers with a pong.
    Ping,
    /// Keepalive answer.
    Pong,
    /// A chunk of a message on a channel.
    Msg {
        /// The channel the chunk belongs to.
        channel_id: u8,
        /// True on the last chunk of a message.
        eof: bool,
        /// The chunk's bytes.
        data: Bytes,
    },
}

/// One MConnection packet, borrowing its payload from the decoder or the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketRef<'a> {
    /// Keepalive request.
    Ping,
    /// Keepalive answer.
    Pong,
    /// A chunk of a message on a channel.
    Msg {
        /// The channel the chunk belongs to.
        channel_id: u8,
        /// True on the last chunk of a message.
        eof: bool,
        /// The chunk's bytes.
        data: &'a [u8],
    },
}

impl Packet {
    /// Borrows this packet as a [`PacketRef`].
    pub fn view(&self) -> PacketRef<'_> {
        match self {
            Self::Ping => PacketRef::Ping,
            Self::Pong => PacketRef::Pong,
            Self::Msg {
                channel_id,
                eof,
                data,
            } => PacketRef::Msg {
                channel_id: *channel_id,
                eof: *eof,
                data,
            },
        }
    }
}

impl PacketRef<'_> {
    /// Copies the payload into an owned [`Packet`].
    pub fn to_packet(&self) -> Packet {
        match *self {
            Self::Ping => Packet::Ping,
            Self::Pong => Packet::Pong,
            Self::Msg {
                channel_id,
                eof,
                data,
            } => Packet::Msg {
                channel_id,
                eof,
                data: Bytes::copy_from_slice(data),
            },
        }
    }
}

/// Why a packet was rejected. Every variant ends the connection, as in stock.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// The length prefix is not a valid uvarint.
    #[error("packet length prefix is not a valid uvarint")]
    BadLengthPrefix,
    /// The declared length exceeds the receive limit.
    #[error("message exceeds max size ({declared} > {max})")]
    TooLarge {
        /// Declared body length.
        declared: u64,
        /// The decoder's limit.
        max: usize,
    },
    /// The body is not a valid `Packet` proto.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The body parses but carries no ping, pong or msg.
    #[error("unknown packet type: no ping, pong or msg")]
    UnknownPacketType,
    /// A `PacketMsg` names a channel id that is not a byte.
    #[error("unknown channel {0}: channel ids are 0..=255")]
    ChannelOutOfRange(i32),
    /// An earlier call already failed; the stream cannot be resynchronised.
    #[error("packet decoder already failed")]
    Failed,
}

/// Appends `packet` with its length prefix; returns the number of bytes written.
pub fn encode(packet: &Packet, out: &mut Vec<u8>) -> usize {
    match packet {
        Packet::Ping => {
            out.extend_from_slice(&PING_ENCODED);
            PING_ENCODED.len()
        }
        Packet::Pong => {
            out.extend_from_slice(&PONG_ENCODED);
            PONG_ENCODED.len()
        }
        Packet::Msg {
            channel_id,
            eof,
            data,
        } => encode_msg(*channel_id, *eof, data, out),
    }
}

/// Appends a `PacketMsg` packet with its length prefix, byte for byte as stock writes it;
/// returns the number of bytes written (what stock adds to the channel's `recentlySent`).
pub fn encode_msg(channel_id: u8, eof: bool, data: &[u8], out: &mut Vec<u8>) -> usize {
    let inner = msg_fields_len(channel_id, eof, data.len());
    let body = 1 + uvarint_len(inner as u64) + inner;
    let start = out.len();
    out.reserve(uvarint_len(body as u64) + body);
    put_uvarint(out, body as u64);
    out.push(0x1a);
    put_uvarint(out, inner as u64);
    if channel_id != 0 {
        out.push(0x08);
        put_uvarint(out, u64::from(channel_id));
    }
    if eof {
        out.extend_from_slice(&[0x10, 0x01]);
    }
    if !data.is_empty() {
        out.push(0x1a);
        put_uvarint(out, data.len() as u64);
        out.extend_from_slice(data);
    }
    out.len() - start
}

/// Parses one `Packet` body (without its length prefix) with stock's acceptance rules.
pub fn parse_packet(body: &[u8]) -> Result<PacketRef<'_>, PacketError> {
    enum Kind<'a> {
        Ping,
        Pong,
        Msg(i32, bool, &'a [u8]),
    }
    let mut r = Reader { buf: body, pos: 0 };
    let mut kind = None;
    while !r.done() {
        let pre = r.pos;
        let (field, wire_type) = r.tag()?;
        match field {
            1..=3 => {
                if wire_type != 2 {
                    return Err(PacketError::Malformed("wrong wire type for a packet kind"));
                }
                let sub = r.len_delimited()?;
                kind = Some(match field {
                    1 => {
                        skip_all(sub)?;
                        Kind::Ping
                    }
                    2 => {
                        skip_all(sub)?;
                        Kind::Pong
                    }
                    _ => {
                        let (ch, eof, data) = parse_msg(sub)?;
                        Kind::Msg(ch, eof, data)
                    }
                });
            }
            _ => r.skip_field(pre)?,
        }
    }
    match kind {
        None => Err(PacketError::UnknownPacketType),
        Some(Kind::Ping) => Ok(PacketRef::Ping),
        Some(Kind::Pong) => Ok(PacketRef::Pong),
        Some(Kind::Msg(ch, eof, data)) => match u8::try_from(ch) {
            Ok(channel_id) => Ok(PacketRef::Msg {
                channel_id,
                eof,
                data,
            }),
            Err(_) => Err(PacketError::ChannelOutOfRange(ch)),
        },
    }
}

/// `PacketMsg` fields: channel id (low 32 bits of the varint), eof (any non-zero varint), data.
fn parse_msg(body: &[u8]) -> Result<(i32, bool, &[u8]), PacketError> {
    let mut r = Reader { buf: body, pos: 0 };
    let (mut ch, mut eof, mut data): (i32, bool, &[u8]) = (0, false, &[]);
    while !r.done() {
        let pre = r.pos;
        let (field, wire_type) = r.tag()?;
        match (field, wire_type) {
            (1, 0) => ch = r.varint()? as u32 as i32,
            (2, 0) => eof = r.varint()? != 0,
            (3, 2) => data = r.len_delimited()?,
            (1..=3, _) => return Err(PacketError::Malformed("wrong wire type in packet msg")),
            _ => r.skip_field(pre)?,
        }
    }
    Ok((ch, eof, data))
}

/// Ping and pong carry no fields; anything present must still be well-formed.
fn skip_all(body: &[u8]) -> Result<(), PacketError> {
    let mut r = Reader { buf: body, pos: 0 };
    while !r.done() {
        let pre = r.pos;
        r.tag()?;
        r.skip_field(pre)?;
    }
    Ok(())
}

const EOF: PacketError = PacketError::Malformed("unexpected end of packet");
const OVERFLOW: PacketError = PacketError::Malformed("varint overflow");
const BAD_LENGTH: PacketError = PacketError::Malformed("negative length");

/// A cursor with gogoproto's decoding rules.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// gogoproto's inline varint loop: up to ten bytes, high bits past 64 dropped.
    fn varint(&mut self) -> Result<u64, PacketError> {
        let mut x = 0u64;
        let mut shift = 0u32;
        loop {
            if shift >= 64 {
                return Err(OVERFLOW);
            }
            let b = *self.buf.get(self.pos).ok_or(EOF)?;
            self.pos += 1;
            x |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(x);
            }
            shift += 7;
        }
    }

    /// A field key: field number (as gogoproto's `int32(wire >> 3)`) and wire type.
    fn tag(&mut self) -> Result<(i32, u8), PacketError> {
        let wire = self.varint()?;
        let field = (wire >> 3) as u32 as i32;
        let wire_type = (wire & 7) as u8;
        if wire_type == 4 {
            return Err(PacketError::Malformed("end group for non-group"));
        }
        if field <= 0 {
            return Err(PacketError::Malformed("illegal tag"));
        }
        Ok((field, wire_type))
    }

    /// A length and that many bytes.
    fn len_delimited(&mut self) -> Result<&'a [u8], PacketError> {
        let len = self.varint()?;
        if len > i64::MAX as u64 {
            return Err(BAD_LENGTH);
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| self.pos.checked_add(l))
            .ok_or(BAD_LENGTH)?;
        let s = self.buf.get(self.pos..end).ok_or(EOF)?;
        self.pos = end;
        Ok(s)
    }

    /// Skips the unknown field whose key starts at `pre` (gogoproto's `skip*` helper).
    fn skip_field(&mut self, pre: usize) -> Result<(), PacketError> {
        let rest = self.buf.get(pre..).ok_or(EOF)?;
        let n = skip_len(rest)?;
        let end = pre.checked_add(n).ok_or(BAD_LENGTH)?;
        if end > self.buf.len() {
            return Err(EOF);
        }
        self.pos = end;
        Ok(())
    }
}

/// How many bytes the field at the front of `data` takes, groups included.
fn skip_len(data: &[u8]) -> Result<usize, PacketError> {
    let mut r = Reader { buf: data, pos: 0 };
    let mut depth = 0usize;
    while !r.done() {
        let wire = r.varint()?;
        match wire & 7 {
            0 => {
                r.varint()?;
            }
            1 => r.pos = r.pos.checked_add(8).ok_or(BAD_LENGTH)?,
            2 => {
                let len = r.varint()?;
                if len > i64::MAX as u64 {
                    return Err(BAD_LENGTH);
                }
                r.pos = usize::try_from(len)
                    .ok()
                    .and_then(|l| r.pos.checked_add(l))
                    .ok_or(BAD_LENGTH)?;
            }
            3 => depth += 1,
            4 => {
                if depth == 0 {
                    return Err(PacketError::Malformed("unexpected end of group"));
                }
                depth -= 1;
            }
            5 => r.pos = r.pos.checked_add(4).ok_or(BAD_LENGTH)?,
            _ => return Err(PacketError::Malformed("illegal wire type")),
        }
        if depth == 0 {
            return Ok(r.pos);
        }
    }
    Err(EOF)
}

/// Splits a plaintext byte stream into packets.
///
/// Feed it any slicing of the stream. A packet that lies whole in the input is parsed in place;
/// a packet split across calls is gathered in an internal buffer of at most the limit. After an
/// error the decoder stays failed.
#[derive(Debug)]
pub struct PacketDecoder {
    max_packet_size: usize,
    /// Bytes of a length prefix split across calls.
    head: [u8; MAX_VARINT_LEN],
    head_len: usize,
    /// Declared length of the packet being gathered.
    body_len: Option<usize>,
    body: Vec<u8>,
    /// The last call returned a packet borrowed from `body`; clear it before reuse.
    body_returned: bool,
    failed: bool,
}

impl PacketDecoder {
    /// A decoder rejecting packets longer than `max_packet_size` (see [`max_packet_size`]).
    pub fn new(max_packet_size: usize) -> Self {
        Self {
            max_packet_size,
            head: [0; MAX_VARINT_LEN],
            head_len: 0,
            body_len: None,
            body: Vec::new(),
            body_returned: false,
            failed: false,
        }
    }

    /// The limit this decoder enforces.
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// True when part of a packet is buffered.
    pub fn is_mid_packet(&self) -> bool {
        self.head_len > 0 || (self.body_len.is_some() && !self.body_returned)
    }

    /// Decodes at most one packet from the front of `input`.
    ///
    /// Returns the packet (or `None` when `input` ran out first) and how many bytes of `input`
    /// were consumed; call again with the rest. All of `input` is consumed when `None` is
    /// returned.
    pub fn decode<'a>(
        &'a mut self,
        input: &'a [u8],
    ) -> Result<(Option<PacketRef<'a>>, usize), PacketError> {
        if self.failed {
            return Err(PacketError::Failed);
        }
        if self.body_returned {
            self.body.clear();
            self.body_len = None;
            self.body_returned = false;
        }
        let mut used = 0usize;
        let len = match self.body_len {
            Some(len) => len,
            None if self.head_len == 0 => {
                let (declared, n) = match read_uvarint(input) {
                    Uvarint::Done(v, n) => (v, n),
                    Uvarint::Incomplete => {
                        // Fewer than MAX_VARINT_LEN bytes, all continuation bytes.
                        let dst = self.head.get_mut(..input.len()).ok_or(OVERFLOW);
                        match dst {
                            Ok(dst) => dst.copy_from_slice(input),
                            Err(e) => {
                                self.failed = true;
                                return Err(e);
                            }
                        }
                        self.head_len = input.len();
                        return Ok((None, input.len()));
                    }
                    Uvarint::Overflow => {
                        self.failed = true;
                        return Err(PacketError::BadLengthPrefix);
                    }
                };
                let len = match self.check_len(declared) {
                    Ok(len) => len,
                    Err(e) => {
                        self.failed = true;
                        return Err(e);
                    }
                };
                used = n;
                // Fast path: the whole packet is in the input.
                if let Some(body) = n.checked_add(len).and_then(|end| input.get(n..end)) {
                    return match parse_packet(body) {
                        Ok(p) => Ok((Some(p), n + len)),
                        Err(e) => {
                            self.failed = true;
                            Err(e)
                        }
                    };
                }
                self.start_body(len);
                len
            }
            None => {
                // Continue a length prefix split across calls, one byte at a time.
                loop {
                    let Some(&b) = input.get(used) else {
                        return Ok((None, used));
                    };
                    let Some(slot) = self.head.get_mut(self.head_len) else {
                        self.failed = true;
                        return Err(PacketError::BadLengthPrefix);
                    };
                    *slot = b;
                    self.head_len += 1;
                    used += 1;
                    match read_uvarint(self.head.get(..self.head_len).unwrap_or(&[])) {
                        Uvarint::Done(v, _) => {
                            self.head_len = 0;
                            match self.check_len(v) {
                                Ok(len) => {
                                    self.start_body(len);
                                    break len;
                                }
                                Err(e) => {
                                    self.failed = true;
                                    return Err(e);
                                }
                            }
                        }
                        Uvarint::Incomplete => {}
                        Uvarint::Overflow => {
                            self.failed = true;
                            return Err(PacketError::BadLengthPrefix);
                        }
                    }
                }
            }
        };
        let rest = input.get(used..).unwrap_or(&[]);
        let take = len.saturating_sub(self.body.len()).min(rest.len());
        self.body.extend_from_slice(rest.get(..take).unwrap_or(&[]));
        used += take;
        if self.body.len() < len {
            return Ok((None, used));
        }
        self.body_returned = true;
        match parse_packet(&self.body) {
            Ok(p) => Ok((Some(p), used)),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn check_len(&self, declared: u64) -> Result<usize, PacketError> {
        match usize::try_from(declared) {
            Ok(len) if len <= self.max_packet_size => Ok(len),
            _ => Err(PacketError::TooLarge {
                declared,
                max: self.max_packet_size,
            }),
        }
    }

    fn start_body(&mut self, len: usize) {
        self.body_len = Some(len);
        self.body.clear();
        // `len` was checked against the limit, so this allocation is bounded.
        self.body.reserve(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_limits() {
        assert_eq!(
            max_packet_size(STOCK_MAX_PACKET_MSG_PAYLOAD_SIZE),
            STOCK_MAX_PACKET_SIZE
        );
        // channel 1, eof, 1024 bytes: 08 01 10 01 1a 80 08 <1024> inside 1a 87 08.
        assert_eq!(encoded_msg_len(1, true, 1024), 2 + 1034);
    }

    #[test]
    fn ping_pong_bytes() {
        let mut out = Vec::new();
        assert_eq!(encode(&Packet::Ping, &mut out), 3);
        assert_eq!(encode(&Packet::Pong, &mut out), 3);
        assert_eq!(out, [0x02, 0x0a, 0x00, 0x02, 0x12, 0x00]);
    }

    #[test]
    fn msg_bytes() {
        let mut out = Vec::new();
        encode_msg(0x20, true, b"hi", &mut out);
        assert_eq!(
            out,
            [
                0x0a, 0x1a, 0x08, 0x08, 0x20, 0x10, 0x01, 0x1a, 0x02, b'h', b'i'
            ]
        );
        out.clear();
        encode_msg(0, false, b"", &mut out);
        assert_eq!(out, [0x02, 0x1a, 0x00]);
        out.clear();
        encode_msg(0xF0, true, b"", &mut out);
        assert_eq!(out, [0x07, 0x1a, 0x05, 0x08, 0xf0, 0x01, 0x10, 0x01]);
        assert_eq!(out.len(), encoded_msg_len(0xF0, true, 0));
    }

    #[test]
    fn gogo_acceptance_rules() {
        // Unknown field before the kind is skipped.
        assert_eq!(parse_packet(&[0x20, 0x05, 0x0a, 0x00]), Ok(PacketRef::Ping));
        // The last kind wins and replaces, never merges.
        let p = parse_packet(&[0x1a, 0x02, 0x08, 0x05, 0x1a, 0x02, 0x10, 0x01]).unwrap();
        assert_eq!(
            p,
            PacketRef::Msg {
                channel_id: 0,
                eof: true,
                data: &[]
            }
        );
        // channel_id keeps the low 32 bits: 2^32 + 0x20.
        let body = [0x1a, 0x06, 0x08, 0xa0, 0x80, 0x80, 0x80, 0x10];
        assert!(matches!(
            parse_packet(&body),
            Ok(PacketRef::Msg {
                channel_id: 0x20,
                eof: false,
                ..
            })
        ));
        // A ten-byte varint with excess high bits is accepted (bits past 64 dropped).
        let mut wide = vec![0x1a, 0x0b, 0x08, 0xa0];
        wide.extend_from_slice(&[0x80; 8]);
        wide.push(0x7f);
        assert!(matches!(
            parse_packet(&wide),
            Ok(PacketRef::Msg {
                channel_id: 0x20,
                ..
            })
        ));
        // Negative and too-large channel ids are rejected.
        let mut neg = vec![0x1a, 0x0b, 0x08];
        neg.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(parse_packet(&neg), Err(PacketError::ChannelOutOfRange(-1)));
        assert_eq!(
            parse_packet(&[0x1a, 0x03, 0x08, 0x80, 0x02]),
            Err(PacketError::ChannelOutOfRange(256))
        );
        // Empty packet: no kind.
        assert_eq!(parse_packet(&[]), Err(PacketError::UnknownPacketType));
        // A group is skipped; a stray end-group is not.
        assert_eq!(
            parse_packet(&[0x23, 0x08, 0x01, 0x24, 0x12, 0x00]),
            Ok(PacketRef::Pong)
        );
        assert!(parse_packet(&[0x24]).is_err());
        // Wrong wire type for a known field.
        assert!(parse_packet(&[0x08, 0x00]).is_err());
        // Field number zero.
        assert!(parse_packet(&[0x02, 0x00]).is_err());
        // Truncated length.
        assert!(parse_packet(&[0x1a, 0x05, 0x08]).is_err());
    }

    #[test]
    fn decoder_rejects_oversize_before_buffering() {
        let mut d = PacketDecoder::new(STOCK_MAX_PACKET_SIZE);
        // 1035 = 0x8b 0x08
        assert_eq!(
            d.decode(&[0x8b, 0x08]),
            Err(PacketError::TooLarge {
                declared: 1035,
                max: 1034
            })
        );
        assert_eq!(d.decode(&[0x02]), Err(PacketError::Failed));
        // Split prefix: the check happens when the prefix completes.
        let mut d = PacketDecoder::new(STOCK_MAX_PACKET_SIZE);
        assert_eq!(d.decode(&[0x8b]), Ok((None, 1)));
        assert!(matches!(
            d.decode(&[0x08, 0, 0]),
            Err(PacketError::TooLarge { .. })
        ));
        let mut d = PacketDecoder::new(STOCK_MAX_PACKET_SIZE);
        assert_eq!(d.decode(&[0xff; 10]), Err(PacketError::BadLengthPrefix));
    }
}
