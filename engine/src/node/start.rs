//! [`NodeBuilder::start`], in stages: read the address book file (when PEX keeps one), resolve
//! the driver and bind the listeners; settle the connection settings; build the registry, the
//! shards' inboxes and the router; then start the shard threads, the peer manager's dialer and
//! PEX. From the first thread on, the node
//! under construction is a [`NodeInner`]: a stage that fails drops it, and its `Drop` stops
//! whatever the earlier stages started, so no failure path undoes anything by hand.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use crate::peers::{Offence, PeerManager};
use crate::pex::service::{BanFn, Dialer, PexRuntime};
use crate::pex::{self, AddrBookFile, Pex};
use crate::proto::conn::{Connection, ConnectionConfig};
use crate::proto::nodeinfo::{NodeInfo, NodeInfoError};
use crate::proto::secret::NodeId;
use crate::registry::{PeerEvents, PeerGate, Registry, RegistryConfig};
use crate::router::Router;
use crate::rt::driver::{self, DriverKind};
use crate::rt::{net, thread};
use crate::shard::{Command, Inboxes, Shard, ShardConfig};

use super::limits::{MAX_SHARD_READ_BUFFERS, MIN_ACCEPT_BACKOFF};
use super::peering::{BookDialer, Peering};
use super::{Limits, Node, NodeBuilder, NodeInner, RING_ENTRIES, StartError};

use tokio::sync::mpsc;

impl NodeBuilder {
    /// Starts the shard threads (and listeners).
    pub fn start(self) -> Result<Node, StartError> {
        self.start_with_events().map(|(node, _)| node)
    }

    /// Starts the node like [`NodeBuilder::start`], with a subscription to its peer events
    /// made before it accepts or dials anyone: unlike [`Node::peer_events`] called after
    /// start, it misses no peer that came up while the node was starting (an inbound peer
    /// accepted, or a persistent peer dialed, before the caller could subscribe).
    pub fn start_with_events(mut self) -> Result<(Node, PeerEvents), StartError> {
        let book = match &self.pex {
            Some(config) => read_book(config.book_file.as_deref())?,
            None => None,
        };
        let kind = driver::resolve(self.driver, RING_ENTRIES)?;
        let shards = self.shards.max(1);
        let listeners = match self.listen {
            Some(addr) => net::bind_group(addr, shards, self.limits.backlog)
                .map_err(|source| StartError::Bind { addr, source })?,
            None => Vec::new(),
        };
        let listen_addr = listeners.first().and_then(|l| l.local_addr().ok());
        let template = self.connection_template(listen_addr);
        let local_id = self.node_key.node_id();
        check_external_address(self.external_address.as_deref(), local_id)?;

        let peering = match self.manager.take() {
            Some(config) => {
                let mut seed = [0u8; 8];
                getrandom::fill(&mut seed).map_err(|e| StartError::Config(e.to_string()))?;
                let manager =
                    PeerManager::new(local_id, config, u64::from_le_bytes(seed), Instant::now())
                        .map_err(|e| StartError::Config(format!("peer manager: {e}")))?;
                let peering = Peering::new(manager);
                let book_file = self.pex.as_ref().and_then(|c| c.book_file.as_deref());
                if let Some(book) = book_file {
                    peering.load_bans(super::scoring::bans_file_for(book))?;
                }
                Some(peering)
            }
            None => None,
        };
        let gate: Arc<dyn PeerGate> = match &peering {
            Some(p) => p.clone(),
            None => self.gate.clone(),
        };
        let registry = Arc::new(Registry::new(
            RegistryConfig {
                local_id,
                recv_queue_capacity: self.limits.recv_queue_capacity,
                peer_event_capacity: self.limits.peer_event_capacity,
                max_peer_send_bytes: self.limits.max_peer_send_bytes,
                channel_send_queue_capacity: self.limits.channel_send_queue_capacity,
                max_message_size: self.limits.max_message_size,
            },
            gate,
        ));
        for desc in std::mem::take(&mut self.channels) {
            registry.register_channel(desc)?;
        }
        if self.pex.is_some() {
            registry.register_channel(pex::channel_descriptor())?;
        }
        // Check the settings once here, so a bad one fails start and not every connection.
        let mut check = template.clone();
        check.channels = registry.table().descriptors();
        Connection::new(check, [1; 32], Instant::now())
            .map_err(|e| StartError::Config(e.to_string()))?;

        let (inboxes, receivers) = Inboxes::new(shards, self.limits.inbox_capacity);
        let inboxes = Arc::new(inboxes);
        let router = Arc::new(Router::new(registry, inboxes));
        let shard_config = Arc::new(self.shard_config(kind, template));
        // Subscribed before any shard runs: the first connections' up events reach both.
        let app_events = router.registry().subscribe();
        let pex_events = self.pex.is_some().then(|| router.registry().subscribe());
        // From here on a failure drops `node`, which stops what has started.
        let mut node = NodeInner {
            router,
            threads: Mutex::new(Vec::with_capacity(shards)),
            kind,
            listen_addr,
            limits: self.limits.clone(),
            peering,
            dialer: Mutex::new(None),
            pex: None,
        };
        self.spawn_shards(&node, kind, &shard_config, receivers, listeners)?;
        if let Some(p) = &node.peering {
            let dialer = p
                .spawn_dialer(node.router.clone())
                .map_err(|e| StartError::Config(format!("cannot start the dialer: {e}")))?;
            *node.dialer.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(dialer);
        }
        if let Some(config) = self.pex.take() {
            let router = &node.router;
            let channel = router.open_channel(pex::channel_descriptor())?;
            let events = match pex_events {
                Some(events) => events,
                None => router.registry().subscribe(),
            };
            let mut seed = [0u8; 8];
            getrandom::fill(&mut seed).map_err(|e| StartError::Config(e.to_string()))?;
            let mut state = Pex::new(local_id, config, u64::from_le_bytes(seed));
            if let Some(file) = &book {
                let r = state.load_book_file(file, Instant::now(), SystemTime::now());
                tracing::info!(
                    addresses = r.loaded,
                    tried = r.tried,
                    banned = r.banned,
                    "pex: address book read"
                );
                if r.invalid + r.dropped > 0 {
                    tracing::warn!(
                        invalid = r.invalid,
                        beyond_capacity = r.dropped,
                        "pex: address book entries left out"
                    );
                }
            }
            if let Some(p) = &node.peering {
                let (persistent, seeds) = p.configured();
                state.set_persistent(persistent);
                state.set_seeds(seeds);
            }
            let state = Arc::new(Mutex::new(state));
            // PEX reports rule breakers to the peer's score (PEX abuse bans at once, for PEX's
            // ban duration), when the node runs a peer manager, and dials from its book through
            // it; the book hears how those dials went.
            let ban = node.peering.clone().map(|p| -> BanFn {
                Box::new(move |peer, until| {
                    let ip = p.admission.peer_ip(&peer);
                    p.offend(peer, ip, Offence::PexAbuse, Some(until));
                })
            });
            let dialer = node.peering.clone().map(|p| -> Box<dyn Dialer> {
                Box::new(BookDialer {
                    peering: p,
                    router: router.clone(),
                })
            });
            if let Some(p) = &node.peering {
                let book = state.clone();
                p.on_dial_failed(Box::new(move |peer, wrong_peer| {
                    book.lock().unwrap_or_else(|e| e.into_inner()).dial_failed(
                        &peer,
                        wrong_peer,
                        Instant::now(),
                    );
                }));
            }
            let runtime = PexRuntime::spawn(router.clone(), state, channel, events, ban, dialer)
                .map_err(|e| StartError::Config(format!("cannot start pex: {e}")))?;
            node.pex = Some(runtime);
        }
        tracing::info!(
            node = %local_id,
            driver = %kind,
            shards,
            listen = ?listen_addr,
            "node started"
        );
        Ok((
            Node {
                inner: Arc::new(node),
            },
            app_events,
        ))
    }

    /// The settings every connection starts from: NodeInfo with the advertised address (the
    /// external address, else the bound listen address), native protocol and capabilities, the
    /// peer manager's handshake timeout, then the caller's adjustments.
    fn connection_template(&mut self, listen_addr: Option<SocketAddr>) -> ConnectionConfig {
        let mut node_info = self.node_info.clone();
        match (&self.external_address, listen_addr) {
            (Some(external), _) => node_info.listen_addr = external.clone(),
            (None, Some(a)) => node_info.listen_addr = format!("tcp://{a}"),
            // Stock NodeInfo validation requires a host and port even from a node that does not
            // accept connections.
            (None, None) if node_info.listen_addr.is_empty() => {
                node_info.listen_addr = "tcp://0.0.0.0:0".to_owned();
            }
            (None, None) => {}
        }
        let mut template = ConnectionConfig::new(self.node_key.clone(), node_info);
        template.offer_native = self.offer_native;
        template.capabilities = std::mem::take(&mut self.capabilities);
        if let Some(manager) = &self.manager {
            // The peer manager's handshake timeout (stock `handshake_timeout`) bounds how long
            // a pending-handshake place can be held; `connection_config` may still override it.
            template.handshake_timeout = manager.handshake_timeout;
        }
        for f in std::mem::take(&mut self.tune) {
            f(&mut template);
        }
        template
    }

    /// What every shard of this node shares.
    fn shard_config(&self, kind: DriverKind, template: ConnectionConfig) -> ShardConfig {
        let limits: &Limits = &self.limits;
        let lent = limits.shard_read_buffers > 0 && kind == DriverKind::IoUring;
        let multishot = lent && limits.multishot_recv && net::multishot_recv_native();
        if lent {
            tracing::debug!(
                multishot,
                "receiving into the shards' provided-buffer rings"
            );
        }
        ShardConfig {
            template,
            read_buffer: limits.read_buffer.max(1024),
            // epoll has no provided-buffer ring: a pending read would hold a pooled buffer while
            // it waits, so there every connection keeps its own.
            lent_buffers: lent,
            multishot_recv: multishot,
            send_zc_threshold: (kind == DriverKind::IoUring
                && limits.send_zc_threshold > 0
                && driver::send_zc_supported())
            .then_some(limits.send_zc_threshold),
            write_batch: limits.write_batch.max(16 * 1024),
            max_connections: limits.max_connections_per_shard,
            accept_backoff: limits.accept_backoff.max(MIN_ACCEPT_BACKOFF),
            accepts_per_second: limits.max_accepts_per_second,
            close_grace: limits.close_grace,
            commands_per_turn: limits.commands_per_turn.max(1),
            notsent_lowat: (limits.tcp_notsent_lowat > 0).then_some(limits.tcp_notsent_lowat),
            recv_buffer: (limits.tcp_recv_buffer > 0).then_some(limits.tcp_recv_buffer),
            send_rate: limits.send_rate,
            recv_rate: limits.recv_rate,
            flush_throttle: (!limits.flush_throttle.is_zero()).then_some(limits.flush_throttle),
        }
    }

    /// Starts one thread per shard, each with its inbox and its listener (if listening).
    fn spawn_shards(
        &self,
        node: &NodeInner,
        kind: DriverKind,
        config: &Arc<ShardConfig>,
        receivers: Vec<mpsc::Receiver<Command>>,
        listeners: Vec<TcpListener>,
    ) -> Result<(), StartError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let lent = config.lent_buffers;
        let mut listeners = listeners.into_iter();
        for (index, inbox) in receivers.into_iter().enumerate() {
            let spec = thread::ThreadSpec {
                name: format!("ringwire-shard-{index}"),
                kind,
                cpu: self.pin_threads.then_some(index % cores),
                ring_entries: RING_ENTRIES,
                read_pool: lent.then_some((
                    self.limits.shard_read_buffers.min(MAX_SHARD_READ_BUFFERS),
                    self.limits.read_buffer.max(1024),
                )),
                #[cfg(test)]
                refuse_read_pool: self.refuse_read_pool,
            };
            let registry = node.router.registry().clone();
            let inboxes = node.router.inboxes().clone();
            let config = config.clone();
            let listener = listeners.next();
            let handle = thread::spawn_shard_thread(spec, move || {
                Shard::run(index, registry, inboxes, config, inbox, listener)
            })?;
            node.threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(handle);
        }
        Ok(())
    }
}

/// The address book file at `path`, if there is one: `None` without a path or a file. A
/// writer killed mid-write leaves a temporary file behind (the book itself is whole); those
/// are removed first, as no other writer runs yet.
fn read_book(path: Option<&Path>) -> Result<Option<AddrBookFile>, StartError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let stale = AddrBookFile::remove_stale_temporary_files(path);
    if stale > 0 {
        tracing::info!(path = %path.display(), stale, "pex: removed unfinished address book writes");
    }
    Ok(AddrBookFile::load(path)?)
}

/// Fails start when the external address would make peers refuse this node's NodeInfo (stock
/// checks `id@listen_addr` parses as a network address).
fn check_external_address(addr: Option<&str>, id: NodeId) -> Result<(), StartError> {
    let Some(addr) = addr else {
        return Ok(());
    };
    let probe = NodeInfo {
        node_id: id.to_string(),
        listen_addr: addr.to_owned(),
        ..NodeInfo::default()
    };
    match probe.validate() {
        Err(e @ NodeInfoError::InvalidAddress { .. }) => Err(StartError::Config(format!(
            "external address {addr:?}: {e}"
        ))),
        _ => Ok(()),
    }
}
