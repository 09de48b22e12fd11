//! A table of buckets — the new table or the tried table — each bucket a short list of node
//! IDs with a fixed capacity. The addresses themselves live in the book; the table says where.

use crate::proto::secret::NodeId;

/// Buckets of node IDs.
#[derive(Clone, Debug)]
pub(super) struct Table {
    buckets: Vec<Vec<NodeId>>,
    bucket_size: usize,
}

impl Table {
    /// `count` empty buckets of up to `bucket_size` IDs each.
    pub(super) fn new(count: usize, bucket_size: usize) -> Self {
        Table {
            buckets: vec![Vec::new(); count],
            bucket_size,
        }
    }

    /// Buckets in the table.
    pub(super) fn count(&self) -> usize {
        self.buckets.len()
    }

    /// The IDs in bucket `b` (none when `b` is out of range).
    pub(super) fn bucket(&self, b: usize) -> &[NodeId] {
        self.buckets.get(b).map_or(&[], Vec::as_slice)
    }

    /// Whether bucket `b` holds its capacity (an out-of-range bucket is full).
    pub(super) fn is_full(&self, b: usize) -> bool {
        self.buckets
            .get(b)
            .is_none_or(|ids| ids.len() >= self.bucket_size)
    }

    /// Adds `id` to bucket `b` unless it is there already or `b` is out of range; returns
    /// whether it is there now. The caller makes room first.
    pub(super) fn insert(&mut self, b: usize, id: NodeId) -> bool {
        let Some(ids) = self.buckets.get_mut(b) else {
            return false;
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
        true
    }

    /// Removes `id` from bucket `b`; returns whether it was there.
    pub(super) fn remove(&mut self, b: usize, id: &NodeId) -> bool {
        let Some(ids) = self.buckets.get_mut(b) else {
            return false;
        };
        match ids.iter().position(|x| x == id) {
            Some(i) => {
                ids.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// The indices of the buckets holding anything.
    pub(super) fn non_empty(&self) -> Vec<usize> {
        (0..self.buckets.len())
            .filter(|&b| !self.bucket(b).is_empty())
            .collect()
    }

    /// IDs held over all buckets (an ID in several buckets counts once per bucket).
    pub(super) fn refs(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_ids_once_up_to_their_size() {
        let mut t = Table::new(3, 2);
        let (a, b, c) = (NodeId([1; 20]), NodeId([2; 20]), NodeId([3; 20]));
        assert!(t.insert(1, a));
        assert!(t.insert(1, a));
        assert_eq!(t.bucket(1), &[a]);
        assert!(!t.is_full(1));
        assert!(t.insert(1, b));
        assert!(t.is_full(1));
        assert!(!t.insert(7, c), "out of range");
        assert!(t.is_full(7));
        assert_eq!(t.bucket(7), &[] as &[NodeId]);
        assert_eq!(t.non_empty(), vec![1]);
        assert_eq!(t.refs(), 2);
        assert!(t.remove(1, &a));
        assert!(!t.remove(1, &a));
        assert_eq!(t.bucket(1), &[b]);
        assert_eq!(t.count(), 3);
    }
}
