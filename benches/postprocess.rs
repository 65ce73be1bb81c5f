//! YOLO output decoding + per-class NMS on the helmet model's output layout (`[6, anchors]`, YOLOv8-style) for
//! the 640x384 rect input (5040 anchors) and the 640x640 square input (8400 anchors): predict settings (best
//! class, threshold 0.25) and `val` settings (multi-label, threshold 0.001, which keeps many more candidates).
//! `cargo bench --bench postprocess`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use roadwarden_infer::{Letterbox, OutputLayout, decode, nms_per_class};

const NC: usize = 2;

/// A synthetic output: 20 objects, each seen by a cluster of nearby anchors with high scores (what NMS
/// collapses), and low background scores elsewhere.
fn output(width: u32, height: u32) -> (Vec<f32>, Vec<usize>) {
    let n: usize = [8u32, 16, 32]
        .iter()
        .map(|s| ((width / s) * (height / s)) as usize)
        .sum();
    let mut seed = 0x9e37_79b9_u32;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed >> 8) as f32 / (1u32 << 24) as f32
    };
    let mut data = vec![0f32; (4 + NC) * n];
    for a in 0..n {
        let obj = a % 250;
        let hot = obj < 12 && a / 250 < 20;
        let (cx, cy) = if hot {
            let k = (a / 250) as f32;
            (30.0 + 29.0 * k + rnd() * 4.0, 40.0 + 13.0 * k + rnd() * 4.0)
        } else {
            (rnd() * width as f32, rnd() * height as f32)
        };
        let vals = [
            cx,
            cy,
            24.0 + rnd() * 4.0,
            28.0 + rnd() * 4.0,
            if hot { 0.5 + 0.4 * rnd() } else { 0.02 * rnd() },
            if hot { 0.3 * rnd() } else { 0.01 * rnd() },
        ];
        for (row, v) in vals.into_iter().enumerate() {
            data[row * n + a] = v;
        }
    }
    (data, vec![4 + NC, n])
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("yolo_decode_nms");
    for (w, h) in [(640u32, 384u32), (640, 640)] {
        let (data, dims) = output(w, h);
        let lb = Letterbox::fit(768, 432, w, h, (h != w).then_some(32));
        assert_eq!((lb.width, lb.height), (w, h));
        for (mode, multi, thr) in [("predict", false, 0.25f32), ("val", true, 0.001)] {
            let keep = move |_c: usize, s: f32| s > thr;
            let name = format!("{mode}_{w}x{h}_{}anchors", dims[1]);
            g.bench_function(&name, |b| {
                b.iter(|| {
                    let cands = decode(
                        OutputLayout::YoloV8,
                        black_box(&data),
                        &dims,
                        NC,
                        &lb,
                        multi,
                        &keep,
                    );
                    black_box(nms_per_class(cands, 0.7, 300))
                });
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
