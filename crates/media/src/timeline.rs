use std::time::{Duration, Instant, SystemTime};

/// Per-camera clock: maps each session's PTS onto one timeline that never goes backwards.
pub(crate) struct Timeline {
    pub(crate) epoch_wall: SystemTime,
    epoch: Instant,
    /// Anchor of the current session: (pts, timeline) of its first buffer.
    anchor: Option<(Duration, Duration)>,
    last_frame: Option<Duration>,
    last_any: Option<Duration>,
    /// Live sources and real-time replay anchor sessions at the wall clock; fast replay continues on.
    wall_anchored: bool,
}

const TICK: Duration = Duration::from_micros(1);

impl Timeline {
    pub(crate) fn new(wall_anchored: bool) -> Timeline {
        Timeline {
            epoch_wall: SystemTime::now(),
            epoch: Instant::now(),
            anchor: None,
            last_frame: None,
            last_any: None,
            wall_anchored,
        }
    }

    /// A new session starts: its PTS will be re-anchored at its first buffer.
    pub(crate) fn new_session(&mut self) {
        self.anchor = None;
    }

    fn map(&mut self, pts: Option<Duration>) -> Duration {
        let floor = self.last_any.map(|l| l + TICK).unwrap_or(Duration::ZERO);
        let now = self.epoch.elapsed();
        let t = match (pts, self.anchor) {
            (Some(p), Some((ap, at))) => {
                if p >= ap {
                    at + (p - ap)
                } else {
                    at.saturating_sub(ap - p)
                }
            }
            (Some(p), None) => {
                let at = if self.wall_anchored {
                    now.max(floor)
                } else {
                    // Continue right after what came before, one nominal frame later.
                    self.last_any
                        .map(|l| l + Duration::from_millis(40))
                        .unwrap_or(Duration::ZERO)
                };
                self.anchor = Some((p, at));
                at
            }
            (None, _) => {
                if self.wall_anchored {
                    now.max(floor)
                } else {
                    floor
                }
            }
        };
        self.last_any = Some(self.last_any.map_or(t, |l| l.max(t)));
        t
    }

    /// Timeline position of a decoded frame: strictly increasing.
    pub(crate) fn frame(&mut self, pts: Option<Duration>) -> Duration {
        let t = self.map(pts);
        let t = match self.last_frame {
            Some(l) if t <= l => l + TICK,
            _ => t,
        };
        self.last_frame = Some(t);
        self.last_any = Some(self.last_any.map_or(t, |l| l.max(t)));
        t
    }

    /// Timeline position of an encoded access unit (same mapping as frames, not clamped).
    pub(crate) fn access_unit(&mut self, pts: Option<Duration>) -> Duration {
        self.map(pts)
    }

    pub(crate) fn wall(&self, t: Duration) -> SystemTime {
        self.epoch_wall + t
    }
}
