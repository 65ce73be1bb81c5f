//! 50 forced reconnects to a real RTSP server: resident memory and thread count stay flat.
mod common;

use std::time::{Duration, Instant};

use common::*;
use roadwarden_media::sim::{SimCamera, SimConfig};
use roadwarden_media::{CameraSupervisor, SourceConfig};

fn proc_status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn fifty_forced_reconnects_keep_memory_and_threads_flat() {
    let mut c = SimConfig::new(CLIP, free_port());
    c.looping = true;
    let cam = SimCamera::start(c).unwrap();
    let q = queue(8);
    let mut cfg = SourceConfig::rtsp("churn", &cam.url()).unwrap();
    // A connection that comes up silent (seen once on a fresh clone: round 0 stayed `Connecting` for 10 s)
    // is rebuilt by the stall watchdog well inside a round's deadline, as a camera's would be.
    cfg.stall_timeout = Duration::from_secs(3);
    let sup = CameraSupervisor::start(cfg, q.clone()).unwrap();
    let started = Instant::now();
    let mut sessions_seen = 0;
    // A frame from a new session each round proves the reconnect really happened.
    let mut one_round = |i: usize| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            assert!(
                Instant::now() < deadline,
                "round {i}: no frame from a new session; {:?}",
                sup.status()
            );
            if let Some(f) = q.pop_timeout(Duration::from_millis(50))
                && f.session() >= sessions_seen
            {
                sessions_seen = f.session() + 1;
                break;
            }
        }
        while q.try_pop().is_some() {}
        sup.force_reconnect();
    };
    // Warm-up: GStreamer's registry, decoder pools, malloc arenas and the server's first medias settle
    // (RSS plateaus after about 30 reconnects here, 24 threads from the first).
    const WARM_UP: usize = 30;
    for i in 0..WARM_UP {
        one_round(i);
    }
    let rounds: usize = std::env::var("RECONNECT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut rss = Vec::new();
    let mut threads = Vec::new();
    for i in WARM_UP..WARM_UP + rounds {
        one_round(i);
        // Sampled right after draining the queue, so frames in flight do not count.
        rss.push(proc_status("VmRSS:"));
        threads.push(proc_status("Threads:"));
    }
    // RSS swings a few MB with decoder buffers in flight: compare the medians of the first and the last
    // ten rounds.
    let median = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    };
    let (rss0, rss1) = (median(&rss[..10]), median(&rss[rss.len() - 10..]));
    let (threads0, threads1) = (threads[0], *threads.last().unwrap());
    let peak_threads = *threads.iter().max().unwrap();
    let st = sup.status();
    println!("RSS per round (kB): {rss:?}");
    println!(
        "{rounds} reconnects after {WARM_UP} warm-up in {:.1} s: RSS median {rss0} -> {rss1} kB ({:+.1} %), threads {threads0} -> {threads1} (peak {peak_threads}); {st:?}",
        started.elapsed().as_secs_f64(),
        (rss1 as f64 / rss0 as f64 - 1.0) * 100.0
    );
    assert!(st.reconnects as usize >= WARM_UP + rounds - 1, "{st:?}");
    assert!(
        (rss1 as f64) < rss0 as f64 * 1.10,
        "RSS grew {rss0} -> {rss1} kB"
    );
    assert!(
        (peak_threads as f64) < threads0 as f64 * 1.10,
        "threads grew {threads0} -> {peak_threads}"
    );
    sup.stop();
    drop(cam);
}
