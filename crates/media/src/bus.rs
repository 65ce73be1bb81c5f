//! Waiting on a pipeline's bus for its end: the one loop every finite pipeline here (MP4 writer, clip muxer,
//! simulated camera's feeder) uses, and the `Duration` ↔ `gst::ClockTime` conversions.

use std::time::{Duration, Instant};

/// What ended a pipeline, as its bus reported it.
#[derive(Debug)]
pub(crate) enum BusEnd {
    /// End of stream: every sink has its data.
    Eos,
    /// An element failed; the text is GStreamer's message (never its source path).
    Error(String),
}

/// The next end-of-stream or error message on `bus` within `within`, or `None` if there was none by then.
pub(crate) fn next_end(bus: &gst::Bus, within: Duration) -> Option<BusEnd> {
    let msg = bus.timed_pop_filtered(
        clock(within),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    )?;
    match msg.view() {
        gst::MessageView::Eos(_) => Some(BusEnd::Eos),
        gst::MessageView::Error(e) => Some(BusEnd::Error(e.error().to_string())),
        _ => None,
    }
}

/// Waits at most `within` for end of stream. `Err` holds what to say: the element's error, or that `what`
/// did not finish in time.
pub(crate) fn wait_for_eos(bus: &gst::Bus, within: Duration, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{what} did not finish within {} s",
                within.as_secs()
            ));
        }
        match next_end(bus, left) {
            Some(BusEnd::Eos) => return Ok(()),
            Some(BusEnd::Error(e)) => return Err(e),
            None => {}
        }
    }
}

/// A GStreamer time as a `Duration`.
pub(crate) fn dur(t: gst::ClockTime) -> Duration {
    Duration::from_nanos(t.nseconds())
}

/// A `Duration` as a GStreamer time (saturating at `u64::MAX` ns, some 584 years).
pub(crate) fn clock(d: Duration) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
