//! Raw bindings to libzqlite, generated at build time by bindgen from
//! `include/zqlite.h`. Every function is `unsafe`; the header's comments are
//! the contract (ownership, threads, errors). The safe API is the `zqlite`
//! crate.
#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
