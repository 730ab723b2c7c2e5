//! Embeds the browser demo (the page's files from `web/page`, and the wasm module with its
//! bindings from `web/dist/pkg`, built by `scripts/build-web.sh` and committed) into the binary
//! for `isl serve` to serve at `/`. Without a built demo the binary serves a page that
//! says how to build it, so `cargo build` never depends on the web build.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// Files under `dir`, recursively, sorted.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            files(&path, out);
        } else if path.is_file() {
            out.push(path);
        }
    }
}

/// FNV-1a 64 of the bytes: the asset's ETag.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

const PLACEHOLDER: &str = "<!doctype html><meta charset=\"utf-8\"><title>isl</title>\
<h1>isl</h1><p>The browser demo is not built into this binary. Build it with \
<code>scripts/build-web.sh</code> (it writes <code>web/dist</code>), then rebuild isl.</p>\
<p>The API is served as usual: <a href=\"/openapi.json\">/openapi.json</a>, \
<a href=\"/health\">/health</a>.</p>\n";

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // The page's own files are served as they are in the repository; only the wasm module and
    // its bindings are built (web/dist/pkg).
    let page = manifest.join("../web/page");
    let pkg = manifest.join("../web/dist/pkg");
    println!("cargo::rerun-if-changed={}", page.display());
    println!("cargo::rerun-if-changed={}", pkg.display());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());

    let (mut page_files, mut pkg_files) = (Vec::new(), Vec::new());
    files(&page, &mut page_files);
    files(&pkg, &mut pkg_files);
    let mut code = String::from(
        "/// The demo page's files: (URL path, content type, ETag, bytes).\n\
         pub static ASSETS: &[(&str, &str, &str, &[u8])] = &[\n",
    );
    let has_index = page_files.iter().any(|p| p.file_name().is_some_and(|n| n == "index.html"));
    if has_index && !pkg_files.is_empty() {
        let found = page_files.iter().map(|p| (&page, "", p)).chain(pkg_files.iter().map(|p| (&pkg, "pkg/", p)));
        for (root, prefix, path) in found {
            let Ok(rel) = path.strip_prefix(root) else { continue };
            let Some(rel) = rel.to_str() else { continue };
            let bytes = std::fs::read(path).unwrap_or_default();
            let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            let _ = writeln!(
                code,
                "    ({:?}, {:?}, \"\\\"{:016x}\\\"\", include_bytes!({:?})),",
                format!("/{prefix}{}", rel.replace('\\', "/")),
                content_type(path),
                fnv(&bytes),
                abs.display().to_string()
            );
        }
    } else {
        let placeholder = out_dir.join("placeholder.html");
        let _ = std::fs::write(&placeholder, PLACEHOLDER);
        let _ = writeln!(
            code,
            "    (\"/index.html\", \"text/html; charset=utf-8\", \"\\\"{:016x}\\\"\", include_bytes!({:?})),",
            fnv(PLACEHOLDER.as_bytes()),
            placeholder.display().to_string()
        );
    }
    code.push_str("];\n");
    if let Err(e) = std::fs::write(out_dir.join("web_assets.rs"), code) {
        println!("cargo::warning=could not write web_assets.rs: {e}");
    }
}
