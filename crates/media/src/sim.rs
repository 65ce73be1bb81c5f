//! A simulated RTSP camera: serves a video file over RTSP on 127.0.0.1 with gst-rtsp-server, in real
//! time, without re-encoding; the camera-site stand-in for demos and tests.
//!
//! The file is read by a feeder pipeline at its own frame rate whether or not anyone watches (as a camera
//! would); each RTSP client gets its own media fed from it, starting with the current GOP so it can decode
//! at once. The server runs its own GLib main loop on its own thread. H.264 files only.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_rtsp_server::prelude::*;
use gst_rtsp_server::{RTSPFilterResult, glib};

use crate::bus::BusEnd;
use crate::{MediaError, Template};

/// How to run a [`SimCamera`].
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub file: PathBuf,
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Start the file again at its end (otherwise clients get EOS).
    pub looping: bool,
    /// Kill the server (close every connection, stop listening) this long after it started.
    pub fail_after: Option<Duration>,
    /// Require RTSP basic authentication with this user and password.
    pub credentials: Option<(String, String)>,
}

impl SimConfig {
    pub fn new(file: impl Into<PathBuf>, port: u16) -> SimConfig {
        SimConfig {
            file: file.into(),
            port,
            looping: false,
            fail_after: None,
            credentials: None,
        }
    }
}

/// A running simulated camera. Dropping it stops it.
pub struct SimCamera {
    port: u16,
    stop: Arc<AtomicBool>,
    feed: Arc<Feed>,
    server_thread: Option<JoinHandle<()>>,
    feeder_thread: Option<JoinHandle<()>>,
}

/// The clients' appsrcs and the current GOP, shared by the feeder and the server.
#[derive(Default)]
struct Feed {
    paused: AtomicBool,
    running: AtomicBool,
    state: Mutex<FeedState>,
}

#[derive(Default)]
struct FeedState {
    gop: Vec<gst::Buffer>,
    /// (appsrc, whether it still needs the current GOP first).
    sinks: Vec<(gst_app::AppSrc, bool)>,
}

/// Where clients find the stream: `rtsp://127.0.0.1:PORT/stream`.
pub const MOUNT: &str = "/stream";

impl SimCamera {
    /// `roadwarden sim-camera FILE --port P [--loop] [--fail-after S]` calls this, then [`SimCamera::wait`].
    /// Returns once the server listens.
    pub fn start(config: SimConfig) -> Result<SimCamera, MediaError> {
        crate::init()?;
        if !config.file.is_file() {
            return Err(MediaError::File {
                path: config.file.clone(),
                reason: "no such file".into(),
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let feed = Arc::new(Feed::default());
        feed.running.store(true, Ordering::SeqCst);
        let (tx, rx) = std::sync::mpsc::channel();
        let server_thread = {
            let (stop, feed, config) = (stop.clone(), feed.clone(), config.clone());
            std::thread::Builder::new()
                .name(format!("sim-camera-{}", config.port))
                .spawn(move || serve(config, stop, feed, tx))
                .map_err(|e| MediaError::Sim(e.to_string()))?
        };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = server_thread.join();
                return Err(e);
            }
            Err(_) => return Err(MediaError::Sim("server did not start within 10 s".into())),
        }
        let feeder_thread = {
            let (stop, feed, file, looping) = (
                stop.clone(),
                feed.clone(),
                config.file.clone(),
                config.looping,
            );
            std::thread::Builder::new()
                .name(format!("sim-feeder-{}", config.port))
                .spawn(move || run_feeder(&file, looping, &stop, &feed))
                .map_err(|e| MediaError::Sim(e.to_string()))?
        };
        tracing::info!(port = config.port, file = %config.file.display(), "sim camera listening");
        Ok(SimCamera {
            port: config.port,
            stop,
            feed,
            server_thread: Some(server_thread),
            feeder_thread: Some(feeder_thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtsp://127.0.0.1:PORT/stream`.
    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}{MOUNT}", self.port)
    }

    /// While paused the server stays up and connections stay open, but no video is sent: a stalled camera.
    pub fn set_paused(&self, paused: bool) {
        self.feed.paused.store(paused, Ordering::SeqCst);
    }

    /// False once stopped, failed (`fail_after`) or, without `looping`, past the end of the file.
    pub fn is_running(&self) -> bool {
        self.feed.running.load(Ordering::SeqCst)
            && self
                .server_thread
                .as_ref()
                .is_some_and(|t| !t.is_finished())
    }

    /// Blocks until the camera stops by itself (`fail_after`, end of a non-looping file) or `timeout`.
    pub fn wait(&self, timeout: Option<Duration>) {
        let start = Instant::now();
        while self.is_running() && timeout.is_none_or(|t| start.elapsed() < t) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server: closes every connection, stops listening, joins its threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.server_thread.take() {
            let _ = t.join();
        }
        if let Some(t) = self.feeder_thread.take() {
            let _ = t.join();
        }
        self.feed.state.lock().unwrap().sinks.clear();
    }
}

impl Drop for SimCamera {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(
    config: SimConfig,
    stop: Arc<AtomicBool>,
    feed: Arc<Feed>,
    ready: std::sync::mpsc::Sender<Result<(), MediaError>>,
) {
    let context = glib::MainContext::new();
    let result = context.with_thread_default(|| {
        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&config.port.to_string());
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        factory.set_launch(
            &Template::sim_camera()
                .render(&[])
                .expect("sim-camera template"),
        );
        factory.set_shared(false);
        factory.set_protocols(gst_rtsp_server::gst_rtsp::RTSPLowerTrans::TCP);
        if let Some((user, pass)) = &config.credentials {
            let auth = gst_rtsp_server::RTSPAuth::new();
            let token = gst_rtsp_server::RTSPToken::builder()
                .field(gst_rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
                .build();
            let basic = gst_rtsp_server::RTSPAuth::make_basic(user, pass);
            auth.add_basic(basic.as_str(), &token);
            server.set_auth(Some(&auth));
            factory.add_role_from_structure(
                &gst::Structure::builder("viewer")
                    .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                    .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                    .build(),
            );
        }
        let f = feed.clone();
        factory.connect_media_configure(move |_, media| {
            let element = media.element();
            let Some(src) = element
                .downcast_ref::<gst::Bin>()
                .and_then(|b| b.by_name("src"))
                .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            else {
                tracing::error!("sim camera media has no appsrc named src");
                return;
            };
            let weak = Arc::downgrade(&f);
            let s = src.clone();
            media.connect_unprepared(move |_| {
                if let Some(f) = weak.upgrade() {
                    f.state.lock().unwrap().sinks.retain(|(a, _)| *a != s);
                }
            });
            f.state.lock().unwrap().sinks.push((src, true));
        });
        server
            .mount_points()
            .expect("mount points")
            .add_factory(MOUNT, factory);
        let source = match server.attach(Some(&context)) {
            Ok(id) => id,
            Err(e) => {
                let _ = ready.send(Err(MediaError::Sim(format!(
                    "cannot listen on 127.0.0.1:{}: {e}",
                    config.port
                ))));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let deadline = config.fail_after.map(|d| Instant::now() + d);
        let (ml, srv, stop2) = (main_loop.clone(), server.clone(), stop.clone());
        let timer = glib::timeout_source_new(
            Duration::from_millis(20),
            None,
            glib::Priority::DEFAULT,
            move || {
                let failed = deadline.is_some_and(|d| Instant::now() >= d);
                if stop2.load(Ordering::SeqCst) || failed {
                    if failed {
                        tracing::info!(port = config.port, "sim camera: failing now (fail-after)");
                    }
                    close_everything(&srv);
                    ml.quit();
                    glib::ControlFlow::Break
                } else {
                    glib::ControlFlow::Continue
                }
            },
        );
        timer.attach(Some(&context));
        main_loop.run();
        if let Some(s) = context.find_source_by_id(&source) {
            s.destroy();
        }
        // Let the closed clients' and sessions' sources run so their medias shut down.
        while context.iteration(false) {}
        feed.running.store(false, Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
    });
    if let Err(e) = result {
        let _ = ready.send(Err(MediaError::Sim(format!(
            "cannot own its main context: {e}"
        ))));
    }
}

fn close_everything(server: &gst_rtsp_server::RTSPServer) {
    server.client_filter(Some(&mut |_, client| {
        client.close();
        RTSPFilterResult::Remove
    }));
    if let Some(pool) = server.session_pool() {
        pool.filter(Some(&mut |_, _| RTSPFilterResult::Remove));
    }
}

/// Plays the file into the feed; with `looping`, from its start again at each end, forever (a fresh
/// feeder pipeline per pass: `parsebin` links its pads once, so restarting the same pipeline left its
/// new pads unlinked, "Internal data stream error").
fn run_feeder(file: &Path, looping: bool, stop: &AtomicBool, feed: &Arc<Feed>) {
    let mut passes = 0u64;
    loop {
        let end = feed_once(file, stop, feed);
        passes += 1;
        match end {
            Some(BusEnd::Eos) if looping => {
                tracing::debug!(file = %file.display(), passes, "sim feeder: end of file, again from its start");
            }
            Some(BusEnd::Eos) => {
                for (src, _) in feed.state.lock().unwrap().sinks.iter() {
                    let _ = src.end_of_stream();
                }
                feed.running.store(false, Ordering::SeqCst);
                return;
            }
            Some(BusEnd::Error(e)) => {
                tracing::error!(file = %file.display(), error = %e, "sim feeder failed");
                feed.running.store(false, Ordering::SeqCst);
                return;
            }
            None => return,
        }
    }
}

/// One pass over the file; `None` when stopped (or the pipeline could not be built, logged).
fn feed_once(file: &Path, stop: &AtomicBool, feed: &Arc<Feed>) -> Option<BusEnd> {
    let text = match Template::sim_feeder().render(&[("location", &file.to_string_lossy())]) {
        Ok(t) => t,
        Err(e) => {
            return Some(BusEnd::Error(format!("sim feeder: {e}")));
        }
    };
    let pipeline = match gst::parse::launch(&text).map(|p| p.downcast::<gst::Pipeline>()) {
        Ok(Ok(p)) => p,
        _ => {
            return Some(BusEnd::Error(format!(
                "sim feeder: cannot build its pipeline for {}",
                file.display()
            )));
        }
    };
    let Some(sink) = pipeline
        .by_name("au")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
    else {
        return Some(BusEnd::Error("sim feeder: no appsink named au".into()));
    };
    let f = feed.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                let buffer = sample.buffer_owned().ok_or(gst::FlowError::Error)?;
                f.push(buffer);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let bus = pipeline.bus()?;
    let _ = pipeline.set_state(gst::State::Playing);
    let mut end = None;
    while !stop.load(Ordering::SeqCst) {
        if let Some(e) = crate::bus::next_end(&bus, Duration::from_millis(50)) {
            end = Some(e);
            break;
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    end
}

impl Feed {
    fn push(&self, buffer: gst::Buffer) {
        let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        // appsrc (do-timestamp) stamps each buffer as it goes out, so the stream's clock keeps running
        // across loops and for clients that join late.
        let mut b = buffer.copy();
        {
            let m = b.get_mut().unwrap();
            m.set_pts(gst::ClockTime::NONE);
            m.set_dts(gst::ClockTime::NONE);
            m.unset_flags(gst::BufferFlags::DISCONT);
        }
        let mut st = self.state.lock().unwrap();
        if key {
            st.gop.clear();
        }
        if st.gop.is_empty() && !key {
            return;
        }
        st.gop.push(b.clone());
        if self.paused.load(Ordering::SeqCst) {
            // Stalled: every client must start over from a key frame when video comes back.
            for s in st.sinks.iter_mut() {
                s.1 = true;
            }
            return;
        }
        let FeedState { gop, sinks } = &mut *st;
        for (src, needs_gop) in sinks.iter_mut() {
            let r = if *needs_gop {
                gop.iter()
                    .try_for_each(|g| src.push_buffer(g.clone()).map(|_| ()))
            } else {
                src.push_buffer(b.clone()).map(|_| ())
            };
            // Flushing: the client's media is not started yet (or is going away; its `unprepared`
            // handler forgets it). Either way it starts from the current GOP next time.
            *needs_gop = r.is_err();
        }
    }
}
