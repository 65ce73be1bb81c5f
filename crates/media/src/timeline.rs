use std::time::{Duration, Instant, SystemTime};

/// Per-camera clock: maps each session's PTS onto one timeline that never goes backwards, and the
/// timeline onto the recording's time: timeline zero is the recording's start (a file's given start time
/// or its container's creation time; otherwise the supervisor's start on the machine's clock, which for a
/// live source is the running time mapped to the stream's start).
pub(crate) struct Timeline {
    pub(crate) epoch_wall: SystemTime,
    /// The recording's start was given (`--start-time`): a container's creation time does not move it.
    start_given: bool,
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
    pub(crate) fn new(wall_anchored: bool, start: Option<SystemTime>) -> Timeline {
        Timeline {
            epoch_wall: start.unwrap_or_else(SystemTime::now),
            start_given: start.is_some(),
            epoch: Instant::now(),
            anchor: None,
            last_frame: None,
            last_any: None,
            wall_anchored,
        }
    }

    /// The container says when the recording started: timeline zero is then, unless a start time was
    /// given or a frame was already placed. Returns whether it was taken.
    pub(crate) fn container_start(&mut self, at: SystemTime) -> bool {
        if self.start_given || self.last_any.is_some() {
            return false;
        }
        self.epoch_wall = at;
        self.start_given = true;
        true
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recording_start_places_the_frames_and_a_container_time_comes_second() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_550_400);
        let mut tl = Timeline::new(false, Some(start));
        assert!(
            !tl.container_start(SystemTime::UNIX_EPOCH),
            "given start wins"
        );
        let t = tl.frame(Some(Duration::from_millis(500)));
        assert_eq!(tl.wall(t), start);
        let t = tl.frame(Some(Duration::from_millis(900)));
        assert_eq!(tl.wall(t), start + Duration::from_millis(400));

        let mut tl = Timeline::new(false, None);
        assert!(tl.container_start(start), "no start given: the container's");
        let t = tl.frame(Some(Duration::ZERO));
        assert_eq!(tl.wall(t), start);
        assert!(
            !tl.container_start(SystemTime::UNIX_EPOCH),
            "too late once frames are placed"
        );
    }
}
