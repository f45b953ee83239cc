//! The pull cursor: opaque to devices (`sync::v1::Cursor`, a `u64`), two things to the server.
//!
//! - A plain feed position `n` (top bit clear): the device has everything up to `n`.
//! - A snapshot in progress (top bit set): the feed head `M` the snapshot is consistent with
//!   (39 bits) and the offset of the next page in the user's cases (24 bits). Once the last page
//!   is sent the cursor is `M`.
//!
//! A feed head beyond 39 bits (5·10¹¹ rows) or a user with more than 16 million cases would make
//! a snapshot unpaged; nothing else depends on the layout, which is private to the server.

use sop_core::sync::v1::Cursor;

const SNAPSHOT_FLAG: u64 = 1 << 63;
const OFFSET_BITS: u32 = 24;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;
/// The largest feed head a snapshot cursor can carry.
pub const MAX_SNAPSHOT_HEAD: i64 = (1 << (63 - OFFSET_BITS)) - 1;
/// The largest offset a snapshot cursor can carry.
pub const MAX_SNAPSHOT_OFFSET: i64 = (1 << OFFSET_BITS) - 1;

/// Where a pull continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// After this feed position.
    Feed(i64),
    /// Inside a snapshot consistent with the feed at `head`, from the `offset`-th case on.
    Snapshot { head: i64, offset: i64 },
}

/// The cursor of a position; `None` for one that cannot be encoded (negative, or a snapshot
/// beyond [`MAX_SNAPSHOT_HEAD`] or [`MAX_SNAPSHOT_OFFSET`]).
pub fn encode(position: Position) -> Option<Cursor> {
    match position {
        Position::Feed(n) => u64::try_from(n)
            .ok()
            .filter(|n| n & SNAPSHOT_FLAG == 0)
            .map(Cursor),
        Position::Snapshot { head, offset } => {
            if !(0..=MAX_SNAPSHOT_HEAD).contains(&head)
                || !(0..=MAX_SNAPSHOT_OFFSET).contains(&offset)
            {
                return None;
            }
            let head = u64::try_from(head).ok()?;
            let offset = u64::try_from(offset).ok()?;
            Some(Cursor(SNAPSHOT_FLAG | (head << OFFSET_BITS) | offset))
        }
    }
}

/// The position a cursor stands for.
pub fn decode(cursor: Cursor) -> Position {
    let c = cursor.0;
    if c & SNAPSHOT_FLAG == 0 {
        // Fits: the top bit is clear.
        return Position::Feed(i64::try_from(c).unwrap_or(i64::MAX));
    }
    let head = (c & !SNAPSHOT_FLAG) >> OFFSET_BITS;
    Position::Snapshot {
        head: i64::try_from(head).unwrap_or(i64::MAX),
        offset: i64::try_from(c & OFFSET_MASK).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn feed_positions_are_plain_numbers() {
        assert_eq!(encode(Position::Feed(42)), Some(Cursor(42)));
        assert_eq!(decode(Cursor(42)), Position::Feed(42));
        assert_eq!(decode(Cursor(0)), Position::Feed(0));
        assert_eq!(encode(Position::Feed(-1)), None);
    }

    #[test]
    fn snapshot_positions_round_trip() {
        for head in [0, 1, 123_456_789, MAX_SNAPSHOT_HEAD] {
            for offset in [0, 50, MAX_SNAPSHOT_OFFSET] {
                let p = Position::Snapshot { head, offset };
                let c = encode(p).unwrap();
                assert!(c.0 & SNAPSHOT_FLAG != 0);
                assert_eq!(decode(c), p);
            }
        }
    }

    #[test]
    fn unencodable_snapshots_are_refused() {
        for (head, offset) in [
            (MAX_SNAPSHOT_HEAD + 1, 0),
            (0, MAX_SNAPSHOT_OFFSET + 1),
            (-1, 0),
        ] {
            assert_eq!(encode(Position::Snapshot { head, offset }), None);
        }
    }
}
