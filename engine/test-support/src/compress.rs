//! Inputs for the compression tests: synthetic transactions, random bytes, frame surgery.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A JSON-encoded transfer like a mempool carries: repeated field names and addresses from a small
/// account set, random signatures.
pub fn transaction(rng: &mut impl Rng, accounts: &[String]) -> String {
    let from = &accounts[rng.random_range(0..accounts.len())];
    let to = &accounts[rng.random_range(0..accounts.len())];
    let signature: String = (0..88)
        .map(|_| char::from(BASE64[rng.random_range(0..64)]))
        .collect();
    format!(
        concat!(
            r#"{{"body":{{"messages":[{{"@type":"/cosmos.bank.v1beta1.MsgSend","from_address":"{}","#,
            r#""to_address":"{}","amount":[{{"denom":"uatom","amount":"{}"}}]}}],"memo":"","#,
            r#""timeout_height":"0"}},"auth_info":{{"fee":{{"amount":[{{"denom":"uatom","amount":"{}"}}],"#,
            r#""gas_limit":"{}"}},"sequence":"{}"}},"signatures":["{}"]}}"#
        ),
        from,
        to,
        rng.random_range(1..10_000_000u64),
        rng.random_range(100..10_000u32),
        rng.random_range(80_000..300_000u32),
        rng.random_range(0..5_000u32),
        signature
    )
}

/// `count` account addresses.
pub fn accounts(rng: &mut impl Rng, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let tail: String = (0..38)
                .map(|_| char::from(BECH32[rng.random_range(0..32)]))
                .collect();
            format!("cosmos1{tail}")
        })
        .collect()
}

/// A batch of transactions (a mempool gossip message) of exactly `len` bytes.
pub fn compressible(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let accounts = accounts(&mut rng, 64);
    let mut out = Vec::with_capacity(len + 1024);
    while out.len() < len {
        out.extend_from_slice(transaction(&mut rng, &accounts).as_bytes());
        out.push(b'\n');
    }
    out.truncate(len);
    out
}

/// `len` uniformly random bytes.
pub fn random(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = vec![0; len];
    rng.fill_bytes(&mut out);
    out
}

/// Where a frame's Frame_Content_Size field lies (RFC 8878 §3.1.1.1), or `None` if it has none.
pub fn content_size_field(frame: &[u8]) -> Option<std::ops::Range<usize>> {
    let descriptor = frame[4];
    let single_segment = descriptor & 0x20 != 0;
    let dict_id_len = [0, 1, 2, 4][usize::from(descriptor & 0x03)];
    let fcs_len = match descriptor >> 6 {
        0 if single_segment => 1,
        0 => return None,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let start = 5 + usize::from(!single_segment) + dict_id_len;
    Some(start..start + fcs_len)
}

/// Rewrites the content size a frame declares, keeping the field's width.
pub fn patch_content_size(frame: &mut [u8], declared: u64) {
    let field = content_size_field(frame).expect("frame declares a content size");
    let value = if field.len() == 2 {
        declared - 256
    } else {
        declared
    };
    let bytes = value.to_le_bytes();
    let width = field.len();
    frame[field].copy_from_slice(&bytes[..width]);
}
