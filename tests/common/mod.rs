//! Helpers shared by the integration tests: running the real binary, finding
//! the project's models and the shared footage, making synthetic scenes and a
//! store of recorded violations, users and tokens, `serve` and a tiny HTTP
//! client.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` beside the project: real footage and labels (CI has it too).
pub(crate) fn shared() -> PathBuf {
    root().join("../shared")
}

pub(crate) fn model(name: &str) -> PathBuf {
    root().join("models").join(name)
}

pub(crate) fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

pub(crate) struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    pub(crate) fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The stderr lines that are errors.
    pub(crate) fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect()
    }

    /// A failure the way users should see one: a non-zero exit, exactly one
    /// `error:` line, no panic. Returns that line.
    pub(crate) fn one_line_error(&self) -> &str {
        assert!(
            !self.ok(),
            "expected failure, got success; stdout: {}",
            self.stdout
        );
        assert_eq!(self.code, Some(1), "exit code; stderr: {}", self.stderr);
        assert!(
            !self.stderr.contains("panicked"),
            "panicked: {}",
            self.stderr
        );
        let lines = self.error_lines();
        assert_eq!(
            lines.len(),
            1,
            "expected one error line, got: {}",
            self.stderr
        );
        lines[0]
    }
}

pub(crate) fn roadwarden<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_roadwarden"))
        .args(args)
        .env_remove("ROADWARDEN_ORT_LIB")
        .env_remove("RUST_LOG")
        .output()
        .expect("run roadwarden")
        .into()
}

pub(crate) fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write test file");
}

/// Each line of `text` parsed as JSON.
pub(crate) fn json_lines(text: &str, what: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect(what))
        .collect()
}

/// A rider in a synthetic scene, in the near lane (y = 378) with a 44 px head.
pub(crate) struct Rider {
    pub helmet: bool,
    pub enter_s: f64,
    pub from_x: f64,
    pub speed_px_s: f64,
}

/// A scene file's text: 640x384 at 10 fps over the S2TLD still with the
/// riders' crops, the stop line at x = 420 and the signal head at the top
/// right; `phases` are (at_s, state).
pub(crate) fn scene_text(
    seed: u64,
    duration_s: f64,
    phases: &[(f64, &str)],
    riders: &[Rider],
) -> String {
    let footage = shared().join("footage");
    let mut text = format!(
        r#"seed = {seed}
width = 640
height = 384
fps = 10
duration_s = {duration_s:?}
background = "{bg}"
crops = "{crops}"
stop_line = [[420.0, 384.0], [420.0, 40.0]]
signal_head = [604.0, 10.0, 628.0, 86.0]
grace_s = 0.5
"#,
        bg = footage.join("s2tld-tiles/s2tld_tile_r2c2.png").display(),
        crops = footage.join("riders-roboflow").display(),
    );
    for (at_s, state) in phases {
        text.push_str(&format!(
            "\n[[phase]]\nat_s = {at_s:?}\nstate = \"{state}\"\n"
        ));
    }
    for r in riders {
        text.push_str(&format!(
            "\n[[actor]]\nkind = \"rider\"\nhelmet = {}\nenter_s = {:?}\nlane_y = 378.0\nhead_px = 44.0\nfrom_x = {:?}\nspeed_px_s = {:?}\n",
            r.helmet, r.enter_s, r.from_x, r.speed_px_s
        ));
    }
    text
}

/// Red throughout: one rider without a helmet, from `from_x` at `speed_px_s`.
pub(crate) fn no_helmet_on_red(seed: u64, duration_s: f64, from_x: f64, speed_px_s: f64) -> String {
    let rider = Rider {
        helmet: false,
        enter_s: 0.0,
        from_x,
        speed_px_s,
    };
    scene_text(seed, duration_s, &[(0.0, "red")], &[rider])
}

/// `text` written to `dir/{stem}.toml`.
pub(crate) fn write_scene(dir: &Path, stem: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{stem}.toml"));
    write(&path, text);
    path
}

/// 4 s at 10 fps, red throughout: one rider without a helmet crosses the stop
/// line (a no-helmet and a red-light violation). In `dir/scene.toml`.
pub(crate) fn one_rider_scene(dir: &Path) -> PathBuf {
    write_scene(dir, "scene", &no_helmet_on_red(11, 4.0, 250.0, 120.0))
}

/// `roadwarden synth`, which must succeed.
pub(crate) fn synth(scene: &Path, video: &Path, truth: &Path) {
    let run = roadwarden([
        "synth".as_ref(),
        scene.as_os_str(),
        "--out".as_ref(),
        video.as_os_str(),
        "--truth".as_ref(),
        truth.as_os_str(),
    ]);
    assert!(run.ok(), "{}", run.stderr);
}

/// `synth` of `scene` to `dir/s.mp4`, then `analyze --config examples/site.toml
/// --data dir/data --quiet` on it, which must succeed: the data folder and the run.
pub(crate) fn synth_and_analyze(dir: &Path, scene: &Path) -> (PathBuf, Run) {
    let (video, truth) = (dir.join("s.mp4"), dir.join("s.json"));
    synth(scene, &video, &truth);
    let data = dir.join("data");
    let site = example("site.toml");
    let run = roadwarden([
        "analyze".as_ref(),
        video.as_os_str(),
        "--config".as_ref(),
        site.as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert!(run.ok(), "{}", run.stderr);
    (data, run)
}

/// The store arguments for a data folder.
pub(crate) fn data_args(data: &Path) -> [&OsStr; 2] {
    [OsStr::new("--data"), data.as_os_str()]
}

/// `roadwarden user add NAME --role ROLE --password-stdin STORE...`, `stdin` on its stdin.
pub(crate) fn user_add<S: AsRef<OsStr>>(store: &[S], name: &str, role: &str, stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roadwarden"))
        .args(["user", "add", name, "--role", role, "--password-stdin"])
        .args(store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write password");
    child.wait_with_output().expect("wait").into()
}

/// A user added to the data folder's store, which must succeed.
pub(crate) fn add_user(data: &Path, name: &str, role: &str, password: &str) {
    let r = user_add(&data_args(data), name, role, &format!("{password}\n"));
    assert!(r.ok(), "{}", r.stderr);
}

/// `roadwarden user token NAME [--label LABEL] STORE...`, which must succeed: the token.
pub(crate) fn token<S: AsRef<OsStr>>(store: &[S], name: &str, label: Option<&str>) -> String {
    let mut args: Vec<&OsStr> = vec!["user".as_ref(), "token".as_ref(), name.as_ref()];
    if let Some(label) = label {
        args.extend([OsStr::new("--label"), OsStr::new(label)]);
    }
    args.extend(store.iter().map(|s| s.as_ref()));
    let run = roadwarden(args);
    assert!(run.ok(), "{}", run.stderr);
    run.stdout.trim().to_owned()
}

/// `roadwarden serve --config SITE --listen 127.0.0.1:0`, its stdout piped.
pub(crate) fn serve_command(site: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_roadwarden"));
    cmd.args(["serve", "--config"])
        .arg(site)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped());
    cmd
}

/// The first line of `stdout` (empty at its end), `None` if none came within
/// `within`; the rest is drained.
pub(crate) fn first_line(stdout: ChildStdout, within: Duration) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = BufReader::new(stdout);
        let mut line = String::new();
        let _ = out.read_line(&mut line);
        let _ = tx.send(line);
        let _ = std::io::copy(&mut out, &mut std::io::sink());
    });
    rx.recv_timeout(within).ok()
}

/// `kill -NAME` to the child.
pub(crate) fn signal(child: &Child, name: &str) -> std::io::Result<ExitStatus> {
    Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
}

/// The child's exit status, polled `every` for at most `within`.
pub(crate) fn wait_exit(
    child: &mut Child,
    within: Duration,
    every: Duration,
) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// An HTTP answer: the status, the head, the body; `has_head` where the head ended.
pub(crate) struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
    pub has_head: bool,
}

impl Answer {
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("read")
    }
}

/// One HTTP/1.1 request with `Connection: close`, read within `timeout`.
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    timeout: Duration,
) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(timeout)).expect("timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(i) => (&buf[..i], &buf[i + 4..]),
        None => (&buf[..], &[][..]),
    };
    let head = String::from_utf8_lossy(head).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head,
        body: body.to_vec(),
        has_head: split.is_some(),
    }
}

/// A free TCP port on 127.0.0.1 (bound, read and released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A child killed when the test ends, however it ends.
pub(crate) struct Guard(pub(crate) Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
