//! ringwire's TOML schema: defaults, the commented default file, unknown keys and bad values
//! named in errors, every limit's bounds.

use std::time::Duration;

use ringwire::Driver;
use ringwire::config::{AdminAddress, Config, ConfigError, PeerAddress};
use ringwire::proto::conn::Connection;
use ringwire::proto::nodeinfo::NodeInfo;
use ringwire::proto::secret::NodeKey;

const ID_A: &str = "1f2e3d4c5b6a79880716253443526170a9b8c7d6";
const ID_B: &str = "2a3b4c5d6e7f80918273645546372819a0b1c2d3";

fn err(text: &str) -> ConfigError {
    Config::from_toml_str(text).expect_err(text)
}

#[test]
fn default_is_valid_and_has_stock_p2p_values() {
    let c = Config::default();
    c.validate().unwrap();
    assert_eq!(c.p2p.laddr, "0.0.0.0:26656".parse().unwrap());
    assert_eq!(c.p2p.max_num_inbound_peers, 40);
    assert_eq!(c.p2p.max_num_outbound_peers, 10);
    assert_eq!(c.p2p.max_packet_msg_payload_size, 1024);
    assert_eq!(c.p2p.handshake_timeout, Duration::from_secs(20));
    assert_eq!(c.p2p.dial_timeout, Duration::from_secs(3));
    assert_eq!(c.engine.driver, Driver::Auto);
    assert_eq!(c.engine.shards, 0);
    assert!(c.engine.native);
    assert!(!c.metrics.enabled);
    assert!(!c.admin.enabled);
    assert!(matches!(c.admin.listen, AdminAddress::Unix(_)));
}

#[test]
fn commented_default_parses_back_to_default() {
    let text = Config::default_toml_with_comments();
    assert_eq!(Config::from_toml_str(&text).unwrap(), Config::default());
    assert!(text.contains("max_num_inbound_peers = 40\n"));
    assert!(text.contains("driver = \"auto\"\n"));
}

#[test]
fn every_key_is_printed_under_a_comment() {
    let text = Config::default_toml_with_comments();
    let expected = toml::Table::try_from(Config::default()).unwrap();
    let mut keys = 0;
    for (section, table) in &expected {
        let header = format!("\n[{section}]\n");
        let start = text
            .find(&header)
            .unwrap_or_else(|| panic!("no [{section}]"));
        let body = &text[start + header.len()..];
        let body = &body[..body.find("\n[").unwrap_or(body.len())];
        let lines: Vec<&str> = body.lines().collect();
        for key in table.as_table().unwrap().keys() {
            let at = lines
                .iter()
                .position(|l| l.starts_with(&format!("{key} = ")))
                .unwrap_or_else(|| panic!("{section}.{key} not printed"));
            assert!(
                at > 0 && lines[at - 1].starts_with("# "),
                "{section}.{key} has no comment"
            );
            keys += 1;
        }
    }
    // Every printed assignment is a schema key.
    let printed = text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(" = "))
        .count();
    assert_eq!(printed, keys);
    assert!(keys >= 60, "only {keys} keys");
}

#[test]
fn a_full_custom_config_round_trips() {
    let mut c = Config::default();
    c.node.moniker = "val-1".into();
    c.node.network = "cosmoshub-4".into();
    c.p2p.external_address = Some("203.0.113.7:26656".parse().unwrap());
    c.p2p.seeds = vec![format!("{ID_A}@seed.example.net:26656").parse().unwrap()];
    c.p2p.persistent_peers = vec![
        format!("{ID_A}@10.0.0.1:26656").parse().unwrap(),
        format!("{ID_B}@[2001:db8::1]:26656").parse().unwrap(),
    ];
    c.p2p.private_peer_ids = vec![ID_B.parse().unwrap()];
    c.p2p.flush_throttle_timeout = Duration::from_micros(1500);
    c.engine.driver = Driver::IoUring;
    c.engine.capabilities = vec!["archive".into(), "statesync".into()];
    c.limits.dial_backoff_max = Duration::from_secs(90);
    c.limits.handshake_rate_per_ip = 0.25;
    c.admin.listen = AdminAddress::Tcp("127.0.0.1:26670".parse().unwrap());
    c.metrics.enabled = true;
    c.validate().unwrap();
    let text = c.to_toml_with_comments();
    assert!(text.contains("dial_backoff_max = \"1m30s\""));
    assert!(text.contains("flush_throttle_timeout = \"1.5ms\""));
    assert!(text.contains("driver = \"io_uring\""));
    assert_eq!(Config::from_toml_str(&text).unwrap(), c);
}

#[test]
fn missing_keys_take_defaults() {
    assert_eq!(Config::from_toml_str("").unwrap(), Config::default());
    let c = Config::from_toml_str(
        "[p2p]\nmax_num_inbound_peers = 100\n[limits]\nping_interval = \"2m\"\n",
    )
    .unwrap();
    let mut expected = Config::default();
    expected.p2p.max_num_inbound_peers = 100;
    expected.limits.ping_interval = Duration::from_secs(120);
    assert_eq!(c, expected);
}

#[test]
fn stock_style_lists_and_addresses_are_accepted() {
    let c = Config::from_toml_str(&format!(
        "[p2p]\nladdr = \"0.0.0.0:1234\"\nseeds = \"{ID_A}@1.2.3.4:26656, {ID_B}@seed.example:1\"\n\
         unconditional_peer_ids = \"{ID_A},{ID_B}\"\nexternal_address = \"tcp://1.2.3.4:26656\"\n\
         [metrics]\nlisten = \":26660\"\n"
    ))
    .unwrap();
    assert_eq!(c.p2p.laddr.port(), 1234);
    assert_eq!(c.p2p.seeds.len(), 2);
    assert_eq!(c.p2p.seeds[1].addr.host, "seed.example");
    assert_eq!(c.p2p.unconditional_peer_ids.len(), 2);
    assert_eq!(c.p2p.external_address.unwrap().port, 26656);
    assert_eq!(c.metrics.listen, "0.0.0.0:26660".parse().unwrap());
    let peer: PeerAddress = format!("{ID_A}@1.2.3.4:26656").parse().unwrap();
    assert_eq!(c.p2p.seeds[0], peer);
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    for (text, key, line) in [
        ("[p2p]\nmax_num_inbound = 5\n", "p2p.max_num_inbound", 2),
        ("moniker = \"x\"\n", "moniker", 1),
        ("[limits]\n\n[logging]\nlevel = \"info\"\n", "logging", 3),
        ("[engine.extra]\nx = 1\n", "engine.extra", 1),
    ] {
        let e = err(text);
        assert_eq!(e.keys(), [key], "{text:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("line {line}: {key}: unknown key")),
            "{msg}"
        );
    }
}

#[test]
fn bad_values_are_errors_naming_the_key() {
    for (text, key, reason) in [
        (
            "[p2p]\nmax_num_inbound_peers = -1\n",
            "p2p.max_num_inbound_peers",
            "must not be negative",
        ),
        (
            "[limits]\nmax_message_size = -5\n",
            "limits.max_message_size",
            "must not be negative",
        ),
        (
            "[p2p]\ndial_timeout = 3\n",
            "p2p.dial_timeout",
            "expected a string",
        ),
        (
            "[p2p]\ndial_timeout = \"3\"\n",
            "p2p.dial_timeout",
            "invalid duration",
        ),
        (
            "[p2p]\ndial_timeout = \"-3s\"\n",
            "p2p.dial_timeout",
            "negative",
        ),
        ("[p2p]\npex = \"yes\"\n", "p2p.pex", "expected a boolean"),
        (
            "[p2p]\nseeds = [\"10.0.0.1:26656\"]\n",
            "p2p.seeds",
            "has no node ID",
        ),
        (
            "[p2p]\npersistent_peers = \"abc@10.0.0.1:26656\"\n",
            "p2p.persistent_peers",
            "node ID",
        ),
        (
            &format!("[p2p]\npersistent_peers = [\"{ID_A}@10.0.0.1\"]\n"),
            "p2p.persistent_peers",
            "not host:port",
        ),
        (
            "[p2p]\nladdr = \"example.com:1\"\n",
            "p2p.laddr",
            "not an IP:port",
        ),
        (
            "[p2p]\nprivate_peer_ids = [\"zz\"]\n",
            "p2p.private_peer_ids",
            "node ID",
        ),
        (
            "[engine]\ndriver = \"uring\"\n",
            "engine.driver",
            "unknown variant",
        ),
        (
            "[admin]\nlisten = \"somewhere\"\n",
            "admin.listen",
            "unix://PATH",
        ),
    ] {
        let e = err(text);
        assert_eq!(e.keys(), [key], "{text:?}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(&format!("{key}: ")), "{msg}");
        assert!(msg.contains(reason), "{text:?}: {msg}");
    }
}

#[test]
fn validation_names_the_key_and_reports_every_problem() {
    let e = err("[p2p]\nmax_num_inbound_peers = 20000\nseed_mode = true\npex = false\n");
    assert_eq!(
        e.to_string(),
        "p2p.max_num_inbound_peers: must be at most 10000, got 20000\n\
         p2p.seed_mode: needs p2p.pex = true"
    );
    let e = err("[limits]\nping_interval = \"10s\"\n");
    assert_eq!(
        e.to_string(),
        "limits.pong_timeout: must be less than limits.ping_interval"
    );
    let e = err("[admin]\nlisten = \"0.0.0.0:26670\"\n");
    assert_eq!(e.keys(), ["admin.listen"]);
    let e = err("[node]\nmoniker = \"  \"\nnetwork = \"a b\"\n");
    assert_eq!(e.keys(), ["node.moniker", "node.network"]);
    let e = err("[engine]\ncapabilities = [\"archive\", \"\", \"archive\"]\n");
    assert_eq!(e.keys(), ["engine.capabilities", "engine.capabilities"]);
    let e = err("[engine]\ncompression_max_ratio = 1.5\ncompression_level = 99\n");
    assert_eq!(
        e.keys(),
        ["engine.compression_level", "engine.compression_max_ratio"]
    );
}

/// Every limit refuses zero (or its out-of-range value) with its own key named.
#[test]
fn every_limit_has_a_bound() {
    let cases: &[(&str, &str)] = &[
        ("max_pending_handshakes", "0"),
        ("max_pending_handshakes_per_ip", "0"),
        ("handshake_rate_per_ip", "0.0"),
        ("handshake_rate_per_ip", "nan"),
        ("handshake_burst_per_ip", "0"),
        ("max_connections_per_ip", "0"),
        ("accept_backoff", "\"0s\""),
        ("max_concurrent_dials", "0"),
        ("dial_backoff_min", "\"0s\""),
        ("dial_backoff_max", "\"0s\""),
        ("max_message_size", "0"),
        ("max_message_size", "5000000000"),
        ("max_node_info_size", "0"),
        ("max_node_info_size", "10241"),
        ("channel_send_queue_capacity", "0"),
        ("max_peer_send_bytes", "0"),
        ("max_peer_inflight_bytes", "0"),
        ("recv_queue_capacity", "0"),
        ("native_recv_queue_capacity", "0"),
        ("native_window", "0"),
        ("native_window", "2147483648"),
        ("native_busy_window", "1023"),
        ("native_busy_window", "2147483648"),
        ("native_max_chunk", "0"),
        ("native_max_chunk", "65524"),
        ("max_inflight_requests", "0"),
        ("max_control_frames_per_second", "0"),
        ("max_partial_bytes_per_peer", "0"),
        ("max_partial_bytes", "0"),
        ("write_budget", "0"),
        ("zstd_window_log_max", "9"),
        ("zstd_window_log_max", "31"),
        ("ping_interval", "\"0s\""),
        ("native_ping_interval", "\"0s\""),
        ("native_pong_timeout", "\"0s\""),
        ("pex_max_addresses_per_message", "0"),
        ("pex_address_rate", "-1.0"),
        ("pex_address_burst", "0"),
        ("max_address_book_size", "0"),
        ("pex_ban_duration", "\"1000h\""),
    ];
    let limits = toml::Table::try_from(Config::default().limits).unwrap();
    for (key, value) in cases {
        assert!(limits.contains_key(*key), "{key} is not a limit");
        let e = err(&format!("[limits]\n{key} = {value}\n"));
        let full = format!("limits.{key}");
        assert!(e.keys().contains(&full.as_str()), "{key} = {value}: {e}");
    }
    let e = err("[limits]\nmax_pending_handshakes = 4\nmax_pending_handshakes_per_ip = 5\n");
    assert_eq!(e.keys(), ["limits.max_pending_handshakes_per_ip"]);
    let e = err("[limits]\ndial_backoff_min = \"10s\"\ndial_backoff_max = \"5s\"\n");
    assert_eq!(e.keys(), ["limits.dial_backoff_max"]);
    let e = err("[limits]\nmax_message_size = 2000000\nmax_partial_bytes_per_peer = 1000000\n");
    assert_eq!(e.keys(), ["limits.max_partial_bytes_per_peer"]);
    let e = err("[limits]\nmax_partial_bytes = 1000\n");
    assert_eq!(e.keys(), ["limits.max_partial_bytes"]);
    let e = err("[p2p]\nmax_packet_msg_payload_size = 0\nhandshake_timeout = \"0s\"\n");
    assert_eq!(
        e.keys(),
        ["p2p.max_packet_msg_payload_size", "p2p.handshake_timeout"]
    );
}

#[test]
fn syntax_errors_give_the_line() {
    let e = err("[p2p]\nmax_num_inbound_peers = \n");
    assert!(
        matches!(e, ConfigError::Parse { line: Some(2), .. }),
        "{e:?}"
    );
    let e = err("[p2p\n");
    assert!(e.to_string().starts_with("line 1: "), "{e}");
}

#[test]
fn load_reads_a_file_and_sets_home() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ringwire.toml");
    std::fs::write(&path, "[node]\nmoniker = \"from-file\"\n").unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.node.moniker, "from-file");
    assert_eq!(c.node.home, dir.path());
    assert_eq!(c.node_key_path(), dir.path().join("config/node_key.json"));
    assert_eq!(
        c.resolve_path("/abs/file".as_ref()),
        std::path::PathBuf::from("/abs/file")
    );

    std::fs::write(&path, "[node]\nhome = \"/srv/rw\"\n[p2p]\nbogus = 1\n").unwrap();
    let e = Config::load(&path).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}:4: p2p.bogus: unknown key", path.display())),
        "{msg}"
    );
    std::fs::write(&path, "[node]\nhome = \"/srv/rw\"\n").unwrap();
    assert_eq!(
        Config::load(&path).unwrap().node.home,
        std::path::Path::new("/srv/rw")
    );

    let missing = dir.path().join("missing.toml");
    let e = Config::load(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains("missing.toml"), "{e}");
}

#[test]
fn node_key_is_generated_once_under_home() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::from_toml_str(&format!(
        "[node]\nhome = {:?}\n",
        dir.path().display().to_string()
    ))
    .unwrap();
    assert!(c.load_node_key().is_err());
    let (key, generated) = c.load_or_generate_node_key().unwrap();
    assert!(generated);
    let (again, generated) = c.load_or_generate_node_key().unwrap();
    assert!(!generated);
    assert_eq!(key.node_id(), again.node_id());
    assert_eq!(c.load_node_key().unwrap().node_id(), key.node_id());
}

#[test]
fn derived_connection_settings_are_accepted_by_the_core() {
    let mut c = Config::default();
    c.limits.max_message_size = 1 << 20;
    c.engine.capabilities = vec!["archive".into()];
    let info = NodeInfo {
        network: c.node.network.clone(),
        moniker: c.node.moniker.clone(),
        ..NodeInfo::default()
    };
    let cc = c.connection_config(NodeKey::from_seed([3; 32]), info);
    assert!(
        cc.channels
            .iter()
            .all(|ch| ch.recv_message_capacity <= 1 << 20)
    );
    assert_eq!(cc.handshake_timeout, c.p2p.handshake_timeout);
    assert_eq!(cc.mconn, c.mconn_config());
    assert_eq!(cc.compression.unwrap().window_log_max, 23);
    c.compression_config().unwrap().validate().unwrap();
    Connection::new(cc, [9; 32], std::time::Instant::now()).unwrap();
    c.engine.compression = false;
    assert!(c.compression_config().is_none());
}

#[test]
fn budget_keys_reach_both_kinds_of_connection() {
    let c = Config::from_toml_str(
        "[limits]\nmax_control_frames_per_second = 77\nmax_partial_bytes_per_peer = 200000000\n\
         max_partial_bytes = 300000000\nmax_node_info_size = 2048\nnative_recv_queue_capacity = 9\n",
    )
    .unwrap();
    let cc = c.connection_config(NodeKey::from_seed([3; 32]), NodeInfo::default());
    assert_eq!(cc.max_control_frames_per_second, 77);
    assert_eq!(cc.mconn.max_control_packets_per_second, 77);
    assert_eq!(cc.max_node_info_size, 2048);
    assert_eq!(cc.native_recv_queue_capacity, 9);
    assert_eq!(cc.partial_budget.per_peer, 200_000_000);
    // Compat and native connections reserve from one node-wide pool.
    let native = cc.partial_budget.pool.clone().unwrap();
    let compat = cc.mconn.partial_budget.pool.clone().unwrap();
    assert!(std::sync::Arc::ptr_eq(&native, &compat));
    assert_eq!(native.limit(), 300_000_000);
}

/// `[p2p] capability_targets`: percentages and counts parse and reach the PEX settings; bad
/// ones are errors naming the key and saying what is wrong.
#[test]
fn capability_targets_parse_with_clear_errors() {
    use ringwire::pex::CapabilityTarget;
    let c = Config::from_toml_str("[p2p]\ncapability_targets = { archive = \"30%\", light = 2 }\n")
        .unwrap();
    let pex = c.pex_config().unwrap();
    assert_eq!(
        pex.capability_targets,
        vec![
            ("archive".to_string(), CapabilityTarget::Percent(30)),
            ("light".to_string(), CapabilityTarget::AtLeast(2)),
        ]
    );
    // The table form and the rendered default read back.
    let c2 =
        Config::from_toml_str("[p2p.capability_targets]\narchive = \"30%\"\nlight = 2\n").unwrap();
    assert_eq!(c2.p2p.capability_targets, c.p2p.capability_targets);
    assert!(
        Config::default()
            .pex_config()
            .unwrap()
            .capability_targets
            .is_empty()
    );
    for (text, says) in [
        ("{ archive = \"130%\" }", "percentage"),
        ("{ archive = \"lots\" }", "neither a count nor a percentage"),
        ("{ archive = -1 }", "not a peer count"),
        ("{ archive = 1.5 }", "expected a count"),
    ] {
        let e = err(&format!("[p2p]\ncapability_targets = {text}\n"));
        let msg = e.to_string();
        assert!(msg.contains("capability_targets"), "{text}: {msg}");
        assert!(msg.contains(says), "{text}: {msg}");
    }
    let e = err("[p2p]\ncapability_targets = { \"a b\" = 1, archive = 20000 }\n");
    assert_eq!(
        e.keys(),
        ["p2p.capability_targets", "p2p.capability_targets"]
    );
    let e = err("[p2p]\npex = false\ncapability_targets = { archive = 1 }\n");
    assert_eq!(
        e.to_string(),
        "p2p.capability_targets: needs p2p.pex = true"
    );
}
