//! Static files for the demo pages (`www/`) and the wasm package (`pkg/`).

use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;

/// URL prefixes mapped to folders, longest prefix first.
#[derive(Debug, Default)]
pub(crate) struct StaticFiles {
    mounts: Vec<(String, PathBuf)>,
}

impl StaticFiles {
    pub(crate) fn add(&mut self, prefix: &str, dir: PathBuf) {
        let prefix = format!("/{}", prefix.trim_matches('/'));
        self.mounts.push((prefix, dir));
        self.mounts.sort_by_key(|m| std::cmp::Reverse(m.0.len()));
    }

    /// The response for a file request, or `None` when no file matches.
    pub(crate) async fn serve<B>(&self, request: &Request<B>) -> Option<Response<Full<Bytes>>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return None;
        }
        let path = request.uri().path();
        for (prefix, dir) in &self.mounts {
            let Some(rest) = strip_prefix(path, prefix) else {
                continue;
            };
            let relative = safe_relative(rest)?;
            let mut file = dir.join(relative);
            if tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_dir()) {
                file.push("index.html");
            }
            if let Ok(contents) = tokio::fs::read(&file).await {
                let body = if request.method() == Method::HEAD {
                    Bytes::new()
                } else {
                    Bytes::from(contents)
                };
                let mut response = Response::new(Full::new(body));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type(&file)),
                );
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                *response.status_mut() = StatusCode::OK;
                return Some(response);
            }
        }
        None
    }
}

/// `path` below `prefix`, or `None` when it is not under it.
fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix == "/" {
        return Some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// A URL path as a relative file path, refusing anything that could leave
/// the folder (`..`, absolute parts, percent-encoded separators).
fn safe_relative(url_path: &str) -> Option<PathBuf> {
    if url_path.contains('%') || url_path.contains('\\') || url_path.contains('\0') {
        return None;
    }
    let relative = Path::new(url_path.trim_start_matches('/'));
    relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| relative.to_path_buf())
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("ts" | "txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_folder_are_refused() {
        for bad in ["/../etc/passwd", "/a/../../b", "/%2e%2e/x", "/a\\..\\b"] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
        assert_eq!(
            safe_relative("/js/app.js"),
            Some(PathBuf::from("js/app.js"))
        );
        assert_eq!(safe_relative("/"), Some(PathBuf::new()));
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert_eq!(strip_prefix("/pkg/tandem.js", "/pkg"), Some("/tandem.js"));
        assert_eq!(strip_prefix("/pkgx/a", "/pkg"), None);
        assert_eq!(strip_prefix("/index.html", "/"), Some("/index.html"));
    }
}
