//! Safe Rust API of libghostllm, ghostflow's GGUF inference engine.
//!
//! ```no_run
//! use std::ops::ControlFlow;
//! use ghostllm::{GenParams, GhostLLM};
//!
//! let mut llm = GhostLLM::new("stories260K.gguf")?;
//! let response = llm.generate_with("Once upon a time", &GenParams::greedy(32), |piece| {
//!     print!("{piece}");
//!     ControlFlow::Continue(())
//! })?;
//! println!("\n[{:?}, {} tokens]", response.finish_reason, response.completion_tokens);
//! # Ok::<(), ghostllm::Error>(())
//! ```
//!
//! [`Model`] is the loaded weights (`Send + Sync`, share it with `Arc`);
//! [`GhostLLM`] is one conversation's context (`Send`, not `Sync`) and streams
//! text to a closure that can stop it; [`Canceller`] stops it from another
//! thread. Errors carry the C code and the library's message.

mod context;
mod error;
mod model;
mod params;

pub use context::{Canceller, FinishReason, GhostLLM, Response};
pub use error::{strerror, Error, ErrorCode, Result};
pub use model::{ChatMessage, Model, ModelInfo};
pub use params::{GenParams, Params, RawGenParams};

/// Version of the linked C library (`ghost_version()`).
pub fn version() -> String {
    // SAFETY: returns a static string.
    unsafe { ghostflow_common::cstr_lossy(ghostllm_sys::ghost_version()) }
}
