//! Keeping RTSP credentials out of logs and errors.
//!
//! A camera URL `rtsp://user:pass@host/path` is split once, when its config is made: the pipeline gets the
//! URL without credentials plus `user-id`/`user-pw` properties, and everything printed uses
//! [`redact_url`]. Strings that come back from GStreamer go through [`Redactor::clean`] as well.

/// `rtsp://user:pass@host/path` → `rtsp://user:***@host/path`; URLs without a password are returned as-is.
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(['/', ' ', '"', '\'', '\n']).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The parts of a camera URL: where to connect, and the credentials to hand the source separately.
#[derive(Clone, PartialEq, Eq)]
pub struct UrlParts {
    /// The URL without any `user:pass@`.
    pub location: String,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for UrlParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlParts")
            .field("location", &self.location)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Splits the credentials off a URL (percent-decoding them).
pub fn split_url(url: &str) -> UrlParts {
    let Some(i) = url.find("://") else {
        return UrlParts {
            location: url.to_owned(),
            user: None,
            password: None,
        };
    };
    let tail = &url[i + 3..];
    let end = tail.find('/').unwrap_or(tail.len());
    let authority = &tail[..end];
    match authority.rfind('@') {
        None => UrlParts {
            location: url.to_owned(),
            user: None,
            password: None,
        },
        Some(at) => {
            let userinfo = &authority[..at];
            let (user, password) = match userinfo.find(':') {
                Some(c) => (&userinfo[..c], Some(percent_decode(&userinfo[c + 1..]))),
                None => (userinfo, None),
            };
            UrlParts {
                location: format!("{}{}{}", &url[..i + 3], &authority[at + 1..], &tail[end..]),
                user: Some(percent_decode(user)),
                password,
            }
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Scrubs a known secret (and anything shaped like `://user:pass@`) out of text from elsewhere, e.g.
/// GStreamer error messages.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    pub fn new(secret: Option<&str>) -> Self {
        let mut secrets = Vec::new();
        if let Some(s) = secret.filter(|s| !s.is_empty()) {
            secrets.push(s.to_owned());
            let encoded = percent_encode(s);
            if encoded != s {
                secrets.push(encoded);
            }
        }
        Redactor { secrets }
    }

    pub fn clean(&self, text: &str) -> String {
        let mut out = redact_url(text);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("rtsp://admin:hunter2@10.0.0.5:554/Streaming/101"),
            "rtsp://admin:***@10.0.0.5:554/Streaming/101"
        );
        assert_eq!(redact_url("rtsp://10.0.0.5/x"), "rtsp://10.0.0.5/x");
        assert_eq!(
            redact_url("error opening rtsp://a:b@h/x and rtsp://c:d@e"),
            "error opening rtsp://a:***@h/x and rtsp://c:***@e"
        );
        let p = split_url("rtsp://ad%40m:p%3Ass@h:8554/cam");
        assert_eq!(p.location, "rtsp://h:8554/cam");
        assert_eq!(p.user.as_deref(), Some("ad@m"));
        assert_eq!(p.password.as_deref(), Some("p:ss"));
        assert!(!format!("{p:?}").contains("p:ss"));
        let r = Redactor::new(Some("p:ss"));
        assert_eq!(
            r.clean("bad password p:ss / p%3Ass"),
            "bad password *** / ***"
        );
    }
}
