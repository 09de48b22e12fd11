//! Network groups and routability of IP addresses, as stock CometBFT defines them
//! (`p2p/netaddress.go`, `p2p/pex/addrbook.go`): the address book spreads what one group tells
//! it over few buckets, and role-addressed sends share their picks out by group.

mod group;
mod routable;

pub(crate) use group::group_key;
pub(crate) use routable::is_routable;
