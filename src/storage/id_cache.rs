//! A bounded cache of decoded values by number (id blocks, id buckets): what one
//! process keeps of an id map that lives on disk.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Values weighted as the caller says (names held, or bytes); the oldest insertions go
/// first once the total passes the capacity (first in, first out: lookups stay lock-and-probe cheap).
pub(crate) struct Cache<V> {
    map: HashMap<u32, (Arc<V>, usize)>,
    order: VecDeque<u32>,
    weight: usize,
    capacity: usize,
}

impl<V> Cache<V> {
    pub fn new(capacity: usize) -> Self {
        Cache {
            map: HashMap::new(),
            order: VecDeque::new(),
            weight: 0,
            capacity,
        }
    }

    pub fn get(&self, key: u32) -> Option<Arc<V>> {
        self.map.get(&key).map(|(v, _)| v.clone())
    }

    pub fn insert(&mut self, key: u32, value: Arc<V>, weight: usize) {
        match self.map.insert(key, (value, weight)) {
            Some((_, old)) => self.weight -= old,
            None => self.order.push_back(key),
        }
        self.weight += weight;
        while self.weight > self.capacity && self.order.len() > 1 {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some((_, w)) = self.map.remove(&oldest) {
                self.weight -= w;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let mut c = Cache::new(10);
        for k in 0..100u32 {
            c.insert(k, Arc::new(k), 3);
            assert!(c.weight <= 10 && c.map.len() <= 3);
        }
        assert_eq!(c.get(99).as_deref(), Some(&99));
        assert!(c.get(0).is_none());
        c.insert(99, Arc::new(7), 1);
        assert_eq!(c.get(99).as_deref(), Some(&7));
    }
}
