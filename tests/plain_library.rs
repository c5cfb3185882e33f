//! tandem is a plain Rust library: what depends on it links an rlib and
//! nothing more (no cdylib built with it). The browser package's cdylib is
//! built from its own crate, `tandem-web` in www/bindings, a member of this
//! workspace. Read from `cargo metadata`, so that any way of bringing a
//! `crate-type` back to tandem fails here.
#![cfg(all(feature = "json", not(target_arch = "wasm32")))]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// `cargo metadata --no-deps` of this workspace.
fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON")
}

fn package<'a>(metadata: &'a Value, name: &str) -> &'a Value {
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|package| package["name"] == name)
        .unwrap_or_else(|| panic!("no package {name} in the workspace"))
}

/// The crate types of `package`'s library target.
fn lib_crate_types(package: &Value) -> Vec<&str> {
    let lib = package["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|target| {
            target["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "lib" || k == "cdylib"))
        })
        .expect("a library target");
    lib["crate_types"]
        .as_array()
        .expect("crate_types")
        .iter()
        .map(|t| t.as_str().expect("a crate type"))
        .collect()
}

#[test]
fn tandem_builds_as_a_plain_rust_library() {
    let metadata = metadata();
    assert_eq!(lib_crate_types(package(&metadata, "tandem")), ["lib"]);
}

#[test]
fn the_browser_package_is_built_from_its_own_workspace_member() {
    let metadata = metadata();
    let bindings = package(&metadata, "tandem-web");
    assert!(lib_crate_types(bindings).contains(&"cdylib"));
    let manifest = bindings["manifest_path"].as_str().expect("manifest_path");
    assert!(
        Path::new(manifest).ends_with("www/bindings/Cargo.toml"),
        "{manifest}"
    );
    let members = metadata["workspace_members"].as_array().expect("members");
    assert!(members.contains(&bindings["id"]));
}
