//! The console function: the browser console's static files, embedded in the
//! binary and served at `/console/` (under any API Gateway stage).
//!
//! The console is plain HTML, CSS and JavaScript that talks only to the
//! public API at `../elements/api-v2`, on the same origin. This crate knows
//! nothing of the API: it maps a path to a file. That keeps the function a
//! few hundred kilobytes, apart from the instances function and its 8 MB
//! budget (docs/benchmarks.md), and lets the local runner serve the same
//! bytes through [`serve`].

/// Where the console is mounted, below any stage or base path.
pub const MOUNT: &str = "/console";

/// One embedded file.
struct File {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! files {
    ($(($name:literal, $type:expr)),* $(,)?) => {
        &[$(File { name: $name, content_type: $type, body: include_str!(concat!("../assets/", $name)) }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

const FILES: &[File] = files![
    ("index.html", "text/html; charset=utf-8"),
    ("console.css", "text/css; charset=utf-8"),
    ("elements.json", "application/json"),
    ("api.js", JS),
    ("app.js", JS),
    ("chart.js", JS),
    ("dom.js", JS),
    ("events.js", JS),
    ("forms.js", JS),
    ("instances.js", JS),
];

/// The browser may talk to this origin only (the API), run only our own
/// scripts and styles, and never be framed. This is what keeps the console
/// free of any network call beyond the API, whatever a bug in it might try.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; \
     frame-ancestors 'none'; base-uri 'none'";

/// What to answer. Bodies are borrowed from the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// For the redirect from `/console` to `/console/index.html`.
    pub location: Option<&'static str>,
    pub etag: Option<String>,
}

impl Reply {
    /// Every header of the reply, security headers included.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("content-type", self.content_type.to_string()),
            // Revalidate each time (ETag makes that a 304): a deploy is seen at once.
            ("cache-control", "no-cache".to_string()),
            (
                "content-security-policy",
                CONTENT_SECURITY_POLICY.to_string(),
            ),
            ("x-content-type-options", "nosniff".to_string()),
            // The API is called with secrets in headers; never leak the URL onward.
            ("referrer-policy", "no-referrer".to_string()),
            ("x-frame-options", "DENY".to_string()),
        ];
        if let Some(location) = self.location {
            headers.push(("location", location.to_string()));
        }
        if let Some(etag) = &self.etag {
            headers.push(("etag", etag.clone()));
        }
        headers
    }
}

fn plain(status: u16, text: &'static str) -> Reply {
    Reply {
        status,
        content_type: "text/plain; charset=utf-8",
        body: text.as_bytes(),
        location: None,
        etag: None,
    }
}

/// Is this request for the console (rather than the API)?
pub fn is_console_path(path: &str) -> bool {
    below_mount(path).is_some()
}

/// The part of `path` after `/console`, if the path is the console's. The
/// mount may follow a stage (`/Prod/console/…`), never the API prefix.
fn below_mount(path: &str) -> Option<&str> {
    let at = path.find(MOUNT)?;
    if path[..at].contains("/elements/") {
        return None;
    }
    let rest = &path[at + MOUNT.len()..];
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// FNV-1a, at compile time or not: a strong enough validator for our own files.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Answers one request: `method` and the request `path` as received, and the
/// `If-None-Match` header if any.
pub fn serve(method: &str, path: &str, if_none_match: Option<&str>) -> Reply {
    let Some(rest) = below_mount(path) else {
        return plain(404, "not found\n");
    };
    if method != "GET" && method != "HEAD" {
        return plain(405, "the console is read-only: GET or HEAD\n");
    }
    if rest.is_empty() {
        // Relative, so it works under any stage (/Prod/console →
        // /Prod/console/index.html), and to a file, since an HTTP API route
        // `/console/{proxy+}` does not match an empty remainder.
        return Reply {
            location: Some("console/index.html"),
            ..plain(308, "moved to console/index.html\n")
        };
    }
    let name = match rest.trim_start_matches('/') {
        "" => "index.html",
        name => name,
    };
    let Some(file) = FILES.iter().find(|f| f.name == name) else {
        return plain(404, "no such console file\n");
    };
    let etag = format!("\"{:016x}\"", fnv1a(file.body.as_bytes()));
    if if_none_match.is_some_and(|given| given.split(',').any(|t| t.trim() == etag)) {
        return Reply {
            status: 304,
            content_type: file.content_type,
            body: b"",
            location: None,
            etag: Some(etag),
        };
    }
    Reply {
        status: 200,
        content_type: file.content_type,
        body: if method == "HEAD" {
            b""
        } else {
            file.body.as_bytes()
        },
        location: None,
        etag: Some(etag),
    }
}

/// The element catalog the forms are built from (`assets/elements.json`),
/// for the test that keeps it in step with the service's own catalog.
pub fn elements_json() -> &'static str {
    FILES
        .iter()
        .find(|f| f.name == "elements.json")
        .map(|f| f.body)
        .unwrap_or("{}")
}

/// Bytes embedded, for docs/benchmarks.md.
pub fn embedded_bytes() -> usize {
    FILES.iter().map(|f| f.body.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_index_under_any_stage_and_redirects_the_bare_mount() {
        for path in ["/console/", "/Prod/console/"] {
            let r = serve("GET", path, None);
            assert_eq!(r.status, 200);
            assert!(r.content_type.starts_with("text/html"));
            assert!(std::str::from_utf8(r.body).unwrap().contains("<main"));
        }
        let r = serve("GET", "/console", None);
        assert_eq!((r.status, r.location), (308, Some("console/index.html")));
        assert_eq!(serve("GET", "/console/index.html", None).status, 200);
    }

    #[test]
    fn serves_each_file_with_its_type_and_an_etag() {
        let r = serve("GET", "/console/app.js", None);
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, JS);
        let etag = r.etag.clone().unwrap();
        assert_eq!(serve("GET", "/console/app.js", Some(&etag)).status, 304);
        assert_eq!(serve("HEAD", "/console/app.js", None).body, b"");
        assert!(r
            .headers()
            .iter()
            .any(|(k, v)| *k == "content-security-policy" && v.contains("connect-src 'self'")));
    }

    #[test]
    fn refuses_what_is_not_a_console_file() {
        assert_eq!(serve("GET", "/console/../Cargo.toml", None).status, 404);
        assert_eq!(serve("GET", "/console/nope.js", None).status, 404);
        assert_eq!(serve("POST", "/console/", None).status, 405);
        assert!(!is_console_path("/elements/api-v2/instances"));
        assert!(!is_console_path("/elements/api-v2/console"));
        assert!(!is_console_path("/consoles"));
        assert!(is_console_path("/Prod/console/app.js"));
    }

    #[test]
    fn every_script_the_page_loads_is_embedded() {
        let index = std::str::from_utf8(serve("GET", "/console/", None).body).unwrap();
        for js in [
            "api.js",
            "app.js",
            "chart.js",
            "dom.js",
            "events.js",
            "forms.js",
            "instances.js",
        ] {
            let body =
                std::str::from_utf8(serve("GET", &format!("/console/{js}"), None).body).unwrap();
            assert!(!body.is_empty(), "{js}");
            // Modules come from here only (the CSP enforces it too).
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                assert!(line.contains("from './"), "{js}: {line}");
            }
            assert!(
                !body.contains("fetch('http"),
                "{js} fetches a remote origin"
            );
        }
        assert!(index.contains("app.js"));
        assert!(!index.contains("http"), "the page loads nothing remote");
    }
}
