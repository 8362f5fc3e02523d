//! Raw bindings to libghostflow, generated at build time by bindgen from
//! `include/ghostflow.h`. The engine and store types it uses (`ghost_params`,
//! `ghost_finish_reason`, ...) are those of `ghostllm-sys` and `zqlite-sys`,
//! re-exported here. Every function is `unsafe`; the header's comments are the
//! contract. The safe API is the `ghostflow` crate.
#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case)]

pub use ghostllm_sys::*;
pub use zqlite_sys::*;

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// `GF_NEW_CONVERSATION` (`INT64_C(0)`): bindgen cannot evaluate stdint's
/// function-like constant macros, so the value is spelled out here.
pub const GF_NEW_CONVERSATION: i64 = 0;
