//! Generation and context settings, mirrored from `ghost_gen_params` and
//! `ghost_params` with owned Rust values; defaults come from the C library so
//! the two never disagree.

use std::ffi::CString;
use std::os::raw::c_char;

use ghostllm_sys as sys;

use ghostflow_common::cstring;

use crate::error::Result;

/// Per-generation settings (`ghost_gen_params`). Start from `Default`.
#[derive(Clone, Debug, PartialEq)]
pub struct GenParams {
    /// Tokens to generate at most; -1 = until the context window is full;
    /// 0 = only evaluate the prompt into the KV cache.
    pub max_tokens: i32,
    /// 0 = greedy.
    pub temperature: f32,
    /// 0 = off.
    pub top_k: i32,
    /// 1 = off.
    pub top_p: f32,
    /// 0 = off.
    pub min_p: f32,
    /// 1 = off.
    pub repeat_penalty: f32,
    /// Window of the penalty over prompt and answer; -1 = the whole context.
    pub repeat_last_n: i32,
    /// `None` draws a seed from the OS; the same seed, prompt and settings
    /// give the same text.
    pub seed: Option<u64>,
    /// Stop strings (non-empty); never included in the output.
    pub stop: Vec<String>,
    /// Prompt text like `<|im_start|>` maps to special tokens.
    pub parse_special: bool,
    /// Prepend BOS when the model asks for it.
    pub add_bos: bool,
}

impl Default for GenParams {
    fn default() -> Self {
        // SAFETY: a pure function returning a struct by value.
        GenParams::from_raw(&unsafe { sys::ghost_default_gen_params() })
    }
}

impl GenParams {
    /// Greedy decoding (temperature 0) of at most `max_tokens` tokens, the
    /// settings that reproduce `ghostflow run --temp 0 -n <max_tokens>`.
    pub fn greedy(max_tokens: i32) -> Self {
        GenParams { max_tokens, temperature: 0.0, ..GenParams::default() }
    }

    /// Copies the scalar fields of a C struct; its stop strings are not read
    /// (they are borrowed pointers whose lifetime is unknown here).
    pub fn from_raw(raw: &sys::ghost_gen_params) -> Self {
        GenParams {
            max_tokens: raw.max_tokens,
            temperature: raw.temperature,
            top_k: raw.top_k,
            top_p: raw.top_p,
            min_p: raw.min_p,
            repeat_penalty: raw.repeat_penalty,
            repeat_last_n: raw.repeat_last_n,
            seed: if raw.seed == sys::GHOST_SEED_RANDOM { None } else { Some(raw.seed) },
            stop: Vec::new(),
            parse_special: raw.parse_special,
            add_bos: raw.add_bos,
        }
    }

    /// The C struct with its stop strings, for a C call. Fails when a stop
    /// string holds a NUL byte.
    pub fn to_raw(&self) -> Result<RawGenParams> {
        let stop = self
            .stop
            .iter()
            .enumerate()
            .map(|(i, s)| cstring(&format!("stop string {i}"), s))
            .collect::<Result<Vec<CString>>>()?;
        let ptrs: Vec<*const c_char> = stop.iter().map(|s| s.as_ptr()).collect();
        let raw = sys::ghost_gen_params {
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            seed: self.seed.unwrap_or(sys::GHOST_SEED_RANDOM),
            stop: if ptrs.is_empty() { std::ptr::null() } else { ptrs.as_ptr() },
            n_stop: ptrs.len(),
            parse_special: self.parse_special,
            add_bos: self.add_bos,
        };
        Ok(RawGenParams { raw, _stop: stop, _ptrs: ptrs })
    }
}

/// A `ghost_gen_params` together with the stop strings it points to. The C
/// struct is valid for as long as this value lives.
pub struct RawGenParams {
    raw: sys::ghost_gen_params,
    _stop: Vec<CString>,
    _ptrs: Vec<*const c_char>,
}

impl RawGenParams {
    pub fn get(&self) -> &sys::ghost_gen_params {
        &self.raw
    }
}

// SAFETY: the only pointers are into the heap buffers of `_stop` and `_ptrs`,
// which this value owns and never mutates; moving it does not move them, and
// sharing it only allows reading them.
unsafe impl Send for RawGenParams {}
unsafe impl Sync for RawGenParams {}

/// Per-context settings (`ghost_params`). Start from `Default`.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Context window in tokens; 0 = min(training context, 4096).
    pub n_ctx: i32,
    /// Threads per generation; 0 = the number of online CPUs.
    pub n_threads: i32,
    /// F16 KV cache like llama.cpp (false = F32, twice the memory).
    pub kv_f16: bool,
    /// Defaults for [`crate::GhostLLM::generate`].
    pub gen: GenParams,
}

impl Default for Params {
    fn default() -> Self {
        // SAFETY: a pure function returning a struct by value.
        Params::from_raw(&unsafe { sys::ghost_default_params() })
    }
}

impl Params {
    pub fn from_raw(raw: &sys::ghost_params) -> Self {
        Params {
            n_ctx: raw.n_ctx,
            n_threads: raw.n_threads,
            kv_f16: raw.kv_f16,
            gen: GenParams::from_raw(&raw.gen),
        }
    }

    /// The C struct; its `gen.stop` points into the returned holder, which
    /// must outlive every use of the struct (a context keeps the pointer).
    pub fn to_raw(&self) -> Result<(sys::ghost_params, RawGenParams)> {
        let gen = self.gen.to_raw()?;
        let raw = sys::ghost_params {
            n_ctx: self.n_ctx,
            n_threads: self.n_threads,
            kv_f16: self.kv_f16,
            gen: *gen.get(),
        };
        Ok((raw, gen))
    }
}
