//! The constant-velocity Kalman filter of ByteTrack (`kalman_filter.py`, ultralytics
//! `KalmanFilterXYAH`), on the state `(cx, cy, a, h, vcx, vcy, va, vh)`: box centre, aspect
//! ratio `a = w / h`, height, and their velocities per frame. Process and measurement noise
//! scale with the box height, as in the reference. All maths is on fixed-size `f64` arrays.

// Small matrix maths reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

use roadwarden_types::BBox;
use thiserror::Error;

/// A measurement: `(cx, cy, a, h)`.
pub type Measurement = [f64; 4];

/// Mean and covariance of a track's state `(cx, cy, a, h, vcx, vcy, va, vh)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KalmanState {
    pub mean: [f64; 8],
    pub covariance: [[f64; 8]; 8],
}

impl KalmanState {
    /// The measured part of the mean, `(cx, cy, a, h)`.
    pub fn measurement(&self) -> Measurement {
        [self.mean[0], self.mean[1], self.mean[2], self.mean[3]]
    }

    /// The box of the mean.
    pub fn bbox(&self) -> BBox {
        xyah_to_bbox(self.measurement())
    }
}

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum KalmanError {
    #[error("the innovation covariance is not positive definite")]
    NotPositiveDefinite,
}

/// `(cx, cy, w / h, h)` of a box.
pub fn bbox_to_xyah(b: &BBox) -> Measurement {
    let (x1, y1, x2, y2) = (b.x1 as f64, b.y1 as f64, b.x2 as f64, b.y2 as f64);
    let (w, h) = (x2 - x1, y2 - y1);
    [x1 + w / 2.0, y1 + h / 2.0, w / h, h]
}

/// The box of `(cx, cy, a, h)`.
pub fn xyah_to_bbox(m: Measurement) -> BBox {
    let [cx, cy, a, h] = m;
    let w = a * h;
    BBox::new(
        (cx - w / 2.0) as f32,
        (cy - h / 2.0) as f32,
        (cx + w / 2.0) as f32,
        (cy + h / 2.0) as f32,
    )
}

/// The filter's parameters: ByteTrack's noise weights, one frame per step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KalmanFilter {
    pub std_weight_position: f64,
    pub std_weight_velocity: f64,
}

impl Default for KalmanFilter {
    fn default() -> Self {
        KalmanFilter {
            std_weight_position: 1.0 / 20.0,
            std_weight_velocity: 1.0 / 160.0,
        }
    }
}

impl KalmanFilter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new track from its first measurement: zero velocity, the reference's initial spread.
    pub fn initiate(&self, m: Measurement) -> KalmanState {
        let h = m[3];
        let (p, v) = (self.std_weight_position, self.std_weight_velocity);
        let std = [
            2.0 * p * h,
            2.0 * p * h,
            1e-2,
            2.0 * p * h,
            10.0 * v * h,
            10.0 * v * h,
            1e-5,
            10.0 * v * h,
        ];
        let mut covariance = [[0.0; 8]; 8];
        for (i, s) in std.iter().enumerate() {
            covariance[i][i] = s * s;
        }
        KalmanState {
            mean: [m[0], m[1], m[2], m[3], 0.0, 0.0, 0.0, 0.0],
            covariance,
        }
    }

    /// One step of the constant-velocity model: `x = F x`, `P = F P F' + Q`.
    pub fn predict(&self, s: &mut KalmanState) {
        let h = s.mean[3];
        let (p, v) = (self.std_weight_position * h, self.std_weight_velocity * h);
        let std = [p, p, 1e-2, p, v, v, 1e-5, v];
        for i in 0..4 {
            s.mean[i] += s.mean[i + 4];
        }
        // F = [[I, I], [0, I]], so with P = [[A, B], [B', C]]:
        // F P F' = [[A + B + B' + C, B + C], [B' + C, C]].
        let c = s.covariance;
        let mut out = c;
        for i in 0..4 {
            for j in 0..4 {
                out[i][j] = c[i][j] + c[i][j + 4] + c[i + 4][j] + c[i + 4][j + 4];
                out[i][j + 4] = c[i][j + 4] + c[i + 4][j + 4];
                out[i + 4][j] = c[i + 4][j] + c[i + 4][j + 4];
            }
        }
        for (i, s) in std.iter().enumerate() {
            out[i][i] += s * s;
        }
        s.covariance = out;
    }

    /// The state projected to measurement space: `(H x, H P H' + R)`.
    pub fn project(&self, s: &KalmanState) -> (Measurement, [[f64; 4]; 4]) {
        let p = self.std_weight_position * s.mean[3];
        let std = [p, p, 1e-1, p];
        let mut cov = [[0.0; 4]; 4];
        for i in 0..4 {
            for j in 0..4 {
                cov[i][j] = s.covariance[i][j];
            }
            cov[i][i] += std[i] * std[i];
        }
        (s.measurement(), cov)
    }

    /// The standard Kalman correction with measurement `m`, solving with the Cholesky factor
    /// of the projected covariance. On error `s` is left as it was.
    pub fn update(&self, s: &mut KalmanState, m: Measurement) -> Result<(), KalmanError> {
        let (projected_mean, projected_cov) = self.project(s);
        let l = cholesky4(&projected_cov).ok_or(KalmanError::NotPositiveDefinite)?;
        // Kalman gain K = P H' S^-1 (8x4). P H' is the first four columns of P; S is
        // symmetric, so row i of K solves S k = (row i of P H').
        let mut gain = [[0.0; 4]; 8];
        for (i, row) in gain.iter_mut().enumerate() {
            let pht = [
                s.covariance[i][0],
                s.covariance[i][1],
                s.covariance[i][2],
                s.covariance[i][3],
            ];
            *row = cholesky_solve4(&l, pht);
        }
        let innovation: [f64; 4] = std::array::from_fn(|k| m[k] - projected_mean[k]);
        let mut mean = s.mean;
        for (i, x) in mean.iter_mut().enumerate() {
            *x += (0..4).map(|k| gain[i][k] * innovation[k]).sum::<f64>();
        }
        // P = P - K S K'.
        let ks: [[f64; 4]; 8] = std::array::from_fn(|i| {
            std::array::from_fn(|j| (0..4).map(|k| gain[i][k] * projected_cov[k][j]).sum())
        });
        let mut cov = s.covariance;
        for i in 0..8 {
            for j in 0..8 {
                cov[i][j] -= (0..4).map(|k| ks[i][k] * gain[j][k]).sum::<f64>();
            }
        }
        // Keep it exactly symmetric against rounding drift.
        for i in 0..8 {
            for j in (i + 1)..8 {
                let avg = 0.5 * (cov[i][j] + cov[j][i]);
                cov[i][j] = avg;
                cov[j][i] = avg;
            }
        }
        if mean
            .iter()
            .chain(cov.iter().flatten())
            .any(|x| !x.is_finite())
        {
            return Err(KalmanError::NotPositiveDefinite);
        }
        s.mean = mean;
        s.covariance = cov;
        Ok(())
    }
}

/// Lower Cholesky factor of a symmetric 4x4 matrix; `None` if it is not positive definite.
fn cholesky4(a: &[[f64; 4]; 4]) -> Option<[[f64; 4]; 4]> {
    let mut l = [[0.0; 4]; 4];
    for i in 0..4 {
        for j in 0..=i {
            let sum = a[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if sum.is_nan() || sum <= 0.0 {
                    return None;
                }
                l[i][i] = sum.sqrt();
            } else {
                l[i][j] = sum / l[j][j];
            }
        }
    }
    Some(l)
}

/// Solves `L L' x = b`.
fn cholesky_solve4(l: &[[f64; 4]; 4], b: [f64; 4]) -> [f64; 4] {
    let mut y = [0.0; 4];
    for i in 0..4 {
        y[i] = (b[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
    }
    let mut x = [0.0; 4];
    for i in (0..4).rev() {
        x[i] = (y[i] - ((i + 1)..4).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn initiate_and_predict_follow_the_reference_noise() {
        let kf = KalmanFilter::new();
        let mut s = kf.initiate([100.0, 50.0, 0.5, 80.0]);
        // Initial std: 2 * h / 20 = 8 for positions and height, 10 * h / 160 = 5 for velocities.
        assert_eq!(s.covariance[0][0], 64.0);
        assert_eq!(s.covariance[3][3], 64.0);
        assert!(close(s.covariance[2][2], 1e-4, 1e-12));
        assert_eq!(s.covariance[4][4], 25.0);
        assert!(close(s.covariance[6][6], 1e-10, 1e-12));
        kf.predict(&mut s);
        // Positions: 64 (own) + 25 (velocity) + (80 / 20)^2 = 105; position-velocity: 25.
        assert!(close(s.covariance[0][0], 105.0, 1e-12));
        assert!(close(s.covariance[0][4], 25.0, 1e-12));
        assert!(close(s.covariance[4][0], 25.0, 1e-12));
        // Velocities: 25 + (80 / 160)^2 = 25.25.
        assert!(close(s.covariance[4][4], 25.25, 1e-12));
        assert!(close(s.covariance[2][2], 1e-4 + 1e-10 + 1e-4, 1e-9));
        assert_eq!(s.mean, [100.0, 50.0, 0.5, 80.0, 0.0, 0.0, 0.0, 0.0]);
    }

    /// Inverts a 4x4 matrix by Gauss-Jordan elimination with partial pivoting.
    fn invert4(a: &[[f64; 4]; 4]) -> [[f64; 4]; 4] {
        let mut m = [[0.0; 8]; 4];
        for i in 0..4 {
            m[i][..4].copy_from_slice(&a[i]);
            m[i][4 + i] = 1.0;
        }
        for c in 0..4 {
            let p = (c..4)
                .max_by(|&x, &y| m[x][c].abs().total_cmp(&m[y][c].abs()))
                .unwrap();
            m.swap(c, p);
            let d = m[c][c];
            for x in m[c].iter_mut() {
                *x /= d;
            }
            for r in 0..4 {
                if r != c {
                    let f = m[r][c];
                    let pivot = m[c];
                    for (x, pv) in m[r].iter_mut().zip(pivot) {
                        *x -= f * pv;
                    }
                }
            }
        }
        std::array::from_fn(|i| std::array::from_fn(|j| m[i][4 + j]))
    }

    #[test]
    fn update_matches_the_textbook_formula() {
        let kf = KalmanFilter::new();
        let mut s = kf.initiate([100.0, 50.0, 0.5, 80.0]);
        s.mean[4] = 3.0;
        s.mean[5] = -1.0;
        kf.predict(&mut s);
        kf.predict(&mut s);
        let before = s;
        let z = [107.0, 47.5, 0.52, 83.0];
        kf.update(&mut s, z).unwrap();

        // K = P H' (H P H' + R)^-1 with an explicit inverse; x' = x + K (z - H x); P' = (I - K H) P.
        let (hx, sm) = kf.project(&before);
        let si = invert4(&sm);
        let p = before.covariance;
        let k: [[f64; 4]; 8] = std::array::from_fn(|i| {
            std::array::from_fn(|j| (0..4).map(|q| p[i][q] * si[q][j]).sum())
        });
        for i in 0..8 {
            let want = before.mean[i] + (0..4).map(|q| k[i][q] * (z[q] - hx[q])).sum::<f64>();
            assert!(
                close(s.mean[i], want, 1e-9),
                "mean[{i}]: {} vs {want}",
                s.mean[i]
            );
            for j in 0..8 {
                let want = p[i][j] - (0..4).map(|q| k[i][q] * p[q][j]).sum::<f64>();
                assert!(
                    close(s.covariance[i][j], want, 1e-9),
                    "cov[{i}][{j}]: {} vs {want}",
                    s.covariance[i][j]
                );
            }
        }
    }

    #[test]
    fn constant_velocity_is_predicted_within_a_pixel_after_a_few_updates() {
        let kf = KalmanFilter::new();
        let truth =
            |t: u32| BBox::from_cxcywh(100.0 + 5.0 * t as f32, 200.0 - 3.0 * t as f32, 50.0, 100.0);
        let within_a_pixel = |p: BBox, q: BBox| {
            [(p.x1, q.x1), (p.y1, q.y1), (p.x2, q.x2), (p.y2, q.y2)]
                .iter()
                .all(|(a, b)| (a - b).abs() < 1.0)
        };
        let mut s = kf.initiate(bbox_to_xyah(&truth(0)));
        // The filter starts at zero velocity, so the first predictions lag by up to 5 px.
        kf.predict(&mut s);
        assert!(!within_a_pixel(s.bbox(), truth(1)));
        kf.update(&mut s, bbox_to_xyah(&truth(1))).unwrap();
        for t in 2..=6 {
            kf.predict(&mut s);
            kf.update(&mut s, bbox_to_xyah(&truth(t))).unwrap();
        }
        // After six updates every next-frame prediction is within a pixel, and keeps improving.
        let mut last_err = f32::INFINITY;
        for t in 7..=30 {
            kf.predict(&mut s);
            let (p, q) = (s.bbox(), truth(t));
            assert!(
                within_a_pixel(p, q),
                "frame {t}: predicted {p:?}, truth {q:?}"
            );
            let err = (p.x1 - q.x1).abs() + (p.y1 - q.y1).abs();
            assert!(err <= last_err, "frame {t}: error grew to {err}");
            last_err = err;
            kf.update(&mut s, bbox_to_xyah(&q)).unwrap();
        }
        assert!(
            (s.mean[4] - 5.0).abs() < 0.1 && (s.mean[5] + 3.0).abs() < 0.1,
            "{:?}",
            s.mean
        );
        // Coasting without measurements (an occlusion) stays within a pixel for a few frames.
        for t in 31..=35 {
            kf.predict(&mut s);
            assert!(
                within_a_pixel(s.bbox(), truth(t)),
                "coasted frame {t}: {:?} vs {:?}",
                s.bbox(),
                truth(t)
            );
        }
    }

    #[test]
    fn degenerate_measurement_noise_is_an_error_not_a_panic() {
        let kf = KalmanFilter::new();
        let mut s = kf.initiate([10.0, 10.0, 1.0, 10.0]);
        s.covariance = [[0.0; 8]; 8];
        s.mean[3] = 0.0;
        let before = s;
        assert_eq!(
            kf.update(&mut s, [11.0, 11.0, 1.0, 10.0]),
            Err(KalmanError::NotPositiveDefinite)
        );
        assert_eq!(s, before);
    }

    #[test]
    fn box_conversions_round_trip() {
        let b = BBox::new(10.0, 20.0, 50.0, 100.0);
        let m = bbox_to_xyah(&b);
        assert_eq!(m, [30.0, 60.0, 0.5, 80.0]);
        assert_eq!(xyah_to_bbox(m), b);
    }
}
