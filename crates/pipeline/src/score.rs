//! Violation-level scoring against a scene's ground truth: a reported violation matches a true one of the
//! same type for the same actor (its evidence box overlaps the actor's box in that frame) within ±1 s of
//! the true interval. Each true violation matches at most once; a second report of the same offender is a
//! duplicate (and a false alarm).

use std::collections::BTreeMap;

use roadwarden_types::{FrameRole, Violation, ViolationKind};
use serde::Serialize;

use crate::synth::{ActorKind, Truth};

/// Matching slack around the true interval, seconds.
pub const TIME_SLACK_S: f64 = 1.0;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleScore {
    pub precision: f64,
    pub recall: f64,
    pub tp: u32,
    pub fp: u32,
    #[serde(rename = "fn")]
    pub fn_: u32,
    /// Reports of an offender already reported for this rule.
    pub duplicates: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Miss {
    #[serde(rename = "type")]
    pub kind: ViolationKind,
    pub actor: u32,
    pub time_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FalseAlarm {
    #[serde(rename = "type")]
    pub kind: ViolationKind,
    pub track_id: u64,
    pub time_s: f64,
    /// The actor it lands on, if any (e.g. a pedestrian), and why it did not match.
    pub actor: Option<u32>,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub per_rule: BTreeMap<ViolationKind, RuleScore>,
    pub misses: Vec<Miss>,
    pub false_alarms: Vec<FalseAlarm>,
}

/// The key frame of a violation (Key for no-helmet, At for red-light) and its first box.
fn key_of(v: &Violation) -> Option<(u64, roadwarden_types::BBox)> {
    let want = match v.kind {
        ViolationKind::NoHelmet => FrameRole::Key,
        ViolationKind::RedLight => FrameRole::At,
    };
    v.frames
        .iter()
        .find(|f| f.role == want)
        .and_then(|f| f.boxes.first().map(|b| (f.frame_index, b.bbox)))
}

/// Scores `reported` against `truth`.
pub fn score(truth: &Truth, reported: &[Violation]) -> Score {
    let fps = truth.fps as f64;
    let mut per_rule: BTreeMap<ViolationKind, RuleScore> = BTreeMap::new();
    for k in [ViolationKind::NoHelmet, ViolationKind::RedLight] {
        per_rule.insert(k, RuleScore::default());
    }
    let mut matched = vec![false; truth.violations.len()];
    let mut false_alarms = Vec::new();
    for v in reported {
        let Some((frame, bbox)) = key_of(v) else {
            false_alarms.push(FalseAlarm {
                kind: v.kind,
                track_id: v.track_id,
                time_s: -1.0,
                actor: None,
                why: "no key frame".into(),
            });
            continue;
        };
        let t = frame as f64 / fps;
        // The actor whose box (head for no-helmet, body for red-light) overlaps most in the nearest frame.
        let actor = truth
            .actors
            .iter()
            .filter_map(|a| {
                let fr = a.frames.iter().min_by_key(|fr| fr.frame.abs_diff(frame))?;
                if fr.frame.abs_diff(frame) > truth.fps as u64 / 2 {
                    return None;
                }
                let other = match v.kind {
                    ViolationKind::NoHelmet => fr.head,
                    ViolationKind::RedLight => fr.body,
                };
                let inter = other.intersection(&bbox);
                (inter > 0.0).then_some((a, inter / bbox.area().min(other.area()).max(1.0)))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(a, _)| a);
        let rule = per_rule.entry(v.kind).or_default();
        let Some(actor) = actor else {
            rule.fp += 1;
            false_alarms.push(FalseAlarm {
                kind: v.kind,
                track_id: v.track_id,
                time_s: t,
                actor: None,
                why: "overlaps no actor".into(),
            });
            continue;
        };
        let hit = truth.violations.iter().position(|tv| {
            tv.kind == v.kind
                && tv.actor == actor.id
                && t >= tv.from_s - TIME_SLACK_S
                && t <= tv.to_s + TIME_SLACK_S
        });
        match hit {
            Some(i) if !matched[i] => {
                matched[i] = true;
                rule.tp += 1;
            }
            Some(_) => {
                rule.fp += 1;
                rule.duplicates += 1;
                false_alarms.push(FalseAlarm {
                    kind: v.kind,
                    track_id: v.track_id,
                    time_s: t,
                    actor: Some(actor.id),
                    why: "offender already reported".into(),
                });
            }
            None => {
                rule.fp += 1;
                let what = match actor.kind {
                    ActorKind::Pedestrian => "a pedestrian",
                    ActorKind::Rider if actor.helmet => "a rider with a helmet",
                    ActorKind::Rider => "a rider",
                    ActorKind::Car => "a car",
                };
                false_alarms.push(FalseAlarm {
                    kind: v.kind,
                    track_id: v.track_id,
                    time_s: t,
                    actor: Some(actor.id),
                    why: format!("{what} with no such violation at that time"),
                });
            }
        }
    }
    let mut misses = Vec::new();
    for (tv, m) in truth.violations.iter().zip(&matched) {
        if !m {
            per_rule.entry(tv.kind).or_default().fn_ += 1;
            misses.push(Miss {
                kind: tv.kind,
                actor: tv.actor,
                time_s: tv.time_s,
            });
        }
    }
    for r in per_rule.values_mut() {
        let reported = (r.tp + r.fp) as f64;
        let expected = (r.tp + r.fn_) as f64;
        r.precision = if reported > 0.0 {
            r.tp as f64 / reported
        } else {
            1.0
        };
        r.recall = if expected > 0.0 {
            r.tp as f64 / expected
        } else {
            1.0
        };
    }
    Score {
        per_rule,
        misses,
        false_alarms,
    }
}
