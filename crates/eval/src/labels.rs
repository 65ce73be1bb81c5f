//! Reading YOLO-format label files the way ultralytics' `verify_image_label`
//! does, so that a file ultralytics would reject is rejected here too and an
//! accepted one yields the same boxes.

use std::cmp::Ordering;
use std::path::Path;

use crate::numpy::cmp_nan_last;
use crate::{BoxXyxy, GroundTruth, UltralyticsVersion};

/// Why a label file was rejected. Ultralytics leaves such an image out of
/// validation altogether ("ignoring corrupt image/label").
///
/// Line numbers count from 1, with Python's line breaks (`\n`, `\r`, `\r\n`,
/// and a few control characters).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// The file could not be read, or is not UTF-8.
    #[error("cannot read label file: {0}")]
    Io(#[from] std::io::Error),
    /// A box row without exactly 5 columns (`class cx cy w h`).
    #[error("line {line}: {found} columns, expected 5 (class cx cy w h)")]
    Columns { line: usize, found: usize },
    /// In a file of polygon rows (any row over 6 columns), a row that is not
    /// a class followed by one or more `x y` pairs.
    #[error("line {line}: polygon row with {found} columns, expected a class then x y pairs")]
    Polygon { line: usize, found: usize },
    /// A box row (5 columns) in a file of polygon rows.
    #[error("line {line}: box row in a file of polygon rows")]
    MixedRows { line: usize },
    /// A column that is not a number as Python's `float()` reads it.
    #[error("line {line}: {text:?} is not a number")]
    Parse { line: usize, text: String },
    /// A box coordinate above 1 (beyond ultralytics' 1% tolerance), or NaN.
    #[error("line {line}: coordinate {value} is out of range 0..1")]
    OutOfRange { line: usize, value: f32 },
    /// A value below -0.01 anywhere in the row, class included (or, from
    /// 8.4.183, a slightly negative value in a file with a negative width or
    /// height).
    #[error("line {line}: negative value {value}")]
    Negative { line: usize, value: f32 },
    /// A class that is not an integer, or not below the class count.
    #[error("line {line}: class {class} is not an integer below {num_classes}")]
    UnknownClass {
        line: usize,
        class: f32,
        num_classes: usize,
    },
}

/// Reads a YOLO label file (`class cx cy w h` per line, normalised to 0..1)
/// as ultralytics [`UltralyticsVersion::V8_4_0`] to 8.4.181 checks it, and
/// returns its boxes in pixels of a `width` x `height` image.
///
/// A missing file is the caller's business: this returns
/// [`LabelError::Io`] for it, where ultralytics treats the image as having no
/// objects. See [`read_yolo_labels_as`] for the rules.
pub fn read_yolo_labels(
    path: &Path,
    num_classes: usize,
    width: u32,
    height: u32,
) -> Result<Vec<GroundTruth>, LabelError> {
    read_yolo_labels_as(
        path,
        num_classes,
        width,
        height,
        UltralyticsVersion::default(),
    )
}

/// Reads a YOLO label file with the checks of the given ultralytics release.
///
/// * Blank lines are skipped; an empty file has no objects.
/// * Each row is 5 numbers `class cx cy w h`. If any row has more than 6
///   columns the file is a polygon file: every row must then be a class and
///   `x y` pairs, and becomes the box around its points (as ultralytics'
///   `segments2boxes`).
/// * The whole file is rejected if any coordinate is above 1.01 or any value
///   below -0.01, or a class is not an integer below `num_classes`.
/// * Exact duplicate rows are removed (`np.unique(lb, axis=0)`, which also
///   sorts the rows when it removes any).
/// * `x1 = (cx - w / 2) * width`, `y1 = (cy - h / 2) * height`,
///   `x2 = (cx + w / 2) * width`, `y2 = (cy + h / 2) * height`, in `f32`.
///
/// These are 8.4.175's checks. Before 8.4.175 ultralytics accepted some
/// malformed files that are rejected here (fractional class ids, whitespace
/// inside a blank line, box rows among polygon rows). From
/// [`UltralyticsVersion::V8_4_183`] a UTF-8 byte order mark is allowed and
/// the negative-value rule is the newer one (see [`LabelError::Negative`]).
pub fn read_yolo_labels_as(
    path: &Path,
    num_classes: usize,
    width: u32,
    height: u32,
    version: UltralyticsVersion,
) -> Result<Vec<GroundTruth>, LabelError> {
    let text = std::fs::read_to_string(path)?;
    parse_yolo_labels(&text, num_classes, width, height, version)
}

/// One label row as ultralytics holds it: `[class, cx, cy, w, h]` in float32.
struct Row {
    line: usize,
    v: [f32; 5],
    /// Polygon rows: the bytes ultralytics dedups them by (class, then the
    /// points, as little-endian float32).
    polygon_key: Option<Vec<u8>>,
}

pub(crate) fn parse_yolo_labels(
    text: &str,
    num_classes: usize,
    width: u32,
    height: u32,
    version: UltralyticsVersion,
) -> Result<Vec<GroundTruth>, LabelError> {
    let text = if version >= UltralyticsVersion::V8_4_183 {
        text.strip_prefix('\u{feff}').unwrap_or(text)
    } else {
        text
    };

    let lines: Vec<(usize, Vec<&str>)> = py_splitlines(text)
        .into_iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let tokens: Vec<&str> = l.split(is_py_space).filter(|t| !t.is_empty()).collect();
            (!tokens.is_empty()).then_some((i + 1, tokens))
        })
        .collect();
    if lines.is_empty() {
        return Ok(Vec::new());
    }

    let polygons = lines.iter().any(|(_, t)| t.len() > 6);
    let mut rows = if polygons {
        polygon_rows(&lines)?
    } else {
        box_rows(&lines)?
    };
    check(&rows, num_classes, version)?;
    dedup(&mut rows, polygons);

    let (w, h) = (width as f32, height as f32);
    Ok(rows
        .iter()
        .map(|r| {
            let [class, cx, cy, bw, bh] = r.v;
            let (hw, hh) = (bw / 2.0, bh / 2.0);
            GroundTruth {
                class_id: class as usize,
                bbox: BoxXyxy {
                    x1: (cx - hw) * w,
                    y1: (cy - hh) * h,
                    x2: (cx + hw) * w,
                    y2: (cy + hh) * h,
                },
            }
        })
        .collect())
}

fn box_rows(lines: &[(usize, Vec<&str>)]) -> Result<Vec<Row>, LabelError> {
    lines
        .iter()
        .map(|(line, tokens)| {
            if tokens.len() != 5 {
                return Err(LabelError::Columns {
                    line: *line,
                    found: tokens.len(),
                });
            }
            let mut v = [0.0f32; 5];
            for (slot, t) in v.iter_mut().zip(tokens) {
                *slot = parse_f32(t, *line)?;
            }
            Ok(Row {
                line: *line,
                v,
                polygon_key: None,
            })
        })
        .collect()
}

fn polygon_rows(lines: &[(usize, Vec<&str>)]) -> Result<Vec<Row>, LabelError> {
    if let Some((line, _)) = lines.iter().find(|(_, t)| t.len() == 5) {
        return Err(LabelError::MixedRows { line: *line });
    }
    lines
        .iter()
        .map(|(line, tokens)| {
            let class = parse_f32(tokens[0], *line)?;
            let coords = tokens[1..]
                .iter()
                .map(|t| parse_f32(t, *line))
                .collect::<Result<Vec<f32>, _>>()?;
            if coords.is_empty() || coords.len() % 2 != 0 {
                return Err(LabelError::Polygon {
                    line: *line,
                    found: tokens.len(),
                });
            }
            // segments2boxes: min / max of the points (numpy keeps NaN), then
            // xyxy2xywh in float32.
            let xs = coords.iter().step_by(2).copied();
            let ys = coords.iter().skip(1).step_by(2).copied();
            let (x1, x2) = min_max(xs);
            let (y1, y2) = min_max(ys);
            let v = [class, (x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1];
            let mut key = class.to_le_bytes().to_vec();
            for c in &coords {
                key.extend_from_slice(&c.to_le_bytes());
            }
            Ok(Row {
                line: *line,
                v,
                polygon_key: Some(key),
            })
        })
        .collect()
}

/// numpy `min()` / `max()` of a non-empty float array: NaN wins.
fn min_max(values: impl Iterator<Item = f32>) -> (f32, f32) {
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    for v in values {
        if v.is_nan() {
            return (v, v);
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    (lo, hi)
}

/// ultralytics' assertions, in its order: coordinates, negatives, integer
/// classes, class count.
fn check(rows: &[Row], num_classes: usize, version: UltralyticsVersion) -> Result<(), LabelError> {
    // assert points.max() <= 1.01 (1.01 rounds to the same float32 either way).
    for r in rows {
        if let Some(&value) = r.v[1..].iter().find(|v| v.is_nan() || **v > 1.01) {
            return Err(LabelError::OutOfRange {
                line: r.line,
                value,
            });
        }
    }

    let too_negative = |v: f32| v.is_nan() || v < -0.01;
    let first_too_negative = rows.iter().find_map(|r| {
        r.v.iter()
            .find(|v| too_negative(**v))
            .map(|&value| LabelError::Negative {
                line: r.line,
                value,
            })
    });
    if version >= UltralyticsVersion::V8_4_183 {
        // assert lb_min >= 0 or (lb_min >= -0.01 and lb[:, 3:5].min() >= 0)
        if let Some(e) = first_too_negative {
            return Err(e);
        }
        let any_negative = rows.iter().any(|r| r.v.iter().any(|v| *v < 0.0));
        if any_negative {
            let bad_wh = rows.iter().find_map(|r| {
                r.v[3..]
                    .iter()
                    .find(|v| v.is_nan() || **v < 0.0)
                    .map(|&value| LabelError::Negative {
                        line: r.line,
                        value,
                    })
            });
            if let Some(e) = bad_wh {
                return Err(e);
            }
        }
    } else if let Some(e) = first_too_negative {
        // assert lb.min() >= -0.01
        return Err(e);
    }

    // assert (lb[:, 0] % 1 == 0).all(); assert lb[:, 0].max() < num_cls
    for r in rows {
        if r.v[0].fract() != 0.0 {
            return Err(unknown_class(r, num_classes));
        }
    }
    for r in rows {
        if f64::from(r.v[0]) >= num_classes as f64 {
            return Err(unknown_class(r, num_classes));
        }
    }
    Ok(())
}

fn unknown_class(r: &Row, num_classes: usize) -> LabelError {
    LabelError::UnknownClass {
        line: r.line,
        class: r.v[0],
        num_classes,
    }
}

/// `_, i = np.unique(lb, axis=0, return_index=True); if len(i) < nl: lb =
/// lb[i]`: when any row repeats, keep the first of each and return them in
/// lexicographic order. Polygon files (8.4.175) then dedup by class and
/// points instead, so distinct polygons with the same box both stay.
fn dedup(rows: &mut Vec<Row>, polygons: bool) {
    let n = rows.len();
    let lex = |a: &[f32; 5], b: &[f32; 5]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| cmp_nan_last(f64::from(*x), f64::from(*y)))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    };
    let keep = first_of_each(
        n,
        |a, b| lex(&rows[a].v, &rows[b].v),
        |a, b| rows[a].v == rows[b].v,
    );
    if keep.len() == n {
        return;
    }
    let keep = if polygons {
        let key = |i: usize| rows[i].polygon_key.as_deref().unwrap_or(&[]);
        let keep = first_of_each(n, |a, b| key(a).cmp(key(b)), |a, b| key(a) == key(b));
        if keep.len() == n {
            return;
        }
        keep
    } else {
        keep
    };
    let mut taken: Vec<Option<Row>> = std::mem::take(rows).into_iter().map(Some).collect();
    *rows = keep.into_iter().filter_map(|i| taken[i].take()).collect();
}

/// The `return_index` of `np.unique`: indices of the first occurrence of each
/// distinct value, in sorted order (numpy sorts stably here).
fn first_of_each(
    n: usize,
    cmp: impl Fn(usize, usize) -> Ordering,
    eq: impl Fn(usize, usize) -> bool,
) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| cmp(a, b));
    let mut keep = Vec::with_capacity(n);
    for (k, &i) in idx.iter().enumerate() {
        if k == 0 || !eq(idx[k - 1], i) {
            keep.push(i);
        }
    }
    keep
}

fn parse_f32(token: &str, line: usize) -> Result<f32, LabelError> {
    py_float(token)
        .map(|v| v as f32)
        .ok_or_else(|| LabelError::Parse {
            line,
            text: token.to_string(),
        })
}

/// Python's `float(token)` for a token without whitespace: Rust's parser
/// plus Python's single underscores between digits. (numpy converts the
/// resulting double to float32.)
fn py_float(token: &str) -> Option<f64> {
    if !token.contains('_') {
        return token.parse().ok();
    }
    let b = token.as_bytes();
    let ok = b.iter().enumerate().all(|(i, &c)| {
        c != b'_'
            || (i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit))
    });
    if ok {
        token.replace('_', "").parse().ok()
    } else {
        None
    }
}

/// Python's `str.isspace`: Unicode White_Space plus the separators
/// U+001C to U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.splitlines()`.
fn py_splitlines(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        out.push(&s[start..i]);
        let mut end = i + c.len_utf8();
        if c == '\r' && chars.peek().is_some_and(|&(_, n)| n == '\n') {
            chars.next();
            end += 1;
        }
        start = end;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const V0: UltralyticsVersion = UltralyticsVersion::V8_4_0;
    const NEW: UltralyticsVersion = UltralyticsVersion::V8_4_183;

    fn parse(text: &str) -> Result<Vec<GroundTruth>, LabelError> {
        parse_yolo_labels(text, 3, 640, 480, V0)
    }

    fn gt(class_id: usize, x1: f32, y1: f32, x2: f32, y2: f32) -> GroundTruth {
        GroundTruth {
            class_id,
            bbox: BoxXyxy { x1, y1, x2, y2 },
        }
    }

    #[test]
    fn converts_to_pixel_corners() {
        let got = parse("1 0.5 0.5 0.25 0.5\n0 0.25 0.75 0.5 0.5\n").unwrap();
        assert_eq!(
            got,
            vec![
                gt(1, 240.0, 120.0, 400.0, 360.0),
                gt(0, 0.0, 240.0, 320.0, 480.0),
            ]
        );
        // The exact float32 expression.
        let got = parse("2 0.3 0.7 0.1 0.3").unwrap();
        let (cx, cy, w, h) = (0.3f32, 0.7f32, 0.1f32, 0.3f32);
        assert_eq!(
            got[0].bbox,
            BoxXyxy {
                x1: (cx - w / 2.0) * 640.0,
                y1: (cy - h / 2.0) * 480.0,
                x2: (cx + w / 2.0) * 640.0,
                y2: (cy + h / 2.0) * 480.0,
            }
        );
    }

    #[test]
    fn empty_and_blank_lines() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("\n\n   \n\t\r\n").unwrap().is_empty());
        let got = parse("\n\n0 0.5 0.5 0.2 0.2\n   \n\r\n1 0.5 0.5 0.2 0.2\n\n").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].class_id, got[1].class_id), (0, 1));
        // CRLF, tabs and extra spaces.
        assert_eq!(
            parse("0\t0.5  0.5 0.2 0.2\r\n1 0.5 0.5 0.2 0.2\r\n")
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn wrong_column_count() {
        match parse("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n") {
            Err(LabelError::Columns { line: 2, found: 4 }) => {}
            other => panic!("{other:?}"),
        }
        // Six columns are not a polygon (that needs more than 6).
        match parse("0 0.5 0.5 0.2 0.2 0.9\n") {
            Err(LabelError::Columns { line: 1, found: 6 }) => {}
            other => panic!("{other:?}"),
        }
        // Python splits lines at a vertical tab, so this is two short rows.
        match parse("0 0.5\u{0b}0.5 0.2 0.2\n") {
            Err(LabelError::Columns { line: 1, found: 2 }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn not_a_number() {
        match parse("0 0.5 0.5 0.2 0.2\n\n0 0.5 abc 0.2 0.2\n") {
            Err(e @ LabelError::Parse { line: 3, .. }) => {
                assert_eq!(e.to_string(), "line 3: \"abc\" is not a number");
            }
            other => panic!("{other:?}"),
        }
        // What Python's float() takes.
        assert_eq!(py_float("1_0"), Some(10.0));
        assert_eq!(py_float("+.5e-1"), Some(0.05));
        assert_eq!(py_float("5."), Some(5.0));
        assert!(py_float("-InFiNiTy").is_some_and(|v| v == f64::NEG_INFINITY));
        assert!(py_float("nan").is_some_and(f64::is_nan));
        for bad in ["_1", "1_", "1__0", "1_.0", "1e_5", "0x10", "", ".", "1,5"] {
            assert_eq!(py_float(bad), None, "{bad}");
        }
        // Without 8.4.183 a byte order mark is part of the first number.
        assert!(matches!(
            parse("\u{feff}0 0.5 0.5 0.2 0.2"),
            Err(LabelError::Parse { line: 1, .. })
        ));
        assert_eq!(
            parse_yolo_labels("\u{feff}0 0.5 0.5 0.2 0.2", 3, 10, 10, NEW)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn out_of_range_rejects_the_whole_file() {
        let e = parse("0 0.5 0.5 0.2 0.2\n\n1 1.0234 0.5 0.2 0.2\n").unwrap_err();
        assert!(matches!(e, LabelError::OutOfRange { line: 3, value } if value == 1.0234));
        assert_eq!(
            e.to_string(),
            "line 3: coordinate 1.0234 is out of range 0..1"
        );
        // ultralytics allows 1% over.
        assert_eq!(parse("0 0.5 0.5 1.01 0.2").unwrap().len(), 1);
        assert!(matches!(
            parse("0 0.5 0.5 1.0101 0.2"),
            Err(LabelError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse("0 0.5 nan 0.2 0.2"),
            Err(LabelError::OutOfRange { .. })
        ));
        // The class column is not a coordinate.
        assert!(matches!(
            parse_yolo_labels("7 0.5 0.5 0.2 0.2", 10, 1, 1, V0),
            Ok(v) if v[0].class_id == 7
        ));
    }

    #[test]
    fn negative_values() {
        let e = parse("0 0.5 0.5 0.2 0.2\n0 -0.02 0.5 0.2 0.2").unwrap_err();
        assert!(matches!(e, LabelError::Negative { line: 2, value } if value == -0.02));
        assert_eq!(e.to_string(), "line 2: negative value -0.02");
        // The class counts too.
        assert!(matches!(
            parse("-1 0.5 0.5 0.2 0.2"),
            Err(LabelError::Negative { line: 1, .. })
        ));
        // 1% under is tolerated...
        assert_eq!(parse("0 -0.01 0.5 0.2 0.2").unwrap().len(), 1);
        assert_eq!(parse("0 0.5 0.5 -0.005 0.2").unwrap().len(), 1);
        // ...but from 8.4.183 not when a width or height is negative.
        let new = |t| parse_yolo_labels(t, 3, 10, 10, NEW);
        assert_eq!(new("0 -0.01 0.5 0.2 0.2").unwrap().len(), 1);
        assert!(matches!(
            new("0 -0.005 0.5 0.2 0.2\n0 0.5 0.5 -0.001 0.2"),
            Err(LabelError::Negative { line: 2, .. })
        ));
        assert!(matches!(
            new("0 -0.02 0.5 0.2 0.2"),
            Err(LabelError::Negative { line: 1, .. })
        ));
    }

    #[test]
    fn unknown_classes() {
        let e = parse("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2").unwrap_err();
        assert!(
            matches!(e, LabelError::UnknownClass { line: 2, class, num_classes: 3 } if class == 3.0)
        );
        assert_eq!(e.to_string(), "line 2: class 3 is not an integer below 3");
        assert!(matches!(
            parse("1.5 0.5 0.5 0.2 0.2"),
            Err(LabelError::UnknownClass { line: 1, .. })
        ));
        assert!(matches!(
            parse("inf 0.5 0.5 0.2 0.2"),
            Err(LabelError::UnknownClass { .. })
        ));
        // An integer written as a float is fine.
        assert_eq!(parse("2.0 0.5 0.5 0.2 0.2").unwrap()[0].class_id, 2);
        assert_eq!(parse("1e0 0.5 0.5 0.2 0.2").unwrap()[0].class_id, 1);
    }

    #[test]
    fn duplicates_removed_and_rows_sorted() {
        // No duplicate: file order kept.
        let got = parse("2 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n").unwrap();
        assert_eq!(
            got.iter().map(|g| g.class_id).collect::<Vec<_>>(),
            vec![2, 0]
        );
        // A duplicate (written differently, same float32): removed, and the
        // survivors come out sorted as np.unique sorts them.
        let got = parse("2 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n2 0.50 0.5 0.2 0.2000\n0 0.9 0.5 0.1 0.1\n0 0.1 0.5 0.1 0.1\n").unwrap();
        let rows: Vec<(usize, f32)> = got.iter().map(|g| (g.class_id, g.bbox.x1)).collect();
        assert_eq!(
            rows,
            vec![
                (0, (0.1f32 - 0.05) * 640.0),
                (0, (0.9f32 - 0.05) * 640.0),
                (1, (0.3f32 - 0.05) * 640.0),
                (2, (0.5f32 - 0.1) * 640.0),
            ]
        );
        // Same box, different class: not a duplicate.
        assert_eq!(
            parse("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2").unwrap().len(),
            2
        );
    }

    #[test]
    fn polygon_rows_become_boxes() {
        // A triangle and a square; the file has a row of more than 6 columns.
        let got = parse("1 0.1 0.2 0.5 0.2 0.3 0.6\n0 0.5 0.5 0.7 0.5 0.7 0.9 0.5 0.9\n").unwrap();
        let (x1, x2, y1, y2) = (0.1f32, 0.5f32, 0.2f32, 0.6f32);
        let (cx, cy, w, h) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1);
        assert_eq!(got[0].class_id, 1);
        assert_eq!(got[0].bbox.x1, (cx - w / 2.0) * 640.0);
        assert_eq!(got[0].bbox.y2, (cy + h / 2.0) * 480.0);
        assert_eq!(got[1].class_id, 0);
        assert!(matches!(
            parse("1 0.1 0.2 0.5 0.2 0.3 0.6\n0 0.5 0.5 0.2 0.2"),
            Err(LabelError::MixedRows { line: 2 })
        ));
        assert!(matches!(
            parse("1 0.1 0.2 0.5 0.2 0.3 0.6 0.7"),
            Err(LabelError::Polygon { line: 1, found: 8 })
        ));
        // Two polygons with the same class and box but different points are
        // both kept; an exact repeat is not.
        let text =
            "0 0.1 0.1 0.9 0.1 0.9 0.9\n0 0.1 0.1 0.1 0.9 0.9 0.9\n0 0.1 0.1 0.9 0.1 0.9 0.9\n";
        assert_eq!(parse(text).unwrap().len(), 2);
        assert_eq!(parse(&text[..text.len() - 26]).unwrap().len(), 2);
    }

    #[test]
    fn python_line_splitting() {
        assert_eq!(py_splitlines("a\nb\r\nc\rd"), vec!["a", "b", "c", "d"]);
        assert_eq!(py_splitlines("a\n"), vec!["a"]);
        assert_eq!(py_splitlines("a\n\nb"), vec!["a", "", "b"]);
        assert!(py_splitlines("").is_empty());
        assert_eq!(py_splitlines("a\u{1e}b\u{1f}c"), vec!["a", "b\u{1f}c"]);
        assert!(is_py_space('\u{1f}') && is_py_space('\u{a0}') && !is_py_space('\u{feff}'));
    }

    #[test]
    fn reads_files() {
        let dir = std::env::temp_dir().join(format!("roadwarden-eval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.txt");
        std::fs::write(&path, "0 0.5 0.5 0.5 0.5\n").unwrap();
        assert_eq!(
            read_yolo_labels(&path, 1, 100, 200).unwrap(),
            vec![gt(0, 25.0, 50.0, 75.0, 150.0)]
        );
        std::fs::write(&path, b"0 0.5 0.5 0.5 \xff\n").unwrap();
        assert!(matches!(
            read_yolo_labels(&path, 1, 100, 200),
            Err(LabelError::Io(_))
        ));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            read_yolo_labels(&path, 1, 100, 200),
            Err(LabelError::Io(_))
        ));
        let _ = std::fs::remove_dir(&dir);
    }
}
