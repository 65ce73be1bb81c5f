use thiserror::Error;

/// How the bytes of an image or a decoded video frame are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// Packed 8-bit B, G, R (what OpenCV decodes images to).
    Bgr8,
    /// Packed 8-bit R, G, B.
    Rgb8,
    /// Planar YUV 4:2:0: full-size Y, then quarter-size U and V planes.
    I420,
    /// Semi-planar YUV 4:2:0: full-size Y, then one quarter-size plane of interleaved U, V.
    Nv12,
}

impl PixelFormat {
    pub fn planes(self) -> usize {
        match self {
            PixelFormat::Bgr8 | PixelFormat::Rgb8 => 1,
            PixelFormat::I420 => 3,
            PixelFormat::Nv12 => 2,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("image size {width}x{height} is empty")]
    Empty { width: u32, height: u32 },
    #[error(
        "plane {plane} holds {len} bytes; a {width}x{height} {format:?} image with stride {stride} needs {needed}"
    )]
    ShortPlane {
        plane: usize,
        len: usize,
        needed: usize,
        stride: usize,
        width: u32,
        height: u32,
        format: PixelFormat,
    },
    #[error("{format:?} needs even width and height, got {width}x{height}")]
    OddSize {
        width: u32,
        height: u32,
        format: PixelFormat,
    },
}

/// One plane of an image: rows of `stride` bytes.
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    pub data: &'a [u8],
    pub stride: usize,
}

/// A borrowed image or decoded frame whose plane sizes have been checked, so
/// readers can index rows without bounds surprises.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    width: u32,
    height: u32,
    format: PixelFormat,
    planes: [Plane<'a>; 3],
}

const EMPTY: Plane<'static> = Plane {
    data: &[],
    stride: 0,
};

impl<'a> ImageView<'a> {
    /// A packed BGR or RGB image (`stride` bytes per row, at least `3 * width`).
    pub fn packed(
        format: PixelFormat,
        width: u32,
        height: u32,
        data: &'a [u8],
        stride: usize,
    ) -> Result<Self, ImageError> {
        assert!(
            matches!(format, PixelFormat::Bgr8 | PixelFormat::Rgb8),
            "ImageView::packed takes Bgr8 or Rgb8"
        );
        let view = ImageView {
            width,
            height,
            format,
            planes: [Plane { data, stride }, EMPTY, EMPTY],
        };
        view.check(&[(3 * width as usize, height as usize)])?;
        Ok(view)
    }

    /// A planar I420 frame.
    pub fn i420(
        width: u32,
        height: u32,
        y: Plane<'a>,
        u: Plane<'a>,
        v: Plane<'a>,
    ) -> Result<Self, ImageError> {
        let view = ImageView {
            width,
            height,
            format: PixelFormat::I420,
            planes: [y, u, v],
        };
        let (cw, ch) = (width as usize / 2, height as usize / 2);
        view.check(&[(width as usize, height as usize), (cw, ch), (cw, ch)])?;
        Ok(view)
    }

    /// A semi-planar NV12 frame.
    pub fn nv12(width: u32, height: u32, y: Plane<'a>, uv: Plane<'a>) -> Result<Self, ImageError> {
        let view = ImageView {
            width,
            height,
            format: PixelFormat::Nv12,
            planes: [y, uv, EMPTY],
        };
        view.check(&[
            (width as usize, height as usize),
            (width as usize, height as usize / 2),
        ])?;
        Ok(view)
    }

    fn check(&self, planes: &[(usize, usize)]) -> Result<(), ImageError> {
        let (width, height, format) = (self.width, self.height, self.format);
        if width == 0 || height == 0 {
            return Err(ImageError::Empty { width, height });
        }
        if format.planes() > 1 && (width % 2 != 0 || height % 2 != 0) {
            return Err(ImageError::OddSize {
                width,
                height,
                format,
            });
        }
        for (plane, &(row_bytes, rows)) in planes.iter().enumerate() {
            let p = self.planes[plane];
            let needed = if p.stride < row_bytes {
                // A stride shorter than a row can never hold the image.
                usize::MAX
            } else {
                p.stride * (rows - 1) + row_bytes
            };
            if p.data.len() < needed {
                return Err(ImageError::ShortPlane {
                    plane,
                    len: p.data.len(),
                    needed: needed.min(p.stride.max(row_bytes) * rows),
                    stride: p.stride,
                    width,
                    height,
                    format,
                });
            }
        }
        Ok(())
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn format(&self) -> PixelFormat {
        self.format
    }

    pub fn plane(&self, i: usize) -> Plane<'a> {
        self.planes[i]
    }

    /// The bytes of row `y` of plane `i` (without stride padding).
    pub fn row(&self, i: usize, y: usize) -> &'a [u8] {
        let p = self.planes[i];
        let (row_bytes, _) = plane_shape(self.format, i, self.width, self.height);
        &p.data[y * p.stride..y * p.stride + row_bytes]
    }
}

/// (bytes a row, rows) of plane `i` of a `width`x`height` image in `format`.
fn plane_shape(format: PixelFormat, i: usize, width: u32, height: u32) -> (usize, usize) {
    let (w, h) = (width as usize, height as usize);
    match (format, i) {
        (PixelFormat::Bgr8 | PixelFormat::Rgb8, _) => (3 * w, h),
        (_, 0) => (w, h),
        (PixelFormat::Nv12, _) => (w, h / 2),
        _ => (w / 2, h / 2),
    }
}

/// An owned copy of an image in its own layout, rows packed without stride padding: a decoded
/// frame kept for later as I420 or NV12 costs 1.5 bytes a pixel, half of its BGR conversion.
#[derive(Debug, Clone)]
pub struct OwnedImage {
    width: u32,
    height: u32,
    format: PixelFormat,
    data: Vec<u8>,
}

impl OwnedImage {
    /// Copies `view`'s pixels.
    pub fn copy_of(view: &ImageView<'_>) -> OwnedImage {
        let mut image = OwnedImage {
            width: 0,
            height: 0,
            format: view.format(),
            data: Vec::new(),
        };
        image.copy_from(view);
        image
    }

    /// Becomes a copy of `view`, in the allocation it has when that is large enough.
    pub fn copy_from(&mut self, view: &ImageView<'_>) {
        let (format, width, height) = (view.format(), view.width(), view.height());
        let len = (0..format.planes())
            .map(|i| {
                let (row, rows) = plane_shape(format, i, width, height);
                row * rows
            })
            .sum();
        self.data.clear();
        self.data.reserve_exact(len);
        for i in 0..format.planes() {
            for y in 0..plane_shape(format, i, width, height).1 {
                self.data.extend_from_slice(view.row(i, y));
            }
        }
        (self.width, self.height, self.format) = (width, height, format);
    }

    /// The copy as a view, to convert or encode.
    pub fn view(&self) -> ImageView<'_> {
        let mut planes = [EMPTY; 3];
        let mut rest = self.data.as_slice();
        for (i, plane) in planes.iter_mut().enumerate().take(self.format.planes()) {
            let (row, rows) = plane_shape(self.format, i, self.width, self.height);
            let (data, tail) = rest.split_at(row * rows);
            *plane = Plane { data, stride: row };
            rest = tail;
        }
        // Every plane was copied from a view whose sizes were checked, and is exactly as long as
        // its shape: building the view again cannot fail.
        ImageView {
            width: self.width,
            height: self.height,
            format: self.format,
            planes,
        }
    }

    /// Bytes held.
    pub fn len_bytes(&self) -> usize {
        self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owned_copy_drops_stride_padding_and_keeps_every_row() {
        // A 4x2 I420 frame with padded strides (Y 6, U/V 4), as a decoder hands them out.
        let y: Vec<u8> = (0..12).collect();
        let u = [100, 101, 0, 0];
        let v = [200, 201, 0, 0];
        let view = ImageView::i420(
            4,
            2,
            Plane {
                data: &y,
                stride: 6,
            },
            Plane {
                data: &u,
                stride: 4,
            },
            Plane {
                data: &v,
                stride: 4,
            },
        )
        .unwrap();
        let owned = OwnedImage::copy_of(&view);
        assert_eq!(owned.len_bytes(), 4 * 2 * 3 / 2);
        let back = owned.view();
        assert_eq!(
            (back.width(), back.height(), back.format()),
            (4, 2, PixelFormat::I420)
        );
        assert_eq!(back.row(0, 0), [0, 1, 2, 3]);
        assert_eq!(back.row(0, 1), [6, 7, 8, 9]);
        assert_eq!(
            (back.row(1, 0), back.row(2, 0)),
            (&[100, 101][..], &[200, 201][..])
        );
        // NV12 and packed BGR too.
        let uv = [1, 2, 3, 4];
        let nv12 = ImageView::nv12(
            4,
            2,
            Plane {
                data: &y,
                stride: 6,
            },
            Plane {
                data: &uv,
                stride: 4,
            },
        )
        .unwrap();
        let back = OwnedImage::copy_of(&nv12);
        assert_eq!((back.len_bytes(), back.view().row(1, 0)), (12, &uv[..]));
        let bgr: Vec<u8> = (0..30).collect();
        let packed = ImageView::packed(PixelFormat::Bgr8, 3, 2, &bgr, 15).unwrap();
        let back = OwnedImage::copy_of(&packed);
        assert_eq!(back.view().row(0, 1), &bgr[15..24]);
        assert_eq!(back.len_bytes(), 18);
    }

    #[test]
    fn packed_view_checks_its_buffer() {
        let data = vec![0u8; 4 * 3 * 2];
        assert!(ImageView::packed(PixelFormat::Bgr8, 4, 2, &data, 12).is_ok());
        let err = ImageView::packed(PixelFormat::Bgr8, 4, 3, &data, 12).unwrap_err();
        assert!(
            matches!(err, ImageError::ShortPlane { plane: 0, .. }),
            "{err}"
        );
        let err = ImageView::packed(PixelFormat::Bgr8, 0, 3, &data, 12).unwrap_err();
        assert_eq!(
            err,
            ImageError::Empty {
                width: 0,
                height: 3
            }
        );
    }

    #[test]
    fn planar_views_check_every_plane() {
        let y = vec![0u8; 16];
        let c = vec![0u8; 4];
        fn p(data: &[u8], stride: usize) -> Plane<'_> {
            Plane { data, stride }
        }
        let v = ImageView::i420(4, 4, p(&y, 4), p(&c, 2), p(&c, 2)).unwrap();
        assert_eq!(v.row(1, 1).len(), 2);
        let err = ImageView::i420(4, 4, p(&y, 4), p(&c, 2), p(&c[..3], 2)).unwrap_err();
        assert!(
            matches!(err, ImageError::ShortPlane { plane: 2, .. }),
            "{err}"
        );
        let uv = vec![0u8; 8];
        assert!(ImageView::nv12(4, 4, p(&y, 4), p(&uv, 4)).is_ok());
        let err = ImageView::nv12(3, 4, p(&y, 4), p(&uv, 4)).unwrap_err();
        assert!(matches!(err, ImageError::OddSize { .. }), "{err}");
    }
}
