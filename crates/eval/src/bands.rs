//! Recall and precision by object size: a detector that finds 95 % of the heads in a data set may still
//! miss every head under 20 px, which is what a CCTV camera mostly shows. [`BandEvaluator`] counts, per
//! class and per height band of the objects (in the image's own pixels), the truths, the true and false
//! positives at one operating point (the predictions the caller kept, e.g. at the model's class
//! thresholds), and how many truths some prediction of *any* class found (a head found but misread).
//!
//! Also here: the data set's class names ([`parse_data_yaml_names`]) and their mapping onto a model's
//! classes ([`ClassMap`]), and list files of images ([`parse_image_list`]).
//!
//! This is not ultralytics' metric: there is no confidence sweep. Matching is greedy in descending
//! score: each prediction takes the unmatched truth of its class it overlaps most, at IoU >= the
//! evaluator's threshold (0.5 by default).

use serde::Serialize;

use crate::matching::box_iou;
use crate::{BoxXyxy, GroundTruth, Prediction};

/// Height bands: `edges` `[16, 24, 40]` make the bands `< 16`, `16-24`, `24-40` and `>= 40` (a height
/// equal to an edge falls in the band above it).
#[derive(Debug, Clone, PartialEq)]
pub struct SizeBands {
    edges: Vec<f32>,
}

/// Why a band list was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BandsError {
    #[error("size band edge {0:?} is not a number (give pixel heights such as `16,24,40`)")]
    NotANumber(String),
    #[error(
        "size band edges must be positive and strictly increasing, got {0:?} (give pixel heights such as `16,24,40`)"
    )]
    NotIncreasing(Vec<f32>),
}

impl SizeBands {
    /// The bands between `edges` (pixel heights, positive, strictly increasing; empty: one band).
    pub fn new(edges: Vec<f32>) -> Result<SizeBands, BandsError> {
        let ok = edges.iter().all(|e| e.is_finite() && *e > 0.0)
            && edges.windows(2).all(|w| w[0] < w[1]);
        if !ok {
            return Err(BandsError::NotIncreasing(edges));
        }
        Ok(SizeBands { edges })
    }

    /// Parses `16,24,40` (spaces allowed).
    pub fn parse(text: &str) -> Result<SizeBands, BandsError> {
        let edges = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<f32>()
                    .map_err(|_| BandsError::NotANumber(s.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        SizeBands::new(edges)
    }

    /// Heads at CCTV scale: `< 16`, `16-24`, `24-40`, `>= 40` px tall.
    pub fn heads() -> SizeBands {
        SizeBands {
            edges: vec![16.0, 24.0, 40.0],
        }
    }

    pub fn len(&self) -> usize {
        self.edges.len() + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The band of an object `height` pixels tall.
    pub fn index(&self, height: f32) -> usize {
        self.edges.iter().take_while(|&&e| height >= e).count()
    }

    /// The band's name: `<16`, `16-24`, `>=40`, or `all` for a single band.
    pub fn label(&self, band: usize) -> String {
        let n = self.edges.len();
        match band {
            _ if n == 0 => "all".to_string(),
            0 => format!("<{}", self.edges[0]),
            b if b >= n => format!(">={}", self.edges[n - 1]),
            b => format!("{}-{}", self.edges[b - 1], self.edges[b]),
        }
    }

    pub fn edges(&self) -> &[f32] {
        &self.edges
    }
}

fn height(b: &BoxXyxy) -> f32 {
    b.y2 - b.y1
}

/// Counts of one class in one size band.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BandCounts {
    /// Truths of this class in the band.
    pub truths: usize,
    /// Of them, matched by a prediction of this class.
    pub true_positives: usize,
    /// Of them, overlapped (IoU >= threshold) by a prediction of any class: found, maybe misread.
    pub found_any_class: usize,
    /// Predictions of this class matching no truth of it, by their own height.
    pub false_positives: usize,
}

impl BandCounts {
    /// `true_positives / truths`; `None` without truths.
    pub fn recall(&self) -> Option<f64> {
        (self.truths > 0).then(|| self.true_positives as f64 / self.truths as f64)
    }

    /// `true_positives / (true_positives + false_positives)`; `None` without predictions.
    pub fn precision(&self) -> Option<f64> {
        let p = self.true_positives + self.false_positives;
        (p > 0).then(|| self.true_positives as f64 / p as f64)
    }

    fn add(&mut self, o: &BandCounts) {
        self.truths += o.truths;
        self.true_positives += o.true_positives;
        self.found_any_class += o.found_any_class;
        self.false_positives += o.false_positives;
    }
}

/// Per class, per band counts; see the module text.
#[derive(Debug, Clone)]
pub struct BandEvaluator {
    bands: SizeBands,
    iou: f32,
    images: usize,
    /// counts[class][band]
    counts: Vec<Vec<BandCounts>>,
}

/// One row of a [`BandReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BandRow {
    pub class_id: usize,
    pub band: String,
    #[serde(flatten)]
    pub counts: BandCounts,
    pub recall: Option<f64>,
    pub precision: Option<f64>,
}

/// The counts of a [`BandEvaluator`], class by class, band by band (then an `all` row per class).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BandReport {
    pub images: usize,
    pub iou: f32,
    pub band_edges: Vec<f32>,
    pub rows: Vec<BandRow>,
}

impl BandReport {
    /// The row of `class_id` in band `band` (a label as [`SizeBands::label`] gives, or `all`).
    pub fn row(&self, class_id: usize, band: &str) -> Option<&BandRow> {
        self.rows
            .iter()
            .find(|r| r.class_id == class_id && r.band == band)
    }
}

impl BandEvaluator {
    /// Matching at IoU 0.5.
    pub fn new(bands: SizeBands) -> BandEvaluator {
        BandEvaluator::with_iou(bands, 0.5)
    }

    pub fn with_iou(bands: SizeBands, iou: f32) -> BandEvaluator {
        BandEvaluator {
            bands,
            iou,
            images: 0,
            counts: Vec::new(),
        }
    }

    pub fn bands(&self) -> &SizeBands {
        &self.bands
    }

    fn slot(&mut self, class: usize, band: usize) -> &mut BandCounts {
        if class >= self.counts.len() {
            self.counts
                .resize(class + 1, vec![BandCounts::default(); self.bands.len()]);
        }
        &mut self.counts[class][band]
    }

    /// Adds one image: the predictions kept at the operating point and the truths, in the same pixels.
    pub fn add_image(&mut self, preds: &[Prediction], truths: &[GroundTruth]) {
        self.images += 1;
        let mut order: Vec<usize> = (0..preds.len()).collect();
        // Descending score, ties in input order.
        order.sort_by(|&a, &b| preds[b].score.total_cmp(&preds[a].score));
        let mut taken = vec![false; truths.len()];
        for &pi in &order {
            let p = &preds[pi];
            let best = truths
                .iter()
                .enumerate()
                .filter(|(ti, t)| !taken[*ti] && t.class_id == p.class_id)
                .map(|(ti, t)| (ti, box_iou(&t.bbox, &p.bbox)))
                .filter(|&(_, iou)| iou >= self.iou)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((ti, _)) => taken[ti] = true,
                None => {
                    let band = self.bands.index(height(&p.bbox));
                    self.slot(p.class_id, band).false_positives += 1;
                }
            }
        }
        for (ti, t) in truths.iter().enumerate() {
            let band = self.bands.index(height(&t.bbox));
            let found = preds.iter().any(|p| box_iou(&t.bbox, &p.bbox) >= self.iou);
            let slot = self.slot(t.class_id, band);
            slot.truths += 1;
            slot.true_positives += usize::from(taken[ti]);
            slot.found_any_class += usize::from(found);
        }
    }

    /// The counts so far: per class with truths or predictions, each band then `all`.
    pub fn finish(&self) -> BandReport {
        let mut rows = Vec::new();
        for (class_id, bands) in self.counts.iter().enumerate() {
            let mut all = BandCounts::default();
            for b in bands {
                all.add(b);
            }
            if all == BandCounts::default() {
                continue;
            }
            let row = |band: String, counts: BandCounts| BandRow {
                class_id,
                band,
                counts,
                recall: counts.recall(),
                precision: counts.precision(),
            };
            for (i, c) in bands.iter().enumerate() {
                rows.push(row(self.bands.label(i), *c));
            }
            if self.bands.len() > 1 {
                rows.push(row("all".to_string(), all));
            }
        }
        BandReport {
            images: self.images,
            iou: self.iou,
            band_edges: self.bands.edges.clone(),
            rows,
        }
    }
}

/// The class names of an ultralytics `data.yaml`: its `names:` entry as a flow list
/// (`names: ['a', 'b']`), a block list (`- a` lines) or a map (`0: a` lines, ids from 0 without gaps).
/// Only that key is read; this is not a YAML parser.
pub fn parse_data_yaml_names(text: &str) -> Result<Vec<String>, DataYamlError> {
    let unquote = |s: &str| {
        let s = s.trim();
        let s = s.split(" #").next().unwrap_or(s).trim();
        s.trim_matches(|c| c == '\'' || c == '"').to_string()
    };
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("names:") else {
            continue;
        };
        let rest = rest.trim();
        if let Some(inner) = rest.strip_prefix('[') {
            let inner = inner
                .split(']')
                .next()
                .ok_or(DataYamlError::Malformed("names: [ without ]"))?;
            return Ok(inner
                .split(',')
                .map(unquote)
                .filter(|s| !s.is_empty())
                .collect());
        }
        if !rest.is_empty() && !rest.starts_with('#') {
            return Err(DataYamlError::Malformed(
                "`names:` is neither a [list] nor followed by indented entries",
            ));
        }
        let mut names: Vec<String> = Vec::new();
        while let Some(next) = lines.peek() {
            let t = next.trim();
            if t.is_empty() || t.starts_with('#') {
                lines.next();
                continue;
            }
            if !next.starts_with(' ') && !next.starts_with('\t') && !next.starts_with('-') {
                break;
            }
            if let Some(item) = t.strip_prefix('-') {
                names.push(unquote(item));
            } else if let Some((id, name)) = t.split_once(':') {
                let id: usize = id.trim().parse().map_err(|_| {
                    DataYamlError::Malformed("a `names:` map key is not a class id")
                })?;
                if id != names.len() {
                    return Err(DataYamlError::Malformed(
                        "`names:` map ids must run 0, 1, 2, ... without gaps",
                    ));
                }
                names.push(unquote(name));
            } else {
                break;
            }
            lines.next();
        }
        return Ok(names);
    }
    Err(DataYamlError::NoNames)
}

/// Why a data.yaml gave no class names.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataYamlError {
    #[error("no `names:` entry (the data set's class names, e.g. `names: ['plate', 'no_helmet']`)")]
    NoNames,
    #[error("malformed `names:` entry: {0}")]
    Malformed(&'static str),
}

/// A model class as the mapping sees it: its name and its role's name (`no_helmet`, `helmet`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelClass {
    pub name: String,
    pub role: String,
}

/// Data set class id → model class id. A data set class maps to the model class whose name or role
/// equals its name, compared without case, spaces, `-` or `_` (a name match wins over a role match;
/// of several model classes with the role, the first). A data set class matching none (a licence
/// plate for a head model) is left out of the evaluation: its truths are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassMap {
    /// Per data set class id.
    pub to_model: Vec<Option<usize>>,
    /// The data set's class names.
    pub names: Vec<String>,
}

fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

impl ClassMap {
    pub fn resolve(dataset: &[String], model: &[ModelClass]) -> ClassMap {
        let to_model = dataset
            .iter()
            .map(|n| {
                let n = fold(n);
                model
                    .iter()
                    .position(|m| fold(&m.name) == n)
                    .or_else(|| model.iter().position(|m| fold(&m.role) == n))
            })
            .collect();
        ClassMap {
            to_model,
            names: dataset.to_vec(),
        }
    }

    /// The truths in model class ids; those of unmapped classes are dropped.
    pub fn apply(&self, truths: &[GroundTruth]) -> Vec<GroundTruth> {
        truths
            .iter()
            .filter_map(|t| {
                let c = self.to_model.get(t.class_id).copied().flatten()?;
                Some(GroundTruth {
                    class_id: c,
                    bbox: t.bbox,
                })
            })
            .collect()
    }

    /// The data set's classes that map to no model class.
    pub fn unmapped(&self) -> Vec<&str> {
        self.names
            .iter()
            .zip(&self.to_model)
            .filter(|(_, m)| m.is_none())
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// The image paths of a list file (one a line, as ultralytics reads a `train: list.txt`): blank lines
/// and `#` comments skipped, surrounding spaces trimmed. Paths stay as written (the caller resolves
/// relative ones).
pub fn parse_image_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32) -> BoxXyxy {
        BoxXyxy { x1, y1, x2, y2 }
    }
    fn gt(class_id: usize, bbox: BoxXyxy) -> GroundTruth {
        GroundTruth { class_id, bbox }
    }
    fn pred(class_id: usize, score: f32, bbox: BoxXyxy) -> Prediction {
        Prediction {
            class_id,
            score,
            bbox,
        }
    }

    #[test]
    fn heights_fall_in_the_band_above_an_edge() {
        let s = SizeBands::heads();
        assert_eq!(s.len(), 4);
        assert_eq!(s.index(0.0), 0);
        assert_eq!(s.index(15.9), 0);
        assert_eq!(s.index(16.0), 1);
        assert_eq!(s.index(23.9), 1);
        assert_eq!(s.index(24.0), 2);
        assert_eq!(s.index(40.0), 3);
        assert_eq!(s.index(500.0), 3);
        let labels: Vec<String> = (0..4).map(|i| s.label(i)).collect();
        assert_eq!(labels, ["<16", "16-24", "24-40", ">=40"]);
        let one = SizeBands::new(vec![]).unwrap();
        assert_eq!(
            (one.len(), one.index(99.0), one.label(0)),
            (1, 0, "all".into())
        );
    }

    #[test]
    fn band_lists_parse_and_bad_ones_are_refused() {
        assert_eq!(SizeBands::parse(" 16, 24 ,40").unwrap(), SizeBands::heads());
        assert_eq!(SizeBands::parse("8").unwrap().edges(), &[8.0]);
        assert_eq!(
            SizeBands::parse("16,x"),
            Err(BandsError::NotANumber("x".into()))
        );
        assert!(matches!(
            SizeBands::parse("24,16"),
            Err(BandsError::NotIncreasing(_))
        ));
        assert!(matches!(
            SizeBands::parse("0,16"),
            Err(BandsError::NotIncreasing(_))
        ));
        assert!(matches!(
            SizeBands::parse("16,16"),
            Err(BandsError::NotIncreasing(_))
        ));
    }

    #[test]
    fn truths_and_predictions_are_counted_in_their_bands() {
        let mut ev = BandEvaluator::new(SizeBands::heads());
        let small = b(100.0, 100.0, 110.0, 112.0); // 12 px: band <16
        let mid = b(200.0, 100.0, 220.0, 130.0); // 30 px: band 24-40
        let big = b(300.0, 100.0, 350.0, 160.0); // 60 px: band >=40
        let far = b(400.0, 300.0, 420.0, 320.0); // 20 px: band 16-24
        ev.add_image(
            &[
                pred(1, 0.9, mid),                           // TP
                pred(0, 0.8, big), // wrong class: FP of class 0, big still found
                pred(1, 0.7, far), // FP of class 1 in 16-24
                pred(1, 0.6, b(200.0, 101.0, 220.0, 131.0)), // duplicate of mid: FP in 24-40
            ],
            &[gt(1, small), gt(1, mid), gt(1, big)],
        );
        let r = ev.finish();
        assert_eq!(r.images, 1);
        let c1 = |band: &str| r.row(1, band).unwrap().counts;
        assert_eq!(
            c1("<16"),
            BandCounts {
                truths: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            c1("16-24"),
            BandCounts {
                false_positives: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            c1("24-40"),
            BandCounts {
                truths: 1,
                true_positives: 1,
                found_any_class: 1,
                false_positives: 1
            }
        );
        assert_eq!(
            c1(">=40"),
            BandCounts {
                truths: 1,
                true_positives: 0,
                found_any_class: 1,
                false_positives: 0
            }
        );
        let all = r.row(1, "all").unwrap();
        assert_eq!((all.counts.truths, all.counts.true_positives), (3, 1));
        assert_eq!(all.recall, Some(1.0 / 3.0));
        assert_eq!(all.precision, Some(1.0 / 3.0));
        assert_eq!(r.row(1, "<16").unwrap().precision, None, "no predictions");
        // Class 0 has only its false positive, in the >=40 band.
        assert_eq!(r.row(0, ">=40").unwrap().counts.false_positives, 1);
        assert_eq!(r.row(0, "all").unwrap().recall, None);
    }

    #[test]
    fn the_higher_score_takes_the_truth_and_low_iou_does_not_match() {
        let mut ev = BandEvaluator::new(SizeBands::new(vec![]).unwrap());
        let t = b(0.0, 0.0, 20.0, 20.0);
        // IoU of (0,0)-(20,10) with t is 0.5: matches. (5,5)-(25,25): 225/575 = 0.39: no match.
        ev.add_image(
            &[
                pred(0, 0.4, b(0.0, 0.0, 20.0, 10.0)),
                pred(0, 0.9, b(5.0, 5.0, 25.0, 25.0)),
            ],
            &[gt(0, t)],
        );
        let r = ev.finish();
        let row = r.row(0, "all").unwrap();
        assert_eq!(
            (row.counts.true_positives, row.counts.false_positives),
            (1, 1)
        );
        let mut ev = BandEvaluator::new(SizeBands::new(vec![]).unwrap());
        ev.add_image(
            &[pred(0, 0.4, t), pred(0, 0.9, b(0.0, 0.0, 20.0, 19.0))],
            &[gt(0, t)],
        );
        let r = ev.finish();
        // Both match; the 0.9 one came first and took it, the exact box is the duplicate.
        assert_eq!(r.row(0, "all").unwrap().counts.false_positives, 1);
        assert_eq!(r.row(0, "all").unwrap().counts.true_positives, 1);
    }

    #[test]
    fn reports_serialise_with_flat_counts() {
        let mut ev = BandEvaluator::new(SizeBands::heads());
        ev.add_image(&[], &[gt(0, b(0.0, 0.0, 10.0, 10.0))]);
        let v = serde_json::to_value(ev.finish()).unwrap();
        assert_eq!(v["band_edges"][0], 16.0);
        assert_eq!(v["rows"][0]["band"], "<16");
        assert_eq!(v["rows"][0]["truths"], 1);
        assert_eq!(v["rows"][0]["recall"], 0.0);
        assert!(v["rows"][0]["precision"].is_null());
    }

    #[test]
    fn data_yaml_names_in_all_three_forms() {
        let flow = "train: a\nnc: 5\nnames: ['0', \"1\", plate]\nroboflow:\n  x: 1\n";
        assert_eq!(parse_data_yaml_names(flow).unwrap(), ["0", "1", "plate"]);
        let block = "names:\n  - licence plate\n  - 'no_helmet'  # bare head\n\nval: x\n";
        assert_eq!(
            parse_data_yaml_names(block).unwrap(),
            ["licence plate", "no_helmet"]
        );
        let map = "path: .\nnames:\n  0: plate\n  1: no_helmet\ntest: t\n";
        assert_eq!(parse_data_yaml_names(map).unwrap(), ["plate", "no_helmet"]);
        assert_eq!(
            parse_data_yaml_names("nc: 2\n"),
            Err(DataYamlError::NoNames)
        );
        assert!(parse_data_yaml_names("names:\n  1: a\n").is_err());
    }

    #[test]
    fn dataset_classes_map_by_name_then_role() {
        let model = vec![
            ModelClass {
                name: "With Helmet".into(),
                role: "helmet".into(),
            },
            ModelClass {
                name: "Without Helmet".into(),
                role: "no_helmet".into(),
            },
        ];
        let names: Vec<String> = ["plate", "no_helmet", "helmet", "with-helmet", "rider"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let map = ClassMap::resolve(&names, &model);
        assert_eq!(map.to_model, [None, Some(1), Some(0), Some(0), None]);
        assert_eq!(map.unmapped(), ["plate", "rider"]);
        let t = |c| gt(c, b(0.0, 0.0, 1.0, 1.0));
        let mapped = map.apply(&[t(0), t(1), t(2), t(3), t(4), t(9)]);
        let ids: Vec<usize> = mapped.iter().map(|g| g.class_id).collect();
        assert_eq!(ids, [1, 0, 0]);
    }

    #[test]
    fn list_files_skip_blanks_and_comments() {
        let text = "# test split\ntrain/images/a.jpg\n\n  valid/images/b.jpg  \r\n";
        assert_eq!(
            parse_image_list(text),
            ["train/images/a.jpg", "valid/images/b.jpg"]
        );
    }
}
