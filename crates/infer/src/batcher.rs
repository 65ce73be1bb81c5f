//! The shared inference batcher: one model's ONNX Runtime session on its own thread, fed by every
//! camera of the process. A camera holds a [`Detector`] made by [`Batcher::detector`]; it letterboxes
//! and fills its input on its own thread exactly as a detector with its own session does, hands the
//! filled tensor to the batcher and blocks until its output comes back, then decodes and runs NMS
//! itself. The batcher thread gathers requests until it holds `max_batch` images, or `max_wait` has
//! passed since the first, or every live handle has a request waiting (no more can come); it runs
//! requests of the same input size as one batch (up to `max_batch` images; a request is never
//! split) and sends each requester its own outputs. A model whose batch dimension is fixed at 1
//! (FastestDet) runs the gathered images one by one on the same thread: one session for all
//! cameras, no batching gain.
//!
//! Metrics ([`BatcherStats`]): ONNX Runtime runs by batch size, images per gathering, and each
//! camera's requests with their latency (submit to output, queueing included).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::InferError;
use crate::detector::{Detector, Engine, ImageOutput};

/// How a [`Batcher`] forms batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Images per ONNX Runtime run, at most (a single request with more runs alone).
    pub max_batch: usize,
    /// How long the first request of a batch waits for others.
    pub max_wait: Duration,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        BatcherConfig {
            max_batch: 8,
            max_wait: Duration::from_millis(5),
        }
    }
}

/// One camera's requests through a batcher.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraLatency {
    /// The name the camera's handle was made with.
    pub camera: String,
    pub requests: u64,
    pub images: u64,
    /// Submit to output, summed over the requests (queueing and the run).
    pub total: Duration,
    pub max: Duration,
}

impl CameraLatency {
    pub fn mean(&self) -> Duration {
        if self.requests == 0 {
            Duration::ZERO
        } else {
            self.total / self.requests as u32
        }
    }
}

/// What a batcher did so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatcherStats {
    /// ONNX Runtime runs.
    pub runs: u64,
    /// Images run.
    pub images: u64,
    /// `runs_by_size[n]`: runs of n images (index 0 unused).
    pub runs_by_size: Vec<u64>,
    /// `gathered_by_size[n]`: gatherings (one wait window) that collected n images; for a model of
    /// fixed batch 1 this is the batching the model cannot use.
    pub gathered_by_size: Vec<u64>,
    /// Per camera handle, in the order the handles were made.
    pub cameras: Vec<CameraLatency>,
}

impl BatcherStats {
    /// Mean images per ONNX Runtime run.
    pub fn mean_batch(&self) -> f64 {
        if self.runs == 0 {
            0.0
        } else {
            self.images as f64 / self.runs as f64
        }
    }
}

fn bump(counts: &mut Vec<u64>, n: usize) {
    if counts.len() <= n {
        counts.resize(n + 1, 0);
    }
    counts[n] += 1;
}

/// What runs a gathered batch: the real session, or a stand-in in tests.
pub(crate) trait RunBatch: Send + 'static {
    fn run(
        &mut self,
        input: &[f32],
        batch: usize,
        w: u32,
        h: u32,
    ) -> Result<Vec<ImageOutput>, InferError>;
    /// Whether more than one image may run at once.
    fn dynamic_batch(&self) -> bool;
}

impl RunBatch for Engine {
    fn run(
        &mut self,
        input: &[f32],
        batch: usize,
        w: u32,
        h: u32,
    ) -> Result<Vec<ImageOutput>, InferError> {
        Engine::run(self, input, batch, w, h)
    }

    fn dynamic_batch(&self) -> bool {
        Engine::dynamic_batch(self)
    }
}

type Reply = Result<Vec<ImageOutput>, InferError>;

struct Request {
    input: Vec<f32>,
    images: usize,
    w: u32,
    h: u32,
    reply: SyncSender<Reply>,
}

struct Shared {
    stats: Mutex<BatcherStats>,
    /// Live handles (each can have one request waiting at a time).
    handles: AtomicUsize,
}

impl Shared {
    fn stats(&self) -> std::sync::MutexGuard<'_, BatcherStats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One camera's way into a batcher (inside a shared [`Detector`]).
pub(crate) struct BatcherHandle {
    tx: Option<Sender<Request>>,
    shared: Arc<Shared>,
    camera: usize,
}

impl BatcherHandle {
    /// A handle to nothing: every submit fails (the placeholder of a detector whose session moved to
    /// a batcher).
    pub(crate) fn closed() -> BatcherHandle {
        BatcherHandle {
            tx: None,
            shared: Arc::new(Shared {
                stats: Mutex::new(BatcherStats::default()),
                handles: AtomicUsize::new(0),
            }),
            camera: 0,
        }
    }

    /// Runs `images` filled inputs of `w` x `h` on the batcher's session; blocks until their outputs
    /// come back, in the same order.
    pub(crate) fn submit(
        &self,
        input: Vec<f32>,
        images: usize,
        w: u32,
        h: u32,
    ) -> Result<Vec<ImageOutput>, InferError> {
        let stopped = || InferError::Batcher("the batcher thread has stopped".into());
        let tx = self.tx.as_ref().ok_or_else(stopped)?;
        let (reply, rx) = mpsc::sync_channel(1);
        let start = Instant::now();
        tx.send(Request {
            input,
            images,
            w,
            h,
            reply,
        })
        .map_err(|_| stopped())?;
        let out = rx.recv().map_err(|_| stopped())??;
        let took = start.elapsed();
        let mut stats = self.shared.stats();
        if let Some(c) = stats.cameras.get_mut(self.camera) {
            c.requests += 1;
            c.images += images as u64;
            c.total += took;
            c.max = c.max.max(took);
        }
        Ok(out)
    }
}

impl Drop for BatcherHandle {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.shared.handles.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// One model's session on its own thread, shared by the cameras (see the module documentation).
/// The thread ends when the batcher and every detector made from it are dropped.
pub struct Batcher {
    tx: Sender<Request>,
    shared: Arc<Shared>,
    /// The model's settings without a session, copied into each camera's detector.
    template: Detector,
    config: BatcherConfig,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("model", &self.template.manifest().model_file)
            .field("config", &self.config)
            .finish()
    }
}

impl Batcher {
    /// Moves `detector`'s session to a new batcher thread. The detector must have its own session
    /// (one loaded with [`Detector::load`]), not be one made by another batcher.
    pub fn new(detector: Detector, config: BatcherConfig) -> Result<Batcher, InferError> {
        let (engine, template) = detector.into_engine()?;
        let name = engine
            .model()
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (tx, shared) = spawn(engine, config, &name)?;
        Ok(Batcher {
            tx,
            shared,
            template,
            config,
        })
    }

    pub fn config(&self) -> BatcherConfig {
        self.config
    }

    /// A detector for `camera` whose inputs run on this batcher: same model, classes and settings as
    /// the detector the batcher was made from. Preprocessing, decoding and NMS run on the caller's
    /// thread.
    pub fn detector(&self, camera: &str) -> Detector {
        self.template.with_handle(self.handle(camera))
    }

    pub(crate) fn handle(&self, camera: &str) -> BatcherHandle {
        handle(&self.tx, &self.shared, camera)
    }

    /// A copy of the metrics so far.
    pub fn stats(&self) -> BatcherStats {
        self.shared.stats().clone()
    }
}

fn handle(tx: &Sender<Request>, shared: &Arc<Shared>, camera: &str) -> BatcherHandle {
    let mut stats = shared.stats();
    stats.cameras.push(CameraLatency {
        camera: camera.to_string(),
        ..CameraLatency::default()
    });
    let index = stats.cameras.len() - 1;
    drop(stats);
    shared.handles.fetch_add(1, Ordering::SeqCst);
    BatcherHandle {
        tx: Some(tx.clone()),
        shared: shared.clone(),
        camera: index,
    }
}

fn spawn<R: RunBatch>(
    runner: R,
    config: BatcherConfig,
    name: &str,
) -> Result<(Sender<Request>, Arc<Shared>), InferError> {
    let (tx, rx) = mpsc::channel();
    let shared = Arc::new(Shared {
        stats: Mutex::new(BatcherStats::default()),
        handles: AtomicUsize::new(0),
    });
    let thread_shared = shared.clone();
    let config = BatcherConfig {
        max_batch: config.max_batch.max(1),
        ..config
    };
    std::thread::Builder::new()
        .name(format!("batch-{name}"))
        .spawn(move || batch_loop(runner, config, rx, &thread_shared))
        .map_err(|e| InferError::Batcher(format!("cannot start the batcher thread: {e}")))?;
    Ok((tx, shared))
}

fn batch_loop<R: RunBatch>(
    mut runner: R,
    config: BatcherConfig,
    rx: Receiver<Request>,
    shared: &Shared,
) {
    // Ends when every sender (the batcher and its handles) is gone.
    while let Ok(first) = rx.recv() {
        let deadline = Instant::now() + config.max_wait;
        let mut images = first.images;
        let mut pending = vec![first];
        while images < config.max_batch && pending.len() < shared.handles.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match rx.recv_timeout(deadline - now) {
                Ok(r) => {
                    images += r.images;
                    pending.push(r);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        bump(&mut shared.stats().gathered_by_size, images);
        run_pending(&mut runner, config.max_batch, pending, shared);
    }
}

/// Runs the gathered requests: those of one input size together, in order of arrival, at most
/// `max_batch` images a run.
fn run_pending<R: RunBatch>(
    runner: &mut R,
    max_batch: usize,
    pending: Vec<Request>,
    shared: &Shared,
) {
    let mut groups: Vec<Vec<Request>> = Vec::new();
    for r in pending {
        match groups.iter_mut().find(|g| (g[0].w, g[0].h) == (r.w, r.h)) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    for group in groups {
        let mut chunk: Vec<Request> = Vec::new();
        let mut images = 0;
        for r in group {
            if !chunk.is_empty() && images + r.images > max_batch {
                run_chunk(runner, std::mem::take(&mut chunk), shared);
                images = 0;
            }
            images += r.images;
            chunk.push(r);
        }
        if !chunk.is_empty() {
            run_chunk(runner, chunk, shared);
        }
    }
}

/// One batch (one run, or one run per image for a fixed-batch model); each request gets its own
/// outputs, or the error.
fn run_chunk<R: RunBatch>(runner: &mut R, chunk: Vec<Request>, shared: &Shared) {
    let (w, h) = (chunk[0].w, chunk[0].h);
    let images: usize = chunk.iter().map(|r| r.images).sum();
    let per_image = 3 * w as usize * h as usize;
    let result = if runner.dynamic_batch() {
        let joined;
        let input: &[f32] = if chunk.len() == 1 {
            &chunk[0].input
        } else {
            joined = chunk
                .iter()
                .flat_map(|r| r.input.iter().copied())
                .collect::<Vec<f32>>();
            &joined
        };
        let out = runner.run(input, images, w, h);
        let mut stats = shared.stats();
        stats.runs += 1;
        stats.images += images as u64;
        bump(&mut stats.runs_by_size, images);
        out
    } else {
        let mut outs = Vec::with_capacity(images);
        let mut failed = None;
        'requests: for r in &chunk {
            for one in r.input.chunks(per_image.max(1)).take(r.images) {
                match runner.run(one, 1, w, h) {
                    Ok(o) => outs.extend(o),
                    Err(e) => {
                        failed = Some(e);
                        break 'requests;
                    }
                }
                let mut stats = shared.stats();
                stats.runs += 1;
                stats.images += 1;
                bump(&mut stats.runs_by_size, 1);
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(outs),
        }
    };
    match result {
        Ok(outs) if outs.len() == images => {
            let mut outs = outs.into_iter();
            for r in chunk {
                let mine: Vec<ImageOutput> = outs.by_ref().take(r.images).collect();
                // A requester that gave up is no error of the others.
                let _ = r.reply.send(Ok(mine));
            }
        }
        Ok(outs) => {
            let message = format!("{} outputs for a batch of {images} images", outs.len());
            for r in chunk {
                let _ = r.reply.send(Err(InferError::Batcher(message.clone())));
            }
        }
        Err(e) => {
            let message = e.to_string();
            for r in chunk {
                let _ = r.reply.send(Err(InferError::Batcher(message.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Echoes each image's first input value as its output, and records the batch sizes it ran.
    struct Echo {
        dynamic: bool,
        sizes: Arc<Mutex<Vec<usize>>>,
        delay: Duration,
    }

    impl RunBatch for Echo {
        fn run(
            &mut self,
            input: &[f32],
            batch: usize,
            _w: u32,
            _h: u32,
        ) -> Result<Vec<ImageOutput>, InferError> {
            self.sizes.lock().unwrap().push(batch);
            std::thread::sleep(self.delay);
            let per = input.len() / batch;
            Ok(input
                .chunks_exact(per)
                .map(|c| (vec![c[0]], vec![1]))
                .collect())
        }

        fn dynamic_batch(&self) -> bool {
            self.dynamic
        }
    }

    struct TestBatcher {
        tx: Sender<Request>,
        shared: Arc<Shared>,
        sizes: Arc<Mutex<Vec<usize>>>,
    }

    fn start(dynamic: bool, max_batch: usize, max_wait: Duration) -> TestBatcher {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let echo = Echo {
            dynamic,
            sizes: sizes.clone(),
            delay: Duration::from_millis(2),
        };
        let (tx, shared) = spawn(
            echo,
            BatcherConfig {
                max_batch,
                max_wait,
            },
            "test",
        )
        .unwrap();
        TestBatcher { tx, shared, sizes }
    }

    /// A 1x1 "image" per value: 3 floats, the first being the value.
    fn images(values: &[f32]) -> Vec<f32> {
        values.iter().flat_map(|&v| [v, 0.0, 0.0]).collect()
    }

    fn firsts(out: Vec<ImageOutput>) -> Vec<f32> {
        out.into_iter().map(|(v, _)| v[0]).collect()
    }

    #[test]
    fn each_camera_gets_its_own_results_in_order() {
        for dynamic in [true, false] {
            let b = start(dynamic, 4, Duration::from_millis(20));
            let cameras: Vec<_> = (0..8)
                .map(|c| handle(&b.tx, &b.shared, &format!("cam{c}")))
                .collect();
            let threads: Vec<_> = cameras
                .into_iter()
                .enumerate()
                .map(|(c, h)| {
                    std::thread::spawn(move || {
                        for frame in 0..20 {
                            let base = (c * 1000 + frame * 10) as f32;
                            // One to three images per request, as two-stage crops send.
                            let n = 1 + (c + frame) % 3;
                            let values: Vec<f32> = (0..n).map(|i| base + i as f32).collect();
                            let out = h.submit(images(&values), n, 1, 1).unwrap();
                            assert_eq!(firsts(out), values, "camera {c} frame {frame}");
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            let stats = b.shared.stats().clone();
            assert_eq!(stats.cameras.len(), 8);
            for c in &stats.cameras {
                assert_eq!(c.requests, 20, "{c:?}");
                assert!(c.max >= c.mean() && c.mean() > Duration::ZERO, "{c:?}");
            }
            let sizes = b.sizes.lock().unwrap().clone();
            let total: usize = sizes.iter().sum();
            assert_eq!(total as u64, stats.images);
            assert_eq!(stats.runs, sizes.len() as u64);
            if dynamic {
                // Requests are never split, so a run holds at most max_batch images unless one
                // request alone is larger (here at most 3).
                assert!(sizes.iter().all(|&n| n <= 4), "{sizes:?}");
                assert!(sizes.iter().any(|&n| n > 1), "no batch formed: {sizes:?}");
            } else {
                assert!(sizes.iter().all(|&n| n == 1), "{sizes:?}");
                assert!(stats.gathered_by_size.iter().skip(2).any(|&n| n > 0));
            }
        }
    }

    #[test]
    fn a_partial_batch_runs_after_max_wait() {
        let wait = Duration::from_millis(150);
        let b = start(true, 8, wait);
        // Two live handles, one request: the batcher waits for the other camera, then gives up.
        let one = handle(&b.tx, &b.shared, "a");
        let _idle = handle(&b.tx, &b.shared, "b");
        let t = Instant::now();
        let out = one.submit(images(&[7.0]), 1, 1, 1).unwrap();
        let took = t.elapsed();
        assert_eq!(firsts(out), vec![7.0]);
        assert!(took >= wait, "ran after {took:?}, before max_wait");
        assert!(took < wait * 10, "ran after {took:?}");
        assert_eq!(*b.sizes.lock().unwrap(), vec![1]);
    }

    #[test]
    fn no_wait_when_every_live_handle_is_waiting() {
        let b = start(true, 8, Duration::from_secs(30));
        let one = handle(&b.tx, &b.shared, "only");
        let t = Instant::now();
        let out = one.submit(images(&[1.0, 2.0]), 2, 1, 1).unwrap();
        assert_eq!(firsts(out), vec![1.0, 2.0]);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn inputs_of_different_sizes_run_apart() {
        let b = start(true, 8, Duration::from_millis(200));
        let small = handle(&b.tx, &b.shared, "small");
        let large = handle(&b.tx, &b.shared, "large");
        let t = std::thread::spawn(move || {
            // 2x1: 6 floats per image.
            let out = large
                .submit(vec![5.0, 0.0, 0.0, 0.0, 0.0, 0.0], 1, 2, 1)
                .unwrap();
            assert_eq!(firsts(out), vec![5.0]);
        });
        let out = small.submit(images(&[3.0]), 1, 1, 1).unwrap();
        assert_eq!(firsts(out), vec![3.0]);
        t.join().unwrap();
        let mut sizes = b.sizes.lock().unwrap().clone();
        sizes.sort();
        assert_eq!(sizes, vec![1, 1]);
    }

    #[test]
    fn a_closed_handle_fails_instead_of_blocking() {
        let e = BatcherHandle::closed()
            .submit(images(&[1.0]), 1, 1, 1)
            .unwrap_err();
        assert!(e.to_string().contains("stopped"), "{e}");
    }
}
