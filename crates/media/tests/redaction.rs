//! An RTSP URL with a password never shows the password in captured logs or in error strings.
mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use roadwarden_media::sim::{SimCamera, SimConfig};
use roadwarden_media::{CameraState, CameraSupervisor, SourceConfig};

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn passwords_stay_out_of_logs_and_errors() {
    let logs = Buf::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    const GOOD: &str = "s3cr3t-Pa55";
    const WRONG: &str = "wr0ng-Pa55";
    const CLOSED: &str = "cl0sed-Pa55";
    let port = free_port();
    let mut c = SimConfig::new(CLIP, port);
    c.looping = true;
    c.credentials = Some(("viewer".into(), GOOD.into()));
    let cam = SimCamera::start(c).unwrap();

    let fast = |cfg: &mut SourceConfig| {
        cfg.backoff_min = Duration::from_millis(100);
        cfg.backoff_max = Duration::from_millis(300);
        cfg.stall_timeout = Duration::from_secs(3);
    };
    let mut good = SourceConfig::rtsp(
        "good",
        &format!("rtsp://viewer:{GOOD}@127.0.0.1:{port}/stream"),
    )
    .unwrap();
    let mut wrong = SourceConfig::rtsp(
        "wrong",
        &format!("rtsp://viewer:{WRONG}@127.0.0.1:{port}/stream"),
    )
    .unwrap();
    let closed_port = free_port();
    let mut closed = SourceConfig::rtsp(
        "closed",
        &format!("rtsp://viewer:{CLOSED}@127.0.0.1:{closed_port}/stream"),
    )
    .unwrap();
    for cfg in [&mut good, &mut wrong, &mut closed] {
        fast(cfg);
        let printed = format!("{cfg:?} {}", cfg.describe());
        assert!(!printed.contains("Pa55"), "{printed}");
        assert!(
            cfg.describe().contains("viewer:***@127.0.0.1"),
            "{}",
            cfg.describe()
        );
    }
    let (qg, qw, qc) = (queue(4), queue(4), queue(4));
    let good = CameraSupervisor::start(good, qg.clone()).unwrap();
    let wrong = CameraSupervisor::start(wrong, qw).unwrap();
    let closed = CameraSupervisor::start(closed, qc).unwrap();

    // The right password gets video (so credentials really reach the camera); the others fail and retry.
    assert!(
        qg.pop_timeout(Duration::from_secs(10)).is_some(),
        "{:?}",
        good.status()
    );
    assert!(
        wait_for(Duration::from_secs(10), || wrong.status().reconnects >= 2
            && closed.status().reconnects >= 2)
        .is_some()
    );
    assert_eq!(good.status().state, CameraState::Streaming);
    let mut errors = Vec::new();
    for sup in [&wrong, &closed] {
        let st = sup.status();
        let e = st.last_error.clone().expect("an error is reported");
        println!("{}: {e}", sup.camera());
        errors.push(format!("{e} {st:?}"));
    }
    assert!(
        errors[0].contains("Unauthorized") || errors[0].contains("authoriz"),
        "{}",
        errors[0]
    );
    let bad_url = SourceConfig::rtsp("x", &format!("http://viewer:{GOOD}@h/"))
        .err()
        .unwrap()
        .to_string();
    errors.push(bad_url);

    good.stop();
    wrong.stop();
    closed.stop();
    drop(cam);
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("viewer:***@127.0.0.1"),
        "the logs do name the camera"
    );
    assert!(logs.lines().count() > 10);
    for secret in [GOOD, WRONG, CLOSED] {
        assert!(
            !logs.contains(secret),
            "password {secret} in the logs:\n{logs}"
        );
        for e in &errors {
            assert!(!e.contains(secret), "password {secret} in an error: {e}");
        }
    }
    println!("{} log lines, none with a password", logs.lines().count());
}
