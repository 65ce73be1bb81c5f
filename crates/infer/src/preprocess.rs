//! Preprocessing identical to ultralytics' `LetterBox` + `cv2.resize`
//! (INTER_LINEAR, OpenCV's fixed-point arithmetic), reading BGR/RGB images or
//! I420/NV12 frames directly: rows are converted to RGB only as the resize
//! reads them, never the whole frame.

use roadwarden_types::{BBox, ImageView, PixelFormat};

use crate::manifest::{ColorOrder, InputSpec, ResizeMode};

/// Where a source image lands inside the network input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub src_width: u32,
    pub src_height: u32,
    /// Network input size.
    pub width: u32,
    pub height: u32,
    /// Size of the resized image inside the input.
    pub inner_width: u32,
    pub inner_height: u32,
    pub left: u32,
    pub top: u32,
}

/// Python's `round()`: halves go to the even neighbour.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        r
    }
}

impl Letterbox {
    /// Ultralytics `LetterBox(new_shape=(height, width), auto, stride, scaleup=True, center=True)`.
    /// With `auto`, the padding is reduced to the smallest multiple of `stride`
    /// (the `rect` input of a dynamic model); `width`/`height` then shrink.
    pub fn fit(
        src_width: u32,
        src_height: u32,
        width: u32,
        height: u32,
        auto: Option<u32>,
    ) -> Letterbox {
        let (w0, h0) = (src_width as f64, src_height as f64);
        let r = (height as f64 / h0).min(width as f64 / w0);
        let inner_width = round_half_even(w0 * r).max(1.0) as u32;
        let inner_height = round_half_even(h0 * r).max(1.0) as u32;
        let (mut dw, mut dh) = (
            width.saturating_sub(inner_width) as f64,
            height.saturating_sub(inner_height) as f64,
        );
        if let Some(stride) = auto {
            dw %= stride as f64;
            dh %= stride as f64;
        }
        dw /= 2.0;
        dh /= 2.0;
        let top = round_half_even(dh - 0.1) as u32;
        let bottom = round_half_even(dh + 0.1) as u32;
        let left = round_half_even(dw - 0.1) as u32;
        let right = round_half_even(dw + 0.1) as u32;
        Letterbox {
            src_width,
            src_height,
            width: inner_width + left + right,
            height: inner_height + top + bottom,
            inner_width,
            inner_height,
            left,
            top,
        }
    }

    /// A plain stretch to `width` x `height`.
    pub fn stretch(src_width: u32, src_height: u32, width: u32, height: u32) -> Letterbox {
        Letterbox {
            src_width,
            src_height,
            width,
            height,
            inner_width: width,
            inner_height: height,
            left: 0,
            top: 0,
        }
    }

    pub fn for_spec(
        spec: &InputSpec,
        src_width: u32,
        src_height: u32,
        width: u32,
        height: u32,
        auto: Option<u32>,
    ) -> Letterbox {
        match spec.resize {
            ResizeMode::Letterbox => Letterbox::fit(src_width, src_height, width, height, auto),
            ResizeMode::Stretch => Letterbox::stretch(src_width, src_height, width, height),
        }
    }

    /// Maps a box in network-input pixels back to source pixels (unclipped).
    pub fn to_source(&self, b: BBox) -> BBox {
        let sx = self.inner_width as f32 / self.src_width as f32;
        let sy = self.inner_height as f32 / self.src_height as f32;
        BBox {
            x1: (b.x1 - self.left as f32) / sx,
            y1: (b.y1 - self.top as f32) / sy,
            x2: (b.x2 - self.left as f32) / sx,
            y2: (b.y2 - self.top as f32) / sy,
        }
    }
}

/// OpenCV's INTER_RESIZE_COEF_BITS.
const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// Source index and fixed-point weights for each destination coordinate,
/// as OpenCV's `resize` computes them for INTER_LINEAR.
fn linear_taps(src: u32, dst: u32) -> Vec<(usize, usize, i32, i32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if s < 0 {
                s = 0;
                frac = 0.0;
            }
            if s >= src as i64 - 1 {
                s = src as i64 - 1;
                frac = 0.0;
            }
            let s1 = (s as usize + 1).min(src as usize - 1);
            let w1 = (frac * COEF_SCALE).round() as i32;
            let w0 = (((1.0 - frac) * COEF_SCALE).round()) as i32;
            (s as usize, s1, w0, w1)
        })
        .collect()
}

/// Writes source row `y` as packed RGB into `out` (3 * width bytes).
fn source_row_rgb(img: &ImageView<'_>, y: usize, out: &mut [u8]) {
    let w = img.width() as usize;
    match img.format() {
        PixelFormat::Rgb8 => out.copy_from_slice(img.row(0, y)),
        PixelFormat::Bgr8 => {
            for (o, i) in out.chunks_exact_mut(3).zip(img.row(0, y).chunks_exact(3)) {
                o[0] = i[2];
                o[1] = i[1];
                o[2] = i[0];
            }
        }
        PixelFormat::I420 | PixelFormat::Nv12 => {
            let luma = img.row(0, y);
            let chroma_row = y / 2;
            for x in 0..w {
                let (u, v) = if img.format() == PixelFormat::I420 {
                    (img.row(1, chroma_row)[x / 2], img.row(2, chroma_row)[x / 2])
                } else {
                    let uv = img.row(1, chroma_row);
                    (uv[x / 2 * 2], uv[x / 2 * 2 + 1])
                };
                let [r, g, b] = yuv_to_rgb(luma[x], u, v);
                out[3 * x] = r;
                out[3 * x + 1] = g;
                out[3 * x + 2] = b;
            }
        }
    }
}

/// BT.601 limited range, as GStreamer's videoconvert and OpenCV's
/// COLOR_YUV2RGB_I420 do.
#[inline]
fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = (y as i32 - 16).max(0) * 1192;
    let d = u as i32 - 128;
    let e = v as i32 - 128;
    let clamp = |x: i32| ((x + 512) >> 10).clamp(0, 255) as u8;
    [
        clamp(c + 1634 * e),
        clamp(c - 401 * d - 832 * e),
        clamp(c + 2066 * d),
    ]
}

/// Letterboxes `img` into `out`, one image of an NCHW float tensor
/// (`3 * lb.height * lb.width` values), applying the colour order and
/// normalisation of `spec`.
pub fn fill_input(img: &ImageView<'_>, lb: &Letterbox, spec: &InputSpec, out: &mut [f32]) {
    let (w, h) = (lb.width as usize, lb.height as usize);
    let plane = w * h;
    assert_eq!(
        out.len(),
        3 * plane,
        "output buffer does not fit the letterbox"
    );
    // Channel c of the tensor reads RGB channel `order[c]`.
    let order = match spec.color {
        ColorOrder::Rgb => [0, 1, 2],
        ColorOrder::Bgr => [2, 1, 0],
    };
    let norm = |c: usize, v: f32| (v - spec.mean[c]) / spec.std[c];
    let pad: [f32; 3] = std::array::from_fn(|c| norm(c, spec.pad as f32));
    for (c, chunk) in out.chunks_exact_mut(plane).enumerate() {
        chunk.fill(pad[c]);
    }

    let iw = lb.inner_width as usize;
    let src_w = lb.src_width as usize;
    let xtaps = linear_taps(lb.src_width, lb.inner_width);
    let ytaps = linear_taps(lb.src_height, lb.inner_height);
    // Horizontally resized rows (OpenCV's int buffers), cached by source row.
    let mut rgb = vec![0u8; 3 * src_w];
    let mut cache: [(usize, Vec<i32>); 2] =
        [(usize::MAX, vec![0; 3 * iw]), (usize::MAX, vec![0; 3 * iw])];
    let mut hresize = |sy: usize, slot: &mut (usize, Vec<i32>)| {
        if slot.0 == sy {
            return;
        }
        source_row_rgb(img, sy, &mut rgb);
        for (dx, &(s0, s1, w0, w1)) in xtaps.iter().enumerate() {
            for c in 0..3 {
                slot.1[3 * dx + c] = rgb[3 * s0 + c] as i32 * w0 + rgb[3 * s1 + c] as i32 * w1;
            }
        }
        slot.0 = sy;
    };
    for (dy, &(sy0, sy1, b0, b1)) in ytaps.iter().enumerate() {
        // Keep rows already resized for the previous output row.
        if cache[1].0 == sy0 {
            cache.swap(0, 1);
        }
        let [first, second] = &mut cache;
        hresize(sy0, first);
        hresize(sy1, second);
        let (r0, r1) = (&first.1, &second.1);
        let row = (dy + lb.top as usize) * w + lb.left as usize;
        for dx in 0..iw {
            for (c, &src_c) in order.iter().enumerate() {
                let i = 3 * dx + src_c;
                // OpenCV's SIMD VResizeLinear for 8U.
                let v = (((b0 * (r0[i] >> 4)) >> 16) + ((b1 * (r1[i] >> 4)) >> 16) + 2) >> 2;
                out[c * plane + row + dx] = norm(c, v.clamp(0, 255) as f32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roadwarden_types::Plane;

    #[test]
    fn letterbox_matches_ultralytics_shapes() {
        // 768x432 into 640 with rect: 640x360 inside a 640x384 input, 12 px bars.
        let lb = Letterbox::fit(768, 432, 640, 640, Some(32));
        assert_eq!((lb.width, lb.height), (640, 384));
        assert_eq!((lb.inner_width, lb.inner_height), (640, 360));
        assert_eq!((lb.left, lb.top), (0, 12));
        // Square: 640x640 with 140 px bars.
        let lb = Letterbox::fit(768, 432, 640, 640, None);
        assert_eq!((lb.width, lb.height, lb.top), (640, 640, 140));
        // Upscaling a 224x224 photo fills 640x640.
        let lb = Letterbox::fit(224, 224, 640, 640, None);
        assert_eq!((lb.inner_width, lb.left, lb.top), (640, 0, 0));
        // An odd pad splits as ultralytics does: round(dh - 0.1) on top.
        let lb = Letterbox::fit(100, 61, 640, 640, None);
        assert_eq!(lb.inner_height, 390);
        assert_eq!(
            lb.top + lb.inner_height + (lb.height - lb.top - lb.inner_height),
            640
        );
        assert_eq!(lb.top, 125);
    }

    #[test]
    fn round_half_even_is_pythons_round() {
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(2.4), 2.0);
        assert_eq!(round_half_even(-0.5), 0.0);
    }

    #[test]
    fn boxes_map_back_through_the_letterbox() {
        let lb = Letterbox::fit(768, 432, 640, 640, Some(32));
        let b = lb.to_source(BBox::new(0.0, 12.0, 640.0, 372.0));
        assert!((b.x2 - 768.0).abs() < 1e-3 && (b.y2 - 432.0).abs() < 1e-3 && b.y1.abs() < 1e-3);
    }

    #[test]
    fn identity_resize_and_padding_values() {
        // A 2x2 BGR image into a 2x4 input: no resize, one pad row above and below.
        let bgr = [10u8, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120];
        let img = ImageView::packed(PixelFormat::Bgr8, 2, 2, &bgr, 6).unwrap();
        let lb = Letterbox::fit(2, 2, 2, 4, None);
        assert_eq!((lb.top, lb.inner_height), (1, 2));
        let spec = InputSpec {
            std: [255.0; 3],
            pad: 114,
            ..InputSpec::default()
        };
        let mut out = vec![0f32; 3 * 8];
        fill_input(&img, &lb, &spec, &mut out);
        let px = |c: usize, y: usize, x: usize| (out[c * 8 + y * 2 + x] * 255.0).round() as u8;
        assert_eq!(px(0, 0, 0), 114);
        // R channel of pixel (0,0) is the third BGR byte.
        assert_eq!([px(0, 1, 0), px(1, 1, 0), px(2, 1, 0)], [30, 20, 10]);
        assert_eq!([px(0, 2, 1), px(1, 2, 1), px(2, 2, 1)], [120, 110, 100]);
        assert_eq!(px(2, 3, 1), 114);
    }

    #[test]
    fn upscale_interpolates_like_opencv() {
        // 1-D ramp 0, 100 upscaled 2 -> 4: OpenCV gives 0, 25, 75, 100.
        let rgb = [0u8, 0, 0, 100, 100, 100];
        let img = ImageView::packed(PixelFormat::Rgb8, 2, 1, &rgb, 6).unwrap();
        let lb = Letterbox::stretch(2, 1, 4, 1);
        let mut out = vec![0f32; 12];
        fill_input(
            &img,
            &lb,
            &InputSpec {
                std: [1.0; 3],
                ..InputSpec::default()
            },
            &mut out,
        );
        assert_eq!(&out[..4], &[0.0, 25.0, 75.0, 100.0]);
    }

    #[test]
    fn i420_grey_frame_letterboxes_to_grey() {
        let (w, h) = (8u32, 4u32);
        let y = vec![126u8; 32];
        let c = vec![128u8; 8];
        fn p(data: &[u8], stride: usize) -> Plane<'_> {
            Plane { data, stride }
        }
        let frame = ImageView::i420(w, h, p(&y, 8), p(&c, 4), p(&c, 4)).unwrap();
        let lb = Letterbox::fit(w, h, 8, 8, None);
        let mut out = vec![0f32; 3 * 64];
        fill_input(
            &frame,
            &lb,
            &InputSpec {
                std: [1.0; 3],
                ..InputSpec::default()
            },
            &mut out,
        );
        // Y 126 limited range -> 128 full range, in the middle rows.
        let mid = 4 * 8 + 3;
        assert_eq!(
            [out[mid], out[64 + mid], out[128 + mid]],
            [128.0, 128.0, 128.0]
        );
        assert_eq!(out[0], 114.0);
    }
}
