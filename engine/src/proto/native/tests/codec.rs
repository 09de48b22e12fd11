//! The payload codec hook, exercised with a trivial run-length codec.

use bytes::Bytes;

use super::pair::{Pair, config, hello, record};
use crate::proto::native::frame::{
    DATA_COMPRESSED, DATA_END, DATA_START, DataFrame, FEATURE_COMPRESSION, Frame,
};
use crate::proto::native::{Mux, MuxError, PayloadCodec, ResetCode};

/// Run-length encoding as (count, byte) pairs; compresses only on channels below 0x80.
#[derive(Debug, Clone)]
struct Rle {
    enabled: bool,
}

impl PayloadCodec for Rle {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn encode(&mut self, channel: u8, payload: &Bytes) -> Option<Bytes> {
        if channel >= 0x80 || payload.len() < 16 {
            return None;
        }
        let mut out = Vec::new();
        let mut it = payload.iter().peekable();
        while let Some(&b) = it.next() {
            let mut n = 1u8;
            while n < 255 && it.peek() == Some(&&b) {
                it.next();
                n += 1;
            }
            out.extend_from_slice(&[n, b]);
        }
        Some(out.into())
    }

    fn decode(&mut self, _channel: u8, data: &[u8], cap: usize) -> Result<Bytes, String> {
        if !data.len().is_multiple_of(2) {
            return Err("odd length".into());
        }
        let mut out = Vec::new();
        for pair in data.chunks_exact(2) {
            if out.len() + usize::from(pair[0]) > cap {
                return Err(format!("output exceeds {cap}"));
            }
            out.extend(std::iter::repeat_n(pair[1], usize::from(pair[0])));
        }
        Ok(out.into())
    }
}

fn pair(a_on: bool, b_on: bool) -> Pair<Rle> {
    let c = || config(&[(0x20, 1), (0x90, 1)]);
    Pair::with_codecs(c(), Rle { enabled: a_on }, c(), Rle { enabled: b_on })
}

#[test]
fn compressible_messages_travel_compressed_both_ways() {
    let mut p = pair(true, true);
    let zeros = Bytes::from(vec![0u8; 300_000]);
    let noise: Bytes = (0..1000u32)
        .map(|i| (i * 7919 % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    p.a.mux.send(0x20, zeros.clone()).unwrap();
    p.a.mux.send(0x20, noise.clone()).unwrap(); // RLE makes it bigger: sent as is
    p.a.mux.send(0x90, zeros.clone()).unwrap(); // the codec skips this channel
    p.b.mux.send(0x20, zeros.clone()).unwrap();
    p.drive();
    assert_eq!(
        p.b.messages(),
        vec![(0x20, zeros.clone()), (0x20, noise), (0x90, zeros.clone())]
    );
    assert_eq!(p.a.messages(), vec![(0x20, zeros)]);
    assert_eq!(p.a.mux.stats().compressed_out, 1);
    assert_eq!(p.b.mux.stats().compressed_in, 1);
    assert!(p.a.mux.stats().data_bytes_out < 310_000 + 1000);
    assert_eq!(
        p.a.mux.local_hello().features & FEATURE_COMPRESSION,
        FEATURE_COMPRESSION
    );
}

#[test]
fn no_compression_unless_both_offer_it() {
    let mut p = pair(true, false);
    let zeros = Bytes::from(vec![0u8; 50_000]);
    p.a.mux.send(0x20, zeros.clone()).unwrap();
    p.drive();
    assert_eq!(p.b.messages(), vec![(0x20, zeros)]);
    assert_eq!(p.a.mux.stats().compressed_out, 0);
    assert_eq!(p.b.mux.local_hello().features & FEATURE_COMPRESSION, 0);
}

#[test]
fn decompression_is_bounded_by_the_channel_cap() {
    let now = std::time::Instant::now();
    let mut c = config(&[(0x20, 1)]);
    c.channels[0].recv_message_capacity = 1000;
    let mut m = Mux::with_codec(c, Rle { enabled: true }, now).unwrap();
    let mut h = hello(&[(0x20, 1 << 20, 1 << 20)]);
    h.features = FEATURE_COMPRESSION;
    m.handle_record(now, &record(&[Frame::Hello(h)])).unwrap();
    // 4 × 255 = 1020 bytes from 8: a small bomb.
    let bomb = [255u8, 1, 255, 1, 255, 1, 255, 1];
    let f = Frame::Data(DataFrame {
        ttl_ms: None,
        channel: 0x20,
        flags: DATA_START | DATA_END | DATA_COMPRESSED,
        request_id: None,
        chunk: &bomb,
    });
    let err = m.handle_record(now, &record(&[f])).unwrap_err();
    assert!(
        matches!(err, MuxError::Decompress { channel: 0x20, .. }),
        "{err:?}"
    );
    assert_eq!(err.reset_code(), ResetCode::COMPRESSION_ERROR);
}
