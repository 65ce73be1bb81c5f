//! A loaded model: the ONNX Runtime session plus everything needed to feed it
//! and read it.

use std::io::Read;
use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::{TensorRef, ValueType};
use roadwarden_types::{ClassId, Detection, ImageView};
use sha2::{Digest, Sha256};

use crate::InferError;
use crate::batcher::BatcherHandle;
use crate::decode::{OutputLayout, decode};
use crate::manifest::{ClassSpec, Manifest, ModelFormat, parse_ultralytics_names};
use crate::nms::nms_per_class;
use crate::preprocess::{Letterbox, fill_input};
use crate::runtime::{ExecutionProvider, Runtime};

/// How a frame is fitted to a dynamic model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputShape {
    /// Always the manifest's width x height (ultralytics `val`).
    Square,
    /// The smallest stride multiple that holds the letterboxed frame
    /// (ultralytics `rect`); only for models with dynamic height and width,
    /// square otherwise.
    #[default]
    Rect,
    /// Rect, fitted into `width` x `height` instead of the manifest's size (a crop
    /// run at the scale of the whole frame); only for models with dynamic height
    /// and width, the manifest's square otherwise.
    RectWithin { width: u32, height: u32 },
}

/// Which scores make a detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScoreMode {
    /// Each class's own threshold from the manifest (or the default).
    ClassThresholds,
    /// One threshold for every class.
    Fixed(f32),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectOptions {
    pub score: ScoreMode,
    /// NMS IoU; `None` takes the manifest's.
    pub iou: Option<f32>,
    /// One candidate per class above threshold per anchor, instead of the best class only.
    pub multi_label: bool,
    pub max_det: usize,
    pub shape: InputShape,
}

impl Default for DetectOptions {
    /// Predict settings: per-class thresholds, best class per anchor, rect input.
    fn default() -> Self {
        DetectOptions {
            score: ScoreMode::ClassThresholds,
            iou: None,
            multi_label: false,
            max_det: 300,
            shape: InputShape::Rect,
        }
    }
}

impl DetectOptions {
    /// Ultralytics `val` settings: conf 0.001, IoU 0.7, multi-label, square input.
    pub fn validation() -> Self {
        DetectOptions {
            score: ScoreMode::Fixed(0.001),
            iou: Some(0.7),
            multi_label: true,
            max_det: 300,
            shape: InputShape::Square,
        }
    }
}

/// What runs a detector's filled input: its own ONNX Runtime session, or a shared [`Batcher`]'s
/// (`crate::batcher`) that batches the inputs of several cameras into one run.
pub(crate) enum Backend {
    Own(Engine),
    Shared(BatcherHandle),
}

/// One model's ONNX Runtime session and what is needed to run it and check its output.
pub(crate) struct Engine {
    session: Session,
    model: PathBuf,
    format: ModelFormat,
    input_name: String,
    output_name: String,
    layout: OutputLayout,
    classes: usize,
    dynamic_batch: bool,
}

/// One image's raw output values and dims (without the batch dimension).
pub(crate) type ImageOutput = (Vec<f32>, Vec<usize>);

pub struct Detector {
    manifest: Manifest,
    backend: Backend,
    classes: Vec<ClassSpec>,
    layout: OutputLayout,
    width: u32,
    height: u32,
    dynamic_size: bool,
    dynamic_batch: bool,
    stride: u32,
    provider: ExecutionProvider,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("model", &self.manifest.model_file)
            .field("layout", &self.layout)
            .field("input", &(self.width, self.height))
            .finish()
    }
}

fn sha256_file(path: &Path) -> Result<String, InferError> {
    let read_err = |source| InferError::ModelRead {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn tensor_shape(v: &ValueType) -> Option<Vec<i64>> {
    match v {
        ValueType::Tensor { shape, .. } => Some(shape.iter().copied().collect()),
        _ => None,
    }
}

/// `imgsz` metadata as ultralytics writes it: `[640, 640]` (height, width).
fn parse_imgsz(text: &str) -> Option<(u32, u32)> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut it = inner.split(',').map(|s| s.trim().parse::<u32>());
    let h = it.next()?.ok()?;
    let w = it.next().map(|r| r.ok()).unwrap_or(Some(h))?;
    Some((h, w))
}

impl Detector {
    /// Loads the manifest at `manifest_path`, checks the model file against
    /// it, and opens an ONNX Runtime session.
    pub fn load(manifest_path: &Path, runtime: &Runtime) -> Result<Detector, InferError> {
        let manifest = Manifest::load(manifest_path)?;
        Detector::from_manifest(manifest, runtime)
    }

    pub fn from_manifest(manifest: Manifest, runtime: &Runtime) -> Result<Detector, InferError> {
        let model = manifest.model_file.clone();
        if !model.is_file() {
            return Err(InferError::ModelMissing {
                path: model,
                manifest: manifest.path.clone(),
            });
        }
        if let Some(expected) = &manifest.sha256 {
            let actual = sha256_file(&model)?;
            if &actual != expected {
                return Err(InferError::Sha256Mismatch {
                    path: model,
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        let mismatch = |message: String| InferError::ModelMismatch {
            path: model.clone(),
            message,
        };
        let (session, provider) = open_session(&model, runtime)?;

        let input = match &manifest.input.name {
            Some(name) => session
                .inputs()
                .iter()
                .find(|o| o.name() == name)
                .ok_or_else(|| {
                    mismatch(format!(
                        "the model has no input named `{name}` (manifest input.name)"
                    ))
                })?,
            None => session
                .inputs()
                .first()
                .ok_or_else(|| mismatch("the model has no inputs".into()))?,
        };
        let in_shape = tensor_shape(input.dtype())
            .ok_or_else(|| mismatch(format!("input `{}` is not a tensor", input.name())))?;
        if in_shape.len() != 4 || !(in_shape[1] == 3 || in_shape[1] == -1) {
            return Err(mismatch(format!(
                "input `{}` has shape {in_shape:?}; expected NCHW [batch, 3, height, width]",
                input.name()
            )));
        }
        let input_name = input.name().to_string();

        let (meta_names, meta_imgsz, meta_stride) = {
            let meta = session.metadata().ok();
            let meta_get = |key: &str| meta.as_ref().and_then(|m| m.custom(key));
            (
                meta_get("names").and_then(|n| parse_ultralytics_names(&n)),
                meta_get("imgsz").and_then(|s| parse_imgsz(&s)),
                meta_get("stride").and_then(|s| s.trim().parse::<u32>().ok()),
            )
        };

        let classes = if !manifest.classes.is_empty() {
            if let Some(names) = &meta_names
                && names.len() != manifest.classes.len()
            {
                return Err(mismatch(format!(
                    "the manifest lists {} classes but the model's metadata names {}: {names:?}",
                    manifest.classes.len(),
                    names.len()
                )));
            }
            manifest.classes.clone()
        } else if let Some(names) = meta_names {
            names
                .into_iter()
                .map(|name| ClassSpec {
                    name,
                    role: roadwarden_types::ClassRole::Other,
                    threshold: None,
                })
                .collect()
        } else {
            return Err(InferError::ManifestInvalid {
                path: manifest.path.clone(),
                message: "no class names: the model has no `names` metadata, so list them as [[classes]] or classes_file".into(),
            });
        };

        let output = match &manifest.output.name {
            Some(name) => session
                .outputs()
                .iter()
                .find(|o| o.name() == name)
                .ok_or_else(|| {
                    mismatch(format!(
                        "the model has no output named `{name}` (manifest output.name)"
                    ))
                })?,
            None => session
                .outputs()
                .first()
                .ok_or_else(|| mismatch("the model has no outputs".into()))?,
        };
        let out_shape = tensor_shape(output.dtype())
            .ok_or_else(|| mismatch(format!("output `{}` is not a tensor", output.name())))?;
        let nc = classes.len();
        let layout = match manifest.format {
            ModelFormat::Yolo => OutputLayout::for_yolo(&out_shape, nc),
            ModelFormat::Fastestdet => OutputLayout::for_fastestdet(&out_shape, nc),
            ModelFormat::Yolo5face => OutputLayout::for_yolo5face(&out_shape, nc),
        }
        .ok_or_else(|| InferError::OutputShape {
            path: model.clone(),
            shape: out_shape.clone(),
            format: manifest.format.to_string(),
            expected: match manifest.format {
                ModelFormat::Yolo => format!(
                    "[batch, {}, anchors] or [batch, anchors, {}] for {nc} classes",
                    4 + nc,
                    5 + nc
                ),
                ModelFormat::Fastestdet => {
                    format!("[batch, {}, grid_h, grid_w] for {nc} classes", 5 + nc)
                }
                ModelFormat::Yolo5face => {
                    format!("[batch, anchors, {}] for {nc} classes", 13 + nc)
                }
            },
        })?;
        let output_name = output.name().to_string();

        let (static_h, static_w) = (in_shape[2], in_shape[3]);
        let dynamic_size = static_h < 0 || static_w < 0;
        let (meta_h, meta_w) = meta_imgsz.unwrap_or((640, 640));
        let width = manifest.input.width.unwrap_or(if static_w > 0 {
            static_w as u32
        } else {
            meta_w
        });
        let height = manifest.input.height.unwrap_or(if static_h > 0 {
            static_h as u32
        } else {
            meta_h
        });
        for (key, declared, actual) in [("width", width, static_w), ("height", height, static_h)] {
            if actual > 0 && declared as i64 != actual {
                return Err(mismatch(format!(
                    "manifest input.{key} = {declared} but the model's input is fixed at {actual}"
                )));
            }
        }
        let stride = manifest.input.stride.or(meta_stride).unwrap_or(32).max(1);
        let dynamic_batch = in_shape[0] < 0;
        let engine = Engine {
            session,
            model: model.clone(),
            format: manifest.format,
            input_name,
            output_name,
            layout,
            classes: classes.len(),
            dynamic_batch,
        };
        Ok(Detector {
            dynamic_batch,
            manifest,
            backend: Backend::Own(engine),
            classes,
            layout,
            width,
            height,
            dynamic_size,
            stride,
            provider,
        })
    }

    /// Splits a detector with its own session into that session and a session-less copy of
    /// everything else (for [`crate::Batcher::new`]); an error for a detector that is already shared.
    pub(crate) fn into_engine(self) -> Result<(Engine, Detector), InferError> {
        let Detector {
            manifest,
            backend,
            classes,
            layout,
            width,
            height,
            dynamic_size,
            dynamic_batch,
            stride,
            provider,
        } = self;
        let Backend::Own(engine) = backend else {
            return Err(InferError::Batcher(format!(
                "{}: this detector already runs on a shared batcher",
                manifest.model_file.display()
            )));
        };
        let template = Detector {
            manifest,
            backend: Backend::Shared(BatcherHandle::closed()),
            classes,
            layout,
            width,
            height,
            dynamic_size,
            dynamic_batch,
            stride,
            provider,
        };
        Ok((engine, template))
    }

    /// The same model and settings, its inputs run by `handle`.
    pub(crate) fn with_handle(&self, handle: BatcherHandle) -> Detector {
        Detector {
            manifest: self.manifest.clone(),
            backend: Backend::Shared(handle),
            classes: self.classes.clone(),
            layout: self.layout,
            width: self.width,
            height: self.height,
            dynamic_size: self.dynamic_size,
            dynamic_batch: self.dynamic_batch,
            stride: self.stride,
            provider: self.provider,
        }
    }

    /// Whether this detector's inputs run on a shared [`crate::Batcher`]'s session.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Shared(_))
    }

    /// This detector with the manifest's input size set to `width` x `height` (a dynamic-size model
    /// run on a crop at the whole frame's scale). A detector with its own session opens it again from
    /// the changed manifest (which checks the size against the model); a shared one keeps its batcher
    /// (the session does not depend on the manifest's size) and needs a model of dynamic size.
    pub fn with_input_size(
        self,
        width: u32,
        height: u32,
        runtime: &Runtime,
    ) -> Result<Detector, InferError> {
        let mut manifest = self.manifest.clone();
        manifest.input.width = Some(width);
        manifest.input.height = Some(height);
        match self.backend {
            Backend::Own(_) => {
                drop(self);
                Detector::from_manifest(manifest, runtime)
            }
            Backend::Shared(_)
                if !self.dynamic_size && (width, height) != (self.width, self.height) =>
            {
                Err(InferError::ModelMismatch {
                    path: self.manifest.model_file.clone(),
                    message: format!(
                        "input size {width}x{height} asked of a model whose input is fixed at {}x{}",
                        self.width, self.height
                    ),
                })
            }
            Backend::Shared(_) => Ok(Detector {
                manifest,
                width,
                height,
                ..self
            }),
        }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn classes(&self) -> &[ClassSpec] {
        &self.classes
    }

    pub fn class_name(&self, id: ClassId) -> &str {
        self.classes
            .get(id.0)
            .map(|c| c.name.as_str())
            .unwrap_or("?")
    }

    pub fn layout(&self) -> OutputLayout {
        self.layout
    }

    /// The execution provider the session actually runs on.
    pub fn provider(&self) -> ExecutionProvider {
        self.provider
    }

    /// The manifest's input size (width, height).
    pub fn input_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    pub fn has_dynamic_size(&self) -> bool {
        self.dynamic_size
    }

    pub fn has_dynamic_batch(&self) -> bool {
        self.dynamic_batch
    }

    /// The threshold a class's detections must exceed under `ClassThresholds`.
    pub fn threshold(&self, id: ClassId) -> f32 {
        self.classes
            .get(id.0)
            .and_then(|c| c.threshold)
            .unwrap_or(self.manifest.default_threshold)
    }

    /// Where a `width` x `height` source lands in the network input.
    pub fn letterbox(&self, width: u32, height: u32, shape: InputShape) -> Letterbox {
        let (auto, w, h) = match shape {
            InputShape::Rect if self.dynamic_size => (Some(self.stride), self.width, self.height),
            InputShape::RectWithin {
                width: w,
                height: h,
            } if self.dynamic_size => (Some(self.stride), w.max(1), h.max(1)),
            _ => (None, self.width, self.height),
        };
        Letterbox::for_spec(&self.manifest.input, width, height, w, h, auto)
    }

    pub fn detect(
        &mut self,
        image: &ImageView<'_>,
        opts: &DetectOptions,
    ) -> Result<Vec<Detection>, InferError> {
        Ok(self
            .detect_batch(std::slice::from_ref(image), opts)?
            .remove(0))
    }

    /// Detects in several images. Images whose inputs have the same shape
    /// run as one batch when the model's batch dimension is dynamic.
    pub fn detect_batch(
        &mut self,
        images: &[ImageView<'_>],
        opts: &DetectOptions,
    ) -> Result<Vec<Vec<Detection>>, InferError> {
        let boxes: Vec<Letterbox> = images
            .iter()
            .map(|im| self.letterbox(im.width(), im.height(), opts.shape))
            .collect();
        self.detect_letterboxed(images, &boxes, opts)
    }

    /// Where a `width` x `height` source lands in a `side` x `side` input (the manifest's size for a
    /// model whose input size is fixed).
    pub(crate) fn square_letterbox(&self, width: u32, height: u32, side: u32) -> Letterbox {
        if self.dynamic_size {
            let side = side.max(self.stride).next_multiple_of(self.stride);
            Letterbox::for_spec(&self.manifest.input, width, height, side, side, None)
        } else {
            self.letterbox(width, height, InputShape::Square)
        }
    }

    /// Runs `images`, each fitted as `boxes` says; consecutive images with the same input size form
    /// one batch when the batch dimension is dynamic.
    pub(crate) fn detect_letterboxed(
        &mut self,
        images: &[ImageView<'_>],
        boxes: &[Letterbox],
        opts: &DetectOptions,
    ) -> Result<Vec<Vec<Detection>>, InferError> {
        let mut results: Vec<Vec<Detection>> = vec![Vec::new(); images.len()];
        let mut start = 0;
        while start < images.len() {
            let (w, h) = (boxes[start].width, boxes[start].height);
            let mut end = start + 1;
            if self.dynamic_batch {
                while end < images.len() && (boxes[end].width, boxes[end].height) == (w, h) {
                    end += 1;
                }
            }
            let per_image = 3 * (w * h) as usize;
            let mut input = vec![0f32; per_image * (end - start)];
            for (i, chunk) in input.chunks_exact_mut(per_image).enumerate() {
                fill_input(
                    &images[start + i],
                    &boxes[start + i],
                    &self.manifest.input,
                    chunk,
                );
            }
            let outputs = self.run(input, end - start, w, h)?;
            for (i, out) in outputs.into_iter().enumerate() {
                results[start + i] = self.postprocess(&out.0, &out.1, &boxes[start + i], opts);
            }
            start = end;
        }
        Ok(results)
    }

    /// Runs a filled NCHW batch of `batch` images on this detector's backend; returns each image's
    /// output.
    fn run(
        &mut self,
        input: Vec<f32>,
        batch: usize,
        w: u32,
        h: u32,
    ) -> Result<Vec<ImageOutput>, InferError> {
        match &mut self.backend {
            Backend::Own(engine) => engine.run(&input, batch, w, h),
            Backend::Shared(handle) => handle.submit(input, batch, w, h),
        }
    }

    fn postprocess(
        &self,
        data: &[f32],
        dims: &[usize],
        lb: &Letterbox,
        opts: &DetectOptions,
    ) -> Vec<Detection> {
        let thresholds: Vec<f32> = (0..self.classes.len())
            .map(|c| match opts.score {
                ScoreMode::Fixed(t) => t,
                ScoreMode::ClassThresholds => self.threshold(ClassId(c)),
            })
            .collect();
        let keep = |c: usize, s: f32| s > thresholds[c];
        let candidates = decode(
            self.layout,
            data,
            dims,
            self.classes.len(),
            lb,
            opts.multi_label,
            &keep,
        );
        let iou = opts.iou.unwrap_or(self.manifest.nms_iou);
        let (sw, sh) = (lb.src_width as f32, lb.src_height as f32);
        nms_per_class(candidates, iou, opts.max_det)
            .into_iter()
            .map(|c| Detection {
                bbox: c.bbox.clip(sw, sh),
                class_id: c.class_id,
                score: c.score,
            })
            .collect()
    }
}

impl Engine {
    /// Runs the session on a filled NCHW batch; returns each image's output
    /// values and dims (without the batch dimension).
    pub(crate) fn run(
        &mut self,
        input: &[f32],
        batch: usize,
        w: u32,
        h: u32,
    ) -> Result<Vec<ImageOutput>, InferError> {
        let path = self.model.clone();
        let fail = |e: ort::Error| InferError::Run {
            path: path.clone(),
            message: e.to_string(),
        };
        let tensor = TensorRef::from_array_view(([batch, 3, h as usize, w as usize], input))
            .map_err(fail)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(fail)?;
        let value = &outputs[self.output_name.as_str()];
        let (shape, data) = value.try_extract_tensor::<f32>().map_err(fail)?;
        let dims: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
        let nc = self.classes;
        let fits = match self.layout {
            OutputLayout::YoloV8 => dims.len() == 3 && dims[1] == 4 + nc,
            OutputLayout::YoloV5 => dims.len() == 3 && dims[2] == 5 + nc,
            OutputLayout::FastestDet => dims.len() == 4 && dims[1] == 5 + nc,
            OutputLayout::Yolo5Face => dims.len() == 3 && dims[2] == 13 + nc,
        };
        if !fits || dims[0] != batch {
            return Err(InferError::OutputShape {
                path: self.model.clone(),
                shape: shape.iter().copied().collect(),
                format: self.format.to_string(),
                expected: format!(
                    "{:?} layout for {nc} classes and batch {batch}",
                    self.layout
                ),
            });
        }
        let per = data.len() / batch;
        Ok(data
            .chunks_exact(per)
            .map(|c| (c.to_vec(), dims[1..].to_vec()))
            .collect())
    }

    pub(crate) fn dynamic_batch(&self) -> bool {
        self.dynamic_batch
    }

    pub(crate) fn model(&self) -> &Path {
        &self.model
    }
}

fn open_session(
    model: &Path,
    runtime: &Runtime,
) -> Result<(Session, ExecutionProvider), InferError> {
    use ort::ep::ExecutionProvider as _;
    let cfg = &runtime.config;
    let not_onnx = |message: String| InferError::NotOnnx {
        path: model.to_path_buf(),
        message,
    };
    let mut builder = Session::builder(&runtime.env).map_err(|e| not_onnx(e.to_string()))?;
    // ONNX Runtime's own default may count only physical cores; use every
    // core this process may run on unless told otherwise.
    let threads = cfg.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    builder = builder
        .with_intra_threads(threads)
        .map_err(|e| not_onnx(e.to_string()))?;
    // No spinning: a pipeline runs two sessions (helmet and two-wheeler models), and several cameras
    // more, on the same cores; a pool spinning after its run took the cores from the next session's.
    // Measured (benches/RESULTS.md, 2 cores): the helmet model on a 352x160 crop after a FastestDet run
    // took 107 ms with spinning and 61 ms without.
    builder = builder
        .with_intra_op_spinning(false)
        .map_err(|e| not_onnx(e.to_string()))?;
    let mut provider = cfg.provider;
    let unavailable = |name: &str| InferError::ProviderUnavailable {
        provider: name.to_string(),
        detail: format!(
            "the ONNX Runtime at {} was built without it. Install the GPU build with `scripts/setup --gpu`, or allow the CPU with --allow-cpu-fallback",
            runtime.library.display()
        ),
    };
    let dispatch = match cfg.provider {
        ExecutionProvider::Cpu => None,
        ExecutionProvider::Cuda { device } => {
            if ort::ep::CUDA::is_available().unwrap_or(false) {
                Some(ort::ep::CUDA::default().with_device_id(device).build())
            } else if cfg.allow_cpu_fallback {
                None
            } else {
                return Err(unavailable("CUDA"));
            }
        }
        ExecutionProvider::TensorRt { device } => {
            if ort::ep::TensorRT::is_available().unwrap_or(false) {
                Some(ort::ep::TensorRT::default().with_device_id(device).build())
            } else if cfg.allow_cpu_fallback {
                None
            } else {
                return Err(unavailable("TensorRT"));
            }
        }
    };
    if dispatch.is_none() && provider != ExecutionProvider::Cpu {
        tracing::warn!(requested = %provider, "execution provider unavailable; falling back to the CPU");
        provider = ExecutionProvider::Cpu;
    }
    if let Some(d) = dispatch {
        let d = if cfg.allow_cpu_fallback {
            d
        } else {
            d.error_on_failure()
        };
        builder =
            builder
                .with_execution_providers([d])
                .map_err(|e| InferError::ProviderUnavailable {
                    provider: provider.to_string(),
                    detail: e.to_string(),
                })?;
    }
    let session = builder
        .commit_from_file(model)
        .map_err(|e| not_onnx(e.to_string()))?;
    Ok((session, provider))
}
