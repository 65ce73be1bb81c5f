//! Letterbox preprocessing straight from the decoder's native formats (I420 and NV12 planes) into the
//! helmet model's NCHW float input: the rect input a 768x432 camera gets (640x384) and ultralytics' square
//! validation input (640x640). `cargo bench --bench preprocess`.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use roadwarden_infer::{Letterbox, Manifest, fill_input};
use roadwarden_types::{ImageView, Plane};

const W: u32 = 768;
const H: u32 = 432;

/// A deterministic frame with structure (gradients) and noise, like decoded video.
fn planes() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut seed = 0x2545_f491_u32;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed & 15) as u8
    };
    let (w, h) = (W as usize, H as usize);
    let y: Vec<u8> = (0..w * h)
        .map(|i| (16 + (i % w) * 200 / w + (i / w) * 20 / h) as u8 + noise())
        .collect();
    let u: Vec<u8> = (0..w * h / 4).map(|i| (96 + (i % 64)) as u8).collect();
    let v: Vec<u8> = (0..w * h / 4).map(|i| (160 - (i % 48)) as u8).collect();
    (y, u, v)
}

fn bench(c: &mut Criterion) {
    let manifest_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/helmet-yolov12m.toml");
    let manifest = Manifest::load(&manifest_path).expect("models/helmet-yolov12m.toml loads");
    let spec = manifest.input.clone();
    let (y, u, v) = planes();
    let uv: Vec<u8> = u.iter().zip(&v).flat_map(|(&a, &b)| [a, b]).collect();
    let w = W as usize;
    let i420 = ImageView::i420(
        W,
        H,
        Plane {
            data: &y,
            stride: w,
        },
        Plane {
            data: &u,
            stride: w / 2,
        },
        Plane {
            data: &v,
            stride: w / 2,
        },
    )
    .expect("valid I420 planes");
    let nv12 = ImageView::nv12(
        W,
        H,
        Plane {
            data: &y,
            stride: w,
        },
        Plane {
            data: &uv,
            stride: w,
        },
    )
    .expect("valid NV12 planes");

    let rect = Letterbox::fit(W, H, 640, 640, Some(32));
    let square = Letterbox::fit(W, H, 640, 640, None);
    assert_eq!(
        (rect.width, rect.height),
        (640, 384),
        "rect letterbox of 768x432"
    );

    let mut g = c.benchmark_group("letterbox_768x432");
    g.throughput(Throughput::Elements(1));
    for (name, img, lb) in [
        ("i420_rect_640x384", &i420, &rect),
        ("nv12_rect_640x384", &nv12, &rect),
        ("i420_square_640x640", &i420, &square),
    ] {
        let mut out = vec![0f32; 3 * (lb.width * lb.height) as usize];
        g.bench_function(name, |b| {
            b.iter(|| fill_input(black_box(img), lb, &spec, &mut out));
        });
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
