use zeroize::Zeroize;

use super::refuse_repeats;
use crate::Error;
use crate::group::EncodedPoint;

/// A universal identifier: `H(id)^(a·b·a'·b')`, the same 32 bytes for an id
/// at both parties, and pseudorandom to each of them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(pub [u8; 32]);

impl std::fmt::Debug for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A UID is a pseudonym both parties hold; its first bytes suffice to
        // tell rows apart in a log.
        write!(
            f,
            "Uid({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// What a party ends with: the union of both sets as UIDs in ascending
/// order (the same list at both parties), and the row of each of its own
/// records in it.
#[derive(Clone, PartialEq, Eq)]
pub struct Matching {
    union: Vec<Uid>,
    rows: Vec<usize>,
    peer_set_size: u64,
}

impl Matching {
    /// Builds the union from this party's UIDs (one per record, in the
    /// order of its [`crate::IdSet`]) and the UIDs of the peer's ids that
    /// this party does not hold.
    pub(super) fn assemble(
        own: Vec<EncodedPoint>,
        peer_only: Vec<EncodedPoint>,
        peer_set_size: u64,
    ) -> Result<Self, Error> {
        let mut union: Vec<EncodedPoint> = own.iter().chain(&peer_only).copied().collect();
        union.sort_unstable();
        refuse_repeats(&union, "the union's identifiers")?;
        // `binary_search` finds each own UID: all of them are in `union`.
        let rows = own
            .iter()
            .map(|uid| union.binary_search(uid).unwrap_or_default())
            .collect();
        Ok(Self {
            union: union.into_iter().map(Uid).collect(),
            rows,
            peer_set_size,
        })
    }

    /// The union X ∪ Y as UIDs, ascending: row `i` is `union()[i]`.
    pub fn union(&self) -> &[Uid] {
        &self.union
    }

    /// `rows()[r]` is the row of this party's record `r` (its position in
    /// the party's [`crate::IdSet`]). Distinct for distinct records.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// The number of ids the peer announced and matched with.
    pub fn peer_set_size(&self) -> u64 {
        self.peer_set_size
    }

    /// |X ∩ Y|, which both parties learn: |X| + |Y| − |X ∪ Y|.
    pub fn intersection_size(&self) -> u64 {
        (self.rows.len() as u64 + self.peer_set_size).saturating_sub(self.union.len() as u64)
    }

    /// This party's column over the union, for the secret-sharing step:
    /// `column[r]` (the value of record `r`) on row `rows()[r]` with presence
    /// 1, and the default (0) with presence 0 on every row where this party
    /// has no record.
    pub fn align<T: Copy + Default + Zeroize>(
        &self,
        column: &[T],
    ) -> Result<AlignedColumn<T>, ColumnLengthMismatch> {
        if column.len() != self.rows.len() {
            return Err(ColumnLengthMismatch {
                records: self.rows.len(),
                values: column.len(),
            });
        }
        let mut values = vec![T::default(); self.union.len()];
        let mut present = vec![false; self.union.len()];
        for (&row, &value) in self.rows.iter().zip(column) {
            values[row] = value;
            present[row] = true;
        }
        Ok(AlignedColumn { values, present })
    }
}

impl std::fmt::Debug for Matching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The rows say which union rows are this party's: not for logs.
        write!(
            f,
            "Matching({} rows in the union, {} own records, peer announced {}, rows redacted)",
            self.union.len(),
            self.rows.len(),
            self.peer_set_size
        )
    }
}

/// A column given to [`Matching::align`] does not have one value per record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the column has {values} values for {records} records")]
pub struct ColumnLengthMismatch {
    /// Records the party matched.
    pub records: usize,
    /// Values in the column.
    pub values: usize,
}

/// A party's column laid over the union's rows. Zeroized on drop: the values
/// are the party's private data until they are shared.
pub struct AlignedColumn<T: Zeroize> {
    values: Vec<T>,
    present: Vec<bool>,
}

impl<T: Zeroize> AlignedColumn<T> {
    /// One value per row of the union: the record's value, or 0 where this
    /// party has no record.
    pub fn values(&self) -> &[T] {
        &self.values
    }

    /// One flag per row: whether this party has a record there.
    pub fn present(&self) -> &[bool] {
        &self.present
    }
}

impl<T: Zeroize> Drop for AlignedColumn<T> {
    fn drop(&mut self) {
        self.values.zeroize();
        self.present.zeroize();
    }
}

impl<T: Zeroize> std::fmt::Debug for AlignedColumn<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedColumn({} rows, redacted)", self.values.len())
    }
}
