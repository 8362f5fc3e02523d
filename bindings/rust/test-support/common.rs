//! Helpers shared by the crates' integration tests (included with
//! `#[path = "../../test-support/common.rs"] mod common;`).
//!
//! The shared data (`../shared` beside the repository) is required: a missing
//! file fails the test with its path, it never skips it.
#![allow(dead_code)]

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The repository root (bindings/rust/<crate> is three levels below).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..").canonicalize().expect("repository root")
}

/// A file under `../shared`, which must exist.
pub fn shared(rel: &str) -> PathBuf {
    let path = repo_root().join("../shared").join(rel);
    assert!(path.is_file(), "{} is missing: the tests need the shared data", path.display());
    path
}

pub fn stories260k() -> PathBuf {
    shared("models/stories260K.gguf")
}

/// The `ghostflow` CLI: `$GHOSTFLOW_BUILD_DIR/ghostflow`, else from PATH.
pub fn ghostflow_cli() -> PathBuf {
    match std::env::var_os("GHOSTFLOW_BUILD_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => {
            let cli = PathBuf::from(dir).join("ghostflow");
            assert!(cli.is_file(), "{} is missing: build the ghostflow target", cli.display());
            cli
        }
        None => PathBuf::from("ghostflow"),
    }
}

/// The text of the reference vector for (model file name, prompt).
pub fn reference_text(model: &str, prompt: &str) -> String {
    let path = shared("vectors/greedy-llama.cpp.jsonl");
    let data = std::fs::read_to_string(&path).expect("reading the reference vectors");
    for (i, line) in data.lines().enumerate() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
        if v["model"] == model && v["prompt"] == prompt {
            return v["text"].as_str().expect("text is a string").to_owned();
        }
    }
    panic!("{}: no vector for {model} / {prompt:?}", path.display());
}

/// A streaming closure that keeps every piece in `pieces` and cancels once
/// it holds `n`.
pub fn break_after(n: usize, pieces: &mut Vec<String>) -> impl FnMut(&str) -> ControlFlow<()> + '_ {
    move |piece| {
        pieces.push(piece.to_owned());
        if pieces.len() >= n {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// A directory removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ghostflow-rust-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("creating a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
