//! Raw bindings to libghostllm, generated at build time by bindgen from
//! `include/ghostllm.h`. Every function is `unsafe`; the header's comments are
//! the contract (ownership, threads, errors). The safe API is the `ghostllm`
//! crate.
#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// `GHOST_SEED_RANDOM` (`UINT64_MAX`): bindgen cannot evaluate stdint's
/// function-like constant macros, so the value is spelled out here.
pub const GHOST_SEED_RANDOM: u64 = u64::MAX;
