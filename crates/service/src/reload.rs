//! Hot reload: which cameras a new site file starts, stops, restarts or leaves alone.

use roadwarden_rules::{CameraConfig, SiteConfig};
use roadwarden_server::ReloadReport;

/// The change from the `running` cameras (id and the config each runs with, in any order) to `site`'s:
/// cameras only `site` has are added (in the site file's order), cameras it lacks are removed, cameras
/// whose config differs in any key are restarted, the others run on. The lists other than `added` keep
/// the order of `running`. Pure: [`crate::Cameras::apply`] carries it out.
pub fn plan<'a>(
    running: impl IntoIterator<Item = (&'a str, &'a CameraConfig)>,
    site: &SiteConfig,
) -> ReloadReport {
    let mut report = ReloadReport::default();
    let mut seen = Vec::new();
    for (id, config) in running {
        seen.push(id);
        match site.camera(id) {
            None => report.removed.push(id.to_owned()),
            Some(c) if c != config => report.restarted.push(id.to_owned()),
            Some(_) => report.unchanged.push(id.to_owned()),
        }
    }
    report.added = site
        .cameras
        .iter()
        .map(|c| c.id.as_str())
        .filter(|id| !seen.contains(id))
        .map(str::to_owned)
        .collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository's example site, its one camera copied under each id (the first keeps its config,
    /// the others too unless `changed` names them: their analysis rate differs).
    fn site(ids: &[&str], changed: &[&str]) -> SiteConfig {
        let example = SiteConfig::parse(include_str!("../../../examples/site.toml"))
            .expect("examples/site.toml parses");
        let base = &example.cameras[0];
        let cameras = ids
            .iter()
            .map(|id| {
                let mut c = base.clone();
                c.id = (*id).into();
                if changed.contains(id) {
                    c.analysis_fps += 1.0;
                }
                c
            })
            .collect();
        SiteConfig {
            cameras,
            inference: Default::default(),
            nats: None,
        }
    }

    fn running(site: &SiteConfig) -> Vec<(&str, &CameraConfig)> {
        site.cameras.iter().map(|c| (c.id.as_str(), c)).collect()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_first_start_adds_every_camera_in_file_order() {
        let new = site(&["gate", "bridge", "avenue"], &[]);
        let p = plan([], &new);
        assert_eq!(p.added, names(&["gate", "bridge", "avenue"]));
        assert!(p.removed.is_empty() && p.restarted.is_empty() && p.unchanged.is_empty());
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let old = site(&["gate", "bridge"], &[]);
        let p = plan(running(&old), &old.clone());
        assert_eq!(p.unchanged, names(&["gate", "bridge"]));
        assert!(p.added.is_empty() && p.removed.is_empty() && p.restarted.is_empty());
        assert_eq!(
            p.to_string(),
            "added none; removed none; restarted none; unchanged gate, bridge"
        );
    }

    #[test]
    fn new_removed_and_changed_cameras_are_told_apart() {
        let old = site(&["gate", "bridge", "avenue"], &[]);
        let new = site(&["bridge", "avenue", "quay"], &["avenue"]);
        let p = plan(running(&old), &new);
        assert_eq!(p.added, names(&["quay"]));
        assert_eq!(p.removed, names(&["gate"]));
        assert_eq!(p.restarted, names(&["avenue"]));
        assert_eq!(p.unchanged, names(&["bridge"]));
        assert_eq!(
            p.to_string(),
            "added quay; removed gate; restarted avenue; unchanged bridge"
        );
    }

    #[test]
    fn any_changed_key_restarts_the_camera() {
        let old = site(&["gate"], &[]);
        let mut new = old.clone();
        new.cameras[0].stop_line.a[0] += 1.0;
        let p = plan(running(&old), &new);
        assert_eq!(p.restarted, names(&["gate"]));
        assert!(p.added.is_empty() && p.unchanged.is_empty());
    }

    #[test]
    fn removing_every_camera_but_one() {
        let old = site(&["a", "b", "c"], &[]);
        let new = site(&["b"], &[]);
        let p = plan(running(&old), &new);
        assert_eq!(p.removed, names(&["a", "c"]));
        assert_eq!(p.unchanged, names(&["b"]));
    }
}
