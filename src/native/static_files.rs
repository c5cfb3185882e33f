//! Static files for the demo pages (`www/`) and the wasm package (`pkg/`),
//! served by tower-http's `ServeDir`: streamed from disk in chunks, `HEAD`
//! without a body, byte ranges, `304 Not Modified` on `If-Modified-Since`
//! and `If-None-Match`, and a precompressed `FILE.br` or `FILE.gz` next to a
//! file sent in its place to clients that accept it.
//!
//! On top of `ServeDir`, every file is confined to its folder, checked as
//! it is opened (so a link made while the server runs is checked too):
//! a path with a segment that starts with `.` (`.git/`, `.env`) is not
//! served, and neither is a path that resolves, through symbolic links,
//! outside the folder. Every response carries
//! `X-Content-Type-Options: nosniff`, so a browser never runs a file as
//! another type than its extension says, and `Cache-Control: no-cache`, so
//! a rebuilt page or wasm package is never taken stale from a cache (it is
//! revalidated: a `304` when unchanged).

use std::future::Future;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri};
use tower_http::services::fs::{Backend, TokioBackend, TokioFile};
use tower_http::services::ServeDir;

/// The body of a file response: the file's bytes, read as they are sent.
pub(crate) type FileBody = tower_http::services::fs::ServeFileSystemResponseBody;

type ConfinedServeDir = ServeDir<tower_http::services::fs::DefaultServeDirFallback, Confined>;

/// URL prefixes mapped to folders, longest prefix first.
#[derive(Debug, Default)]
pub(crate) struct StaticFiles {
    mounts: Vec<Mount>,
}

#[derive(Debug)]
struct Mount {
    /// `/` or `/name` without a trailing slash.
    prefix: String,
    files: ConfinedServeDir,
}

impl StaticFiles {
    pub(crate) fn add(&mut self, prefix: &str, dir: PathBuf) {
        let prefix = format!("/{}", prefix.trim_matches('/'));
        // Absolute, as the paths `ServeDir` asks for are compared with it:
        // a relative folder ("www", the demo's) would match none of them.
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let backend = Confined {
            root: Arc::from(dir.as_path()),
        };
        let files = ServeDir::with_backend(dir, backend)
            // A folder without its trailing slash is redirected to it, so
            // that relative links in its index.html resolve inside it.
            .redirect_path_prefix(prefix.trim_end_matches('/'))
            .precompressed_br()
            .precompressed_gzip();
        self.mounts.push(Mount { prefix, files });
        self.mounts
            .sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
    }

    /// The response for a file request, `None` when no file matches (the
    /// caller answers 404), or the error that kept an existing file from
    /// being read.
    pub(crate) async fn serve<B>(
        &self,
        request: &Request<B>,
    ) -> Option<io::Result<Response<FileBody>>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return None;
        }
        let path = request.uri().path();
        for mount in &self.mounts {
            let Some(rest) = strip_prefix(path, &mount.prefix) else {
                continue;
            };
            let Some(inner) = inner_request(request, rest) else {
                continue;
            };
            match mount.files.clone().try_call(inner).await {
                Ok(response) if response.status() == StatusCode::NOT_FOUND => {}
                Ok(mut response) => {
                    harden(response.headers_mut());
                    return Some(Ok(response));
                }
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Some(Err(error)),
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

/// The request as the mount's `ServeDir` sees it: `rest` as its path (with
/// the query), the same method and headers, no body.
fn inner_request<B>(request: &Request<B>, rest: &str) -> Option<Request<()>> {
    let rest = if rest.is_empty() { "/" } else { rest };
    let target = match request.uri().query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    let mut inner = Request::new(());
    *inner.method_mut() = request.method().clone();
    *inner.uri_mut() = target.parse::<Uri>().ok()?;
    *inner.headers_mut() = request.headers().clone();
    Some(inner)
}

/// The headers every file response carries (see the module docs).
fn harden(headers: &mut http::HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Text is UTF-8 here: say so rather than leave browsers to guess.
    let text_without_charset = headers
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .filter(|t| t.starts_with("text/") && !t.contains("charset"))
        .map(|t| format!("{t}; charset=utf-8"));
    if let Some(value) = text_without_charset.and_then(|t| HeaderValue::from_str(&t).ok()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
}

/// Whether `error` means "no such file here" (what `ServeDir` answers 404
/// for) rather than a failure to read one.
fn is_not_found(error: &io::Error) -> bool {
    // ENOTDIR: a path through a file, as if it were a folder.
    const NOT_A_DIRECTORY: i32 = 20;
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
    ) || (cfg!(unix) && error.raw_os_error() == Some(NOT_A_DIRECTORY))
}

/// The file system under one served folder, as `ServeDir` reaches it: a
/// path with a hidden segment, or one that resolves outside the folder, is
/// not found. What is opened is the resolved path that was checked.
#[derive(Debug, Clone)]
struct Confined {
    /// The folder as given to [`Server::static_files`](super::server::Server::static_files).
    root: Arc<Path>,
}

type BoxIo<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

impl Backend for Confined {
    type File = TokioFile;
    type Metadata = std::fs::Metadata;
    type OpenFuture = BoxIo<TokioFile>;
    type MetadataFuture = BoxIo<std::fs::Metadata>;

    fn open(&self, path: PathBuf) -> Self::OpenFuture {
        let root = self.root.clone();
        Box::pin(async move { TokioBackend.open(confine(&root, &path).await?).await })
    }

    fn metadata(&self, path: PathBuf) -> Self::MetadataFuture {
        let root = self.root.clone();
        Box::pin(async move { TokioBackend.metadata(confine(&root, &path).await?).await })
    }
}

/// `path` (under `root`) resolved, if neither it nor what it resolves to
/// has a hidden segment below `root` and it resolves inside `root`.
async fn confine(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let not_found = || io::Error::from(io::ErrorKind::NotFound);
    let asked = path.strip_prefix(root).map_err(|_| not_found())?;
    if has_hidden_segment(asked) {
        return Err(not_found());
    }
    // Resolved now, not when the server started: links can change.
    let root = tokio::fs::canonicalize(root).await?;
    let resolved = tokio::fs::canonicalize(path).await?;
    match resolved.strip_prefix(&root) {
        Ok(inside) if !has_hidden_segment(inside) => Ok(resolved),
        _ => Err(not_found()),
    }
}

fn has_hidden_segment(path: &Path) -> bool {
    path.components().any(|c| match c {
        Component::Normal(name) => name.as_encoded_bytes().starts_with(b"."),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert_eq!(strip_prefix("/pkg/tandem.js", "/pkg"), Some("/tandem.js"));
        assert_eq!(strip_prefix("/pkgx/a", "/pkg"), None);
        assert_eq!(strip_prefix("/index.html", "/"), Some("/index.html"));
    }

    #[test]
    fn hidden_segments_are_found_anywhere_in_the_path() {
        for hidden in [".env", ".git/config", "a/.b/c"] {
            assert!(has_hidden_segment(Path::new(hidden)), "{hidden}");
        }
        for visible in ["", "index.html", "a/b.c/d", "a/b./c"] {
            assert!(!has_hidden_segment(Path::new(visible)), "{visible}");
        }
    }
}
