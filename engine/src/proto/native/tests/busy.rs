//! Credit follows priority: while a higher-priority channel carries data, a lower one is
//! topped up only to its busy cap, so little bulk can be sealed ahead of an urgent message.

use std::time::Duration;

use bytes::Bytes;

use super::pair::{Pair, chan};
use crate::proto::native::NativeConfig;

const URGENT: u8 = 0x20;
const BULK: u8 = 0x21;
const WINDOW: u32 = 1 << 20;
const BUSY: u32 = 64 * 1024;
const CHUNK: usize = 16 * 1024;

fn cfg(busy_window: u32) -> NativeConfig {
    let mut urgent = chan(URGENT, 10);
    let mut bulk = chan(BULK, 1);
    for c in [&mut urgent, &mut bulk] {
        c.initial_window = WINDOW;
        c.send_queue_capacity = 10_000;
    }
    let mut n = NativeConfig::with_channels(vec![urgent, bulk]);
    n.recv_queue_capacity = 100_000;
    n.busy_window = busy_window;
    n
}

fn bulk(p: &mut Pair, n: usize) {
    for i in 0..n {
        p.a.mux
            .send(BULK, Bytes::from(vec![i as u8; CHUNK]))
            .unwrap();
    }
}

/// The most bulk credit the sender holds at any step while it streams two windows of bulk,
/// after a first window went through with `urgent` traffic (or none) beside it; the receiver
/// reads everything as it comes. Credit held is what the sender may seal ahead of an urgent
/// message.
fn bulk_credit(busy_window: u32, urgent: bool) -> u32 {
    let mut p = Pair::new(cfg(busy_window), cfg(busy_window));
    p.drive();
    if urgent {
        p.a.mux.send(URGENT, Bytes::from_static(b"vote")).unwrap();
    }
    bulk(&mut p, WINDOW as usize / CHUNK + 8);
    p.drive();
    bulk(&mut p, 2 * WINDOW as usize / CHUNK);
    let mut most = 0;
    while p.step() {
        most = most.max(p.a.mux.send_credit(BULK).unwrap_or(0));
    }
    assert_eq!(
        p.b.messages().len(),
        usize::from(urgent) + 3 * WINDOW as usize / CHUNK + 8
    );
    assert_eq!(p.a.error, None);
    assert_eq!(p.b.error, None);
    most
}

#[test]
fn a_busy_higher_channel_caps_the_credit_of_a_lower_one() {
    let capped = bulk_credit(BUSY, true);
    assert!(capped <= BUSY, "{capped}");
    assert!(capped >= BUSY / 2, "{capped}");
    // Without urgent traffic, or with the cap off, the full window is granted again.
    for uncapped in [bulk_credit(BUSY, false), bulk_credit(0, true)] {
        assert!(uncapped > WINDOW / 2, "{uncapped}");
    }
}

#[test]
fn the_cap_lifts_once_the_higher_channel_has_been_quiet_for_the_horizon() {
    let mut p = Pair::new(cfg(BUSY), cfg(BUSY));
    p.drive();
    p.a.mux.send(URGENT, Bytes::from_static(b"vote")).unwrap();
    bulk(&mut p, 2 * WINDOW as usize / CHUNK);
    p.drive();
    assert!(p.a.mux.send_credit(BULK).is_some_and(|c| c <= BUSY));
    // Just before the horizon the cap holds; a second after the urgent channel's last data
    // it no longer counts as busy, and the next credit returned tops the bulk channel up.
    p.advance(Duration::from_millis(999));
    bulk(&mut p, 8);
    p.drive();
    assert!(p.a.mux.send_credit(BULK).is_some_and(|c| c <= BUSY));
    p.advance(Duration::from_millis(1));
    bulk(&mut p, 8);
    p.drive();
    // What it gets now is its drain cap: a tenth of a second of the rate its application
    // took (2 MiB in this one simulated second), above the busy cap.
    assert!(
        p.a.mux.send_credit(BULK).is_some_and(|c| c > 2 * BUSY),
        "{:?}",
        p.a.mux.send_credit(BULK)
    );
    assert_eq!(p.b.messages().len(), 1 + 2 * WINDOW as usize / CHUNK + 16);
}
#[test]
fn a_capped_channel_still_completes_every_message() {
    let mut p = Pair::new(cfg(BUSY), cfg(BUSY));
    p.drive();
    // A message four times the busy cap, with urgent traffic going on: it completes.
    p.a.mux.send(URGENT, Bytes::from_static(b"vote")).unwrap();
    bulk(&mut p, 80);
    let big = Bytes::from(vec![9u8; 4 * BUSY as usize]);
    p.a.mux.send(BULK, big.clone()).unwrap();
    p.b.mux.send(URGENT, Bytes::from_static(b"reply")).unwrap();
    p.drive();
    let msgs = p.b.messages();
    assert_eq!(msgs.len(), 82);
    assert_eq!(msgs.last().map(|(_, m)| m.clone()), Some(big));
    assert_eq!(p.a.error, None);
    assert_eq!(p.b.error, None);
}

/// Most messages waiting at a receiver whose application takes 10 of 1 KiB every 10 ms
/// (1 MB/s) from a sender that always has more, over three simulated seconds after the first.
fn waiting_at_a_slow_pace(busy_window: u32) -> usize {
    let mut p = Pair::new(cfg(busy_window), cfg(busy_window));
    p.drive();
    p.b.drain = false;
    let mut most = 0;
    for tick in 0..400 {
        while p.a.mux.queued_messages_out(BULK) < 1000 {
            p.a.mux
                .send(BULK, Bytes::from(vec![tick as u8; 1024]))
                .unwrap();
        }
        p.advance(Duration::from_millis(10));
        for _ in 0..10 {
            p.b.mux.poll_event();
        }
        p.drive();
        if tick >= 100 {
            most = most.max(p.b.mux.queued_messages());
        }
    }
    assert_eq!(p.a.error, None);
    assert_eq!(p.b.error, None);
    most
}

#[test]
fn a_slow_application_keeps_a_tenth_of_a_second_of_its_pace_in_flight() {
    // 1 MB/s for 100 ms is about 100 messages of 1 KiB (64 KiB, the busy floor, is less).
    let capped = waiting_at_a_slow_pace(BUSY);
    assert!((60..=160).contains(&capped), "{capped} messages waiting");
    // Off: a whole 1 MiB window waits, a second of this pace.
    let off = waiting_at_a_slow_pace(0);
    assert!(off >= 900, "{off} messages waiting");
}
