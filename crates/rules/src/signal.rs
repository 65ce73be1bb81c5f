//! A camera's signal state: video readings with hysteresis, an external controller feed that wins while
//! fresh, and the timeline of changes; and which lamp of a signal head is lit, judged by lamp position
//! ([`LampHead`]): each lamp's brightness against that lamp's own unlit level.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};
use roadwarden_types::{SignalChange, SignalState};
use serde::{Deserialize, Serialize};

/// How many changes the timeline keeps.
const TIMELINE_LEN: usize = 256;

/// The signal state of one camera.
#[derive(Debug, Clone)]
pub struct SignalTracker {
    hysteresis: u32,
    fresh: TimeDelta,
    /// The debounced video state.
    video: SignalState,
    candidate: Option<(SignalState, u32)>,
    external: Option<(DateTime<Utc>, SignalState)>,
    /// The effective state's changes, oldest first.
    timeline: VecDeque<SignalChange>,
}

impl SignalTracker {
    /// `hysteresis`: consecutive agreeing video readings a change needs (at least 1); `external_fresh`: how
    /// long an external reading wins.
    pub fn new(hysteresis: u32, external_fresh_s: f64) -> SignalTracker {
        SignalTracker {
            hysteresis: hysteresis.max(1),
            fresh: TimeDelta::milliseconds((external_fresh_s * 1000.0).round() as i64),
            video: SignalState::Unknown,
            candidate: None,
            external: None,
            timeline: VecDeque::new(),
        }
    }

    /// One reading of the signal head from a frame captured at `at`.
    pub fn observe_video(&mut self, at: DateTime<Utc>, reading: SignalState) {
        if reading == self.video {
            self.candidate = None;
        } else {
            let n = match self.candidate {
                Some((s, n)) if s == reading => n + 1,
                _ => 1,
            };
            if n >= self.hysteresis {
                self.video = reading;
                self.candidate = None;
            } else {
                self.candidate = Some((reading, n));
            }
        }
        self.tick(at);
    }

    /// A controller's report; it wins over video for `external_fresh_s`.
    pub fn observe_external(&mut self, at: DateTime<Utc>, state: SignalState) {
        if self.external.is_none_or(|(t, _)| at >= t) {
            self.external = Some((at, state));
        }
        self.tick(at);
    }

    /// The effective state at `at`: a fresh external reading, else the debounced video state.
    pub fn state_at(&self, at: DateTime<Utc>) -> SignalState {
        match self.external {
            Some((t, s)) if at >= t && at - t <= self.fresh => s,
            _ => self.video,
        }
    }

    /// Records the effective state at `at` in the timeline (every observation calls it; call it once a
    /// frame when no reading came, so a stale external feed shows).
    pub fn tick(&mut self, at: DateTime<Utc>) {
        let s = self.state_at(at);
        if self.timeline.back().is_none_or(|c| c.state != s) {
            self.timeline.push_back(SignalChange { at, state: s });
            if self.timeline.len() > TIMELINE_LEN {
                self.timeline.pop_front();
            }
        }
    }

    /// The current effective state (as of the last tick).
    pub fn current(&self) -> SignalState {
        self.timeline.back().map(|c| c.state).unwrap_or_default()
    }

    /// Since when the signal has shown `current()` without a break.
    pub fn current_since(&self) -> Option<DateTime<Utc>> {
        self.timeline.back().map(|c| c.at)
    }

    /// Whether, at `at`, the signal is red and has been red for at least `grace`.
    pub fn red_for(&self, at: DateTime<Utc>, grace: TimeDelta) -> bool {
        // The last change at or before `at`.
        match self.timeline.iter().rev().find(|c| c.at <= at) {
            Some(c) => c.state == SignalState::Red && at - c.at >= grace,
            None => false,
        }
    }

    /// The changes between `from` and `to`, plus the one in force at `from`.
    pub fn timeline_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<SignalChange> {
        let start = self
            .timeline
            .iter()
            .rposition(|c| c.at <= from)
            .unwrap_or(0);
        self.timeline
            .iter()
            .skip(start)
            .filter(|c| c.at <= to)
            .copied()
            .collect()
    }

    pub fn timeline(&self) -> impl Iterator<Item = &SignalChange> {
        self.timeline.iter()
    }
}

/// A lamp of a signal head, by its position (its colour is known from where it sits, not from hue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lamp {
    Red,
    Amber,
    Green,
}

impl Lamp {
    pub const ALL: [Lamp; 3] = [Lamp::Red, Lamp::Amber, Lamp::Green];

    /// The state the head shows when this lamp alone is lit.
    pub fn state(self) -> SignalState {
        match self {
            Lamp::Red => SignalState::Red,
            Lamp::Amber => SignalState::Amber,
            Lamp::Green => SignalState::Green,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lamp::Red => "red",
            Lamp::Amber => "amber",
            Lamp::Green => "green",
        }
    }
}

/// How [`LampHead`] decides which lamp is lit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LampParams {
    /// A lamp is lit when its level (the imaging crate's lamp level: mean colourfulness of its box,
    /// 0..255) exceeds its own unlit level by at least this much ...
    pub min_contrast: f32,
    /// ... and by this factor more than any other lamp of the head exceeds its own.
    pub dominance: f32,
}

impl Default for LampParams {
    fn default() -> Self {
        LampParams {
            min_contrast: 12.0,
            dominance: 2.0,
        }
    }
}

/// Unlit samples a lamp keeps (at most one a [`DARK_EVERY_MS`]): its unlit level is their median, so
/// about 30 s of unlit time, robust to a few seconds of occlusion or glare.
const DARK_SAMPLES: usize = 31;
/// A lamp's own unlit level is used once it has this many samples.
const DARK_MIN_SAMPLES: usize = 3;
const DARK_EVERY_MS: i64 = 1000;

/// Where a lamp's unlit level in a reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DarkSource {
    /// The median of its own levels in frames where another lamp of the head was lit.
    Own,
    /// The lowest level it has shown so far: it has not been seen unlit beside a lit lamp yet, but its
    /// levels have spanned at least `min_contrast`, so it has been both lit and unlit.
    Lowest,
    /// The darkest lamp of the head in this frame: its levels have not changed yet (the first frames of
    /// a camera, or a lamp that has kept its state since).
    Sibling,
}

/// One lamp's part of one reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LampStatus {
    pub lamp: Lamp,
    /// Its level in this frame (0..255).
    pub level: f32,
    /// Its unlit level, and where that came from.
    pub dark: f32,
    pub dark_source: DarkSource,
    /// `level - dark`.
    pub contrast: f32,
    pub lit: bool,
}

/// One reading of one signal head.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadReading {
    pub state: SignalState,
    pub lamps: Vec<LampStatus>,
}

#[derive(Debug, Clone)]
struct LampTrack {
    lamp: Lamp,
    dark: VecDeque<f32>,
    last_dark: Option<DateTime<Utc>>,
    lowest: f32,
    highest: f32,
}

impl LampTrack {
    fn own_dark(&self) -> Option<f32> {
        if self.dark.len() < DARK_MIN_SAMPLES {
            return None;
        }
        let mut v: Vec<f32> = self.dark.iter().copied().collect();
        v.sort_by(f32::total_cmp);
        Some(v[v.len() / 2])
    }

    fn add_dark(&mut self, at: DateTime<Utc>, level: f32) {
        if self
            .last_dark
            .is_some_and(|t| at >= t && at - t < TimeDelta::milliseconds(DARK_EVERY_MS))
        {
            return;
        }
        self.last_dark = Some(at);
        self.dark.push_back(level);
        if self.dark.len() > DARK_SAMPLES {
            self.dark.pop_front();
        }
    }
}

/// Which lamp of one signal head is lit, frame by frame: each lamp's level is compared with that lamp's
/// own unlit level (learnt from the frames in which another lamp of the head was lit), never with the
/// brightest pixel around it, so a bright sky or wall behind the head, or a washed-out lamp in daylight,
/// keeps its reading. The lamp's position gives the colour: an orange amber lamp is amber. No lamp
/// clearly lit (a dark head, two lamps alike) reads `unknown`.
#[derive(Debug, Clone)]
pub struct LampHead {
    params: LampParams,
    lamps: Vec<LampTrack>,
}

impl LampHead {
    /// A head with these lamps (at least two; the order is the order of the levels given to
    /// [`LampHead::judge`]).
    pub fn new(lamps: &[Lamp], params: LampParams) -> LampHead {
        LampHead {
            params,
            lamps: lamps
                .iter()
                .map(|&lamp| LampTrack {
                    lamp,
                    dark: VecDeque::with_capacity(DARK_SAMPLES + 1),
                    last_dark: None,
                    lowest: f32::INFINITY,
                    highest: f32::NEG_INFINITY,
                })
                .collect(),
        }
    }

    pub fn lamps(&self) -> impl Iterator<Item = Lamp> + '_ {
        self.lamps.iter().map(|l| l.lamp)
    }

    /// Judges one frame: `levels[i]` is the level of lamp `i` (as given to [`LampHead::new`]) in the
    /// frame captured at `at`. Missing or extra levels read `unknown`.
    pub fn judge(&mut self, at: DateTime<Utc>, levels: &[f32]) -> HeadReading {
        if levels.len() != self.lamps.len() || levels.len() < 2 {
            return HeadReading {
                state: SignalState::Unknown,
                lamps: Vec::new(),
            };
        }
        for (t, &l) in self.lamps.iter_mut().zip(levels) {
            t.lowest = t.lowest.min(l);
            t.highest = t.highest.max(l);
        }
        let darkest = levels.iter().copied().fold(f32::INFINITY, f32::min);
        let mut lamps: Vec<LampStatus> = self
            .lamps
            .iter()
            .zip(levels)
            .map(|(t, &level)| {
                let (dark, dark_source) = match t.own_dark() {
                    Some(d) => (d, DarkSource::Own),
                    None if t.highest - t.lowest >= self.params.min_contrast => {
                        (t.lowest, DarkSource::Lowest)
                    }
                    None => (darkest, DarkSource::Sibling),
                };
                LampStatus {
                    lamp: t.lamp,
                    level,
                    dark,
                    dark_source,
                    contrast: level - dark,
                    lit: false,
                }
            })
            .collect();
        let mut order: Vec<usize> = (0..lamps.len()).collect();
        order.sort_by(|&a, &b| lamps[b].contrast.total_cmp(&lamps[a].contrast));
        let (best, second) = (order[0], order[1]);
        let c = lamps[best].contrast;
        let winner = (c >= self.params.min_contrast
            && c >= self.params.dominance * lamps[second].contrast.max(0.0))
        .then_some(best);
        let state = match winner {
            Some(i) => {
                lamps[i].lit = true;
                // The others are unlit now: their levels teach them their own unlit level.
                for (j, t) in self.lamps.iter_mut().enumerate() {
                    if j != i {
                        t.add_dark(at, levels[j]);
                    }
                }
                lamps[i].lamp.state()
            }
            None => SignalState::Unknown,
        };
        HeadReading { state, lamps }
    }
}

/// The state of several heads that show the same signal: their common state, or `unknown` when they
/// disagree (or there is none).
pub fn agree(states: impl IntoIterator<Item = SignalState>) -> SignalState {
    let mut out = None;
    for s in states {
        match out {
            None => out = Some(s),
            Some(prev) if prev != s => return SignalState::Unknown,
            _ => {}
        }
    }
    out.unwrap_or(SignalState::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
    }

    use SignalState::*;

    #[test]
    fn one_frame_flicker_changes_nothing() {
        let mut s = SignalTracker::new(2, 2.0);
        for (i, r) in [Green, Green, Red, Green, Green, Amber, Green]
            .into_iter()
            .enumerate()
        {
            s.observe_video(t(i as i64 * 200), r);
        }
        assert_eq!(s.current(), Green);
        let states: Vec<_> = s.timeline().map(|c| c.state).collect();
        assert_eq!(states, vec![Unknown, Green]);
    }

    #[test]
    fn a_change_needs_k_consecutive_frames() {
        let mut s = SignalTracker::new(3, 2.0);
        for i in 0..3 {
            s.observe_video(t(i * 200), Green);
        }
        assert_eq!(s.current(), Green);
        s.observe_video(t(600), Red);
        s.observe_video(t(800), Red);
        assert_eq!(s.current(), Green, "two frames are not enough with K = 3");
        s.observe_video(t(1000), Red);
        assert_eq!(s.current(), Red);
        assert_eq!(s.current_since(), Some(t(1000)));
        assert!(!s.red_for(t(1200), TimeDelta::milliseconds(500)));
        assert!(s.red_for(t(1500), TimeDelta::milliseconds(500)));
    }

    #[test]
    fn external_feed_wins_while_fresh_then_falls_back() {
        let mut s = SignalTracker::new(1, 1.0);
        s.observe_video(t(0), Green);
        s.observe_external(t(100), Red);
        s.observe_video(t(200), Green);
        assert_eq!(s.current(), Red);
        s.observe_video(t(1200), Green);
        assert_eq!(
            s.current(),
            Green,
            "a stale controller reading no longer wins"
        );
        let states: Vec<_> = s.timeline().map(|c| c.state).collect();
        assert_eq!(states, vec![Green, Red, Green]);
    }

    #[test]
    fn unknown_is_never_red() {
        let mut s = SignalTracker::new(1, 1.0);
        for i in 0..20 {
            s.observe_video(t(i * 200), Unknown);
        }
        assert!(!s.red_for(t(4000), TimeDelta::zero()));
    }
}

#[cfg(test)]
mod lamp_tests {
    use super::*;
    use SignalState::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
    }

    fn head() -> LampHead {
        LampHead::new(&Lamp::ALL, LampParams::default())
    }

    #[test]
    fn the_lit_lamp_stands_out_from_its_siblings_on_the_first_frame() {
        let mut h = head();
        let r = h.judge(t(0), &[150.0, 12.0, 8.0]);
        assert_eq!(r.state, Red, "{r:?}");
        assert!(r.lamps[0].lit && r.lamps[0].dark_source == DarkSource::Sibling);
        assert_eq!(h.judge(t(1000), &[10.0, 11.0, 170.0]).state, Green);
        // Two lamps alike, or none bright: unknown.
        assert_eq!(head().judge(t(0), &[150.0, 145.0, 10.0]).state, Unknown);
        assert_eq!(head().judge(t(0), &[10.0, 12.0, 11.0]).state, Unknown);
    }

    /// Failure mode 1 (issue 13): a bright background behind the head. The red lamp's box holds sky in
    /// its corners, so its unlit level is well above the others'; judged against its own unlit level it
    /// reads red when lit and not red when dark, however washed out the lit lamp is.
    #[test]
    fn a_bright_background_does_not_drop_red_to_unknown() {
        let mut h = head();
        let mut wrong = Vec::new();
        // Red (washed out), green, red, green ... 10 s each at 5 fps: unlit, red's box is at 45 (sky),
        // amber's and green's at 15; lit, red adds 30 and green 60.
        for i in 0..200 {
            let red = (i / 50) % 2 == 0;
            let levels = if red {
                [75.0, 15.0, 16.0]
            } else {
                [45.0, 15.0, 75.0]
            };
            let r = h.judge(t(i * 200), &levels);
            let want = if red { Red } else { Green };
            if r.state != want {
                wrong.push((i, r));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
        // Extra glare on the whole head for a moment changes nothing.
        assert_eq!(h.judge(t(40_000), &[85.0, 25.0, 26.0]).state, Red);
        let r = h.judge(t(40_200), &[75.0, 15.0, 16.0]);
        assert_eq!(r.lamps[0].dark_source, DarkSource::Own);
        assert!((r.lamps[0].dark - 45.0).abs() < 1.0, "{r:?}");
    }

    /// Failure mode 2 (issue 13): an amber lamp whose light is orange (hue 11, which a hue classifier
    /// reads as red) is amber, because it is the amber lamp that is lit.
    #[test]
    fn amber_is_amber_by_position_not_red() {
        let mut h = head();
        for i in 0..20 {
            h.judge(t(i * 200), &[10.0, 12.0, 160.0]);
        }
        let r = h.judge(t(4000), &[11.0, 170.0, 13.0]);
        assert_eq!(r.state, Amber, "{r:?}");
        assert!(r.lamps[1].lit && !r.lamps[0].lit);
    }

    #[test]
    fn a_short_occlusion_does_not_move_the_unlit_level() {
        let mut h = head();
        for i in 0..40 {
            let levels = if i % 20 < 10 {
                [150.0, 20.0, 20.0]
            } else {
                [20.0, 20.0, 150.0]
            };
            h.judge(t(i * 1000), &levels);
        }
        // A lorry in front of the head for 3 s: everything dark.
        for i in 40..43 {
            assert_eq!(h.judge(t(i * 1000), &[2.0, 2.0, 2.0]).state, Unknown);
        }
        let r = h.judge(t(43_000), &[150.0, 20.0, 20.0]);
        assert_eq!(r.state, Red);
        assert!((r.lamps[1].dark - 20.0).abs() < 1.0, "{r:?}");
    }

    #[test]
    fn heads_must_agree() {
        assert_eq!(agree([Red, Red]), Red);
        assert_eq!(agree([Red, Green]), Unknown);
        assert_eq!(agree([]), Unknown);
    }
}
