//! Which connection to keep when a peer ends up with two: the rule is documented on
//! [`resolve`].

use crate::proto::secret::NodeId;

use super::Direction;

/// Which of two connections to the same peer to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Keep the connection already established; close the new one.
    Existing,
    /// Keep the new connection; close the one already established.
    New,
}

/// The node that dialed a connection seen by `local` in `direction` to `remote`.
pub fn dialer(local: NodeId, remote: NodeId, direction: Direction) -> NodeId {
    match direction {
        Direction::Outbound => local,
        Direction::Inbound => remote,
    }
}

/// Which connection to keep: `local` holds a connection to `remote` in direction `existing`,
/// and a second one in direction `new` has finished its handshake.
///
/// Two nodes that dial each other at the same moment each get an outbound and an inbound
/// connection to the other. Each node decides alone, when the second connection finishes its
/// handshake, which one to keep, and both must keep the *same* one — otherwise each closes the
/// one the other kept and they end with none (or, without a rule, with two).
///
/// # The rule
///
/// Every connection has a *dialer*, and both ends agree on who it was. Given the connection a
/// node already holds to a peer and a new one:
///
/// 1. **Different dialers** (the simultaneous dial): keep the connection dialed by the node
///    whose ID is lower (comparing the 20 ID bytes, which orders them as their lowercase hex).
/// 2. **Same dialer**: keep the **new** one. A node dials a peer only while it holds no
///    connection to it, so the dialer has already dropped the old connection; the other end
///    is holding a stale copy (a restarted or paused peer, a half-open socket) and drops it.
///
/// Both ends see the same two IDs and the same dialer for each connection, so rule 1 gives the
/// same answer on both, in any order of events. Rule 2 only applies where the dialer holds one
/// of the two connections; the other end follows it. (A stale connection's handshake arriving
/// *after* its replacement is the one order it cannot repair: then both ends end up with
/// nothing and the dialer redials with backoff. It needs one TCP connection's handshake to be
/// overtaken by a whole later one.)
///
/// The rule needs nothing on the wire, so it works with stock CometBFT peers: a stock node
/// simply refuses the second connection, and whichever connection it keeps, the ringwire side
/// keeps it too as long as the stock side holds it.
///
/// A connection to oneself is refused before this is asked; for `local == remote` it answers
/// [`Keep::Existing`].
pub fn resolve(local: NodeId, remote: NodeId, existing: Direction, new: Direction) -> Keep {
    if local == remote {
        return Keep::Existing;
    }
    let existing_dialer = dialer(local, remote, existing);
    let new_dialer = dialer(local, remote, new);
    if existing_dialer == new_dialer {
        return Keep::New;
    }
    if new_dialer < existing_dialer {
        Keep::New
    } else {
        Keep::Existing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Inbound, Outbound};
    use std::collections::{BTreeSet, VecDeque};

    const LOW: NodeId = NodeId([1; 20]);
    const HIGH: NodeId = NodeId([2; 20]);

    #[test]
    fn simultaneous_dial_keeps_the_lower_ids_connection() {
        // LOW holds its outbound; HIGH's dial arrives: keep LOW's.
        assert_eq!(resolve(LOW, HIGH, Outbound, Inbound), Keep::Existing);
        assert_eq!(resolve(LOW, HIGH, Inbound, Outbound), Keep::New);
        // HIGH sees the same two connections from its side.
        assert_eq!(resolve(HIGH, LOW, Inbound, Outbound), Keep::Existing);
        assert_eq!(resolve(HIGH, LOW, Outbound, Inbound), Keep::New);
    }

    #[test]
    fn same_dialer_keeps_the_new_one() {
        for (a, b) in [(LOW, HIGH), (HIGH, LOW)] {
            assert_eq!(resolve(a, b, Inbound, Inbound), Keep::New);
            assert_eq!(resolve(a, b, Outbound, Outbound), Keep::New);
        }
        assert_eq!(resolve(LOW, LOW, Inbound, Outbound), Keep::Existing);
    }

    #[test]
    fn order_is_that_of_the_hex_ids() {
        let a: NodeId = "0fffffffffffffffffffffffffffffffffffffff".parse().unwrap();
        let b: NodeId = "f000000000000000000000000000000000000000".parse().unwrap();
        assert!(a < b && a.to_string() < b.to_string());
        assert_eq!(resolve(b, a, Outbound, Inbound), Keep::New);
    }

    /// Both ends' view of one of the two simultaneous connections, from `node`'s side.
    fn direction_of(node: usize, conn: usize) -> Direction {
        // Connection 0 is dialed by node 0, connection 1 by node 1.
        if node == conn { Outbound } else { Inbound }
    }

    #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Event {
        /// `node` finishes the handshake of `conn`.
        Established { node: usize, conn: usize },
        /// `node` learns that the other end closed `conn`.
        Closed { node: usize, conn: usize },
    }

    #[derive(Clone, Debug, Default)]
    struct Side {
        held: Option<usize>,
        /// Connections this side has closed or seen closed: they never come back.
        dead: BTreeSet<usize>,
    }

    /// Applies an event; returns the connection this side closes, if any.
    fn step(ids: [NodeId; 2], sides: &mut [Side; 2], event: &Event) -> Option<(usize, usize)> {
        match *event {
            Event::Established { node, conn } => {
                let side = &mut sides[node];
                if side.dead.contains(&conn) {
                    return None; // the handshake failed: the other end had closed it
                }
                let remote = ids[1 - node];
                match side.held {
                    None => {
                        side.held = Some(conn);
                        None
                    }
                    Some(old) => {
                        let keep = resolve(
                            ids[node],
                            remote,
                            direction_of(node, old),
                            direction_of(node, conn),
                        );
                        let closed = match keep {
                            Keep::Existing => conn,
                            Keep::New => {
                                side.held = Some(conn);
                                old
                            }
                        };
                        side.dead.insert(closed);
                        Some((node, closed))
                    }
                }
            }
            Event::Closed { node, conn } => {
                let side = &mut sides[node];
                side.dead.insert(conn);
                if side.held == Some(conn) {
                    side.held = None;
                }
                None
            }
        }
    }

    /// Every interleaving of the four handshake completions and of the close notices they
    /// cause ends with both nodes holding the same single connection.
    #[test]
    fn every_ordering_of_a_simultaneous_dial_ends_with_one_shared_connection() {
        for ids in [[LOW, HIGH], [HIGH, LOW]] {
            let start: Vec<Event> = (0..2)
                .flat_map(|node| (0..2).map(move |conn| Event::Established { node, conn }))
                .collect();
            let mut stack = VecDeque::from([(Default::default(), start)]);
            let mut finals = 0;
            while let Some((sides, pending)) = stack.pop_back() {
                let sides: [Side; 2] = sides;
                if pending.is_empty() {
                    finals += 1;
                    let (a, b) = (sides[0].held, sides[1].held);
                    assert!(a.is_some() && a == b, "{ids:?}: {a:?} vs {b:?}");
                    // The kept one is the lower ID's dial.
                    let lower = if ids[0] < ids[1] { 0 } else { 1 };
                    assert_eq!(a, Some(lower));
                    continue;
                }
                for i in 0..pending.len() {
                    let mut sides = sides.clone();
                    let mut rest = pending.clone();
                    let event = rest.remove(i);
                    if let Some((node, conn)) = step(ids, &mut sides, &event) {
                        rest.push(Event::Closed {
                            node: 1 - node,
                            conn,
                        });
                    }
                    stack.push_back((sides, rest));
                }
            }
            assert!(finals >= 24, "explored {finals} orderings");
        }
    }
}
