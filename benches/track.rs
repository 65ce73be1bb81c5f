//! One ByteTrack update (ultralytics `bytetrack.yaml` defaults) with 10 and 100 objects on screen: objects
//! move smoothly (periodic paths, so the sequence cycles without jumps), scores vary above and below the
//! high threshold, and a few detections go missing each frame. `cargo bench --bench track`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use roadwarden_track::{Tracker, TrackerConfig};
use roadwarden_types::{BBox, ClassId, Detection};

const PERIOD: usize = 600;

fn frames(objects: usize) -> Vec<Vec<Detection>> {
    let tau = std::f32::consts::TAU;
    (0..PERIOD)
        .map(|t| {
            let phase = t as f32 / PERIOD as f32 * tau;
            (0..objects)
                .filter(|i| (t + i * 7) % 23 != 0) // a missed detection now and then
                .map(|i| {
                    let fi = i as f32;
                    // A grid of lanes over a 1920x1080 frame, each object on its own ellipse.
                    let bx = 60.0 + (i % 10) as f32 * 180.0;
                    let by = 60.0 + (i / 10) as f32 * 100.0;
                    let cx = bx + 50.0 * (phase * 2.0 + fi).cos();
                    let cy = by + 25.0 * (phase * 3.0 + fi).sin();
                    let score = 0.15 + 0.8 * (0.5 + 0.5 * (phase * 5.0 + fi * 1.3).sin());
                    Detection {
                        bbox: BBox::from_cxcywh(cx, cy, 40.0, 60.0),
                        class_id: ClassId(i % 2),
                        score,
                    }
                })
                .collect()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("bytetrack_update");
    for objects in [10usize, 100] {
        let seq = frames(objects);
        let mut tracker = Tracker::new(TrackerConfig::default());
        // Warm up: tracks confirmed, some lost.
        for f in seq.iter().take(60) {
            tracker.update(f);
        }
        let mut t = 60;
        g.bench_function(
            BenchmarkId::from_parameter(format!("{objects}_objects")),
            |b| {
                b.iter(|| {
                    let out = tracker.update(black_box(&seq[t % PERIOD]));
                    t += 1;
                    black_box(out)
                });
            },
        );
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
