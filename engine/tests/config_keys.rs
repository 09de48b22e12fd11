//! The project rule: every configuration key ringwire accepts changes behaviour, and a test shows
//! it. [`KEYS`] names, for each key of `ringwire config default`, the tests that set it and
//! assert its effect; [`PENDING`] lists the keys that have no behaviour yet, with the reason;
//! [`IN_PROGRESS`] the keys whose behaviour is being built on other branches right now (none
//! at present). The
//! tests here hold the tables to the schema: every key is in exactly one table, every key named
//! exists, every `[p2p]` key a CometBFT home imports is covered, and every test named exists.
//! `docs/CONFIGURATION.md` is written from these tables.
//!
//! A test is named as `path::name`, the path relative to the repository root: a Rust test
//! (`#[test] fn name(`) or a Go test (`func TestName(` in a `_test.go` file).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ringwire::config::{COMETBFT_P2P_KEYS, Config};

const NODE_CONFIG: &str = "engine/tests/node_config.rs";

/// Every key with behaviour, and the tests that show it.
const KEYS: &[(&str, &[&str])] = &[
    // [node]
    (
        "node.moniker",
        &["engine/tests/node_config.rs::moniker_and_network_are_what_peers_see_and_must_match"],
    ),
    (
        "node.network",
        &[
            "engine/tests/node_config.rs::moniker_and_network_are_what_peers_see_and_must_match",
            "bindings-go/config_file_test.go::TestConfigFileSetsKeyNetworkAndPeerLimits",
        ],
    ),
    (
        "node.home",
        &[
            "engine/tests/node_config.rs::node_key_file_under_home_is_the_node_identity",
            "engine/tests/config_schema.rs::load_reads_a_file_and_sets_home",
        ],
    ),
    (
        "node.node_key_file",
        &[
            "engine/tests/node_config.rs::node_key_file_under_home_is_the_node_identity",
            "ffi/tests/abi.rs::a_toml_file_sets_the_key_and_network",
            "bindings-go/config_file_test.go::TestConfigFileSetsKeyNetworkAndPeerLimits",
        ],
    ),
    // [p2p]
    (
        "p2p.laddr",
        &["engine/tests/node_config.rs::laddr_is_where_the_node_listens"],
    ),
    (
        "p2p.external_address",
        &["engine/tests/node_pex.rs::external_address_is_what_peers_see_and_learn"],
    ),
    (
        "p2p.persistent_peers",
        &[
            "engine/tests/node_config.rs::persistent_peers_are_dialed_at_start",
            "cli/tests/operate.rs::metrics_and_admin_commands_on_running_nodes",
            "engine/tests/node_peers.rs::persistent_peer_is_redialled_after_it_restarts",
        ],
    ),
    (
        "p2p.unconditional_peer_ids",
        &["engine/tests/node_config.rs::inbound_cap_refuses_all_but_unconditional_peers"],
    ),
    (
        "p2p.private_peer_ids",
        &[
            "engine/tests/node_pex.rs::private_peer_ids_are_never_sent_nor_learned_from_hearsay",
            "engine/tests/node_pex.rs::private_peer_ids_never_reach_ringwire_peers",
            "interop/private_test.go::TestPrivatePeersNeverReachStock",
        ],
    ),
    (
        "p2p.max_num_inbound_peers",
        &["engine/tests/node_config.rs::inbound_cap_refuses_all_but_unconditional_peers"],
    ),
    (
        "p2p.max_num_outbound_peers",
        &[
            "engine/tests/node_config.rs::outbound_cap_refuses_a_dial_past_it",
            "engine/tests/node_discovery.rs::a_hundred_nodes_from_one_seed_reach_their_outbound_targets",
        ],
    ),
    (
        "p2p.send_rate",
        &[
            "engine/tests/node_rates.rs::send_rate_caps_bytes_per_second_to_a_peer_on_both_protocols",
        ],
    ),
    (
        "p2p.recv_rate",
        &[
            "engine/tests/node_rates.rs::recv_rate_caps_bytes_per_second_from_a_peer_on_both_protocols",
        ],
    ),
    (
        "p2p.flush_throttle_timeout",
        &["engine/tests/node_rates.rs::flush_throttle_holds_a_partial_batch_of_stock_packets"],
    ),
    (
        "p2p.max_packet_msg_payload_size",
        &[
            "engine/tests/config_conn.rs::max_packet_msg_payload_size_is_the_largest_packet_sent_and_accepted",
            "engine/tests/node_config.rs::max_packet_msg_payload_size_reaches_the_connections_of_a_node",
        ],
    ),
    (
        "p2p.seeds",
        &[
            "engine/tests/node_discovery.rs::seeds_are_asked_for_addresses_then_dropped",
            "interop/seed_test.go::TestStockSeedSeedsRingwire",
            "engine/tests/node_discovery.rs::a_hundred_nodes_from_one_seed_reach_their_outbound_targets",
        ],
    ),
    (
        "p2p.pex",
        &["engine/tests/node_config.rs::pex_off_learns_no_addresses"],
    ),
    (
        "p2p.seed_mode",
        &[
            "engine/tests/node_discovery.rs::seed_mode_crawls_answers_and_disconnects",
            "interop/seed_test.go::TestRingwireSeedSeedsStock",
            "engine/tests/node_discovery.rs::a_hundred_nodes_from_one_seed_reach_their_outbound_targets",
        ],
    ),
    (
        "p2p.capability_targets",
        &[
            "engine/tests/node_discovery.rs::with_archive_on_a_tenth_of_the_nodes_each_node_reaches_its_thirty_percent_archive_target",
            "engine/tests/config_schema.rs::capability_targets_parse_with_clear_errors",
            "ffi/tests/admission.rs::capability_targets_reach_the_c_abi_config_and_bad_ones_are_refused",
        ],
    ),
    (
        "p2p.allow_duplicate_ip",
        &[
            "engine/tests/node_config.rs::peers_from_one_address_follow_allow_duplicate_ip_and_max_connections_per_ip",
            "bindings-go/config_file_test.go::TestConfigFileSetsKeyNetworkAndPeerLimits",
        ],
    ),
    (
        "p2p.handshake_timeout",
        &["engine/tests/node_config.rs::handshake_timeout_closes_a_silent_socket"],
    ),
    (
        "p2p.dial_timeout",
        &["engine/tests/node_config.rs::dial_timeout_bounds_an_unanswered_dial"],
    ),
    (
        "p2p.addr_book_file",
        &[
            "engine/tests/node_pex.rs::addr_book_file_keeps_the_book_across_restarts",
            "engine/tests/node_pex.rs::an_unreadable_addr_book_file_fails_start_and_names_the_file",
            "engine/tests/node_pex.rs::a_configuration_without_a_home_keeps_its_book_in_memory",
            "interop/addrbook_test.go::TestAddrBookStockToRingwireToStock",
        ],
    ),
    (
        "p2p.addr_book_strict",
        &["engine/tests/node_pex.rs::addr_book_strict_refuses_non_routable_addresses"],
    ),
    // [engine]
    (
        "engine.driver",
        &["engine/tests/node_config.rs::the_configured_driver_and_shard_count_run"],
    ),
    (
        "engine.shards",
        &["engine/tests/node_config.rs::the_configured_driver_and_shard_count_run"],
    ),
    (
        "engine.native",
        &["engine/tests/node_config.rs::native_and_capabilities_are_what_peers_get"],
    ),
    (
        "engine.capabilities",
        &["engine/tests/node_config.rs::native_and_capabilities_are_what_peers_get"],
    ),
    (
        "engine.compression",
        &["engine/tests/config_conn.rs::compression_off_sends_messages_raw"],
    ),
    (
        "engine.compression_level",
        &["engine/tests/config_conn.rs::compression_level_trades_speed_for_size"],
    ),
    (
        "engine.compression_min_size",
        &["engine/tests/config_conn.rs::compression_min_size_sends_shorter_messages_raw"],
    ),
    (
        "engine.compression_max_ratio",
        &["engine/tests/config_conn.rs::compression_max_ratio_decides_what_is_worth_compressing"],
    ),
    // [limits]
    (
        "limits.max_pending_handshakes",
        &["engine/tests/node_config.rs::pending_handshakes_are_capped_in_all_and_per_address"],
    ),
    (
        "limits.max_pending_handshakes_per_ip",
        &["engine/tests/node_config.rs::pending_handshakes_are_capped_in_all_and_per_address"],
    ),
    (
        "limits.max_connections_per_ip",
        &[
            "engine/tests/node_config.rs::peers_from_one_address_follow_allow_duplicate_ip_and_max_connections_per_ip",
        ],
    ),
    (
        "limits.max_peer_inflight_bytes",
        &[
            "engine/tests/config_conn.rs::max_peer_inflight_bytes_bounds_bytes_waiting_from_a_stock_peer",
        ],
    ),
    (
        "limits.recv_queue_capacity",
        &[
            "engine/tests/config_conn.rs::recv_queue_capacity_bounds_messages_waiting_from_a_stock_peer",
        ],
    ),
    (
        "limits.native_window",
        &["engine/tests/config_conn.rs::native_window_bounds_data_ahead_of_the_application"],
    ),
    (
        "limits.native_busy_window",
        &["engine/tests/config_conn.rs::native_busy_window_bounds_bulk_in_flight_while_votes_flow"],
    ),
    (
        "limits.native_max_chunk",
        &["engine/tests/config_conn.rs::native_max_chunk_is_the_largest_data_frame_sent"],
    ),
    (
        "limits.max_inflight_requests",
        &[
            "engine/tests/config_conn.rs::max_inflight_requests_bounds_requests_outstanding_from_a_peer",
        ],
    ),
    (
        "limits.write_budget",
        &["engine/tests/config_conn.rs::write_budget_bounds_the_bytes_of_one_transmit_call"],
    ),
    (
        "limits.zstd_window_log_max",
        &[
            "engine/tests/config_conn.rs::zstd_window_log_max_refuses_frames_needing_a_larger_window",
        ],
    ),
    (
        "limits.ping_interval",
        &["engine/tests/config_conn.rs::compat_keepalive_follows_ping_interval_and_pong_timeout"],
    ),
    (
        "limits.pong_timeout",
        &["engine/tests/config_conn.rs::compat_keepalive_follows_ping_interval_and_pong_timeout"],
    ),
    (
        "limits.native_ping_interval",
        &[
            "engine/tests/config_conn.rs::native_keepalive_follows_native_ping_interval_and_pong_timeout",
        ],
    ),
    (
        "limits.native_pong_timeout",
        &[
            "engine/tests/config_conn.rs::native_keepalive_follows_native_ping_interval_and_pong_timeout",
        ],
    ),
    (
        "limits.pex_request_interval",
        &["engine/tests/node_pex.rs::pex_request_interval_paces_requests"],
    ),
    (
        "limits.pex_max_addresses_per_message",
        &["engine/tests/node_pex.rs::pex_max_addresses_per_message_drops_longer_lists"],
    ),
    (
        "limits.pex_address_rate",
        &["engine/tests/node_pex.rs::an_address_flood_is_capped_by_pex_address_rate_and_burst"],
    ),
    (
        "limits.pex_address_burst",
        &["engine/tests/node_pex.rs::an_address_flood_is_capped_by_pex_address_rate_and_burst"],
    ),
    (
        "limits.max_address_book_size",
        &["engine/tests/node_pex.rs::max_address_book_size_bounds_the_book_by_eviction"],
    ),
    (
        "limits.pex_ban_duration",
        &["engine/tests/node_pex.rs::rule_breakers_are_banned_for_pex_ban_duration"],
    ),
    // [metrics]
    (
        "metrics.enabled",
        &["cli/tests/operate.rs::metrics_and_admin_commands_on_running_nodes"],
    ),
    (
        "metrics.listen",
        &["cli/tests/operate.rs::metrics_and_admin_commands_on_running_nodes"],
    ),
    (
        "metrics.namespace",
        &["cli/tests/operate.rs::metrics_namespace_prefixes_the_stock_names"],
    ),
    (
        "metrics.idle_series_timeout",
        &["cli/tests/operate.rs::metrics_series_of_a_gone_peer_leave_after_the_idle_timeout"],
    ),
    // [admin]
    (
        "admin.enabled",
        &["cli/tests/operate.rs::metrics_and_admin_commands_on_running_nodes"],
    ),
    (
        "admin.listen",
        &["cli/tests/operate.rs::metrics_and_admin_commands_on_running_nodes"],
    ),
    // [limits], built with the admission, budget and send-limit work
    (
        "limits.handshake_rate_per_ip",
        &[
            "engine/tests/node_handshake_rate.rs::a_handshake_flood_from_one_address_is_refused_at_accept_and_others_get_in",
        ],
    ),
    (
        "limits.handshake_burst_per_ip",
        &[
            "engine/tests/node_handshake_rate.rs::a_handshake_flood_from_one_address_is_refused_at_accept_and_others_get_in",
        ],
    ),
    (
        "limits.max_accepts_per_second",
        &[
            "engine/tests/node_accept_rate.rs::max_accepts_per_second_paces_the_listener",
            "cli/tests/adversarial.rs::a_handshake_burn_from_many_addresses_is_held_to_the_accept_and_handshake_rates_and_every_honest_request_is_answered",
        ],
    ),
    (
        "limits.accept_backoff",
        &[
            "engine/tests/node_accept_backoff.rs::the_listener_pauses_for_accept_backoff_after_each_failed_accept",
        ],
    ),
    (
        "limits.max_concurrent_dials",
        &["engine/tests/node_dialer.rs::max_concurrent_dials_caps_the_dials_in_progress"],
    ),
    (
        "limits.dial_backoff_min",
        &[
            "engine/tests/node_dialer.rs::dial_backoff_min_sets_the_first_redial_pause",
            "engine/tests/node_discovery.rs::a_book_of_dead_addresses_is_dialed_with_backoff_not_in_a_storm",
        ],
    ),
    (
        "limits.dial_backoff_max",
        &["engine/tests/node_dialer.rs::dial_backoff_max_caps_the_redial_pause"],
    ),
    (
        "limits.max_control_frames_per_second",
        &[
            "engine/tests/node_budgets.rs::a_ping_flood_beyond_max_control_frames_per_second_is_disconnected_and_counted",
        ],
    ),
    (
        "limits.max_node_info_size",
        &[
            "engine/tests/node_budgets.rs::a_node_info_beyond_max_node_info_size_fails_the_handshake",
        ],
    ),
    (
        "limits.native_recv_queue_capacity",
        &[
            "engine/tests/conn_budgets.rs::native_recv_queue_capacity_bounds_waiting_messages_and_keepalive_still_runs",
        ],
    ),
    (
        "limits.max_peer_send_bytes",
        &[
            "engine/tests/node_send_limits.rs::max_peer_send_bytes_bounds_what_waits_for_a_peer_over_all_its_channels",
        ],
    ),
    (
        "limits.channel_send_queue_capacity",
        &[
            "engine/tests/node_send_limits.rs::channel_send_queue_capacity_is_the_queue_of_channels_opened_without_one",
            "ffi/tests/send_queue.rs::a_channel_opened_without_a_queue_capacity_gets_the_configured_default",
        ],
    ),
    (
        "limits.max_partial_bytes_per_peer",
        &[
            "engine/tests/node_budgets.rs::partial_message_budgets_per_peer_and_node_wide_disconnect_and_are_counted",
        ],
    ),
    (
        "limits.max_partial_bytes",
        &[
            "engine/tests/node_budgets.rs::partial_message_budgets_per_peer_and_node_wide_disconnect_and_are_counted",
        ],
    ),
    (
        "limits.max_message_size",
        &[
            "engine/tests/node_config.rs::max_message_size_caps_what_a_channel_accepts",
            "engine/tests/node_message_size.rs::max_message_size_lowers_the_cap_of_the_applications_channels",
        ],
    ),
];

/// Keys accepted (and validated) that change nothing yet: why, and which work builds them.
const PENDING: &[(&str, &str)] = &[];

/// Keys whose behaviour other branches are building now; each moves to [`KEYS`] with its test
/// when that work merges.
const IN_PROGRESS: &[(&str, &str)] = &[];

/// Every key of the default configuration, as `section.key`, from the TOML the library renders
/// (the text `ringwire config default` prints).
fn default_keys() -> BTreeSet<String> {
    let text = Config::default_toml_with_comments();
    let table: toml::Table = text.parse().expect("the default configuration is TOML");
    let mut keys = BTreeSet::new();
    for (section, value) in &table {
        let toml::Value::Table(fields) = value else {
            panic!("top-level key {section} outside a section");
        };
        for key in fields.keys() {
            keys.insert(format!("{section}.{key}"));
        }
    }
    keys
}

/// Every key in the three tables, with the names of the tables holding it.
fn tabled() -> BTreeMap<&'static str, Vec<&'static str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, _) in KEYS {
        out.entry(key).or_default().push("KEYS");
    }
    for (key, _) in PENDING {
        out.entry(key).or_default().push("PENDING");
    }
    for (key, _) in IN_PROGRESS {
        out.entry(key).or_default().push("IN_PROGRESS");
    }
    out
}

#[test]
fn every_key_is_in_exactly_one_table() {
    let schema = default_keys();
    // The schema is large; an empty or half-read default would make the rest vacuous.
    assert!(schema.len() >= 70, "{} keys", schema.len());
    let tables = tabled();
    let mut problems = Vec::new();
    for key in &schema {
        match tables.get(key.as_str()) {
            None => problems.push(format!("{key}: in no table")),
            Some(t) if t.len() > 1 => problems.push(format!("{key}: in {}", t.join(" and "))),
            Some(_) => {}
        }
    }
    for key in tables.keys() {
        if !schema.contains(*key) {
            problems.push(format!("{key}: no such key in the default configuration"));
        }
    }
    for p2p in COMETBFT_P2P_KEYS {
        let key = format!("p2p.{p2p}");
        if !tables.contains_key(key.as_str()) {
            problems.push(format!(
                "{key}: imported from CometBFT homes but in no table"
            ));
        }
    }
    for (key, tests) in KEYS {
        if tests.is_empty() {
            problems.push(format!("{key}: in KEYS without a test"));
        }
    }
    for (key, why) in PENDING.iter().chain(IN_PROGRESS) {
        if why.trim().is_empty() {
            problems.push(format!("{key}: no reason given"));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether the Rust `fn name(` on `lines[at]` is a test: `#[test]` among the comments and
/// attributes right above it, back to the blank line or the end of the item before
/// (`#[ignore]`d tests count).
fn is_rust_test(lines: &[&str], at: usize) -> bool {
    lines[..at]
        .iter()
        .rev()
        .map(|l| l.trim())
        .take_while(|l| {
            l.starts_with("//") || !(l.is_empty() || l.ends_with('}') || l.ends_with(';'))
        })
        .any(|l| l == "#[test]")
}

/// Why `reference` (`path::name`) names no test, or `None` when it does.
fn missing_test(reference: &str) -> Option<String> {
    let Some((path, name)) = reference.rsplit_once("::") else {
        return Some("not path::name".to_owned());
    };
    let text = match std::fs::read_to_string(root().join(path)) {
        Ok(t) => t,
        Err(e) => return Some(format!("{path}: {e}")),
    };
    let lines: Vec<&str> = text.lines().collect();
    if path.ends_with(".go") {
        let decl = format!("func {name}(");
        let ok = path.ends_with("_test.go")
            && name.starts_with("Test")
            && lines.iter().any(|l| l.starts_with(&decl));
        return (!ok).then(|| format!("no `{decl}` test in {path}"));
    }
    let decl = format!("fn {name}(");
    let found: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(&decl))
        .map(|(i, _)| i)
        .collect();
    match found.as_slice() {
        [] => Some(format!("no `{decl}` in {path}")),
        [at] if is_rust_test(&lines, *at) => None,
        [_] => Some(format!("`{decl}` in {path} is not a #[test]")),
        _ => Some(format!("`{decl}` more than once in {path}")),
    }
}

#[test]
fn every_named_test_exists() {
    let mut named: Vec<&str> = KEYS
        .iter()
        .flat_map(|(_, tests)| tests.iter().copied())
        .collect();
    // Tests named in the reasons of PENDING.
    for (_, why) in PENDING {
        named.extend(
            why.split(|c: char| c == '(' || c == ')' || c == ',' || c.is_whitespace())
                .filter(|w| w.contains("::") && w.contains(".rs")),
        );
    }
    let problems: Vec<String> = named
        .iter()
        .filter_map(|r| missing_test(r).map(|why| format!("{r}: {why}")))
        .collect();
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    // The checker itself: it finds a test, and refuses a helper and a missing name.
    assert_eq!(
        missing_test(&format!("{NODE_CONFIG}::laddr_is_where_the_node_listens")),
        None
    );
    assert!(missing_test(&format!("{NODE_CONFIG}::from_text")).is_some());
    assert!(missing_test(&format!("{NODE_CONFIG}::no_such_test")).is_some());
    assert!(missing_test("bindings-go/config_file_test.go::TestNoSuchTest").is_some());
}
