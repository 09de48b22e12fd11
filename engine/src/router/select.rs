//! Choosing `k` of `n` peers at random for role-addressed sends, fairly across network
//! groups: see [`Picker::choose_fair`].

use std::sync::atomic::{AtomicU64, Ordering};

/// A small, lock-free pseudo-random source (SplitMix64) seeded from the OS. Role fan-out needs
/// spread, not secrecy.
pub(crate) struct Picker {
    state: AtomicU64,
}

impl Picker {
    pub(crate) fn new() -> Self {
        let mut seed = [0u8; 8];
        // Without OS randomness the choice is still spread, just predictable.
        let _ = getrandom::fill(&mut seed);
        Picker {
            state: AtomicU64::new(u64::from_le_bytes(seed) | 1),
        }
    }

    fn next(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Keeps `k` of `items`, chosen uniformly (partial Fisher–Yates).
    pub(crate) fn choose<T>(&self, items: &mut Vec<T>, k: usize) {
        let n = items.len();
        let k = k.min(n);
        for i in 0..k {
            let span = (n - i) as u64;
            let j = i + (self.next() % span) as usize;
            items.swap(i, j);
        }
        items.truncate(k);
    }

    /// Keeps `k` of `items`, each tagged with its network group, fairly: groups first, then
    /// peers within a group. The groups are put in random order and each gives one item per
    /// turn (chosen at random among its own) until `k` are kept, so with `k` below the number
    /// of groups every group is picked with the same odds however many items it holds, and
    /// no group gives a second item before every group gave one.
    pub(crate) fn choose_fair<K: PartialEq, T>(&self, items: Vec<(K, T)>, k: usize) -> Vec<T> {
        let mut groups: Vec<(K, Vec<T>)> = Vec::new();
        for (g, item) in items {
            match groups.iter_mut().find(|(name, _)| *name == g) {
                Some((_, v)) => v.push(item),
                None => groups.push((g, vec![item])),
            }
        }
        let total: usize = groups.iter().map(|(_, v)| v.len()).sum();
        let k = k.min(total);
        let n = groups.len();
        self.choose(&mut groups, n);
        for (_, members) in &mut groups {
            let m = members.len();
            self.choose(members, m);
        }
        let mut queues: Vec<std::vec::IntoIter<T>> =
            groups.into_iter().map(|(_, v)| v.into_iter()).collect();
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let before = out.len();
            for q in &mut queues {
                if out.len() == k {
                    break;
                }
                if let Some(item) = q.next() {
                    out.push(item);
                }
            }
            if out.len() == before {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_exactly_k_distinct() {
        let p = Picker::new();
        for k in 0..=10 {
            let mut v: Vec<u32> = (0..10).collect();
            p.choose(&mut v, k);
            assert_eq!(v.len(), k);
            let mut s = v.clone();
            s.sort();
            s.dedup();
            assert_eq!(s.len(), k);
        }
        let mut v: Vec<u32> = (0..3).collect();
        p.choose(&mut v, 10);
        assert_eq!(v.len(), 3);
    }

    /// Twenty items in one group and one in each of three others: one pick lands in the big
    /// group a quarter of the time, not twenty in twenty-three.
    #[test]
    fn fair_choice_shares_out_by_group() {
        let p = Picker::new();
        let items = || {
            let mut v: Vec<(String, u32)> = (0..20).map(|i| ("sybil".to_string(), i)).collect();
            v.extend((0..3).map(|i| (format!("honest{i}"), 100 + i)));
            v
        };
        let rounds = 4000;
        let mut big = 0;
        let mut each = [0u32; 3];
        for _ in 0..rounds {
            let got = p.choose_fair(items(), 1);
            assert_eq!(got.len(), 1);
            match got[0] {
                x if x < 100 => big += 1,
                x => each[(x - 100) as usize] += 1,
            }
        }
        // Expected 1000 each; the bounds are over 10 standard deviations wide.
        assert!(
            (700..1300).contains(&big),
            "big group picked {big} of {rounds}"
        );
        for c in each {
            assert!(
                (700..1300).contains(&c),
                "a small group picked {c} of {rounds}"
            );
        }
        // Two picks never take two from one group while another has none.
        for _ in 0..200 {
            let got = p.choose_fair(items(), 4);
            assert_eq!(got.iter().filter(|x| **x < 100).count(), 1, "{got:?}");
        }
        // All of them: every item once.
        let mut all = p.choose_fair(items(), 100);
        all.sort();
        assert_eq!(all.len(), 23);
        all.dedup();
        assert_eq!(all.len(), 23);
        // Empty.
        assert!(p.choose_fair(Vec::<(String, u32)>::new(), 3).is_empty());
    }
}
