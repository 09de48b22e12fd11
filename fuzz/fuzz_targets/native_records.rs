//! Peer bytes into the native record opener: whatever arrives, in whatever slicing, nothing
//! panics, `feed` never takes more than it is given and always makes progress, no record is
//! larger than 64 KiB, the opener buffers at most one record, and a dead opener stays dead.
//!
//! The sealed mode seals fuzzer-chosen plaintexts with a `RecordSealer` under the same key and
//! flips fuzzer-chosen bytes of the stream: an intact stream must open to exactly the
//! plaintexts; a damaged one must yield exactly the records that lie wholly before the first
//! damaged byte and none after.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringwire::proto::native::record::{
    MAX_RECORD_LEN, MAX_RECORD_PLAINTEXT, RECORD_HEADER_LEN, RECORD_TAG_LEN,
};
use ringwire::proto::native::{RecordError, RecordOpener, RecordSealer};
use ringwire_fuzz::{chunks, flip};

const KEY: [u8; 32] = [0xC3; 32];

#[derive(Arbitrary, Debug)]
enum Input {
    /// Raw bytes through `feed` and `next_record`.
    Feed { sizes: Vec<u16>, wire: Vec<u8> },
    /// Raw bytes through `open_in_place` where a whole record lies in the buffer, `feed`
    /// otherwise.
    InPlace { sizes: Vec<u16>, wire: Vec<u8> },
    /// Sealed records, damaged by the edits.
    Sealed {
        in_place: bool,
        edits: Vec<(u32, u8)>,
        /// Record lengths: 1 to 4096 bytes, or a full 64 KiB for 0.
        records: Vec<u16>,
        sizes: Vec<u16>,
        plain: Vec<u8>,
    },
}

/// What a stream gave: the records opened, in order, and the error that ended it, if any.
#[derive(Default)]
struct Opened {
    records: Vec<Vec<u8>>,
    error: Option<RecordError>,
}

/// Feeds one chunk, draining records as they complete. Returns false once the opener failed.
fn feed_chunk(opener: &mut RecordOpener, chunk: &[u8], opened: &mut Opened) -> bool {
    let mut rest = chunk;
    loop {
        match opener.next_record() {
            Ok(Some(plain)) => {
                assert!(!plain.is_empty() && plain.len() <= MAX_RECORD_PLAINTEXT);
                opened.records.push(plain.to_vec());
                continue;
            }
            Ok(None) => {}
            Err(e) => return fail(opener, opened, e),
        }
        if rest.is_empty() {
            return true;
        }
        match opener.feed(rest) {
            Ok(n) => {
                assert!(n >= 1 && n <= rest.len(), "feed took {n} of {}", rest.len());
                rest = &rest[n..];
            }
            Err(e) => return fail(opener, opened, e),
        }
    }
}

/// Opens whole records in place from the front of `chunk`, then feeds the rest.
fn in_place_chunk(opener: &mut RecordOpener, chunk: &mut [u8], opened: &mut Opened) -> bool {
    let mut pos = 0;
    while pos < chunk.len() {
        match opener.open_in_place(&mut chunk[pos..]) {
            Ok(Some(r)) => {
                assert!(r.consumed <= chunk.len() - pos && r.consumed <= MAX_RECORD_LEN);
                assert_eq!(r.plaintext.start, RECORD_HEADER_LEN);
                assert_eq!(r.plaintext.end + RECORD_TAG_LEN, r.consumed);
                opened
                    .records
                    .push(chunk[pos + r.plaintext.start..pos + r.plaintext.end].to_vec());
                pos += r.consumed;
            }
            Ok(None) => break,
            Err(e) => return fail(opener, opened, e),
        }
    }
    feed_chunk(opener, &chunk[pos..], opened)
}

fn fail(opener: &mut RecordOpener, opened: &mut Opened, e: RecordError) -> bool {
    assert!(opener.is_dead());
    assert!(!opener.has_partial());
    assert_eq!(opener.feed(b"x"), Err(RecordError::Dead));
    assert_eq!(opener.next_record(), Err(RecordError::Dead));
    opened.error = Some(e);
    false
}

fn open(stream: &mut [u8], sizes: &[u16], in_place: bool) -> Opened {
    let mut opener = RecordOpener::new(&KEY);
    let mut opened = Opened::default();
    let mut pieces = Vec::new();
    let mut at = 0;
    for chunk in chunks(stream, sizes, 2 * MAX_RECORD_LEN) {
        pieces.push(at..at + chunk.len());
        at += chunk.len();
    }
    for range in pieces {
        let chunk = &mut stream[range];
        let alive = if in_place {
            in_place_chunk(&mut opener, chunk, &mut opened)
        } else {
            feed_chunk(&mut opener, chunk, &mut opened)
        };
        if !alive {
            break;
        }
    }
    opened
}

fuzz_target!(|input: Input| match input {
    Input::Feed { sizes, mut wire } => {
        open(&mut wire, &sizes, false);
    }
    Input::InPlace { sizes, mut wire } => {
        open(&mut wire, &sizes, true);
    }
    Input::Sealed {
        in_place,
        edits,
        records,
        sizes,
        plain,
    } => {
        // Records of the chosen lengths, filled from `plain` (repeated as needed).
        let mut sealer = RecordSealer::new(&KEY);
        let mut stream = Vec::new();
        let mut sealed: Vec<(Vec<u8>, usize)> = Vec::new();
        let mut total = 0usize;
        for &len in records.iter().take(64) {
            let len = if len == 0 {
                MAX_RECORD_PLAINTEXT
            } else {
                usize::from(len) % 4096 + 1
            };
            if total + len > 96 << 10 {
                break;
            }
            total += len;
            let record: Vec<u8> = if plain.is_empty() {
                vec![0xAB; len]
            } else {
                plain.iter().copied().cycle().take(len).collect()
            };
            sealer.seal(&record, &mut stream).expect("counter remains");
            sealed.push((record, stream.len()));
        }
        let first = flip(&mut stream, &edits);
        let opened = open(&mut stream, &sizes, in_place);
        let intact = match first {
            None => sealed.len(),
            Some(at) => sealed.iter().take_while(|(_, end)| *end <= at).count(),
        };
        if first.is_none() {
            assert_eq!(opened.error, None, "an intact stream failed");
        }
        assert_eq!(
            opened.records.len(),
            intact,
            "expected exactly the {intact} records before the damage"
        );
        for ((want, _), got) in sealed.iter().zip(&opened.records) {
            assert_eq!(want, got, "the round trip changed a record");
        }
    }
});
