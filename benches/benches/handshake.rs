//! The SecretConnection handshake's CPU cost, both ends in one thread over in-memory buffers
//! (no sockets): ephemeral keys, the X25519 exchange, key derivation, the signed challenge
//! and its verification, each twice. What S7 pays per connection besides the kernel's TCP
//! work and the engine's bookkeeping.
//!
//! - `secret_handshake/pair`: two complete handshakes against each other.
//! - `secret_handshake/start`: one `Handshake::new` (the ephemeral public key).

use std::hint::black_box;

use criterion::Criterion;
use ringwire::proto::secret::{Handshake, NodeKey};

/// Runs two handshakes against each other to completion; returns the bytes exchanged.
fn drive(mut a: Handshake, mut b: Handshake) -> usize {
    let (mut a_out, mut b_out) = (Vec::new(), Vec::new());
    let (mut a_read, mut b_read) = (0usize, 0usize);
    while !(a.is_complete() && b.is_complete()) {
        a.poll_transmit(&mut a_out);
        b.poll_transmit(&mut b_out);
        a_read += a.handle_input(&b_out[a_read..]).expect("honest peer");
        b_read += b.handle_input(&a_out[b_read..]).expect("honest peer");
        assert!(!a.is_failed() && !b.is_failed(), "handshake failed");
    }
    a_out.len() + b_out.len()
}

fn handshake(c: &mut Criterion) {
    let (ka, kb) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
    let mut group = c.benchmark_group("secret_handshake");
    let mut n = 0u8;
    group.bench_function("pair", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let a = Handshake::new(ka.clone(), [n; 32]);
            let b = Handshake::new(kb.clone(), [n ^ 0x5a; 32]);
            black_box(drive(a, b))
        })
    });
    group.bench_function("start", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            black_box(Handshake::new(ka.clone(), black_box([n; 32])).local_ephemeral_public())
        })
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    handshake(&mut c);
    c.final_summary();
}
