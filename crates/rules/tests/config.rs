//! Wrong site configs are refused with a message that names the camera and the key.

use roadwarden_rules::SiteConfig;
use roadwarden_testkit::site::{self, SiteText};

static GOOD: SiteText = SiteText::new(|| {
    site::camera("gate-north")
        .helmet("models/helmet-yolov12m.toml")
        .section(
            "[camera.thresholds]
no_helmet = 0.4",
        )
        .toml()
});

fn refused(text: &str) -> String {
    match SiteConfig::parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_good_config_is_accepted_with_defaults() {
    let site = SiteConfig::parse(&GOOD).unwrap();
    let c = &site.cameras[0];
    assert_eq!(c.id.as_str(), "gate-north");
    assert_eq!(c.red_light.grace_s, 0.5);
    assert_eq!(c.analysis_fps, 5.0);
    assert!(!c.require_two_wheeler());
}

#[test]
fn stop_line_outside_the_frame_names_the_key() {
    let msg = refused(&GOOD.replace("b = [420.0, 40.0]", "b = [700.0, 40.0]"));
    assert!(
        msg.contains("gate-north") && msg.contains("stop_line.b") && msg.contains("outside"),
        "{msg}"
    );
}

#[test]
fn roi_outside_the_frame_names_the_key() {
    let msg = refused(&GOOD.replace("[600.0, 6.0, 632.0, 90.0]", "[600.0, 6.0, 660.0, 90.0]"));
    assert!(
        msg.contains("gate-north") && msg.contains("signal.rois[0]") && msg.contains("outside"),
        "{msg}"
    );
}

#[test]
fn unknown_class_role_names_the_key() {
    let msg = refused(&GOOD.replace("no_helmet = 0.4", "no_helmett = 0.4"));
    assert!(
        msg.contains("gate-north")
            && msg.contains("thresholds.no_helmett")
            && msg.contains("unknown class role"),
        "{msg}"
    );
}

#[test]
fn missing_keys_are_named() {
    let msg = refused(&GOOD.replace(
        "[camera.stop_line]\na = [420.0, 384.0]\nb = [420.0, 40.0]\nbefore = \"left\"\n",
        "",
    ));
    assert!(
        msg.contains("gate-north") && msg.contains("stop_line"),
        "{msg}"
    );
    let msg = refused(&GOOD.replace("frame = [640, 384]\n", ""));
    assert!(
        msg.contains("gate-north") && msg.contains("`frame`"),
        "{msg}"
    );
    let msg = refused(&GOOD.replace("rois = [[600.0, 6.0, 632.0, 90.0]]\n", ""));
    assert!(msg.contains("signal.rois"), "{msg}");
    let msg = refused(&GOOD.replace("id = \"gate-north\"\n", ""));
    assert!(msg.contains("`id`"), "{msg}");
}

#[test]
fn other_mistakes_are_named_too() {
    let msg = refused(&GOOD.replace("before = \"left\"", "before = \"north\""));
    assert!(msg.contains("gate-north") && msg.contains("north"), "{msg}");
    let msg = refused(&format!(
        "{GOOD}[camera.helmet]\nmin_votes = 6\nwindow = 5\n"
    ));
    assert!(msg.contains("helmet.min_votes"), "{msg}");
    let msg = refused(&format!(
        "{GOOD}[camera.helmet]\nrequire_two_wheeler = true\n"
    ));
    assert!(msg.contains("helmet.require_two_wheeler"), "{msg}");
    let msg = refused(&format!("{GOOD}{GOOD}"));
    assert!(msg.contains("twice"), "{msg}");
    assert!(refused("").contains("no [[camera]]"));
}

#[test]
fn camera_ids_must_fit_a_url_path_segment() {
    let msg = refused(&GOOD.replace("id = \"gate-north\"", "id = \"reload\""));
    assert!(msg.contains("`id`") && msg.contains("reserved"), "{msg}");
    for bad in ["gate north", "../etc", "", "gate/north"] {
        let msg = refused(&GOOD.replace("id = \"gate-north\"", &format!("id = \"{bad}\"")));
        assert!(
            msg.contains("`id`") && msg.contains("A-Z a-z 0-9"),
            "{bad}: {msg}"
        );
    }
    assert!(SiteConfig::parse(&GOOD.replace("gate-north", "Gate_North.2")).is_ok());
}

/// `load_checked` (what `config check`, `serve` and a reload share) refuses a site whose model manifest
/// is not there, naming the camera, the key and the path; the same file with the manifest present passes.
#[test]
fn a_missing_model_manifest_is_refused_by_the_shared_check() {
    let dir = std::env::temp_dir().join(format!("rw-rules-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("site.toml");
    // Relative to the site file's folder, where there is no `models/`.
    std::fs::write(&file, &*GOOD).unwrap();
    let loaded = SiteConfig::load(&file).expect("keys and geometry are fine");
    let msg = match SiteConfig::load_checked(&file) {
        Ok(_) => panic!("accepted a missing manifest"),
        Err(e) => e.to_string(),
    };
    let want = dir.join("models/helmet-yolov12m.toml");
    assert!(
        msg.contains("gate-north")
            && msg.contains("models.helmet")
            && msg.contains(&want.display().to_string())
            && msg.contains("does not exist"),
        "{msg}"
    );
    assert!(loaded.check_files().is_err());
    // The repository's manifest, by absolute path: accepted.
    let real = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/helmet-yolov12m.toml"
    );
    std::fs::write(&file, GOOD.replace("models/helmet-yolov12m.toml", real)).unwrap();
    let site = SiteConfig::load_checked(&file).expect("the manifest is there");
    assert_eq!(site.cameras[0].id.as_str(), "gate-north");
    std::fs::remove_dir_all(&dir).unwrap();
}
