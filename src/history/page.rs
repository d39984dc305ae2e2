//! Where a page of history stops: at its row limit, or earlier once its payload would pass a
//! byte budget, so that one page of large log entries stays within a worker's memory.

/// Most payload bytes one page of history carries (the base64 of its updates, for a replay).
/// A worker isolate has 128 MiB
/// (<https://developers.cloudflare.com/workers/platform/limits/#memory>), and a page is held
/// several times over while it is answered (the rows read, their base64, the JSON body), so a
/// page is kept to a few MiB; a client asks for the next one with the page's `next_after`.
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// How much of a page of rows to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCut {
    /// Rows to send, from the first: never 0 when any row was read, so that a client always
    /// progresses, even past a row larger than the whole budget.
    pub len: usize,
    /// Whether rows may follow the last one sent: the page stopped at the budget, or it read as
    /// many rows as it may (the next page then tells). The next page starts after the last row
    /// sent, so no row is skipped or sent twice.
    pub more: bool,
}

/// Cuts a page of rows read in order, at most `limit` of them, whose payloads take `sizes`
/// bytes each: as many rows as fit in `budget` bytes, and at least one.
pub fn cut_page(sizes: &[usize], limit: usize, budget: usize) -> PageCut {
    let mut total = 0usize;
    let fit = sizes
        .iter()
        .take_while(|&&size| {
            total = total.saturating_add(size);
            total <= budget
        })
        .count();
    let len = match sizes.len() {
        0 => 0,
        _ => fit.max(1),
    };
    PageCut {
        len,
        more: len < sizes.len() || sizes.len() >= limit,
    }
}

/// Length of the standard (padded) base64 encoding of `bytes` bytes.
pub fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3).saturating_mul(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_stops_before_the_row_that_would_pass_the_budget() {
        // 3 + 4 = 7 fits in 8; the third row would make 10.
        assert_eq!(
            cut_page(&[3, 4, 3, 1], 10, 8),
            PageCut { len: 2, more: true }
        );
        // Exactly the budget fits.
        assert_eq!(cut_page(&[4, 4, 1], 10, 8), PageCut { len: 2, more: true });
        // Everything fits and the range ended before the limit: nothing follows.
        assert_eq!(
            cut_page(&[1, 2, 3], 10, 8),
            PageCut {
                len: 3,
                more: false
            }
        );
    }

    #[test]
    fn a_row_larger_than_the_budget_is_sent_alone() {
        assert_eq!(cut_page(&[20, 1, 1], 10, 8), PageCut { len: 1, more: true });
        // The last row of the range: sent, and nothing follows.
        assert_eq!(
            cut_page(&[20], 10, 8),
            PageCut {
                len: 1,
                more: false
            }
        );
        // A large row after small ones waits for the next page, where it comes first.
        assert_eq!(cut_page(&[1, 20, 1], 10, 8), PageCut { len: 1, more: true });
        assert_eq!(cut_page(&[20, 1], 10, 8).len, 1);
    }

    #[test]
    fn a_full_page_may_have_more_rows_after_it() {
        assert_eq!(cut_page(&[1, 1, 1], 3, 8), PageCut { len: 3, more: true });
        assert_eq!(
            cut_page(&[], 3, 8),
            PageCut {
                len: 0,
                more: false
            }
        );
        // Sizes that would overflow a sum still cut.
        assert_eq!(
            cut_page(&[usize::MAX, usize::MAX], 3, 8),
            PageCut { len: 1, more: true }
        );
    }

    #[test]
    fn pages_cover_every_row_once() {
        let sizes: Vec<usize> = (0..200).map(|i| (i * 7919) % 13 + (i % 17) * 3).collect();
        let mut sent = Vec::new();
        let mut start = 0;
        loop {
            // What the store reads after the last row sent, at most `limit` rows.
            let read = &sizes[start..sizes.len().min(start + 25)];
            let cut = cut_page(read, 25, 40);
            sent.extend(start..start + cut.len);
            start += cut.len;
            if !cut.more {
                break;
            }
        }
        assert_eq!(sent, (0..sizes.len()).collect::<Vec<_>>());
    }

    #[test]
    fn base64_lengths() {
        assert_eq!(base64_len(0), 0);
        assert_eq!(base64_len(1), 4);
        assert_eq!(base64_len(3), 4);
        assert_eq!(base64_len(4), 8);
        assert_eq!(base64_len(3 * 1024 * 1024), 4 * 1024 * 1024);
    }
}
