use std::path::Path;

use crate::MediaError;

/// A GStreamer pipeline description with `@name@` placeholders (`@` never appears in GStreamer's own
/// syntax, unlike `{}` in caps). The built-in ones are the files in the workspace's `pipelines/` folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    name: String,
    text: String,
}

impl Template {
    /// Reads a copy of the pipelines in `pipelines/` (e.g. one a site edited).
    pub fn load(path: &Path) -> Result<Template, MediaError> {
        let text = std::fs::read_to_string(path).map_err(|e| MediaError::Template {
            template: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Template {
            name: path.display().to_string(),
            text,
        })
    }

    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Template {
        Template {
            name: name.into(),
            text: text.into(),
        }
    }

    /// `pipelines/file.txt`: a local MP4/MKV/TS file with H.264 or H.265 video.
    pub fn file() -> Template {
        Template::new(
            "pipelines/file.txt",
            include_str!("../../../pipelines/file.txt"),
        )
    }

    /// `pipelines/rtsp.txt`: an RTSP camera.
    pub fn rtsp() -> Template {
        Template::new(
            "pipelines/rtsp.txt",
            include_str!("../../../pipelines/rtsp.txt"),
        )
    }

    pub(crate) fn sim_camera() -> Template {
        Template::new(
            "pipelines/sim-camera.txt",
            include_str!("../../../pipelines/sim-camera.txt"),
        )
    }

    pub(crate) fn sim_feeder() -> Template {
        Template::new(
            "pipelines/sim-feeder.txt",
            include_str!("../../../pipelines/sim-feeder.txt"),
        )
    }

    pub(crate) fn clip() -> Template {
        Template::new(
            "pipelines/clip.txt",
            include_str!("../../../pipelines/clip.txt"),
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Fills every placeholder. Values are escaped for use inside double quotes; a placeholder left without a
    /// value, or a value given for none, is an error.
    pub fn render(&self, vars: &[(&str, &str)]) -> Result<String, MediaError> {
        let err = |reason: String| MediaError::Template {
            template: self.name.clone(),
            reason,
        };
        let mut out = String::with_capacity(self.text.len() + 64);
        let mut rest = self.text.as_str();
        let mut used = vec![false; vars.len()];
        while let Some(start) = rest.find('@') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('@') else {
                return Err(err("unpaired '@'".into()));
            };
            let key = &after[..end];
            let Some(i) = vars.iter().position(|(k, _)| *k == key) else {
                return Err(err(format!("placeholder @{key}@ has no value")));
            };
            used[i] = true;
            for c in vars[i].1.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        if let Some(i) = used.iter().position(|u| !u) {
            return Err(err(format!("has no placeholder @{}@", vars[i].0)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_checked() {
        let t = Template::new(
            "t",
            "filesrc location=\"@location@\" ! @decoder@ ! fakesink",
        );
        let s = t
            .render(&[("location", "/a \"b\".mp4"), ("decoder", "avdec_h264")])
            .unwrap();
        assert_eq!(
            s,
            "filesrc location=\"/a \\\"b\\\".mp4\" ! avdec_h264 ! fakesink"
        );
        assert!(t.render(&[("location", "x")]).is_err());
        assert!(
            t.render(&[("location", "x"), ("decoder", "d"), ("extra", "e")])
                .is_err()
        );
        for t in [
            Template::file(),
            Template::rtsp(),
            Template::sim_camera(),
            Template::sim_feeder(),
            Template::clip(),
        ] {
            assert!(!t.text.is_empty(), "{}", t.name);
        }
    }
}
