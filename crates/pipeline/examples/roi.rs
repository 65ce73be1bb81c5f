//! Looks at a signal-head ROI by hand: `roi IMAGE x1 y1 x2 y2 [OUT.png [SCALE]]` prints the lamp
//! classifier's reading of the ROI and, with OUT, writes the ROI (plus a margin of half its size) enlarged
//! SCALE times (default 8) with the ROI outlined, so a person can check that the ROI holds the lamp.

use roadwarden_imaging::{BgrImage, LampClassifier};
use roadwarden_types::BBox;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        return Err("usage: roi IMAGE x1 y1 x2 y2 [OUT.png [SCALE]]".into());
    }
    let img = BgrImage::read(std::path::Path::new(&args[1]))?;
    let v: Vec<f32> = args[2..6]
        .iter()
        .map(|s| s.parse::<f32>())
        .collect::<Result<_, _>>()?;
    let roi = BBox::new(v[0], v[1], v[2], v[3]);
    let mut lc = LampClassifier::default();
    if let Some(v) = std::env::var("LAMP_SAT").ok().and_then(|v| v.parse().ok()) {
        lc.min_saturation = v;
    }
    if let Some(v) = std::env::var("LAMP_RED").ok().and_then(|v| v.parse().ok()) {
        lc.red_max_hue = v;
    }
    let r = lc.classify(&img.view(), &roi)?;
    println!(
        "{} {}x{} roi {:?}: {:?}",
        args[1],
        img.width(),
        img.height(),
        v,
        r
    );
    if std::env::var_os("ROI_DUMP").is_some() {
        // H (0..180, as OpenCV) S V of every pixel, one row of the ROI per line.
        let crop = img.crop(&roi)?;
        let bytes = crop.to_bgr_bytes();
        for row in bytes.chunks_exact(3 * crop.width() as usize) {
            let line: Vec<String> = row
                .chunks_exact(3)
                .map(|p| {
                    let (b, g, r) = (p[0] as f32, p[1] as f32, p[2] as f32);
                    let (mx, mn) = (r.max(g).max(b), r.min(g).min(b));
                    let d = mx - mn;
                    let h = if d == 0.0 {
                        0.0
                    } else if mx == r {
                        60.0 * ((g - b) / d).rem_euclid(6.0)
                    } else if mx == g {
                        60.0 * ((b - r) / d + 2.0)
                    } else {
                        60.0 * ((r - g) / d + 4.0)
                    };
                    let s = if mx == 0.0 { 0.0 } else { 255.0 * d / mx };
                    format!("{:3.0}/{:3.0}/{:3.0}", h / 2.0, s, mx)
                })
                .collect();
            println!("{}", line.join(" "));
        }
    }
    if let Some(out) = args.get(6) {
        let k: u32 = args.get(7).map(|s| s.parse()).transpose()?.unwrap_or(8);
        let (mw, mh) = (roi.width() / 2.0, roi.height() / 2.0);
        let view = BBox::new(roi.x1 - mw, roi.y1 - mh, roi.x2 + mw, roi.y2 + mh)
            .clip(img.width() as f32, img.height() as f32);
        let view = BBox::new(
            view.x1.floor(),
            view.y1.floor(),
            view.x2.ceil(),
            view.y2.ceil(),
        );
        let crop = img.crop(&view)?;
        let mut big = crop.resized(crop.width() * k, crop.height() * k)?;
        let kf = k as f32;
        big.draw_box(
            &BBox::new(
                (roi.x1 - view.x1) * kf,
                (roi.y1 - view.y1) * kf,
                (roi.x2 - view.x1) * kf,
                (roi.y2 - view.y1) * kf,
            ),
            "",
            [255, 0, 255],
        )?;
        big.write(std::path::Path::new(out))?;
        println!("wrote {out} (view {view:?}, x{k})");
    }
    Ok(())
}
