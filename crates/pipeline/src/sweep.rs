//! The rule-threshold sweep: the helmet rule's `no_helmet` class threshold (0.10 to 0.90) and its votes K
//! of the configured window N, and the red-light grace time (0 to 1.5 s), each point a [`Replay`] of the
//! recorded run scored against the scene's truth ([`score`]); per rule a recommended setting
//! ([`recommend`]); and the result as a CSV table, a text table and an SVG precision/recall plot.

mod plot;

use std::cmp::Ordering;
use std::fmt::Write as _;

use roadwarden_types::{Violation, ViolationKind};
use serde::Serialize;

use crate::replay::{Recording, Replay, RuleSetting};
use crate::score::{RuleScore, score};
use crate::synth::Truth;

/// The rule a violation type belongs to, as reports name it.
pub fn rule_name(kind: ViolationKind) -> &'static str {
    match kind {
        ViolationKind::NoHelmet => "helmet",
        ViolationKind::RedLight => "red_light",
    }
}

/// F1 from counts; 1 when there was nothing to find and nothing was reported.
pub fn f1(r: &RuleScore) -> f64 {
    let d = 2 * r.tp + r.fp + r.fn_;
    if d == 0 {
        1.0
    } else {
        2.0 * r.tp as f64 / d as f64
    }
}

/// `grid` with `configured` added, in `order`, a value `same` as the one before it dropped.
fn with_configured<T>(
    mut grid: Vec<T>,
    configured: T,
    order: fn(&T, &T) -> Ordering,
    same: fn(&T, &T) -> bool,
) -> Vec<T> {
    grid.push(configured);
    grid.sort_by(order);
    grid.dedup_by(|a, b| same(a, b));
    grid
}

/// One setting of one rule and how it scored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    #[serde(flatten)]
    pub setting: RuleSetting,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub tp: u32,
    pub fp: u32,
    #[serde(rename = "fn")]
    pub fn_: u32,
    /// The camera's configured setting (for the parameters this rule's sweep varies).
    pub configured: bool,
}

impl SweepPoint {
    /// `setting`'s score for the rule of `kind`, from the violations a replay under it reported.
    pub fn scored(
        truth: &Truth,
        violations: &[Violation],
        kind: ViolationKind,
        setting: RuleSetting,
        configured: bool,
    ) -> SweepPoint {
        let sc = score(truth, violations);
        let r = sc.per_rule.get(&kind).cloned().unwrap_or_default();
        SweepPoint {
            setting,
            precision: r.precision,
            recall: r.recall,
            f1: f1(&r),
            tp: r.tp,
            fp: r.fp,
            fn_: r.fn_,
            configured,
        }
    }
}

/// Which point of a sweep to recommend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recommendation {
    /// Index into the points.
    pub index: usize,
    /// Whether that point reaches the precision floor (else it is the best F1 of all).
    pub meets_min_precision: bool,
}

/// Best point: max F1 among those reaching `min_precision`; ties go to the higher precision, then to the
/// configured setting (no change for nothing), then to the stricter one (later in `points`, which run
/// from loose to strict). None reaching `min_precision`: the same over all points. Empty `points`: index 0.
pub fn recommend(points: &[SweepPoint], min_precision: f64) -> Recommendation {
    let best = |pred: &dyn Fn(&SweepPoint) -> bool| {
        points
            .iter()
            .enumerate()
            .filter(|(_, p)| pred(p))
            .max_by(|(i, a), (j, b)| {
                a.f1.total_cmp(&b.f1)
                    .then(a.precision.total_cmp(&b.precision))
                    .then(a.configured.cmp(&b.configured))
                    .then(i.cmp(j))
            })
            .map(|(i, _)| i)
    };
    match best(&|p| p.precision >= min_precision - 1e-9) {
        Some(index) => Recommendation {
            index,
            meets_min_precision: true,
        },
        None => Recommendation {
            index: best(&|_| true).unwrap_or(0),
            meets_min_precision: false,
        },
    }
}

/// One rule's sweep.
#[derive(Debug, Clone, Serialize)]
pub struct RuleSweep {
    #[serde(skip)]
    pub kind: ViolationKind,
    /// Which parameters vary for this rule.
    pub varies: &'static [&'static str],
    /// From loose to strict.
    pub points: Vec<SweepPoint>,
    /// Index into `points`.
    pub recommended: usize,
    /// Whether the recommended point reaches the precision floor.
    pub meets_min_precision: bool,
}

impl RuleSweep {
    fn new(
        kind: ViolationKind,
        varies: &'static [&'static str],
        points: Vec<SweepPoint>,
        min_precision: f64,
    ) -> RuleSweep {
        let rec = recommend(&points, min_precision);
        RuleSweep {
            kind,
            varies,
            points,
            recommended: rec.index,
            meets_min_precision: rec.meets_min_precision,
        }
    }

    pub fn name(&self) -> &'static str {
        rule_name(self.kind)
    }

    /// The recommended point; None only for a sweep without points.
    pub fn best(&self) -> Option<&SweepPoint> {
        self.points.get(self.recommended)
    }

    /// What a point of this rule sets, in words.
    pub fn describe(&self, p: &SweepPoint) -> String {
        match self.kind {
            ViolationKind::NoHelmet => format!(
                "no_helmet threshold {:.2}, {} of {} votes",
                p.setting.no_helmet_threshold, p.setting.min_votes, p.setting.window
            ),
            ViolationKind::RedLight => format!("grace {:.1} s", p.setting.grace_s),
        }
    }
}

/// Both rules' sweeps over one recorded run.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub min_precision: f64,
    /// Whether replaying the rules at the configured setting reproduced the live run's violations.
    pub replay_matches_live: bool,
    pub helmet: RuleSweep,
    pub red_light: RuleSweep,
}

impl Sweep {
    /// How a setting is recommended, in words.
    pub const RULE: &'static str = "max F1 subject to precision >= min_precision (ties: higher precision, then the configured setting, then the stricter)";

    /// Replays `recording` under every sweep point of `replay`'s camera and scores each against `truth`.
    /// The configured setting is always a point, so the table shows where the site file stands.
    pub fn run(replay: &Replay, recording: &Recording, truth: &Truth, min_precision: f64) -> Sweep {
        let configured = replay.configured();
        let point = |kind, s: RuleSetting, is_configured: bool| {
            let v = replay.run(&recording.frames, s);
            SweepPoint::scored(truth, &v, kind, s, is_configured)
        };
        let thresholds = with_configured(
            (2..=18).map(|i| i as f32 * 0.05).collect(),
            configured.no_helmet_threshold,
            f32::total_cmp,
            |a, b| (a - b).abs() < 1e-4,
        );
        let mut helmet = Vec::new();
        // Loose to strict: lower thresholds first, then fewer votes.
        for &t in &thresholds {
            for k in 1..=configured.window {
                let s = RuleSetting {
                    no_helmet_threshold: t,
                    min_votes: k,
                    ..configured
                };
                let is_configured =
                    (t - configured.no_helmet_threshold).abs() < 1e-4 && k == configured.min_votes;
                helmet.push(point(ViolationKind::NoHelmet, s, is_configured));
            }
        }
        let graces = with_configured(
            (0..=15).map(|i| i as f64 * 0.1).collect(),
            configured.grace_s,
            f64::total_cmp,
            |a, b| (a - b).abs() < 1e-6,
        );
        let mut red = Vec::new();
        for &g in &graces {
            let s = RuleSetting {
                grace_s: g,
                ..configured
            };
            let is_configured = (g - configured.grace_s).abs() < 1e-6;
            red.push(point(ViolationKind::RedLight, s, is_configured));
        }
        Sweep {
            min_precision,
            replay_matches_live: replay.reproduces(recording),
            helmet: RuleSweep::new(
                ViolationKind::NoHelmet,
                &["no_helmet_threshold", "min_votes"],
                helmet,
                min_precision,
            ),
            red_light: RuleSweep::new(ViolationKind::RedLight, &["grace_s"], red, min_precision),
        }
    }

    /// The helmet rule's sweep, then the red-light rule's.
    pub fn rules(&self) -> [&RuleSweep; 2] {
        [&self.helmet, &self.red_light]
    }

    /// Every point as a CSV row, with a header.
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "rule,no_helmet_threshold,min_votes,window,grace_s,precision,recall,f1,tp,fp,fn,configured,recommended\n",
        );
        for r in self.rules() {
            for (i, p) in r.points.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{},{:.2},{},{},{:.2},{:.4},{:.4},{:.4},{},{},{},{},{}",
                    r.name(),
                    p.setting.no_helmet_threshold,
                    p.setting.min_votes,
                    p.setting.window,
                    p.setting.grace_s,
                    p.precision,
                    p.recall,
                    p.f1,
                    p.tp,
                    p.fp,
                    p.fn_,
                    p.configured,
                    i == r.recommended
                );
            }
        }
        s
    }

    /// Every point as a text table per rule, the configured and recommended ones marked, and the
    /// recommendation in words.
    pub fn table(&self) -> String {
        let mut s = String::new();
        for r in self.rules() {
            let name = r.name();
            let _ = writeln!(s, "sweep {name} (varies {}):", r.varies.join(", "));
            let _ = writeln!(
                s,
                "  {:>9} {:>5} {:>7} {:>9} {:>6} {:>6} {:>3} {:>3} {:>3}",
                "threshold", "votes", "grace_s", "precision", "recall", "f1", "tp", "fp", "fn"
            );
            for (i, p) in r.points.iter().enumerate() {
                let mut mark = String::new();
                if p.configured {
                    mark.push_str(" configured");
                }
                if i == r.recommended {
                    mark.push_str(" <- recommended");
                }
                let _ = writeln!(
                    s,
                    "  {:>9.2} {:>5} {:>7.1} {:>9.3} {:>6.3} {:>6.3} {:>3} {:>3} {:>3}{mark}",
                    p.setting.no_helmet_threshold,
                    format!("{}/{}", p.setting.min_votes, p.setting.window),
                    p.setting.grace_s,
                    p.precision,
                    p.recall,
                    p.f1,
                    p.tp,
                    p.fp,
                    p.fn_,
                );
            }
            let Some(best) = r.best() else {
                continue;
            };
            let _ = writeln!(
                s,
                "  recommended for {name}: {} (precision {:.3}, recall {:.3}, F1 {:.3}){}",
                r.describe(best),
                best.precision,
                best.recall,
                best.f1,
                if r.meets_min_precision {
                    String::new()
                } else {
                    format!(
                        "; no setting reaches precision {:.2}, this is the best F1",
                        self.min_precision
                    )
                }
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use roadwarden_types::SignalState;

    use super::*;
    use crate::replay::tests::{replay, ride};

    fn point(precision: f64, f1: f64, configured: bool) -> SweepPoint {
        SweepPoint {
            setting: RuleSetting {
                no_helmet_threshold: 0.5,
                min_votes: 3,
                window: 5,
                grace_s: 0.5,
            },
            precision,
            recall: 0.5,
            f1,
            tp: 5,
            fp: 1,
            fn_: 5,
            configured,
        }
    }

    fn rec(index: usize, meets_min_precision: bool) -> Recommendation {
        Recommendation {
            index,
            meets_min_precision,
        }
    }

    #[test]
    fn f1_of_counts() {
        let mut r = RuleScore::default();
        assert_eq!(f1(&r), 1.0, "nothing to find, nothing reported");
        r.fn_ = 2;
        assert_eq!(f1(&r), 0.0);
        (r.tp, r.fp, r.fn_) = (3, 1, 1);
        assert!((f1(&r) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn recommend_takes_the_best_f1_above_the_precision_floor() {
        let points = [
            point(0.5, 0.9, false), // best F1 overall, below the floor
            point(1.0, 0.6, false),
            point(0.9, 0.8, false), // best F1 at or above the floor
            point(1.0, 0.3, true),
        ];
        assert_eq!(recommend(&points, 0.9), rec(2, true));
        // With no floor the loose point wins.
        assert_eq!(recommend(&points, 0.0), rec(0, true));
        // None reaches 1.01: the best F1 overall, and it says so.
        assert_eq!(recommend(&points, 1.01), rec(0, false));
        assert_eq!(recommend(&[], 0.9), rec(0, false));
    }

    #[test]
    fn recommend_breaks_ties_by_precision_then_configured_then_stricter() {
        // Equal F1: the higher precision wins.
        let (a, b) = (point(1.0, 0.7, false), point(0.9, 0.7, false));
        assert_eq!(recommend(&[a.clone(), b.clone()], 0.0), rec(0, true));
        assert_eq!(recommend(&[b, a], 0.0), rec(1, true));
        // Equal F1 and precision: the configured setting, wherever it stands.
        let same = point(1.0, 0.7, false);
        let configured = point(1.0, 0.7, true);
        assert_eq!(
            recommend(&[same.clone(), configured.clone(), same.clone()], 0.0),
            rec(1, true)
        );
        assert_eq!(
            recommend(&[configured, same.clone(), same.clone()], 0.0),
            rec(0, true)
        );
        // All equal: the stricter (the last).
        assert_eq!(
            recommend(&[same.clone(), same.clone(), same], 0.0),
            rec(2, true)
        );
    }

    #[test]
    fn a_sweep_over_a_recorded_ride_marks_the_configured_points_and_renders() {
        let r = replay();
        let rec = ride(|_| 0.8, |_| SignalState::Red);
        let truth = Truth {
            width: 640,
            height: 384,
            fps: 4,
            frames: 30,
            phases: Vec::new(),
            actors: Vec::new(),
            violations: Vec::new(),
        };
        let s = Sweep::run(&r, &rec, &truth, 0.9);
        assert!(s.replay_matches_live);
        // 17 thresholds plus the configured 0.40 (already one of them), 5 vote counts each; 16 graces.
        assert_eq!(s.helmet.points.len(), 17 * 5);
        assert_eq!(s.red_light.points.len(), 16);
        for rule in s.rules() {
            let configured: Vec<_> = rule.points.iter().filter(|p| p.configured).collect();
            assert_eq!(configured.len(), 1, "{}", rule.name());
            assert_eq!(configured[0].setting.min_votes, 3);
        }
        // Every report is a false alarm against an empty truth: the strictest settings that report
        // nothing score F1 1 and are recommended.
        let best = s.helmet.best().expect("points");
        assert_eq!((best.tp, best.fp, best.fn_), (0, 0, 0));
        assert!(s.helmet.meets_min_precision);
        let csv = s.csv();
        assert_eq!(csv.lines().count(), 1 + 17 * 5 + 16);
        assert_eq!(
            csv.lines().filter(|l| l.ends_with(",true")).count(),
            2,
            "one recommended row a rule"
        );
        let table = s.table();
        assert!(table.contains("sweep helmet (varies no_helmet_threshold, min_votes):"));
        assert!(table.contains("recommended for red_light: grace"));
        let svg = s.svg();
        assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(
            svg.matches("<polyline").count(),
            5 + 1,
            "a series per K, one for grace"
        );
    }
}
