//! A contact sheet for looking at many photos at once: `contact OUT.png COLS THUMB_W IMAGE...` tiles the
//! images as THUMB_W-wide thumbnails (in the order given), each numbered in its corner.

use roadwarden_imaging::BgrImage;
use roadwarden_types::BBox;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err("usage: contact OUT.png COLS THUMB_W IMAGE...".into());
    }
    let cols: u32 = args[2].parse()?;
    let tw: u32 = args[3].parse()?;
    let files = &args[4..];
    let mut thumbs = Vec::new();
    for f in files {
        let img = BgrImage::read(std::path::Path::new(f))?;
        let th = (img.height() as f32 * tw as f32 / img.width() as f32).round() as u32;
        thumbs.push(img.resized(tw, th.max(1))?);
    }
    let th = thumbs.iter().map(|t| t.height()).max().unwrap_or(1);
    let rows = (thumbs.len() as u32).div_ceil(cols);
    let mut sheet = BgrImage::filled(cols * tw, rows * th, [0, 0, 0])?;
    for (i, t) in thumbs.iter().enumerate() {
        let (x, y) = ((i as u32 % cols) * tw, (i as u32 / cols) * th);
        sheet.paste(t, x as i32, y as i32)?;
        sheet.fill_rect(
            &BBox::new(x as f32, y as f32, x as f32 + 26.0, y as f32 + 14.0),
            [0, 0, 0],
        )?;
        sheet.put_text(
            &i.to_string(),
            (x as f32 + 2.0, y as f32 + 11.0),
            0.4,
            [255, 255, 255],
        )?;
    }
    sheet.write(std::path::Path::new(&args[1]))?;
    Ok(())
}
