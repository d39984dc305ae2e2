//! Shortest edit scripts between two sequences (Myers, "An O(ND) Difference Algorithm and Its
//! Variations", 1986), with bounded work so that huge, very different inputs stay cheap.

/// Most edits (insertions plus deletions, after the common prefix and suffix) a diff searches
/// for before settling for one coarse range. The search keeps one row of `2d + 1` positions per
/// edit `d`, so this also bounds its memory (about 8 MB).
pub const MAX_EDIT_DISTANCE: usize = 1000;

/// Most comparison steps a diff spends searching before settling for one coarse range.
pub const MAX_DIFF_WORK: usize = 20_000_000;

/// One stretch of an edit script, in items of the sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    /// Items common to both.
    Equal(usize),
    /// Items only in the second sequence.
    Insert(usize),
    /// Items only in the first sequence.
    Delete(usize),
}

/// An edit script turning `a` into `b`, and whether it is coarse: the whole range between the
/// common prefix and suffix replaced, because the shortest script was too costly to find.
/// Consecutive changes come as one insertion then one deletion; there is no trailing `Equal`.
pub(crate) fn script<T: PartialEq>(a: &[T], b: &[T]) -> (Vec<Run>, bool) {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a_mid, b_mid) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let (middle, coarse) = match shortest(a_mid, b_mid) {
        Some(runs) => (runs, false),
        None => (
            vec![Run::Delete(a_mid.len()), Run::Insert(b_mid.len())],
            true,
        ),
    };
    let mut runs = vec![Run::Equal(prefix)];
    runs.extend(middle);
    (normalize(runs), coarse)
}

/// Merges neighbouring runs, puts each change's insertion before its deletion (as Quill deltas
/// do) and drops empty and trailing equal runs.
fn normalize(runs: Vec<Run>) -> Vec<Run> {
    let mut out = Vec::new();
    let (mut inserted, mut deleted) = (0, 0);
    let flush = |out: &mut Vec<Run>, inserted: &mut usize, deleted: &mut usize| {
        if *inserted > 0 {
            out.push(Run::Insert(std::mem::take(inserted)));
        }
        if *deleted > 0 {
            out.push(Run::Delete(std::mem::take(deleted)));
        }
    };
    for run in runs {
        match run {
            Run::Insert(n) => inserted += n,
            Run::Delete(n) => deleted += n,
            Run::Equal(0) => {}
            Run::Equal(n) => {
                flush(&mut out, &mut inserted, &mut deleted);
                match out.last_mut() {
                    Some(Run::Equal(m)) => *m += n,
                    _ => out.push(Run::Equal(n)),
                }
            }
        }
    }
    flush(&mut out, &mut inserted, &mut deleted);
    if let Some(Run::Equal(_)) = out.last() {
        out.pop();
    }
    out
}

/// The shortest edit script, or `None` when it is longer than [`MAX_EDIT_DISTANCE`] or takes
/// more than [`MAX_DIFF_WORK`] steps to find.
fn shortest<T: PartialEq>(a: &[T], b: &[T]) -> Option<Vec<Run>> {
    if a.is_empty() || b.is_empty() {
        return Some(vec![Run::Delete(a.len()), Run::Insert(b.len())]);
    }
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max_d = (n + m).min(MAX_EDIT_DISTANCE as isize);
    let offset = max_d + 1;
    // v[offset + k]: furthest x reached on diagonal k = x - y.
    let mut v = vec![0isize; 2 * offset as usize + 1];
    // trace[d]: v over diagonals -d..=d after d edits, to walk the path back.
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let mut work = 0usize;
    for d in 0..=max_d {
        for k in (-d..=d).step_by(2) {
            let at = |k: isize| v[(offset + k) as usize];
            let down = k == -d || (k != d && at(k - 1) < at(k + 1));
            let mut x = if down { at(k + 1) } else { at(k - 1) + 1 };
            let mut y = x - k;
            let start = x;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[(offset + k) as usize] = x;
            if x >= n && y >= m {
                return Some(backtrack(&trace, n, m));
            }
            // Checked per diagonal: a single round can follow many long snakes.
            work += 1 + (x - start) as usize;
            if work > MAX_DIFF_WORK {
                return None;
            }
        }
        trace.push(v[(offset - d) as usize..=(offset + d) as usize].to_vec());
    }
    None
}

/// Walks from the end back to the start through the rows the search kept.
fn backtrack(trace: &[Vec<isize>], mut x: isize, mut y: isize) -> Vec<Run> {
    let mut runs = Vec::new();
    for (d, row) in trace.iter().enumerate().rev() {
        // `row` is the state after `d` edits; the step being undone is edit `d + 1`.
        let d = d as isize + 1;
        let at = |k: isize| row[(k + d - 1) as usize];
        let k = x - y;
        let down = k == -d || (k != d && at(k - 1) < at(k + 1));
        let prev_k = if down { k + 1 } else { k - 1 };
        let prev_x = at(prev_k);
        let prev_y = prev_x - prev_k;
        let snake_start = if down { prev_x } else { prev_x + 1 };
        runs.push(Run::Equal((x - snake_start) as usize));
        runs.push(if down { Run::Insert(1) } else { Run::Delete(1) });
        (x, y) = (prev_x, prev_y);
    }
    runs.push(Run::Equal(x as usize));
    runs.reverse();
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(a: &[u8], b: &[u8], runs: &[Run]) -> Vec<u8> {
        let (mut out, mut i, mut j) = (Vec::new(), 0, 0);
        for run in runs {
            match *run {
                Run::Equal(n) => {
                    assert_eq!(a[i..i + n], b[j..j + n]);
                    out.extend_from_slice(&a[i..i + n]);
                    (i, j) = (i + n, j + n);
                }
                Run::Insert(n) => {
                    out.extend_from_slice(&b[j..j + n]);
                    j += n;
                }
                Run::Delete(n) => i += n,
            }
        }
        out.extend_from_slice(&a[i..]);
        out
    }

    fn edits(runs: &[Run]) -> usize {
        runs.iter()
            .map(|r| match r {
                Run::Insert(n) | Run::Delete(n) => *n,
                Run::Equal(_) => 0,
            })
            .sum()
    }

    #[test]
    fn scripts_are_shortest_and_rebuild_the_target() {
        let cases: &[(&str, &str, usize)] = &[
            ("", "", 0),
            ("abc", "abc", 0),
            ("", "abc", 3),
            ("abc", "", 3),
            ("abcabba", "cbabac", 5),
            ("kitten", "sitting", 5),
            ("the quick brown fox", "the quack brown box!", 5),
            ("aaaa", "aa", 2),
        ];
        for (a, b, d) in cases {
            let (runs, coarse) = script(a.as_bytes(), b.as_bytes());
            assert!(!coarse);
            assert_eq!(
                apply(a.as_bytes(), b.as_bytes(), &runs),
                b.as_bytes(),
                "{a} -> {b}"
            );
            assert_eq!(edits(&runs), *d, "{a} -> {b}: {runs:?}");
        }
    }

    #[test]
    fn repetitive_inputs_stop_at_the_work_bound() {
        // Long equal runs on many diagonals: each round follows long snakes.
        let a: Vec<u8> = b"ab".repeat(100_000);
        let mut b = a.clone();
        for i in (0..b.len()).step_by(97) {
            b[i] = b'c';
        }
        let started = std::time::Instant::now();
        let (runs, coarse) = script(&a, &b);
        assert!(coarse);
        assert_eq!(apply(&a, &b, &runs), b);
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    }

    #[test]
    fn pseudo_random_inputs_round_trip() {
        // A small linear congruential generator keeps the test deterministic.
        let mut seed = 0x2545_f491_u64;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..300 {
            let a: Vec<u8> = (0..next(40)).map(|_| b'a' + next(3) as u8).collect();
            let mut b = a.clone();
            for _ in 0..next(6) {
                let at = next(b.len() as u64 + 1) as usize;
                if next(2) == 0 && at < b.len() {
                    b.remove(at);
                } else {
                    b.insert(at, b'a' + next(4) as u8);
                }
            }
            let (runs, coarse) = script(&a, &b);
            assert!(!coarse);
            assert_eq!(apply(&a, &b, &runs), b);
            assert_eq!(edits(&runs), a.len() + b.len() - 2 * lcs(&a, &b));
        }
    }

    /// Length of the longest common subsequence, by dynamic programming.
    fn lcs(a: &[u8], b: &[u8]) -> usize {
        let mut row = vec![0; b.len() + 1];
        for x in a {
            let mut diagonal = 0;
            for (j, y) in b.iter().enumerate() {
                let up = row[j + 1];
                row[j + 1] = if x == y { diagonal + 1 } else { up.max(row[j]) };
                diagonal = up;
            }
        }
        row[b.len()]
    }
}
