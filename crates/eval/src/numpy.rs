//! Exact emulations of the numpy (and OpenBLAS) routines that ultralytics'
//! metrics go through, in `f64`, with numpy's order of operations, so that
//! results agree to the last bit and not merely to a tolerance.

use std::cmp::Ordering;

/// `np.linspace(0, 1, num)`: `i * (1 / (num - 1))`, with the last point set
/// to exactly 1.
pub(crate) fn linspace01(num: usize) -> Vec<f64> {
    match num {
        0 => Vec::new(),
        1 => vec![0.0],
        _ => {
            let step = 1.0 / (num - 1) as f64;
            let mut y: Vec<f64> = (0..num).map(|i| i as f64 * step + 0.0).collect();
            y[num - 1] = 1.0;
            y
        }
    }
}

/// `np.interp(x, xp, fp, left, right)` at one point, as numpy's C
/// `arr_interp` computes it. `xp` must be non-decreasing and as long as
/// `fp`, and not empty.
///
/// * `x` NaN gives `x`; `x < xp[0]` gives `left`; `x > xp[last]` gives `right`.
/// * Otherwise `j` is the last index with `xp[j] <= x`, so among equal knots
///   the right-most one counts. `x == xp[j]` (including `x == xp[last]`)
///   gives `fp[j]`; otherwise `fp[j]` plus the slope to `j + 1`.
pub(crate) fn interp(x: f64, xp: &[f64], fp: &[f64], left: f64, right: f64) -> f64 {
    debug_assert_eq!(xp.len(), fp.len());
    let n = xp.len();
    if x.is_nan() {
        return x;
    }
    if x > xp[n - 1] {
        return right;
    }
    if x < xp[0] {
        return left;
    }
    let j = xp.partition_point(|&v| v <= x) - 1;
    if j == n - 1 || xp[j] == x {
        return fp[j];
    }
    let slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    let mut res = slope * (x - xp[j]) + fp[j];
    if res.is_nan() {
        res = slope * (x - xp[j + 1]) + fp[j + 1];
        if res.is_nan() && fp[j] == fp[j + 1] {
            res = fp[j];
        }
    }
    res
}

/// numpy's `pairwise_sum_DOUBLE`: eight accumulators for blocks of up to 128
/// values, halving above that.
fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for (acc, &v) in r.iter_mut().zip(&a[i..i + 8]) {
                *acc += v;
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[i..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `a.sum()` of a 1-D float64 array: the identity 0 plus the pairwise sum.
pub(crate) fn sum(a: &[f64]) -> f64 {
    0.0 + pairwise_sum(a)
}

/// `a.mean()` of a 1-D float64 array (NaN when empty, as numpy).
pub(crate) fn mean(a: &[f64]) -> f64 {
    sum(a) / a.len() as f64
}

/// OpenBLAS `ddot` for unit strides with the Haswell micro-kernel (used for
/// Haswell and Zen cores): four 4-lane FMA accumulators over blocks of 16,
/// a fixed reduction tree, then a plain multiply-add tail.
pub(crate) fn ddot(x: &[f64], y: &[f64]) -> f64 {
    debug_assert_eq!(x.len(), y.len());
    let n = x.len();
    let n1 = n & !15;
    let mut dot = 0.0;
    if n1 > 0 {
        let mut acc = [[0.0f64; 4]; 4];
        for b in (0..n1).step_by(16) {
            for (a, lanes) in acc.iter_mut().enumerate() {
                for (l, lane) in lanes.iter_mut().enumerate() {
                    let k = b + 4 * a + l;
                    *lane = x[k].mul_add(y[k], *lane);
                }
            }
        }
        // vextractf128 + vaddpd: fold the high 128 bits onto the low ones.
        let s: Vec<[f64; 2]> = acc.iter().map(|v| [v[0] + v[2], v[1] + v[3]]).collect();
        let s4 = [s[0][0] + s[1][0], s[0][1] + s[1][1]];
        let s6 = [s[2][0] + s[3][0], s[2][1] + s[3][1]];
        let s4 = [s4[0] + s6[0], s4[1] + s6[1]];
        // vhaddpd
        dot = s4[0] + s4[1];
    }
    for i in n1..n {
        dot += y[i] * x[i];
    }
    dot
}

/// Python's `round()` of a float to an integer: ties to even.
fn py_round(x: f64) -> i64 {
    x.round_ties_even() as i64
}

/// ultralytics `smooth(y, f)`: a box filter `nf = round(len * f * 2) // 2 + 1`
/// wide, with the ends padded by repeating `y[0]` and `y[last]`, through
/// `np.convolve(..., mode="valid")`, whose inner products are BLAS `ddot`
/// calls. The output is as long as `y`.
pub(crate) fn smooth(y: &[f64], f: f64) -> Vec<f64> {
    if y.is_empty() {
        return Vec::new();
    }
    let nf = (py_round(y.len() as f64 * f * 2.0).div_euclid(2) + 1) as usize;
    let pad = nf / 2;
    let first = y[0];
    let last = y[y.len() - 1];
    let mut yp = Vec::with_capacity(y.len() + 2 * pad);
    yp.extend(std::iter::repeat_n(1.0 * first, pad));
    yp.extend_from_slice(y);
    yp.extend(std::iter::repeat_n(1.0 * last, pad));
    // np.convolve(a, v) is correlate(a, v[::-1]); every weight is 1 / nf.
    let kernel = vec![1.0 / nf as f64; nf];
    yp.windows(nf).map(|w| 0.0 + ddot(w, &kernel)).collect()
}

/// `np.trapezoid(y, x)`: `sum(diff(x) * (y[1:] + y[:-1]) / 2.0)`.
pub(crate) fn trapezoid(y: &[f64], x: &[f64]) -> f64 {
    debug_assert_eq!(x.len(), y.len());
    let terms: Vec<f64> = (0..x.len().saturating_sub(1))
        .map(|k| (x[k + 1] - x[k]) * (y[k + 1] + y[k]) / 2.0)
        .collect();
    sum(&terms)
}

/// `np.argmax`: the first maximal index; a NaN counts as the maximum.
/// `None` when empty.
pub(crate) fn argmax(a: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &v) in a.iter().enumerate() {
        if v.is_nan() {
            return Some(i);
        }
        match best {
            Some(b) if v <= a[b] => {}
            _ => best = Some(i),
        }
    }
    best
}

/// numpy's sort order for floats: ascending, equal values (and -0 / +0)
/// tied, NaN last.
pub(crate) fn cmp_nan_last(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
    }
}

/// The indices that stably sort `v` by `-v` ascending, i.e. by `v`
/// descending with ties in input order and NaN last: `np.argsort(-v,
/// kind="stable")`.
pub(crate) fn argsort_desc_stable(v: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| cmp_nan_last(-v[a], -v[b]));
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_matches_numpy_construction() {
        let x = linspace01(101);
        assert_eq!(x.len(), 101);
        assert_eq!(x[0], 0.0);
        assert_eq!(x[100], 1.0);
        // numpy multiplies by the step rather than dividing: x[35] is
        // 35 * 0.01 = 0.35000000000000003, not 0.35.
        assert_eq!(x[35], 35.0 * 0.01);
        assert_ne!(x[35], 0.35);
        assert_eq!(linspace01(1000)[999], 1.0);
        assert_eq!(linspace01(1000)[1], 1.0 / 999.0);
    }

    #[test]
    fn interp_left_value_and_right_clamp() {
        let xp = [1.0, 2.0, 3.0];
        let fp = [10.0, 20.0, 40.0];
        assert_eq!(interp(0.5, &xp, &fp, -1.0, 99.0), -1.0);
        assert_eq!(interp(3.5, &xp, &fp, -1.0, 99.0), 99.0);
        // Default right (fp[last]) as ultralytics uses it.
        assert_eq!(interp(7.0, &xp, &fp, 0.0, fp[2]), 40.0);
        assert!(interp(f64::NAN, &xp, &fp, 0.0, 0.0).is_nan());
    }

    #[test]
    fn interp_exact_knots_and_between() {
        let xp = [1.0, 2.0, 3.0];
        let fp = [10.0, 20.0, 40.0];
        assert_eq!(interp(1.0, &xp, &fp, -1.0, 99.0), 10.0);
        assert_eq!(interp(2.0, &xp, &fp, -1.0, 99.0), 20.0);
        // x == xp[last] is fp[last], not `right`.
        assert_eq!(interp(3.0, &xp, &fp, -1.0, 99.0), 40.0);
        assert_eq!(interp(1.5, &xp, &fp, -1.0, 99.0), 15.0);
        assert_eq!(interp(2.25, &xp, &fp, -1.0, 99.0), 25.0);
        // A single knot.
        assert_eq!(interp(1.0, &[1.0], &[5.0], 0.0, 9.0), 5.0);
        assert_eq!(interp(0.0, &[1.0], &[5.0], 0.0, 9.0), 0.0);
        assert_eq!(interp(2.0, &[1.0], &[5.0], 0.0, 9.0), 9.0);
    }

    #[test]
    fn interp_ties_take_the_rightmost_knot() {
        // These two are what compute_ap relies on: precision falls to 0 *at*
        // a repeated recall, and at recall 1.
        assert_eq!(
            interp(0.5, &[0.0, 0.5, 0.5, 1.0], &[1.0, 1.0, 0.0, 0.0], 1.0, 0.0),
            0.0
        );
        assert_eq!(
            interp(1.0, &[0.0, 1.0, 1.0], &[1.0, 1.0, 0.0], 1.0, 0.0),
            0.0
        );
        // Between a tie and the next knot, interpolate from the right-most
        // tied knot.
        let xp = [0.0, 1.0, 1.0, 1.0, 2.0];
        let fp = [0.0, 5.0, 6.0, 7.0, 9.0];
        assert_eq!(interp(1.0, &xp, &fp, 0.0, 0.0), 7.0);
        assert_eq!(interp(1.5, &xp, &fp, 0.0, 0.0), 8.0);
        assert_eq!(interp(0.5, &xp, &fp, 0.0, 0.0), 2.5);
        // A tie at the start: x == xp[0] takes the last of the tied knots.
        assert_eq!(
            interp(0.0, &[0.0, 0.0, 1.0], &[3.0, 4.0, 6.0], -1.0, 0.0),
            4.0
        );
    }

    #[test]
    fn pairwise_sum_follows_numpy_blocking() {
        const BIG: f64 = 9_007_199_254_740_992.0; // 2^53: BIG + 1 rounds back to BIG
        // Below 8 values: left to right, so each 1 is lost against BIG.
        assert_eq!(sum(&[BIG, 1.0, 1.0, -BIG]), 0.0);
        // 9 values: eight accumulators reduced as a tree, so the two 1s meet
        // (1 + 1 = 2) before they meet BIG, and BIG + 2 is exact.
        assert_eq!(sum(&[BIG, 0.0, 1.0, 1.0, -BIG, 0.0, 0.0, 0.0, 0.0]), 2.0);
        assert_eq!(mean(&[1.0, 2.0, 3.0, 4.0]), 2.5);
        assert!(mean(&[]).is_nan());
    }

    #[test]
    fn smooth_preserves_length_and_constants() {
        for len in [1usize, 5, 37, 1000] {
            let y: Vec<f64> = (0..len).map(|i| (i as f64 * 0.37).sin()).collect();
            assert_eq!(smooth(&y, 0.05).len(), len);
        }
        // ultralytics' only use: 1000 points, f = 0.1, a 101-wide filter.
        assert_eq!(smooth(&vec![0.5; 1000], 0.1).len(), 1000);
        // When `round(len * f * 2) // 2 + 1` comes out even (37 * 0.1 * 2 =
        // 7.4 -> 7 // 2 + 1 = 4), the filter is even and, as in numpy, the
        // output one longer.
        assert_eq!(smooth(&[0.0; 37], 0.1).len(), 38);
        for c in [0.0, 1.0, 0.25, 0.3] {
            let y = vec![c; 1000];
            let s = smooth(&y, 0.1);
            // Exactly unchanged, as numpy gives (checked for these values).
            assert_eq!(s, y, "{c}");
        }
        assert!(smooth(&[], 0.1).is_empty());
    }

    #[test]
    fn smooth_is_a_centred_box_filter() {
        // A unit step at 500 in 1000 points, 101-wide filter: the output
        // rises over 450..=550, reaching exactly half way at the step.
        let y: Vec<f64> = (0..1000)
            .map(|i| if i >= 500 { 1.0 } else { 0.0 })
            .collect();
        let s = smooth(&y, 0.1);
        assert_eq!(s[449], 0.0);
        assert!(s[450] > 0.0 && (s[450] - 1.0 / 101.0).abs() < 1e-15);
        assert!((s[500] - 51.0 / 101.0).abs() < 1e-15);
        assert!((s[549] - 100.0 / 101.0).abs() < 1e-15);
        assert!((s[550] - 1.0).abs() < 1e-15);
    }

    #[test]
    fn ddot_blocks_of_sixteen_then_tail() {
        let x: Vec<f64> = (1..=37).map(f64::from).collect();
        let y = vec![1.0; 37];
        assert_eq!(ddot(&x, &y), (37.0 * 38.0) / 2.0);
        assert_eq!(ddot(&[], &[]), 0.0);
        assert_eq!(ddot(&[2.0, 3.0], &[4.0, 5.0]), 23.0);
    }

    #[test]
    fn trapezoid_of_a_line() {
        let x = linspace01(101);
        let y: Vec<f64> = x.iter().map(|v| 1.0 - v).collect();
        assert!((trapezoid(&y, &x) - 0.5).abs() < 1e-15);
        assert_eq!(trapezoid(&[1.0], &[0.0]), 0.0);
    }

    #[test]
    fn argmax_first_max_and_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), Some(1));
        assert_eq!(argmax(&[1.0, f64::NAN, 3.0]), Some(1));
        assert_eq!(argmax(&[]), None);
        assert_eq!(argmax(&[0.0; 4]), Some(0));
    }

    #[test]
    fn argsort_desc_is_stable_with_nan_last() {
        let v = [0.5, 0.9, f64::NAN, 0.5, 0.9, 0.1];
        assert_eq!(argsort_desc_stable(&v), vec![1, 4, 0, 3, 5, 2]);
    }
}
