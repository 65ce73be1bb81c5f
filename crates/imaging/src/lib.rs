//! Image files and drawing, through OpenCV: decode a photo into a BGR buffer,
//! draw labelled boxes, encode JPEG or PNG.
//!
//! Owns: every OpenCV call in roadwarden (also signal-lamp levels and colour, evidence
//! overlays and motion in a masked region by background subtraction, [`motion`]).
//! Must not: run models, know about rules, or touch video streams (that is the
//! media crate's, through GStreamer).

mod canvas;
mod lamp;
pub mod motion;
mod overlay;

pub use lamp::{LampClassifier, LampLevel, LampReading, lamp_level};
pub use motion::{MotionDetector, MotionParams};
pub use overlay::{EvidenceOverlay, STRIP_ALIGN};

use std::path::{Path, PathBuf};

use opencv::core::{Mat, Point, Rect, Scalar, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};
use roadwarden_types::{BBox, ImageView, PixelFormat};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ImagingError {
    #[error("{}: cannot read image: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("{}: cannot write image: {reason}", path.display())]
    Unwritable { path: PathBuf, reason: String },
    #[error("image operation failed: {0}")]
    OpenCv(String),
}

impl From<opencv::Error> for ImagingError {
    fn from(e: opencv::Error) -> Self {
        ImagingError::OpenCv(e.message)
    }
}

/// A decoded 8-bit BGR image that owns its pixels.
pub struct BgrImage {
    mat: Mat,
}

impl BgrImage {
    /// Decodes an image file (JPEG, PNG, BMP, WebP, ...) as OpenCV's `imread`
    /// does, into BGR.
    pub fn read(path: &Path) -> Result<BgrImage, ImagingError> {
        let unreadable = |reason: String| ImagingError::Unreadable {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
        Self::decode(&bytes).map_err(|e| match e {
            ImagingError::OpenCv(reason) | ImagingError::Unreadable { reason, .. } => {
                unreadable(reason)
            }
            other => other,
        })
    }

    /// Decodes image bytes in memory.
    pub fn decode(bytes: &[u8]) -> Result<BgrImage, ImagingError> {
        let buf = Vector::<u8>::from_slice(bytes);
        let mat = imgcodecs::imdecode(&buf, imgcodecs::IMREAD_COLOR)?;
        if mat.empty() {
            return Err(ImagingError::OpenCv(
                "not a decodable image (corrupt, truncated or unsupported format)".into(),
            ));
        }
        Ok(BgrImage { mat })
    }

    /// A copy of packed BGR pixels (`3 * width` bytes a row).
    pub fn from_bgr(width: u32, height: u32, data: &[u8]) -> Result<BgrImage, ImagingError> {
        if data.len() != 3 * (width * height) as usize {
            return Err(ImagingError::OpenCv(format!(
                "{} bytes do not make a {width}x{height} BGR image",
                data.len()
            )));
        }
        let flat = Mat::from_slice(data)?;
        let mat = flat.reshape(3, height as i32)?.try_clone()?;
        Ok(BgrImage { mat })
    }

    /// A BGR copy of any [`ImageView`]: a packed image, or a decoded I420/NV12
    /// video frame (for JPEG snapshots of chosen frames).
    pub fn from_view(view: &ImageView<'_>) -> Result<BgrImage, ImagingError> {
        let (w, h) = (view.width(), view.height());
        match view.format() {
            PixelFormat::Bgr8 | PixelFormat::Rgb8 => {
                let mut data = Vec::with_capacity(3 * (w * h) as usize);
                for y in 0..h as usize {
                    data.extend_from_slice(view.row(0, y));
                }
                let img = BgrImage::from_bgr(w, h, &data)?;
                if view.format() == PixelFormat::Rgb8 {
                    let mut bgr = Mat::default();
                    imgproc::cvt_color_def(&img.mat, &mut bgr, imgproc::COLOR_RGB2BGR)?;
                    return Ok(BgrImage { mat: bgr });
                }
                Ok(img)
            }
            PixelFormat::I420 | PixelFormat::Nv12 => {
                // OpenCV wants the planes stacked without stride padding: h * 3/2 rows of w bytes.
                let mut data = Vec::with_capacity((w * h * 3 / 2) as usize);
                for y in 0..h as usize {
                    data.extend_from_slice(view.row(0, y));
                }
                if view.format() == PixelFormat::I420 {
                    for plane in [1, 2] {
                        for y in 0..h as usize / 2 {
                            data.extend_from_slice(view.row(plane, y));
                        }
                    }
                } else {
                    for y in 0..h as usize / 2 {
                        data.extend_from_slice(view.row(1, y));
                    }
                }
                let flat = Mat::from_slice(&data)?;
                let yuv = flat.reshape(1, (h * 3 / 2) as i32)?;
                let code = if view.format() == PixelFormat::I420 {
                    imgproc::COLOR_YUV2BGR_I420
                } else {
                    imgproc::COLOR_YUV2BGR_NV12
                };
                let mut bgr = Mat::default();
                imgproc::cvt_color_def(&yuv, &mut bgr, code)?;
                Ok(BgrImage { mat: bgr })
            }
        }
    }

    pub fn width(&self) -> u32 {
        self.mat.cols() as u32
    }

    pub fn height(&self) -> u32 {
        self.mat.rows() as u32
    }

    /// The pixels as an [`ImageView`] for inference.
    pub fn view(&self) -> ImageView<'_> {
        let data = self.mat.data_bytes().unwrap_or(&[]);
        let stride = self.mat.step1(0).unwrap_or(0);
        // A Mat from imdecode is continuous 8UC3, so this cannot fail.
        ImageView::packed(PixelFormat::Bgr8, self.width(), self.height(), data, stride)
            .unwrap_or_else(|e| panic!("OpenCV returned an inconsistent image: {e}"))
    }

    /// Draws a box with a label above it. `color` is B, G, R.
    pub fn draw_box(&mut self, b: &BBox, label: &str, color: [u8; 3]) -> Result<(), ImagingError> {
        let c = Scalar::new(color[0] as f64, color[1] as f64, color[2] as f64, 0.0);
        let thickness = ((self.width().max(self.height()) as f32 / 400.0).ceil() as i32).max(1);
        let rect = Rect::new(
            b.x1.round() as i32,
            b.y1.round() as i32,
            (b.width().round() as i32).max(1),
            (b.height().round() as i32).max(1),
        );
        imgproc::rectangle(&mut self.mat, rect, c, thickness, imgproc::LINE_8, 0)?;
        if !label.is_empty() {
            let scale = 0.4 * thickness as f64;
            let mut baseline = 0;
            let size = imgproc::get_text_size(
                label,
                imgproc::FONT_HERSHEY_SIMPLEX,
                scale,
                1,
                &mut baseline,
            )?;
            let top = (rect.y - size.height - baseline - 2).max(0);
            imgproc::rectangle(
                &mut self.mat,
                Rect::new(rect.x, top, size.width + 4, size.height + baseline + 2),
                c,
                imgproc::FILLED,
                imgproc::LINE_8,
                0,
            )?;
            imgproc::put_text(
                &mut self.mat,
                label,
                Point::new(rect.x + 2, top + size.height + 1),
                imgproc::FONT_HERSHEY_SIMPLEX,
                scale,
                Scalar::new(255.0, 255.0, 255.0, 0.0),
                1,
                imgproc::LINE_AA,
                false,
            )?;
        }
        Ok(())
    }

    /// Encodes by the file's extension (`.jpg`, `.png`, ...) and writes it.
    pub fn write(&self, path: &Path) -> Result<(), ImagingError> {
        let ext = path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_else(|| ".png".into());
        let unwritable = |reason: String| ImagingError::Unwritable {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = self.encode(&ext).map_err(|e| unwritable(e.to_string()))?;
        std::fs::write(path, bytes).map_err(|e| unwritable(e.to_string()))
    }

    /// Encodes to `ext` (`.jpg`, `.png`) in memory.
    pub fn encode(&self, ext: &str) -> Result<Vec<u8>, ImagingError> {
        let mut buf = Vector::<u8>::new();
        let params = Vector::<i32>::new();
        if !imgcodecs::imencode(ext, &self.mat, &mut buf, &params)? {
            return Err(ImagingError::OpenCv(format!("cannot encode as {ext}")));
        }
        Ok(buf.to_vec())
    }
}

/// A distinct colour per class index (B, G, R).
pub fn class_color(class: usize) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 8] = [
        [56, 56, 255],
        [151, 157, 255],
        [31, 112, 255],
        [29, 178, 255],
        [49, 210, 207],
        [10, 249, 72],
        [23, 204, 146],
        [134, 219, 61],
    ];
    PALETTE[class % PALETTE.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_keeps_pixels() {
        let data: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let img = BgrImage::from_bgr(4, 3, &data).unwrap();
        let png = img.encode(".png").unwrap();
        let back = BgrImage::decode(&png).unwrap();
        assert_eq!((back.width(), back.height()), (4, 3));
        let v = back.view();
        assert_eq!(v.row(0, 2), &data[24..36]);
    }

    #[test]
    fn i420_and_nv12_frames_convert_to_bgr() {
        use roadwarden_types::Plane;
        // A flat frame: Y 126, U = V = 128 is mid grey (about 128 in BGR).
        let (y, c) = (vec![126u8; 16 * 8], vec![128u8; 8 * 4]);
        let p = |data: &'static [u8], stride| Plane { data, stride };
        let (y, c): (&'static [u8], &'static [u8]) = (y.leak(), c.leak());
        let i420 = ImageView::i420(16, 8, p(y, 16), p(c, 8), p(c, 8)).unwrap();
        let img = BgrImage::from_view(&i420).unwrap();
        assert_eq!((img.width(), img.height()), (16, 8));
        let v = img.view();
        assert!(
            v.row(0, 4).iter().all(|&b| (126..=130).contains(&b)),
            "{:?}",
            &v.row(0, 4)[..6]
        );
        let uv: &'static [u8] = vec![128u8; 16 * 4].leak();
        let nv12 = ImageView::nv12(16, 8, p(y, 16), p(uv, 16)).unwrap();
        let jpeg = BgrImage::from_view(&nv12).unwrap().encode(".jpg").unwrap();
        let back = BgrImage::decode(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (16, 8));
    }

    #[test]
    fn garbage_is_refused_with_the_path() {
        let dir = std::env::temp_dir().join(format!("rw-imaging-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("broken.jpg");
        std::fs::write(&p, b"\xff\xd8 this is not really a jpeg").unwrap();
        let err = BgrImage::read(&p).err().expect("garbage must not decode");
        let msg = err.to_string();
        assert!(
            msg.contains("broken.jpg") && msg.contains("cannot read image"),
            "{msg}"
        );
        let err = BgrImage::read(&dir.join("missing.png"))
            .err()
            .expect("missing file");
        assert!(err.to_string().contains("missing.png"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn drawing_changes_pixels_inside_the_box_only() {
        let mut img = BgrImage::from_bgr(40, 40, &vec![0u8; 40 * 40 * 3]).unwrap();
        img.draw_box(&BBox::new(10.0, 20.0, 30.0, 35.0), "", [0, 0, 255])
            .unwrap();
        let v = img.view();
        assert_eq!(&v.row(0, 20)[30..33], &[0, 0, 255]);
        assert_eq!(&v.row(0, 5)[..3], &[0, 0, 0]);
    }
}
