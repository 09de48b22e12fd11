//! `ringwire-abi-node CONFIG.toml`: a node made only through the C ABI, the way a C program
//! makes one — `ringwire_config_load_toml`, `ringwire_node_start`, one
//! `ringwire_node_open_channel` per stock channel — and run like `ringwire node`: every
//! channel is drained, requests are answered with their own payload.
//!
//! It prints `node ID listening on ADDR (C ABI)` once it runs, then reads commands from
//! standard input, one per line: `stats` prints `stats {JSON}` (the `ringwire_node_stats`
//! counters), `peers` prints `peers N`. End of input stops the node and exits 0. The
//! adversarial tests (`docs/RELIABILITY.md`) run it beside `ringwire node` to show that a node
//! of the C ABI holds the same limits.

use std::ffi::{CStr, CString, c_char};
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::ptr::null_mut;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ringwire::proto::conn::ChannelDescriptor;
use ringwire_ffi::channel::*;
use ringwire_ffi::config::*;
use ringwire_ffi::node::*;
use ringwire_ffi::result::*;

/// Messages taken per receive.
const BATCH: usize = 64;

/// A handle shared with the drain threads (the C ABI's handles may be used from any thread).
#[derive(Clone, Copy)]
struct Shared<T>(*mut T);
// SAFETY: the C ABI documents every node and channel function as callable from any thread; the
// pointer is only passed to those functions.
unsafe impl<T> Send for Shared<T> {}

fn check(what: &str, r: ringwire_result) -> Result<(), String> {
    if r == ringwire_result::Ok {
        return Ok(());
    }
    let mut buf = [0 as c_char; 512];
    let mut written = 0;
    // SAFETY: a 512-byte buffer and a valid out-pointer.
    unsafe { ringwire_last_error(buf.as_mut_ptr(), buf.len(), &mut written) };
    // SAFETY: the call wrote a NUL-terminated string into `buf` (or left it zeroed).
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
    Err(format!("{what}: {r:?}: {text}"))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: ringwire-abi-node CONFIG.toml")?;
    let path = CString::new(path).map_err(|e| e.to_string())?;
    let mut config = null_mut();
    let mut node = null_mut();
    // SAFETY: a NUL-terminated path and valid out-pointers; the config is freed once, after
    // the start (which does not consume it).
    unsafe {
        check(
            "load the configuration",
            ringwire_config_load_toml(path.as_ptr(), &mut config),
        )?;
        let started = ringwire_node_start(config, &mut node);
        ringwire_config_free(config);
        check("start the node", started)?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut drains = Vec::new();
    let mut channels = Vec::new();
    for d in ChannelDescriptor::stock() {
        let mut ch = null_mut();
        // SAFETY: a live node and a valid out-pointer.
        let r = unsafe {
            ringwire_node_open_channel(
                node,
                d.id,
                d.priority,
                d.send_queue_capacity,
                d.recv_message_capacity,
                &mut ch,
            )
        };
        // With `[p2p] pex` on, peer exchange holds channel 0x00.
        if r == ringwire_result::Channel && d.id == 0x00 {
            continue;
        }
        check("open a channel", r)?;
        channels.push(Shared(ch));
        let (ch, stop) = (Shared(ch), stop.clone());
        drains.push(std::thread::spawn(move || drain(ch, &stop)));
    }

    let mut id = [0 as c_char; 41];
    let mut addr = [0 as c_char; 64];
    let mut written = 0;
    // SAFETY: a live node; 41- and 64-byte buffers with their lengths; a valid out-pointer.
    let (id, addr) = unsafe {
        check(
            "node ID",
            ringwire_node_get_id_hex(node, id.as_mut_ptr(), id.len(), &mut written),
        )?;
        check(
            "listen address",
            ringwire_node_listen_addr(node, addr.as_mut_ptr(), addr.len(), &mut written),
        )?;
        (
            CStr::from_ptr(id.as_ptr()).to_string_lossy().into_owned(),
            CStr::from_ptr(addr.as_ptr()).to_string_lossy().into_owned(),
        )
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "node {id} listening on {addr} (C ABI)");
    let _ = out.flush();

    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let answer = match line.trim() {
            "stats" => format!("stats {}", stats_json(node)?),
            "peers" => {
                let mut n = 0;
                // SAFETY: a live node and a valid out-pointer.
                check("peers", unsafe { ringwire_node_peer_count(node, &mut n) })?;
                format!("peers {n}")
            }
            other => format!("error unknown command {other:?}"),
        };
        let _ = writeln!(out, "{answer}");
        let _ = out.flush();
    }

    stop.store(true, Ordering::Release);
    // SAFETY: a live node; stopping wakes the drains (their receives return `STOPPED`).
    unsafe { ringwire_node_stop(node, 5000) };
    for d in drains {
        let _ = d.join();
    }
    // SAFETY: every handle is freed once, after the threads using them ended.
    unsafe {
        for ch in channels {
            ringwire_channel_free(ch.0);
        }
        ringwire_node_free(node);
    }
    Ok(())
}

/// Drains one channel until the node stops: requests are answered with their payload.
fn drain(ch: Shared<ringwire_channel>, stop: &AtomicBool) {
    let mut messages = [const {
        ringwire_message {
            peer: ringwire_node_id { bytes: [0; 20] },
            local: false,
            channel: 0,
            payload: std::ptr::null(),
            payload_len: 0,
            request_id: 0,
        }
    }; BATCH];
    let mut batch = null_mut();
    while !stop.load(Ordering::Acquire) {
        let mut n = 0;
        // SAFETY: a live channel; `messages` holds BATCH elements; the previous batch is
        // released here and its views are not read again.
        let r = unsafe {
            ringwire_channel_recv_next(
                ch.0,
                batch,
                messages.as_mut_ptr(),
                BATCH,
                200,
                &mut batch,
                &mut n,
            )
        };
        if r != ringwire_result::Ok {
            break;
        }
        for m in &messages[..n] {
            if m.request_id != 0 {
                // SAFETY: a live channel; the view's bytes live until the batch is released.
                unsafe { ringwire_channel_respond(ch.0, m.request_id, m.payload, m.payload_len) };
            }
        }
    }
    // SAFETY: any pointer is accepted; this batch is not read again.
    unsafe { ringwire_batch_release(batch) };
}

/// The node's counters as one JSON object, named as `ringwire stats` names them.
fn stats_json(node: *const ringwire_node) -> Result<String, String> {
    let mut s = ringwire_node_stats::default();
    // SAFETY: a live node and a valid out-pointer.
    check("stats", unsafe { ringwire_node_get_stats(node, &mut s) })?;
    let fields = [
        ("peers", s.peers),
        ("fanout_dropped", s.fanout_dropped),
        ("late_responses", s.late_responses),
        ("refused", s.refused),
        ("protocol_errors", s.protocol_errors),
        ("io_errors", s.io_errors),
        ("accepted", s.accepted),
        ("accept_refused", s.accept_refused),
        ("accept_errors", s.accept_errors),
        ("events_lagged", s.events_lagged),
        ("read_buffers_exhausted", s.read_buffers_exhausted),
        ("control_floods", s.control_floods),
        ("partial_budget_exceeded", s.partial_budget_exceeded),
        ("queued_dropped", s.queued_dropped),
        ("pex_addresses_rate_limited", s.pex_addresses_rate_limited),
        ("pex_addresses_refused", s.pex_addresses_refused),
        ("pex_addresses_evicted", s.pex_addresses_evicted),
        ("pex_capability_replacements", s.pex_capability_replacements),
        ("expired_before_send", s.expired_before_send),
        ("expired_before_delivery", s.expired_before_delivery),
    ];
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    Ok(format!("{{{}}}", body.join(",")))
}
