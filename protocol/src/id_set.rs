use std::collections::HashSet;
use zeroize::Zeroize;

/// A set of identifiers, each at most once, in first-seen order.
///
/// Duplicates are dropped on construction, so they can never change the answer
/// of a protocol (a duplicate would otherwise count twice in a cardinality).
/// The bytes are zeroized when the set is dropped.
#[derive(Clone, Default)]
pub struct IdSet {
    ids: Vec<Vec<u8>>,
}

impl IdSet {
    /// Number of distinct identifiers.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The identifier at `index`, in first-seen order.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.ids.get(index).map(Vec::as_slice)
    }

    /// The identifiers in first-seen order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.ids.iter().map(Vec::as_slice)
    }
}

impl<T: AsRef<[u8]>> FromIterator<T> for IdSet {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        for id in iter {
            let id = id.as_ref();
            if seen.insert(id.to_vec()) {
                ids.push(id.to_vec());
            }
        }
        for mut id in seen {
            id.zeroize();
        }
        Self { ids }
    }
}

impl Drop for IdSet {
    fn drop(&mut self) {
        for id in &mut self.ids {
            id.zeroize();
        }
    }
}

impl std::fmt::Debug for IdSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdSet({} ids, redacted)", self.ids.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_dropped_keeping_first_order() {
        let set: IdSet = ["b", "a", "b", "c", "a"].into_iter().collect();
        let ids: Vec<&[u8]> = set.iter().collect();
        assert_eq!(ids, vec![&b"b"[..], b"a", b"c"]);
    }

    #[test]
    fn debug_does_not_print_ids() {
        let set: IdSet = ["secret-customer"].into_iter().collect();
        assert!(!format!("{set:?}").contains("secret"));
    }
}
