//! Property tests: round trips under any chunking, and no panic on any input.

use proptest::prelude::*;

use super::super::{FrameOpener, FrameSealer, Handshake};
use super::{eph_secret, node_key, pair};

const KEY: [u8; 32] = [0x17; 32];

/// Splits `bytes` at the given cut points (taken modulo the length).
fn chunks<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn seal_open_round_trip(
        writes in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..3000), 0..6),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut sealer = FrameSealer::new(&KEY);
        let mut wire = Vec::new();
        for w in &writes {
            sealer.seal(w, &mut wire).unwrap();
        }
        let mut opener = FrameOpener::new(&KEY);
        let mut got = Vec::new();
        for c in chunks(&wire, &cuts) {
            prop_assert_eq!(opener.open(c, &mut got).unwrap(), c.len());
        }
        prop_assert_eq!(got, writes.concat());
        prop_assert_eq!(opener.buffered(), 0);
    }

    #[test]
    fn opener_never_panics(input in prop::collection::vec(any::<u8>(), 0..5000), cut in any::<usize>()) {
        let mut opener = FrameOpener::new(&KEY);
        let mut out = Vec::new();
        let cut = cut % (input.len() + 1);
        let _ = opener.open(&input[..cut], &mut out);
        let _ = opener.open(&input[cut..], &mut out);
        prop_assert!(out.is_empty());
    }

    #[test]
    fn handshake_never_panics_on_garbage(input in prop::collection::vec(any::<u8>(), 0..3000)) {
        let mut h = Handshake::new(node_key(1), eph_secret(1));
        if let Ok(n) = h.handle_input(&input) {
            prop_assert!(n <= input.len());
        }
        let mut out = Vec::new();
        h.poll_transmit(&mut out);
        prop_assert!(out.len() <= 35 + 1044);
        let _ = h.into_session();
    }

    #[test]
    fn handshake_never_panics_on_garbage_after_a_valid_ephemeral(
        tail in prop::collection::vec(any::<u8>(), 0..3000),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let (mut a, mut b) = pair();
        let mut input = Vec::new();
        b.poll_transmit(&mut input);
        input.truncate(35);
        input.extend_from_slice(&tail);
        for c in chunks(&input, &cuts) {
            match a.handle_input(c) {
                Ok(n) => prop_assert!(n <= c.len()),
                Err(_) => break,
            }
        }
        prop_assert!(!a.is_complete());
    }

    #[test]
    fn honest_handshake_under_any_chunking(cuts_a in prop::collection::vec(any::<usize>(), 0..8),
                                           cuts_b in prop::collection::vec(any::<usize>(), 0..8)) {
        let (mut a, mut b) = pair();
        let (mut a_out, mut b_out) = (Vec::new(), Vec::new());
        a.poll_transmit(&mut a_out);
        b.poll_transmit(&mut b_out);
        // Each side's full output exists once it has seen the peer's ephemeral key; feed the
        // ephemeral messages first, then everything in random pieces.
        a.handle_input(&b_out[..35]).unwrap();
        b.handle_input(&a_out[..35]).unwrap();
        a.poll_transmit(&mut a_out);
        b.poll_transmit(&mut b_out);
        for c in chunks(&b_out[35..], &cuts_a) {
            prop_assert_eq!(a.handle_input(c).unwrap(), c.len());
        }
        for c in chunks(&a_out[35..], &cuts_b) {
            prop_assert_eq!(b.handle_input(c).unwrap(), c.len());
        }
        prop_assert!(a.is_complete() && b.is_complete());
        let (sa, sb) = (a.into_session().unwrap(), b.into_session().unwrap());
        prop_assert_eq!(sa.remote_node_id(), node_key(2).node_id());
        prop_assert_eq!(sb.remote_node_id(), node_key(1).node_id());
    }
}
