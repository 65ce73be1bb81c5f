//! A camera's signal state: video readings with hysteresis, an external controller feed that wins while
//! fresh, and the timeline of changes.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};
use roadwarden_types::{SignalChange, SignalState};

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
