//! Synthetic test scenes from real material: a real background still, a signal head whose lamps switch
//! on a schedule, and real rider crops cut from labelled photos (riders-roboflow: class 4 = motorcycle
//! with its rider, heads 1 = no helmet, 2 = helmet) moving along straight paths that do or do not cross
//! the stop line on red. Writes an H.264 MP4 and the ground truth: every expected violation with its type,
//! time and position, and every actor's boxes frame by frame. Seeded: the same scenario gives the same
//! crops, paths and pixels.

use std::path::{Path, PathBuf};

use roadwarden_imaging::BgrImage;
use roadwarden_media::Mp4Writer;
use roadwarden_rules::{Point, Side, StopLine};
use roadwarden_types::rng::SplitMix64;
use roadwarden_types::{BBox, SignalState, ViolationKind};
use serde::{Deserialize, Serialize};

use crate::PipelineError;

/// One signal phase: from `at_s` on, the head shows `state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub at_s: f64,
    pub state: SignalState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A rider on a motorcycle or scooter (a class-4 crop).
    Rider,
    /// A person on foot: head and shoulders only, no two-wheeler.
    Pedestrian,
    /// A car cut from a real picture (`image`, `image_box`), `height_px` tall in the scene.
    Car,
}

/// Someone moving through the scene along +x (or -x with a negative speed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSpec {
    pub kind: ActorKind,
    pub helmet: bool,
    pub enter_s: f64,
    /// Image y of the bottom of the actor's box (where it meets the road).
    pub lane_y: f32,
    /// Height of the actor's head in the scene, pixels: the crop is scaled to it.
    pub head_px: f32,
    /// Bottom-centre x at `enter_s`.
    pub from_x: f32,
    pub speed_px_s: f32,
    /// Stops when its bottom centre reaches this x (a rider who waits at the line).
    #[serde(default)]
    pub stop_x: Option<f32>,
    /// Moves on again at this time (after a stop).
    #[serde(default)]
    pub go_s: Option<f64>,
    /// After `go_s`, moves at this speed instead of `speed_px_s` (a rider creeping through a queue).
    #[serde(default)]
    pub creep_px_s: Option<f32>,
    /// A car's picture (relative to the scenario file) ...
    #[serde(default)]
    pub image: Option<PathBuf>,
    /// ... the car's box in it `[x1, y1, x2, y2]` ...
    #[serde(default)]
    pub image_box: Option<[f32; 4]>,
    /// ... and its height in the scene, pixels (`head_px` is not used for cars).
    #[serde(default)]
    pub height_px: Option<f32>,
}

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub duration_s: f64,
    /// Background still, relative to the scenario file.
    pub background: PathBuf,
    /// The labelled rider photos (riders-roboflow layout: `train|valid/images|labels`), relative to the
    /// scenario file.
    pub crops: PathBuf,
    /// The images crops may be cut from: a split list (one path per line relative to `crops`, `#`
    /// comments), relative to the scenario file. The scenes name `models/splits/riders-roboflow-train.txt`
    /// so no picture of the held-out test split (or the validation split) ever appears in a scene that
    /// rules or thresholds are tuned on. Without it every labelled image is a candidate.
    #[serde(default)]
    pub crops_list: Option<PathBuf>,
    /// Drawn on the road, pixels.
    pub stop_line: [[f32; 2]; 2],
    /// Signal head box `[x1, y1, x2, y2]`; lamps red, amber, green from the top.
    pub signal_head: [f32; 4],
    /// How the signal head and what is behind it look (default: a plain dark head, full-colour lamps).
    #[serde(default)]
    pub signal_style: SignalStyle,
    /// Grace time the truth assumes for red-light violations.
    #[serde(default = "default_grace")]
    pub grace_s: f64,
    #[serde(rename = "phase")]
    pub phases: Vec<Phase>,
    #[serde(rename = "actor")]
    pub actors: Vec<ActorSpec>,
}

fn default_grace() -> f64 {
    0.5
}

/// The look of the drawn signal head, to reproduce what real cameras show (issue 13): a bright sky or
/// wall behind the head, sun glare, lamps washed out by daylight, an orange amber lamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignalStyle {
    /// A bright panel behind the head (B, G, R), e.g. sky or a white wall, reaching `backdrop_px` past
    /// the head on every side.
    pub backdrop: Option<[u8; 3]>,
    pub backdrop_px: f32,
    /// Lit lamps' colours are scaled by this (daylight washes lamps out: 0.5 is a lamp at half its
    /// night brightness), in (0, 1].
    pub lamp_gain: f32,
    /// The lit amber lamp's colour (B, G, R); default `[0, 190, 255]` (hue 22). `[0, 95, 255]` is the
    /// orange amber (hue 11) real cameras show.
    pub amber: Option<[u8; 3]>,
    /// Sun glare: a soft white disc `[x, y, radius]` that sways sideways by its radius every 7 s.
    pub glare: Option<[f32; 3]>,
}

impl Default for SignalStyle {
    fn default() -> Self {
        SignalStyle {
            backdrop: None,
            backdrop_px: 40.0,
            lamp_gain: 1.0,
            amber: None,
            glare: None,
        }
    }
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, PipelineError> {
        let err = |reason: String| PipelineError::Scenario {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut s: Scenario = toml::from_str(&text).map_err(|e| err(e.message().to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut s.background, &mut s.crops]
            .into_iter()
            .chain(s.crops_list.as_mut())
            .chain(s.actors.iter_mut().filter_map(|a| a.image.as_mut()))
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        for (i, a) in s.actors.iter().enumerate() {
            if a.kind == ActorKind::Car
                && (a.image.is_none() || a.image_box.is_none() || a.height_px.is_none())
            {
                return Err(err(format!(
                    "actor {}: a car needs `image`, `image_box` and `height_px`",
                    i + 1
                )));
            }
        }
        if s.width % 2 == 1 || s.height % 2 == 1 || s.fps == 0 || s.duration_s <= 0.0 {
            return Err(err(
                "width and height must be even, fps and duration_s positive".into(),
            ));
        }
        if s.phases.is_empty() {
            return Err(err("needs at least one [[phase]]".into()));
        }
        let g = s.signal_style.lamp_gain;
        if !(g.is_finite() && g > 0.0 && g <= 1.0) {
            return Err(err("signal_style.lamp_gain must be in (0, 1]".into()));
        }
        Ok(s)
    }

    /// The signal shown at `t`.
    pub fn signal_at(&self, t: f64) -> SignalState {
        self.phases
            .iter()
            .rev()
            .find(|p| p.at_s <= t)
            .map(|p| p.state)
            .unwrap_or(SignalState::Unknown)
    }

    /// When the phase in force at `t` began.
    fn phase_start(&self, t: f64) -> f64 {
        self.phases
            .iter()
            .rev()
            .find(|p| p.at_s <= t)
            .map(|p| p.at_s)
            .unwrap_or(0.0)
    }

    fn line(&self) -> StopLine {
        let [a, b] = self.stop_line;
        StopLine::new(Point::new(a[0], a[1]), Point::new(b[0], b[1]), true, 0.0)
    }
}

/// One actor in one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorFrame {
    pub frame: u64,
    /// The head's box.
    pub head: BBox,
    /// The whole pasted crop (rider with vehicle, or the pedestrian).
    pub body: BBox,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthActor {
    pub id: u32,
    pub kind: ActorKind,
    pub helmet: bool,
    /// The photo the crop was cut from.
    pub source: String,
    /// When its bottom centre crossed the stop line, and the signal then.
    pub crossed_at_s: Option<f64>,
    pub signal_at_crossing: Option<SignalState>,
    pub frames: Vec<ActorFrame>,
}

/// One expected violation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthViolation {
    #[serde(rename = "type")]
    pub kind: ViolationKind,
    pub actor: u32,
    /// The crossing (red light) or the middle of the visible interval (no helmet).
    pub time_s: f64,
    /// The interval in which a report may fall.
    pub from_s: f64,
    pub to_s: f64,
    /// Head centre (no helmet) or bottom centre at the crossing (red light).
    pub position: [f32; 2],
}

/// The ground truth of a scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: u64,
    pub phases: Vec<Phase>,
    pub actors: Vec<TruthActor>,
    pub violations: Vec<TruthViolation>,
}

impl Truth {
    pub fn load(path: &Path) -> Result<Truth, PipelineError> {
        let err = |reason: String| PipelineError::Truth {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| err(e.to_string()))
    }
}

/// A labelled rider in a photo: the rider-with-vehicle box and its one head.
#[derive(Debug, Clone)]
struct Candidate {
    image: PathBuf,
    body: BBox,
    head: BBox,
    helmet: bool,
}

fn yolo_boxes(text: &str, w: f32, h: f32) -> Vec<(u32, BBox)> {
    text.lines()
        .filter_map(|l| {
            let v: Vec<f32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() == 5).then(|| {
                (
                    v[0] as u32,
                    BBox::from_cxcywh(v[1] * w, v[2] * h, v[3] * w, v[4] * h),
                )
            })
        })
        .collect()
}

/// Class-4 boxes with exactly one head (class 1 or 2) in their upper half, big enough to cut from; the
/// Delhi enforcement frames (`036_*`, small far riders) and the screen captures (`Screenshot-*`) are left
/// out, and so is every image missing from `allowed` (a split list) when one is given. Sorted by file name.
fn candidates(root: &Path, allowed: Option<&Path>) -> Result<Vec<Candidate>, PipelineError> {
    let allowed: Option<std::collections::HashSet<PathBuf>> = match allowed {
        None => None,
        Some(list) => {
            let text = std::fs::read_to_string(list).map_err(|e| PipelineError::Scenario {
                path: list.display().to_string(),
                reason: format!("cannot read the crops list: {e}"),
            })?;
            Some(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(PathBuf::from)
                    .collect(),
            )
        }
    };
    let mut out = Vec::new();
    for split in ["train", "valid"] {
        let labels = root.join(split).join("labels");
        let Ok(dir) = std::fs::read_dir(&labels) else {
            continue;
        };
        let mut names: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for lp in names {
            let stem = lp
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            // Screen captures (`Screenshot-*`: stock photos with watermarks, re-encoded, often blurred) are
            // left out: their heads are what the helmet model gets wrong most, for reasons of picture
            // quality that a camera does not share.
            if stem.starts_with("036_") || stem.starts_with("Screenshot") {
                continue;
            }
            let relative = Path::new(split).join("images").join(format!("{stem}.jpg"));
            if allowed.as_ref().is_some_and(|a| !a.contains(&relative)) {
                continue;
            }
            let image = root.join(&relative);
            if !image.is_file() {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&lp) else {
                continue;
            };
            let boxes = yolo_boxes(&text, 640.0, 640.0);
            for (_, body) in boxes.iter().filter(|(c, _)| *c == 4) {
                let heads: Vec<&(u32, BBox)> = boxes
                    .iter()
                    .filter(|(c, b)| {
                        (*c == 1 || *c == 2) && {
                            let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
                            cx > body.x1
                                && cx < body.x2
                                && cy > body.y1
                                && cy < body.y1 + 0.45 * body.height()
                        }
                    })
                    .collect();
                let any_head_inside = boxes
                    .iter()
                    .filter(|(c, b)| (1..=3).contains(c) && b.intersection(body) > 0.5 * b.area())
                    .count();
                if heads.len() != 1 || any_head_inside != 1 {
                    continue;
                }
                let head = heads[0].1;
                let aspect = body.height() / body.width().max(1.0);
                if body.height() < 300.0
                    || !(1.0..=2.6).contains(&aspect)
                    || head.height() < 45.0
                    || head.height() < 0.12 * body.height()
                {
                    continue;
                }
                out.push(Candidate {
                    image: image.clone(),
                    body: *body,
                    head,
                    helmet: heads[0].0 == 2,
                });
            }
        }
    }
    Ok(out)
}

struct Sprite {
    image: BgrImage,
    /// Head box relative to the sprite's top-left corner.
    head: BBox,
    source: String,
}

fn cut(c: &Candidate, kind: ActorKind, head_px: f32) -> Result<Sprite, PipelineError> {
    let photo = BgrImage::read(&c.image)?;
    let (region, head) = match kind {
        // Cars are cut by `cut_car`; a car given a rider crop is the rider.
        ActorKind::Rider | ActorKind::Car => (c.body, c.head),
        ActorKind::Pedestrian => {
            let (hw, hh) = (c.head.width(), c.head.height());
            let r = BBox::new(
                c.head.x1 - 0.7 * hw,
                c.head.y1 - 0.3 * hh,
                c.head.x2 + 0.7 * hw,
                c.head.y2 + 1.4 * hh,
            )
            .clip(640.0, 640.0);
            (r, c.head)
        }
    };
    let crop = photo.crop(&region)?;
    let scale = head_px / head.height().max(1.0);
    let w = ((crop.width() as f32 * scale).round() as u32).max(2);
    let h = ((crop.height() as f32 * scale).round() as u32).max(2);
    let image = crop.resized(w, h)?;
    let (sx, sy) = (w as f32 / region.width(), h as f32 / region.height());
    let head = BBox::new(
        (head.x1 - region.x1) * sx,
        (head.y1 - region.y1) * sy,
        (head.x2 - region.x1) * sx,
        (head.y2 - region.y1) * sy,
    );
    Ok(Sprite {
        image,
        head,
        source: c
            .image
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
    })
}

/// A car cut from `image` at `region`, scaled to `height` pixels; its "head" is its whole box.
fn cut_car(image: &Path, region: &BBox, height: f32) -> Result<Sprite, PipelineError> {
    let crop = BgrImage::read(image)?.crop(region)?;
    let scale = height / region.height().max(1.0);
    let w = ((crop.width() as f32 * scale).round() as u32).max(2);
    let h = ((crop.height() as f32 * scale).round() as u32).max(2);
    Ok(Sprite {
        image: crop.resized(w, h)?,
        head: BBox::new(0.0, 0.0, w as f32, h as f32),
        source: image
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
    })
}

/// Bottom-centre x of an actor at `t`, or `None` before it enters.
fn actor_x(a: &ActorSpec, t: f64) -> Option<f32> {
    if t < a.enter_s {
        return None;
    }
    let free = |dt: f64| a.from_x + a.speed_px_s * dt as f32;
    let Some(stop) = a.stop_x else {
        return Some(free(t - a.enter_s));
    };
    let t_stop = a.enter_s + ((stop - a.from_x) / a.speed_px_s) as f64;
    if t < t_stop {
        return Some(free(t - a.enter_s));
    }
    let on = a.creep_px_s.unwrap_or(a.speed_px_s);
    match a.go_s {
        Some(go) if t > go.max(t_stop) => Some(stop + on * (t - go.max(t_stop)) as f32),
        _ => Some(stop),
    }
}

/// The lamps' centres and radius in a head box `[x1, y1, x2, y2]`: red, amber, green from the top.
pub fn lamp_circles(head: &[f32; 4]) -> [(SignalState, (f32, f32), f32); 3] {
    let b = BBox::new(head[0], head[1], head[2], head[3]);
    let r = (b.width().min(b.height() / 3.0) * 0.36).max(2.0);
    let cx = (b.x1 + b.x2) / 2.0;
    let at = |i: usize| (cx, b.y1 + b.height() * (i as f32 + 0.5) / 3.0);
    [
        (SignalState::Red, at(0), r),
        (SignalState::Amber, at(1), r),
        (SignalState::Green, at(2), r),
    ]
}

/// A box on each lamp's lens `[x1, y1, x2, y2]` (the square inside its disc), red, amber, green: what a
/// site file's `[[camera.signal.head]]` should hold for a head drawn at `head`.
pub fn lamp_boxes(head: &[f32; 4]) -> [[f32; 4]; 3] {
    lamp_circles(head).map(|(_, (x, y), r)| {
        let h = (r * 0.7).round();
        [x.round() - h, y.round() - h, x.round() + h, y.round() + h]
    })
}

fn scaled(c: [u8; 3], k: f32) -> [u8; 3] {
    if k == 1.0 {
        return c;
    }
    c.map(|v| (v as f32 * k).round().clamp(0.0, 255.0) as u8)
}

/// The bright panel behind the head (`signal_style.backdrop`), drawn before the actors.
fn draw_backdrop(
    img: &mut BgrImage,
    head: &[f32; 4],
    style: &SignalStyle,
) -> Result<(), PipelineError> {
    if let Some(sky) = style.backdrop {
        let m = style.backdrop_px;
        let b = BBox::new(head[0] - m, head[1] - m, head[2] + m, head[3] + m);
        img.fill_rect(&b, sky)?;
    }
    Ok(())
}

/// The head with its lamps (and glare), drawn after the actors: it hangs above the road, so nothing on
/// the road passes in front of it (a pasted rider crop is a whole photo rectangle that would otherwise
/// cover it).
fn draw_signal(
    img: &mut BgrImage,
    head: &[f32; 4],
    style: &SignalStyle,
    state: SignalState,
    t: f64,
) -> Result<(), PipelineError> {
    let b = BBox::new(head[0], head[1], head[2], head[3]);
    img.fill_rect(
        &BBox::new(b.x1 - 2.0, b.y1 - 2.0, b.x2 + 2.0, b.y2 + 2.0),
        [70, 70, 70],
    )?;
    img.fill_rect(&b, [25, 25, 25])?;
    let lamps = [
        ([40, 40, 255], [30, 30, 70]),
        (style.amber.unwrap_or([0, 190, 255]), [20, 50, 70]),
        ([140, 255, 40], [40, 70, 25]),
    ];
    let g = style.lamp_gain;
    for ((s, centre, r), (on, off)) in lamp_circles(head).into_iter().zip(lamps) {
        let lit = s == state;
        img.fill_circle(centre, r, if lit { scaled(on, g) } else { off })?;
        if lit {
            img.fill_circle(centre, r * 0.45, scaled([220, 230, 255], g))?;
        }
    }
    if let Some([x, y, radius]) = style.glare {
        let sway = (t * std::f64::consts::TAU / 7.0).sin() as f32 * radius;
        let c = (x + sway, y);
        img.fill_circle(c, radius * 1.4, [200, 205, 210])?;
        img.fill_circle(c, radius, [250, 252, 255])?;
        let reach = radius * 3.0;
        img.blur_region(
            &BBox::new(c.0 - reach, c.1 - reach, c.0 + reach, c.1 + reach),
            (radius * 0.5).max(0.8) as f64,
        )?;
    }
    img.blur_region(&b, 0.8)?;
    Ok(())
}

/// Renders `scenario` to `out` (H.264 MP4) and returns its ground truth.
pub fn render(scenario: &Scenario, out: &Path) -> Result<Truth, PipelineError> {
    let (w, h) = (scenario.width, scenario.height);
    let background = BgrImage::read(&scenario.background)?.resized(w, h)?;
    let pool = candidates(&scenario.crops, scenario.crops_list.as_deref())?;
    let scen_err = |reason: String| PipelineError::Scenario {
        path: "scenario".into(),
        reason,
    };
    let mut rng = SplitMix64::new(scenario.seed);
    let mut sprites = Vec::new();
    for a in &scenario.actors {
        if let (ActorKind::Car, Some(image), Some(b), Some(height)) =
            (a.kind, &a.image, a.image_box, a.height_px)
        {
            sprites.push(cut_car(image, &BBox::new(b[0], b[1], b[2], b[3]), height)?);
            continue;
        }
        let wanted = a.helmet;
        let fits: Vec<&Candidate> = pool.iter().filter(|c| c.helmet == wanted).collect();
        if fits.is_empty() {
            return Err(scen_err(format!(
                "no labelled crop with helmet = {wanted} under {}",
                scenario.crops.display()
            )));
        }
        let c = fits[rng.below(fits.len())];
        sprites.push(cut(c, a.kind, a.head_px)?);
    }
    let frames = (scenario.duration_s * scenario.fps as f64).round() as u64;
    let line = scenario.line();
    let mut writer = Mp4Writer::create(out, w, h, scenario.fps)?;
    let mut actors: Vec<TruthActor> = scenario
        .actors
        .iter()
        .zip(&sprites)
        .enumerate()
        .map(|(i, (a, s))| TruthActor {
            id: i as u32 + 1,
            kind: a.kind,
            helmet: a.helmet,
            source: s.source.clone(),
            crossed_at_s: None,
            signal_at_crossing: None,
            frames: Vec::new(),
        })
        .collect();
    // Far lanes first, so nearer actors cover them.
    let mut order: Vec<usize> = (0..scenario.actors.len()).collect();
    order.sort_by(|&i, &j| {
        scenario.actors[i]
            .lane_y
            .total_cmp(&scenario.actors[j].lane_y)
    });
    let mut last_side: Vec<Option<Side>> = vec![None; scenario.actors.len()];
    for f in 0..frames {
        let t = f as f64 / scenario.fps as f64;
        let mut img = background.crop(&BBox::new(0.0, 0.0, w as f32, h as f32))?;
        let [a, b] = scenario.stop_line;
        img.draw_line((a[0], a[1]), (b[0], b[1]), [235, 235, 235], 4)?;
        draw_backdrop(&mut img, &scenario.signal_head, &scenario.signal_style)?;
        for &i in &order {
            let spec = &scenario.actors[i];
            let Some(x) = actor_x(spec, t) else { continue };
            let s = &sprites[i];
            let (sw, sh) = (s.image.width() as f32, s.image.height() as f32);
            let (left, top) = ((x - sw / 2.0).round(), (spec.lane_y - sh).round());
            if left > w as f32 || left + sw < 0.0 {
                continue;
            }
            img.paste(&s.image, left as i32, top as i32)?;
            let body = BBox::new(left, top, left + sw, top + sh);
            let head = BBox::new(
                left + s.head.x1,
                top + s.head.y1,
                left + s.head.x2,
                top + s.head.y2,
            );
            actors[i].frames.push(ActorFrame {
                frame: f,
                head,
                body,
            });
            let side = line.side(Point::new(x, spec.lane_y));
            if last_side[i] == Some(Side::Before)
                && side == Side::After
                && actors[i].crossed_at_s.is_none()
            {
                actors[i].crossed_at_s = Some(t);
                actors[i].signal_at_crossing = Some(scenario.signal_at(t));
            }
            if side != Side::On {
                last_side[i] = Some(side);
            }
        }
        draw_signal(
            &mut img,
            &scenario.signal_head,
            &scenario.signal_style,
            scenario.signal_at(t),
            t,
        )?;
        writer.push_bgr(&img.to_bgr_bytes())?;
    }
    writer.finish()?;
    let fps = scenario.fps as f64;
    let mut violations = Vec::new();
    for (spec, actor) in scenario.actors.iter().zip(&actors) {
        if spec.kind == ActorKind::Pedestrian {
            continue;
        }
        if spec.kind == ActorKind::Rider && !spec.helmet {
            let inside: Vec<&ActorFrame> = actor
                .frames
                .iter()
                .filter(|fr| {
                    fr.head.x1 >= 0.0
                        && fr.head.x2 <= w as f32
                        && fr.head.y1 >= 0.0
                        && fr.head.y2 <= h as f32
                })
                .collect();
            if let (Some(first), Some(last)) = (inside.first(), inside.last()) {
                let mid = inside[inside.len() / 2];
                violations.push(TruthViolation {
                    kind: ViolationKind::NoHelmet,
                    actor: actor.id,
                    time_s: mid.frame as f64 / fps,
                    from_s: first.frame as f64 / fps,
                    to_s: last.frame as f64 / fps,
                    position: [
                        (mid.head.x1 + mid.head.x2) / 2.0,
                        (mid.head.y1 + mid.head.y2) / 2.0,
                    ],
                });
            }
        }
        if let (Some(tc), Some(SignalState::Red)) = (actor.crossed_at_s, actor.signal_at_crossing)
            && tc - scenario.phase_start(tc) >= scenario.grace_s
        {
            let x = actor_x(spec, tc).unwrap_or(spec.from_x);
            violations.push(TruthViolation {
                kind: ViolationKind::RedLight,
                actor: actor.id,
                time_s: tc,
                from_s: tc,
                to_s: tc,
                position: [x, spec.lane_y],
            });
        }
    }
    Ok(Truth {
        width: w,
        height: h,
        fps: scenario.fps,
        frames,
        phases: scenario.phases.clone(),
        actors,
        violations,
    })
}
