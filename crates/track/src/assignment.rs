//! Exact minimum-cost assignment between the rows (tracks) and columns (detections) of a
//! rectangular cost matrix, with a cost limit.
//!
//! This is what ByteTrack gets from `lap.lapjv(cost, extend_cost=True, cost_limit=thresh)`: a
//! pair `(i, j)` may be matched only if `cost[i][j] <= thresh` (finite costs only), every row and
//! column is matched at most once, and the matching minimises
//! `sum over matched pairs of (cost - thresh)`; leaving a row or column unmatched costs nothing.
//! So a pair is worth matching by how far it is under the limit, and a cheap pair is never
//! given up to make room for two pairs whose total saving is smaller.
//!
//! Solved exactly with the shortest-augmenting-path Hungarian algorithm (Jonker-Volgenant
//! style potentials) on the smaller side, with one private "stay unmatched" column per row.

/// The outcome of [`linear_assignment`]: indices into the rows and columns of the matrix,
/// each list sorted ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// `(row, column)` pairs, sorted by row.
    pub matches: Vec<(usize, usize)>,
    pub unmatched_rows: Vec<usize>,
    pub unmatched_cols: Vec<usize>,
}

/// Cost of a forbidden cell in the shifted matrix: allowed cells are `<= 0` and each row's own
/// "unmatched" cell is `0`, so any positive value is never part of an optimum.
const FORBIDDEN: f64 = 1.0;

/// Optimal assignment for the row-major `rows x cols` matrix `cost` under the limit `thresh`
/// (see the module docs). Non-finite costs are forbidden; `thresh = +inf` means "no limit"
/// (then as many pairs as possible are matched, and among those the cheapest); a NaN or
/// `-inf` limit matches nothing.
///
/// # Panics
/// If `cost.len() != rows * cols`.
pub fn linear_assignment(cost: &[f64], rows: usize, cols: usize, thresh: f64) -> Assignment {
    assert_eq!(cost.len(), rows * cols, "cost matrix is not {rows}x{cols}");
    let mut col_of_row = vec![None; rows];
    if let Some(limit) = effective_limit(cost, rows.min(cols), thresh) {
        // Work on the smaller side: n rows against m real columns plus n private dummies.
        let transpose = rows > cols;
        let (n, m) = if transpose {
            (cols, rows)
        } else {
            (rows, cols)
        };
        let at = |i: usize, j: usize| {
            if transpose {
                cost[j * cols + i]
            } else {
                cost[i * cols + j]
            }
        };
        let width = m + n;
        let mut shifted = vec![FORBIDDEN; n * width];
        for i in 0..n {
            for j in 0..m {
                let c = at(i, j);
                if c.is_finite() && c <= limit {
                    shifted[i * width + j] = c - limit;
                }
            }
            shifted[i * width + m + i] = 0.0;
        }
        for (i, j) in hungarian(&shifted, n, width).into_iter().enumerate() {
            if j < m && shifted[i * width + j] <= 0.0 {
                let (r, c) = if transpose { (j, i) } else { (i, j) };
                col_of_row[r] = Some(c);
            }
        }
    }
    let mut out = Assignment::default();
    let mut col_used = vec![false; cols];
    for (r, c) in col_of_row.iter().enumerate() {
        match *c {
            Some(c) => {
                out.matches.push((r, c));
                col_used[c] = true;
            }
            None => out.unmatched_rows.push(r),
        }
    }
    out.unmatched_cols = (0..cols).filter(|&c| !col_used[c]).collect();
    out
}

/// The finite limit to shift by, or `None` if nothing can match.
fn effective_limit(cost: &[f64], max_pairs: usize, thresh: f64) -> Option<f64> {
    if max_pairs == 0 || thresh.is_nan() || thresh == f64::NEG_INFINITY {
        return None;
    }
    if thresh.is_finite() {
        return Some(thresh);
    }
    // No limit: a limit so high that one more pair always outweighs any difference in cost
    // between matchings, i.e. maximum cardinality first, then minimum cost.
    let spread = cost
        .iter()
        .filter(|c| c.is_finite())
        .fold(0.0f64, |m, c| m.max(c.abs()));
    Some(2.0 * (max_pairs as f64 + 1.0) * spread.max(1.0) + 1.0)
}

/// Minimum-cost assignment of each of `n` rows to a distinct one of `m >= n` columns of the
/// finite row-major matrix `a` (shortest augmenting paths with potentials, O(n^2 m)).
/// Returns the column of each row.
fn hungarian(a: &[f64], n: usize, m: usize) -> Vec<usize> {
    debug_assert!(n <= m && a.len() == n * m);
    // 1-based: column 0 and row 0 are the algorithm's virtual start.
    let mut u = vec![0.0f64; n + 1];
    let mut v = vec![0.0f64; m + 1];
    let mut row_of_col = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    let mut minv = vec![0.0f64; m + 1];
    let mut used = vec![false; m + 1];
    for i in 1..=n {
        row_of_col[0] = i;
        let mut j0 = 0;
        minv.fill(f64::INFINITY);
        used.fill(false);
        loop {
            used[j0] = true;
            let i0 = row_of_col[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=m {
                if !used[j] {
                    let cur = a[(i0 - 1) * m + (j - 1)] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            debug_assert!(
                j1 != 0,
                "no free column: the matrix must be finite with m >= n"
            );
            for j in 0..=m {
                if used[j] {
                    u[row_of_col[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if row_of_col[j0] == 0 {
                break;
            }
        }
        // Augment along the path back to the virtual column.
        while j0 != 0 {
            let j1 = way[j0];
            row_of_col[j0] = row_of_col[j1];
            j0 = j1;
        }
    }
    let mut col_of_row = vec![0; n];
    for j in 1..=m {
        if row_of_col[j] != 0 {
            col_of_row[row_of_col[j] - 1] = j - 1;
        }
    }
    col_of_row
}

#[cfg(test)]
mod tests {
    use super::*;
    use roadwarden_types::rng::SplitMix64;

    /// Best objective over all partial matchings: min sum of (cost - thresh) over allowed pairs.
    fn brute_force(cost: &[f64], rows: usize, cols: usize, thresh: f64) -> f64 {
        fn go(
            r: usize,
            used: &mut [bool],
            cost: &[f64],
            rows: usize,
            cols: usize,
            thresh: f64,
        ) -> f64 {
            if r == rows {
                return 0.0;
            }
            let mut best = go(r + 1, used, cost, rows, cols, thresh);
            for c in 0..cols {
                let x = cost[r * cols + c];
                if !used[c] && x.is_finite() && x <= thresh {
                    used[c] = true;
                    best = best.min(x - thresh + go(r + 1, used, cost, rows, cols, thresh));
                    used[c] = false;
                }
            }
            best
        }
        go(0, &mut vec![false; cols], cost, rows, cols, thresh)
    }

    fn check_valid(a: &Assignment, cost: &[f64], rows: usize, cols: usize, thresh: f64) -> f64 {
        let mut row_seen = vec![false; rows];
        let mut col_seen = vec![false; cols];
        let mut objective = 0.0;
        for &(r, c) in &a.matches {
            assert!(!row_seen[r] && !col_seen[c], "{a:?}");
            row_seen[r] = true;
            col_seen[c] = true;
            let x = cost[r * cols + c];
            assert!(
                x.is_finite() && x <= thresh,
                "forbidden pair ({r}, {c}) = {x} matched"
            );
            objective += x - thresh;
        }
        let unmatched_rows: Vec<usize> = (0..rows).filter(|&r| !row_seen[r]).collect();
        let unmatched_cols: Vec<usize> = (0..cols).filter(|&c| !col_seen[c]).collect();
        assert_eq!(a.unmatched_rows, unmatched_rows);
        assert_eq!(a.unmatched_cols, unmatched_cols);
        assert!(a.matches.windows(2).all(|w| w[0].0 < w[1].0));
        objective
    }

    #[test]
    fn optimal_against_brute_force_on_random_matrices_with_forbidden_cells() {
        let mut rng = SplitMix64::new(0x5EED);
        for case in 0..200 {
            let rows = rng.below(6);
            let cols = rng.below(7);
            let thresh = [0.5, 0.7, 0.8, 1.0][rng.below(4)];
            let cost: Vec<f64> = (0..rows * cols)
                .map(|_| match rng.below(10) {
                    0 => f64::INFINITY,
                    1 => f64::NAN,
                    // Above the limit: forbidden, even though finite.
                    2 => thresh + 0.01 + rng.unit_f64(),
                    // Coarse values so that ties happen.
                    3 => (rng.below(5) as f64) / 4.0,
                    _ => rng.unit_f64(),
                })
                .collect();
            let a = linear_assignment(&cost, rows, cols, thresh);
            let got = check_valid(&a, &cost, rows, cols, thresh);
            let want = brute_force(&cost, rows, cols, thresh);
            assert!(
                (got - want).abs() < 1e-9,
                "case {case} ({rows}x{cols}, thresh {thresh}): got {got}, optimum {want}, {cost:?} -> {a:?}"
            );
        }
    }

    #[test]
    fn greedy_would_be_wrong_here() {
        // Under a limit of 0.9, greedy takes the cheapest pair (0, 0) (saving 0.8) and row 1
        // is left with nothing allowed; (0, 1) + (1, 0) save 0.6 + 0.6 = 1.2.
        let cost = [0.1, 0.3, 0.3, 5.0];
        let a = linear_assignment(&cost, 2, 2, 0.9);
        assert_eq!(a.matches, vec![(0, 1), (1, 0)]);
        assert!(a.unmatched_rows.is_empty() && a.unmatched_cols.is_empty());
    }

    #[test]
    fn a_cheap_pair_is_not_split_for_two_marginal_ones() {
        // Matching (0, 0) alone saves 0.8; (0, 1) + (1, 0) save only 0.05 + 0.05.
        let cost = [0.0, 0.75, 0.75, 5.0];
        let a = linear_assignment(&cost, 2, 2, 0.8);
        assert_eq!(a.matches, vec![(0, 0)]);
        assert_eq!(a.unmatched_rows, vec![1]);
        assert_eq!(a.unmatched_cols, vec![1]);
    }

    #[test]
    fn empty_and_degenerate_inputs() {
        let a = linear_assignment(&[], 0, 3, 0.8);
        assert_eq!(a.unmatched_cols, vec![0, 1, 2]);
        let a = linear_assignment(&[], 2, 0, 0.8);
        assert_eq!(a.unmatched_rows, vec![0, 1]);
        let a = linear_assignment(&[0.1, 0.2], 1, 2, f64::NAN);
        assert!(a.matches.is_empty());
        let a = linear_assignment(&[f64::NAN, f64::INFINITY], 2, 1, 0.8);
        assert!(a.matches.is_empty());
    }

    #[test]
    fn no_limit_maximises_the_number_of_pairs_then_minimises_cost() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..100 {
            let (rows, cols) = (1 + rng.below(5), 1 + rng.below(5));
            let cost: Vec<f64> = (0..rows * cols).map(|_| 10.0 * rng.unit_f64()).collect();
            let a = linear_assignment(&cost, rows, cols, f64::INFINITY);
            assert_eq!(a.matches.len(), rows.min(cols));
            // Brute force with a limit high enough to force full cardinality.
            let big = 1e3;
            let got: f64 = a.matches.iter().map(|&(r, c)| cost[r * cols + c]).sum();
            let want = brute_force(&cost, rows, cols, big) + big * rows.min(cols) as f64;
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}
