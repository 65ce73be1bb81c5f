//! A camera's video signal: each configured head's lamp levels (imaging) judged by lamp position
//! (rules' [`LampHead`]: each lamp against its own unlit level), or the older single-box hue classifier;
//! the signal log (`analyze --signal-log`: one row per analysed frame, CSV or JSON lines); and a run of a
//! source through the signal alone (no detectors), for signal-only checks of a video.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use roadwarden_imaging::{BgrImage, LampClassifier, lamp_level};
use roadwarden_media::{CameraState, CameraSupervisor, FrameQueue, SourceConfig};
use roadwarden_rules::{CameraConfig, HeadReading, LampHead, SignalSource, SignalTracker, agree};
use roadwarden_types::{BBox, ImageView, SignalState};
use serde::Serialize;

use crate::{FrameReport, PipelineError};

/// One frame's reading of the signal head(s), before hysteresis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalReading {
    /// The heads' common state (`unknown` when they disagree).
    pub state: SignalState,
    /// Each head's reading with its lamps (no lamps for the older single-box form).
    pub heads: Vec<HeadReading>,
}

enum Heads {
    /// `[[camera.signal.head]]`: one box per lamp.
    Lamps(Vec<(Vec<BBox>, LampHead)>),
    /// The older `rois`: one box per head, read by hue.
    Hue {
        classifier: LampClassifier,
        rois: Vec<BBox>,
    },
}

/// Reads a camera's signal heads from its frames.
pub struct VideoSignal {
    heads: Heads,
}

impl VideoSignal {
    /// The reader of `config`'s signal heads; `None` unless its signal source is `video`.
    pub fn for_camera(config: &CameraConfig) -> Option<VideoSignal> {
        (config.signal.source == SignalSource::Video).then(|| VideoSignal::of_heads(config))
    }

    /// The reader of the heads `config` names, whatever its signal source.
    fn of_heads(config: &CameraConfig) -> VideoSignal {
        let heads = if config.signal.heads.is_empty() {
            Heads::Hue {
                classifier: LampClassifier::default(),
                rois: config.signal.roi_boxes(),
            }
        } else {
            let params = config.signal.lamp_params();
            Heads::Lamps(
                config
                    .signal
                    .heads
                    .iter()
                    .map(|h| {
                        let lamps = h.lamps();
                        let kinds: Vec<_> = lamps.iter().map(|(l, _)| *l).collect();
                        (
                            lamps.into_iter().map(|(_, b)| b).collect(),
                            LampHead::new(&kinds, params),
                        )
                    })
                    .collect(),
            )
        };
        VideoSignal { heads }
    }

    /// Reads the frame captured at `at`.
    pub fn read(
        &mut self,
        at: DateTime<Utc>,
        image: &ImageView<'_>,
    ) -> Result<SignalReading, PipelineError> {
        let heads = match &mut self.heads {
            Heads::Lamps(heads) => {
                let mut out = Vec::with_capacity(heads.len());
                for (boxes, head) in heads.iter_mut() {
                    let mut levels = Vec::with_capacity(boxes.len());
                    for b in boxes.iter() {
                        levels.push(lamp_level(image, b)?.level);
                    }
                    out.push(head.judge(at, &levels));
                }
                out
            }
            Heads::Hue { classifier, rois } => {
                let mut out = Vec::with_capacity(rois.len());
                for roi in rois.iter() {
                    out.push(HeadReading {
                        state: classifier.classify(image, roi)?.state,
                        lamps: Vec::new(),
                    });
                }
                out
            }
        };
        Ok(SignalReading {
            state: agree(heads.iter().map(|h| h.state)),
            heads,
        })
    }
}

fn lamp_color(lamp: roadwarden_rules::Lamp) -> [u8; 3] {
    match lamp {
        roadwarden_rules::Lamp::Red => [60, 60, 255],
        roadwarden_rules::Lamp::Amber => [0, 200, 255],
        roadwarden_rules::Lamp::Green => [80, 220, 60],
    }
}

/// Draws `config`'s signal boxes on `img` (a frame of that camera) with what one reading of that frame
/// gives: each lamp box labelled with its lamp, its level and `lit` / `off` (`red 85 lit`), beside the box
/// and inside the picture; the older single boxes labelled with their state (`signal: red`). One frame has
/// no history, so each lamp is judged against the darkest lamp of its head. Returns the reading.
pub fn draw_signal_boxes(
    img: &mut BgrImage,
    config: &CameraConfig,
) -> Result<SignalReading, PipelineError> {
    // An external-feed camera may still name its heads: they are drawn too.
    let mut reader = VideoSignal::of_heads(config);
    let reading = reader.read(Utc::now(), &img.view())?;
    let scale = (img.width().max(img.height()) as f64 / 1800.0).clamp(0.3, 0.8);
    match &reader.heads {
        Heads::Lamps(heads) => {
            for ((boxes, _), head) in heads.iter().zip(&reading.heads) {
                for (b, l) in boxes.iter().zip(&head.lamps) {
                    let label = format!(
                        "{} {:.0} {}",
                        l.lamp.as_str(),
                        l.level,
                        if l.lit { "lit" } else { "off" }
                    );
                    img.draw_box_label_inside(b, &label, lamp_color(l.lamp), scale)?;
                }
            }
        }
        Heads::Hue { rois, .. } => {
            for (roi, head) in rois.iter().zip(&reading.heads) {
                let label = format!("signal: {}", state_str(head.state));
                img.draw_box_label_inside(roi, &label, [0, 255, 255], scale)?;
            }
        }
    }
    Ok(reading)
}

/// One row of the signal log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalLogRow {
    /// The frame's index in its stream.
    pub frame: u64,
    /// Wall clock of capture.
    pub at: DateTime<Utc>,
    /// The camera's signal state after hysteresis (what the rules use; an external feed wins while
    /// fresh).
    pub state: SignalState,
    /// This frame's reading before hysteresis, with every lamp's level; `None` when the signal is not
    /// read from video.
    pub reading: Option<SignalReading>,
}

impl SignalLogRow {
    pub fn from_report(report: &FrameReport) -> SignalLogRow {
        SignalLogRow {
            frame: report.frame_index,
            at: report.at,
            state: report.signal,
            reading: report.signal_reading.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Csv,
    JsonLines,
}

/// The signal timeline of a run, one row per analysed frame: CSV when the file name ends in `.csv`
/// (`frame,at,state,reading`, then `h{i}_{lamp}_level`, `_dark`, `_lit` for every lamp of every head),
/// JSON lines otherwise (a [`SignalLogRow`] a line).
pub struct SignalLog {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    format: LogFormat,
    header: bool,
}

fn state_str(s: SignalState) -> &'static str {
    match s {
        SignalState::Red => "red",
        SignalState::Amber => "amber",
        SignalState::Green => "green",
        SignalState::Unknown => "unknown",
    }
}

impl SignalLog {
    pub fn create(path: &Path) -> Result<SignalLog, PipelineError> {
        let file = std::fs::File::create(path).map_err(|e| PipelineError::SignalLog {
            path: path.display().to_string(),
            source: e,
        })?;
        let csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        Ok(SignalLog {
            path: path.to_path_buf(),
            out: std::io::BufWriter::new(file),
            format: if csv {
                LogFormat::Csv
            } else {
                LogFormat::JsonLines
            },
            header: false,
        })
    }

    /// Appends the row of an analysed frame.
    pub fn write(&mut self, report: &FrameReport) -> Result<(), PipelineError> {
        self.write_row(&SignalLogRow::from_report(report))
    }

    pub fn write_row(&mut self, row: &SignalLogRow) -> Result<(), PipelineError> {
        let line = match self.format {
            LogFormat::JsonLines => {
                serde_json::to_string(row).map_err(|e| PipelineError::SignalLog {
                    path: self.path.display().to_string(),
                    source: std::io::Error::other(e),
                })?
            }
            LogFormat::Csv => {
                let heads = row.reading.as_ref().map(|r| &r.heads[..]).unwrap_or(&[]);
                if !self.header {
                    let mut h = String::from("frame,at,state,reading");
                    for (i, head) in heads.iter().enumerate() {
                        for l in &head.lamps {
                            let n = format!("h{i}_{}", l.lamp.as_str());
                            h.push_str(&format!(",{n}_level,{n}_dark,{n}_lit"));
                        }
                    }
                    self.io(|o| writeln!(o, "{h}"))?;
                    self.header = true;
                }
                let mut line = format!(
                    "{},{},{},{}",
                    row.frame,
                    row.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    state_str(row.state),
                    row.reading
                        .as_ref()
                        .map(|r| state_str(r.state))
                        .unwrap_or("")
                );
                for head in heads {
                    for l in &head.lamps {
                        line.push_str(&format!(",{:.1},{:.1},{}", l.level, l.dark, l.lit as u8));
                    }
                }
                line
            }
        };
        self.io(|o| writeln!(o, "{line}"))
    }

    /// Flushes the file.
    pub fn finish(mut self) -> Result<(), PipelineError> {
        self.io(|o| o.flush())
    }

    fn io(
        &mut self,
        f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
    ) -> Result<(), PipelineError> {
        f(&mut self.out).map_err(|e| PipelineError::SignalLog {
            path: self.path.display().to_string(),
            source: e,
        })
    }
}

/// Runs `source` through `config`'s video signal alone (the same reader and hysteresis as the camera's
/// pipeline, no detectors), at the camera's `analysis_fps`, until a file ends or `stop` returns true; each
/// analysed frame's row goes to `on_row`. Returns the number of analysed frames.
pub fn run_signal_only(
    config: &CameraConfig,
    mut source: SourceConfig,
    mut on_row: impl FnMut(&SignalLogRow),
    stop: impl Fn() -> bool,
) -> Result<u64, PipelineError> {
    let mut reader = VideoSignal::for_camera(config).ok_or_else(|| PipelineError::Camera {
        camera: config.id.to_string(),
        reason: "key `signal.source`: not `video`, so there is no signal to read from the frames"
            .into(),
    })?;
    let mut tracker = SignalTracker::new(
        config.signal.hysteresis_frames,
        config.signal.external_fresh_s,
    );
    source.analysis_fps = Some(config.analysis_fps);
    if !source.is_live() {
        source.max_attempts = Some(1);
    }
    let queue = Arc::new(FrameQueue::new(4));
    let sup = CameraSupervisor::start(source, queue.clone())?;
    let mut frames = 0u64;
    while !stop() {
        match queue.pop_timeout(Duration::from_millis(200)) {
            Some(frame) => {
                let at = DateTime::<Utc>::from(frame.captured_at());
                let image = frame.image();
                let [w, h] = config.frame;
                if image.width() != w || image.height() != h {
                    sup.stop();
                    return Err(PipelineError::Camera {
                        camera: config.id.to_string(),
                        reason: format!(
                            "key `frame`: configured for {w}x{h} but the source delivers {}x{}",
                            image.width(),
                            image.height()
                        ),
                    });
                }
                let reading = reader.read(at, &image)?;
                tracker.observe_video(at, reading.state);
                frames += 1;
                on_row(&SignalLogRow {
                    frame: frame.index(),
                    at,
                    state: tracker.current(),
                    reading: Some(reading),
                });
            }
            None => {
                if matches!(
                    sup.status().state,
                    CameraState::Finished | CameraState::Failed | CameraState::Stopped
                ) && queue.is_empty()
                {
                    break;
                }
            }
        }
    }
    let status = sup.status();
    sup.stop();
    if status.state == CameraState::Failed && frames == 0 {
        return Err(PipelineError::Camera {
            camera: config.id.to_string(),
            reason: status.last_error.unwrap_or_else(|| "source failed".into()),
        });
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use roadwarden_rules::{DarkSource, Lamp, LampStatus};

    fn row(frame: u64, state: SignalState) -> SignalLogRow {
        let lamp = |lamp, level: f32, lit| LampStatus {
            lamp,
            level,
            dark: 10.0,
            dark_source: DarkSource::Own,
            contrast: level - 10.0,
            lit,
        };
        SignalLogRow {
            frame,
            at: DateTime::from_timestamp_millis(1_700_000_000_000 + 250 * frame as i64).unwrap(),
            state,
            reading: Some(SignalReading {
                state,
                heads: vec![HeadReading {
                    state,
                    lamps: vec![
                        lamp(Lamp::Red, 90.0, true),
                        lamp(Lamp::Amber, 11.0, false),
                        lamp(Lamp::Green, 12.5, false),
                    ],
                }],
            }),
        }
    }

    #[test]
    fn the_signal_log_writes_csv_or_json_lines_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("signal.csv");
        let mut log = SignalLog::create(&csv).unwrap();
        log.write_row(&row(0, SignalState::Unknown)).unwrap();
        log.write_row(&row(3, SignalState::Red)).unwrap();
        log.finish().unwrap();
        let text = std::fs::read_to_string(&csv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("frame,at,state,reading,h0_red_level,h0_red_dark,h0_red_lit,")
        );
        assert_eq!(
            lines[2],
            "3,2023-11-14T22:13:20.750Z,red,red,90.0,10.0,1,11.0,10.0,0,12.5,10.0,0"
        );
        let jsonl = dir.path().join("signal.jsonl");
        let mut log = SignalLog::create(&jsonl).unwrap();
        log.write_row(&row(3, SignalState::Red)).unwrap();
        log.finish().unwrap();
        let v: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&jsonl).unwrap().trim()).unwrap();
        assert_eq!(v["state"], "red");
        assert_eq!(v["reading"]["heads"][0]["lamps"][0]["lamp"], "red");
        assert_eq!(v["reading"]["heads"][0]["lamps"][0]["lit"], true);
        let err = SignalLog::create(&dir.path().join("no/such/dir/x.csv"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("signal log") && err.contains("x.csv"), "{err}");
    }
}
