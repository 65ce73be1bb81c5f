use serde::{Deserialize, Serialize};

/// An axis-aligned box, corners in pixels: `x1 <= x2`, `y1 <= y2`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        BBox { x1, y1, x2, y2 }
    }

    /// From centre and size.
    pub fn from_cxcywh(cx: f32, cy: f32, w: f32, h: f32) -> Self {
        BBox {
            x1: cx - w / 2.0,
            y1: cy - h / 2.0,
            x2: cx + w / 2.0,
            y2: cy + h / 2.0,
        }
    }

    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn intersection(&self, other: &BBox) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        w * h
    }

    /// Intersection over union; 0 when both boxes are empty.
    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// Clamp into `[0, width] x [0, height]`.
    pub fn clip(&self, width: f32, height: f32) -> BBox {
        BBox {
            x1: self.x1.clamp(0.0, width),
            y1: self.y1.clamp(0.0, height),
            x2: self.x2.clamp(0.0, width),
            y2: self.y2.clamp(0.0, height),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_overlapping_and_disjoint_boxes() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        let b = BBox::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        let c = BBox::new(20.0, 20.0, 30.0, 30.0);
        assert_eq!(a.iou(&c), 0.0);
        let empty = BBox::new(1.0, 1.0, 1.0, 1.0);
        assert_eq!(empty.iou(&empty), 0.0);
    }

    #[test]
    fn centre_form_and_clipping() {
        let b = BBox::from_cxcywh(10.0, 20.0, 4.0, 8.0);
        assert_eq!(b, BBox::new(8.0, 16.0, 12.0, 24.0));
        let c = BBox::new(-5.0, -1.0, 50.0, 9.0).clip(40.0, 30.0);
        assert_eq!(c, BBox::new(0.0, 0.0, 40.0, 9.0));
    }
}
