//! Stop-line geometry: which side of the line a point is on, and crossings.

use roadwarden_types::BBox;
use serde::{Deserialize, Serialize};

/// A point in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub fn new(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    /// The reference point of a rider or two-wheeler box: the bottom centre (where it meets the road).
    pub fn bottom_centre(b: &BBox) -> Point {
        Point::new((b.x1 + b.x2) / 2.0, b.y2)
    }
}

/// Where a point lies relative to a stop line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// On the approach side: not yet crossed.
    Before,
    /// Past the line.
    After,
    /// Within `tolerance` pixels of the line (box jitter): no side.
    On,
}

/// A stop line from `a` to `b` with its before side. "Left" and "right" are as seen looking from `a` towards
/// `b` on the image (y grows downwards): for a line drawn left to right across the image, `left` is the
/// upper part of the image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StopLine {
    pub a: Point,
    pub b: Point,
    /// +1 when the before side is the left of a→b, -1 when it is the right.
    before_sign: f32,
    /// Points closer than this to the line (in pixels) are `On` it.
    pub tolerance: f32,
}

impl StopLine {
    pub fn new(a: Point, b: Point, before_left: bool, tolerance: f32) -> StopLine {
        StopLine {
            a,
            b,
            before_sign: if before_left { 1.0 } else { -1.0 },
            tolerance,
        }
    }

    /// Signed distance of `p` from the infinite line, positive on the before side.
    pub fn signed_distance(&self, p: Point) -> f32 {
        let (dx, dy) = (self.b.x - self.a.x, self.b.y - self.a.y);
        let len = (dx * dx + dy * dy).sqrt().max(f32::EPSILON);
        // cross((b - a), (p - a)) is negative on the left in image coordinates (y down).
        let cross = dx * (p.y - self.a.y) - dy * (p.x - self.a.x);
        -cross / len * self.before_sign
    }

    pub fn side(&self, p: Point) -> Side {
        let d = self.signed_distance(p);
        if d.abs() <= self.tolerance {
            Side::On
        } else if d > 0.0 {
            Side::Before
        } else {
            Side::After
        }
    }

    /// Whether `p` projects onto the segment a–b (within `margin` pixels beyond its ends): a crossing far
    /// off the end of a stop line is not a crossing of it.
    pub fn spans(&self, p: Point, margin: f32) -> bool {
        let (dx, dy) = (self.b.x - self.a.x, self.b.y - self.a.y);
        let len2 = (dx * dx + dy * dy).max(f32::EPSILON);
        let t = ((p.x - self.a.x) * dx + (p.y - self.a.y) * dy) / len2;
        let m = margin / len2.sqrt();
        (-m..=1.0 + m).contains(&t)
    }
}

/// Even-odd point-in-polygon test.
pub fn polygon_contains(poly: &[Point], p: Point) -> bool {
    let mut inside = false;
    let n = poly.len();
    if n < 3 {
        return false;
    }
    let mut j = n - 1;
    for i in 0..n {
        let (pi, pj) = (poly[i], poly[j]);
        if (pi.y > p.y) != (pj.y > p.y) && p.x < (pj.x - pi.x) * (p.y - pi.y) / (pj.y - pi.y) + pi.x
        {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizontal_line_left_is_up() {
        let l = StopLine::new(Point::new(0.0, 100.0), Point::new(200.0, 100.0), true, 2.0);
        assert_eq!(l.side(Point::new(50.0, 40.0)), Side::Before);
        assert_eq!(l.side(Point::new(50.0, 160.0)), Side::After);
        assert_eq!(l.side(Point::new(50.0, 101.0)), Side::On);
        let r = StopLine::new(Point::new(0.0, 100.0), Point::new(200.0, 100.0), false, 2.0);
        assert_eq!(r.side(Point::new(50.0, 40.0)), Side::After);
    }

    #[test]
    fn vertical_line_and_span() {
        // a at the top, b at the bottom: facing down the image, the right hand points to smaller x.
        let l = StopLine::new(Point::new(300.0, 0.0), Point::new(300.0, 360.0), false, 1.0);
        assert_eq!(l.side(Point::new(100.0, 200.0)), Side::Before);
        assert_eq!(l.side(Point::new(400.0, 200.0)), Side::After);
        assert!(l.spans(Point::new(100.0, 200.0), 0.0));
        assert!(!l.spans(Point::new(100.0, 500.0), 10.0));
    }

    #[test]
    fn polygon() {
        let sq = [
            Point::new(0.0, 0.0),
            Point::new(10.0, 0.0),
            Point::new(10.0, 10.0),
            Point::new(0.0, 10.0),
        ];
        assert!(polygon_contains(&sq, Point::new(5.0, 5.0)));
        assert!(!polygon_contains(&sq, Point::new(15.0, 5.0)));
    }
}
