use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use roadwarden_types::CameraId;

use crate::MediaError;
use crate::QueuePolicy;
use crate::Template;
use crate::redact::{Redactor, UrlParts, redact_url, split_url};

/// Where a camera's video comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A local MP4/MKV/TS file (H.264 or H.265).
    File {
        path: PathBuf,
        replay: Replay,
        looping: bool,
    },
    /// An RTSP camera; the URL's credentials are held apart and never printed.
    Rtsp {
        url: UrlParts,
        transport: Transport,
        latency: Duration,
    },
}

impl std::fmt::Debug for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceKind::File {
                path,
                replay,
                looping,
            } => f
                .debug_struct("File")
                .field("path", path)
                .field("replay", replay)
                .field("looping", looping)
                .finish(),
            SourceKind::Rtsp {
                url,
                transport,
                latency,
            } => f
                .debug_struct("Rtsp")
                .field("url", &url_for_display(url))
                .field("transport", transport)
                .field("latency", latency)
                .finish(),
        }
    }
}

fn url_for_display(u: &UrlParts) -> String {
    match (&u.user, &u.password) {
        (Some(user), Some(_)) => redact_url(&insert_userinfo(&u.location, &format!("{user}:***"))),
        (Some(user), None) => insert_userinfo(&u.location, user),
        _ => u.location.clone(),
    }
}

fn insert_userinfo(location: &str, userinfo: &str) -> String {
    match location.find("://") {
        Some(i) => format!("{}{userinfo}@{}", &location[..i + 3], &location[i + 3..]),
        None => location.to_owned(),
    }
}

/// How a file is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// At the file's own frame rate, as a camera would deliver it.
    RealTime,
    /// As fast as decoding (and, with [`QueuePolicy::Block`], the consumer) allows.
    Fast,
}

/// RTSP lower transport. TCP by default: it survives NAT and, unlike UDP, binds nothing beyond the
/// connection (GStreamer binds UDP RTP sockets to 0.0.0.0 whatever address the server has).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// Everything one camera's supervisor needs. Build with [`SourceConfig::file`] or [`SourceConfig::rtsp`],
/// then adjust fields.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub camera: CameraId,
    pub kind: SourceKind,
    /// Decoder element(s) put in the template's `@decoder@`: `decodebin` (default: whatever is installed),
    /// `avdec_h264`, `avdec_h265`, `nvh264dec`, `vaapih264dec`, ...
    pub decoder: String,
    /// Overrides the built-in template (`pipelines/file.txt` or `pipelines/rtsp.txt`).
    pub template: Option<Template>,
    /// Frames per second handed on, spread evenly over the stream; `None` hands on every frame.
    pub analysis_fps: Option<f64>,
    /// No decoded frame for this long (a connection that is up but silent included) → rebuild.
    pub stall_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Give up (state `Failed`) after this many failed attempts in a row; `None` retries forever.
    pub max_attempts: Option<u32>,
    pub queue_policy: QueuePolicy,
    /// Length of the evidence recorder's pre-event window; `None` keeps no encoded video.
    pub pre_event: Option<Duration>,
    /// When the recording started (a file's `--start-time`): frames are dated from it by their position.
    /// `None`: a file's container creation time when it carries one, else the moment analysis starts;
    /// a live source's frames are dated by the running time from the arrival of its first frame.
    pub recording_start: Option<SystemTime>,
}

impl SourceConfig {
    /// A file, replayed as fast as possible, every frame kept (back-pressure instead of drops).
    pub fn file(camera: impl Into<CameraId>, path: impl Into<PathBuf>) -> SourceConfig {
        SourceConfig {
            camera: camera.into(),
            kind: SourceKind::File {
                path: path.into(),
                replay: Replay::Fast,
                looping: false,
            },
            decoder: "decodebin".into(),
            template: None,
            analysis_fps: None,
            stall_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_attempts: None,
            queue_policy: QueuePolicy::Block,
            pre_event: Some(Duration::from_secs(5)),
            recording_start: None,
        }
    }

    /// An RTSP camera over TCP with 200 ms jitter-buffer latency; drops the oldest frame when inference lags.
    pub fn rtsp(camera: impl Into<CameraId>, url: &str) -> Result<SourceConfig, MediaError> {
        let parts = split_url(url);
        if !parts.location.starts_with("rtsp://") && !parts.location.starts_with("rtsps://") {
            return Err(MediaError::Url {
                url: redact_url(url),
                reason: "expected rtsp:// or rtsps://".into(),
            });
        }
        Ok(SourceConfig {
            camera: camera.into(),
            kind: SourceKind::Rtsp {
                url: parts,
                transport: Transport::Tcp,
                latency: Duration::from_millis(200),
            },
            decoder: "decodebin".into(),
            template: None,
            analysis_fps: None,
            stall_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_attempts: None,
            queue_policy: QueuePolicy::DropOldest,
            pre_event: Some(Duration::from_secs(5)),
            recording_start: None,
        })
    }

    /// `FILE` or `rtsp://...`, as typed on a command line.
    pub fn from_arg(camera: impl Into<CameraId>, source: &str) -> Result<SourceConfig, MediaError> {
        if source.contains("://") {
            SourceConfig::rtsp(camera, source)
        } else {
            Ok(SourceConfig::file(camera, source))
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self.kind, SourceKind::Rtsp { .. })
    }

    /// Where the source is, fit for logs: the file path or the URL without its password.
    pub fn describe(&self) -> String {
        match &self.kind {
            SourceKind::File { path, .. } => path.display().to_string(),
            SourceKind::Rtsp { url, .. } => url_for_display(url),
        }
    }

    pub(crate) fn redactor(&self) -> Redactor {
        match &self.kind {
            SourceKind::Rtsp { url, .. } => Redactor::new(url.password.as_deref()),
            _ => Redactor::default(),
        }
    }

    pub(crate) fn wall_anchored(&self) -> bool {
        match &self.kind {
            SourceKind::File { replay, .. } => *replay == Replay::RealTime,
            SourceKind::Rtsp { .. } => true,
        }
    }

    /// The pipeline text, with no credentials in it.
    pub(crate) fn pipeline_text(&self) -> Result<String, MediaError> {
        let decoder = self.decoder.trim();
        let first = decoder.split_whitespace().next().unwrap_or("");
        if gst::ElementFactory::find(first).is_none() {
            return Err(MediaError::MissingDecoder(first.to_owned()));
        }
        match &self.kind {
            SourceKind::File { path, replay, .. } => {
                let template = self.template.clone().unwrap_or_else(Template::file);
                let sync = if *replay == Replay::RealTime {
                    "true"
                } else {
                    "false"
                };
                template.render(&[
                    ("location", &path.to_string_lossy()),
                    ("decoder", decoder),
                    ("sync", sync),
                ])
            }
            SourceKind::Rtsp {
                url,
                transport,
                latency,
            } => {
                let template = self.template.clone().unwrap_or_else(Template::rtsp);
                let protocols = match transport {
                    Transport::Tcp => "tcp",
                    Transport::Udp => "udp",
                };
                template.render(&[
                    ("location", &url.location),
                    ("protocols", protocols),
                    ("latency_ms", &latency.as_millis().to_string()),
                    ("decoder", decoder),
                ])
            }
        }
    }
}

/// What to check for an element's error, by its kind: one line, for the person who must fix it.
pub(crate) fn hint(err: &gst::glib::Error, live: bool) -> Option<&'static str> {
    use gst::{CoreError, ResourceError, StreamError};
    if let Some(e) = err.kind::<StreamError>() {
        return Some(match e {
            StreamError::TypeNotFound | StreamError::WrongType => {
                "not a video GStreamer can read here; check that the file is an MP4, MKV or TS with H.264/H.265"
            }
            StreamError::CodecNotFound | StreamError::Decode => {
                "the video cannot be decoded: check `source.decoder` and the installed GStreamer plugins"
            }
            StreamError::Demux | StreamError::Failed if !live => {
                "the file is truncated or corrupt; copy it again or re-export it"
            }
            StreamError::Demux | StreamError::Failed => {
                "the camera's stream broke off or is malformed; check the camera and the network"
            }
            _ => return None,
        });
    }
    if let Some(e) = err.kind::<ResourceError>() {
        return Some(match e {
            ResourceError::NotFound | ResourceError::OpenRead if live => {
                "cannot reach the camera: check the URL, the network and the credentials"
            }
            ResourceError::NotFound | ResourceError::OpenRead => {
                "cannot open the file: check the path and its permissions"
            }
            ResourceError::NotAuthorized => "the camera refused the credentials in the URL",
            ResourceError::Read if !live => {
                "cannot read the file; it may be truncated or on a failing disk"
            }
            ResourceError::Read | ResourceError::Settings => {
                "the camera's stream cannot be read: check the camera, the URL and `protocols`"
            }
            _ => return None,
        });
    }
    if let Some(CoreError::MissingPlugin) = err.kind::<CoreError>() {
        return Some("a GStreamer plugin is missing: install gst-plugins-good, -bad and gst-libav");
    }
    None
}

/// MPEG-TS packet sizes: plain (188 bytes) and M2TS / BDAV (a 4-byte time code first, 192 bytes).
const TS_PACKETS: [(usize, usize); 2] = [(188, 0), (192, 4)];

/// For an MPEG transport stream (its sync bytes at every packet start), whether the file was cut: a
/// transport stream holds whole packets, so a size that is not a whole number of them means its end is
/// missing (GStreamer reads such a file to a clean end of stream). `None` for other files or whole ones.
pub(crate) fn truncated_transport_stream(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 192 * 3];
    let mut f = std::fs::File::open(path).ok()?;
    let size = f.metadata().ok()?.len();
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let (packet, offset) = TS_PACKETS.into_iter().find(|&(packet, offset)| {
        got > offset + 2 * packet && (0..3).all(|i| head[offset + i * packet] == 0x47)
    })?;
    let packet = packet as u64;
    let whole = size / packet;
    let extra = size % packet;
    (extra != 0).then(|| {
        format!(
            "truncated or corrupt: an MPEG-TS file of {whole} whole {packet}-byte packets and {extra} \
             bytes of a cut one (sync at byte {offset}); its end is missing, copy it again"
        )
    })
}
