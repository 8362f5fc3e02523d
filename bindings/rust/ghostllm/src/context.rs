//! `GhostLLM`: one conversation's engine state (`ghost_context`) and
//! streaming generation through a Rust closure.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::ControlFlow;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use ghostllm_sys as sys;

use ghostflow_common::stream::PieceSink;
use ghostflow_common::{cstr_lossy, cstring, path_cstring};

use crate::error::{last_error, Error, Result};
use crate::model::Model;
use crate::params::{GenParams, Params, RawGenParams};

/// Why a generation ended (`ghost_finish_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FinishReason {
    /// End-of-generation token or a stop string.
    Stop,
    /// `max_tokens` reached, or the context window filled.
    Length,
    /// The closure returned `Break`, or a [`Canceller`] fired.
    Cancelled,
    Error,
}

impl FinishReason {
    pub fn from_raw(raw: sys::ghost_finish_reason) -> FinishReason {
        match raw {
            sys::GHOST_FINISH_STOP => FinishReason::Stop,
            sys::GHOST_FINISH_LENGTH => FinishReason::Length,
            sys::GHOST_FINISH_CANCELLED => FinishReason::Cancelled,
            _ => FinishReason::Error,
        }
    }
}

/// The result of one generation.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The generated text (prompt excluded): exactly the concatenation of the
    /// pieces the closure received, also when cancelled.
    pub text: String,
    pub finish_reason: FinishReason,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Prompt tokens reused from the KV cache.
    pub cached_tokens: usize,
    pub prompt_ms: f64,
    pub generation_ms: f64,
}

/// The context itself, shared between a [`GhostLLM`] and its [`Canceller`]s
/// so that a canceller can never outlive it.
struct Context {
    raw: NonNull<sys::ghost_context>,
    // Dropped after `raw` is freed (Drop runs before fields drop): the model
    // must outlive its contexts, and the context keeps pointers to the stop
    // strings of its default parameters.
    _model: Option<Arc<Model>>,
    _defaults: Option<RawGenParams>,
}

// SAFETY: a ghost_context is not tied to the thread that made it, so moving
// it is fine (Send). Through a shared &Context only ghost_context_cancel is
// ever called (Canceller); ghostllm.h makes that call thread-safe and
// async-signal-safe, also while another thread generates (Sync). Everything
// else goes through &mut GhostLLM, one thread at a time.
unsafe impl Send for Context {}
unsafe impl Sync for Context {}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the last reference is gone, so no call is in flight.
        unsafe { sys::ghost_free_context(self.raw.as_ptr()) }
    }
}

/// One conversation's engine state: KV cache, token history, sampler.
///
/// `GhostLLM` is `Send` but not `Sync`: ghostllm.h says to use a context
/// from one thread at a time, so generation takes `&mut self`; the one call
/// allowed from elsewhere is [`GhostLLM::canceller`]'s.
///
/// ```compile_fail
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<ghostllm::GhostLLM>();
/// ```
pub struct GhostLLM {
    ctx: Arc<Context>,
    // Cell<()> is Send + !Sync: opts out of the Sync that Arc<Context> would
    // give, because a ghost_context must not be used from two threads at once.
    _not_sync: PhantomData<Cell<()>>,
}

/// Stops a running generation of a [`GhostLLM`] from another thread (or from
/// inside its own closure). Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Canceller {
    ctx: Arc<Context>,
}

impl Canceller {
    /// Asks the running generation to stop at the next token; its response
    /// then has [`FinishReason::Cancelled`]. The request is forgotten when the
    /// next generation starts, so cancelling while idle does nothing.
    pub fn cancel(&self) {
        // SAFETY: the context is alive (we hold an Arc), and
        // ghost_context_cancel is thread-safe by contract.
        unsafe { sys::ghost_context_cancel(self.ctx.raw.as_ptr()) }
    }
}

impl GhostLLM {
    /// Loads `model_path` with default parameters (the context owns the model).
    pub fn new(model_path: impl AsRef<Path>) -> Result<GhostLLM> {
        let path = path_cstring(model_path.as_ref())?;
        // SAFETY: path is a valid C string for the call.
        let raw = unsafe { sys::ghost_init(path.as_ptr()) };
        Self::wrap(raw, None, None)
    }

    /// Loads `model_path` with `params` (the context owns the model).
    pub fn with_params(model_path: impl AsRef<Path>, params: &Params) -> Result<GhostLLM> {
        let path = path_cstring(model_path.as_ref())?;
        let (raw_params, defaults) = params.to_raw()?;
        // SAFETY: both pointers are valid for the call; the stop strings the
        // context keeps pointing to live in `defaults`, stored with it.
        let raw = unsafe { sys::ghost_init_ex(path.as_ptr(), &raw_params) };
        Self::wrap(raw, None, Some(defaults))
    }

    /// A new context over a shared, already loaded model.
    pub fn with_model(model: Arc<Model>, params: &Params) -> Result<GhostLLM> {
        let (raw_params, defaults) = params.to_raw()?;
        // SAFETY: the model is live and kept alive by the context (Arc);
        // stop strings as in with_params.
        let raw = unsafe { sys::ghost_context_new(model.as_ptr(), &raw_params) };
        Self::wrap(raw, Some(model), Some(defaults))
    }

    fn wrap(
        raw: *mut sys::ghost_context,
        model: Option<Arc<Model>>,
        defaults: Option<RawGenParams>,
    ) -> Result<GhostLLM> {
        let raw = NonNull::new(raw).ok_or_else(|| last_error(std::ptr::null()))?;
        Ok(GhostLLM {
            ctx: Arc::new(Context { raw, _model: model, _defaults: defaults }),
            _not_sync: PhantomData,
        })
    }

    fn raw(&self) -> *mut sys::ghost_context {
        self.ctx.raw.as_ptr()
    }

    /// A handle that cancels this context's running generation.
    pub fn canceller(&self) -> Canceller {
        Canceller { ctx: Arc::clone(&self.ctx) }
    }

    /// The model's description.
    pub fn model_info(&self) -> crate::ModelInfo {
        // SAFETY: the model of a live context is live (owned by the context
        // or kept by its Arc<Model>) and only read.
        unsafe { crate::model::info_of(sys::ghost_context_model(self.raw())) }
    }

    /// Generates a continuation of `prompt` with the context's default
    /// parameters, handing each piece of text to `on_piece` as soon as it forms
    /// whole UTF-8 characters. Return `ControlFlow::Break(())` to cancel: the
    /// response then has [`FinishReason::Cancelled`] and holds exactly the
    /// pieces delivered so far. A panic in `on_piece` cancels the generation
    /// and is resumed here once the engine has returned.
    ///
    /// The KV cache keeps prompt and answer: a following prompt that starts
    /// with the same text reuses it.
    pub fn generate<F>(&mut self, prompt: &str, on_piece: F) -> Result<Response>
    where
        F: FnMut(&str) -> ControlFlow<()>,
    {
        self.run(prompt, None, on_piece)
    }

    /// [`GhostLLM::generate`] with explicit parameters for this call.
    pub fn generate_with<F>(&mut self, prompt: &str, params: &GenParams, on_piece: F) -> Result<Response>
    where
        F: FnMut(&str) -> ControlFlow<()>,
    {
        let raw = params.to_raw()?;
        self.run(prompt, Some(&raw), on_piece)
    }

    fn run<F>(&mut self, prompt: &str, params: Option<&RawGenParams>, on_piece: F) -> Result<Response>
    where
        F: FnMut(&str) -> ControlFlow<()>,
    {
        let prompt = cstring("prompt", prompt)?;
        let mut sink = PieceSink::new(on_piece);
        let callback = sink.callback();
        let params_ptr = params.map_or(std::ptr::null(), |p| p.get() as *const _);
        // SAFETY: &mut self gives exclusive use of the context; prompt and
        // params live across the call; sink is the user_data of `callback`
        // and outlives the call (it is called synchronously only).
        let resp = unsafe {
            sys::ghost_generate_ex(self.raw(), prompt.as_ptr(), params_ptr, Some(callback), sink.user_data())
        };
        let result = if resp.is_null() {
            Err(Error::new(sys::GHOST_ERR_NOMEM, "out of memory for the response"))
        } else {
            // SAFETY: a non-null response is ours until ghost_free_response.
            let converted = unsafe { convert_response(&*resp) };
            unsafe { sys::ghost_free_response(resp) };
            converted
        };
        sink.finish();
        result
    }

    /// Drops the KV cache and token history.
    pub fn reset(&mut self) {
        // SAFETY: exclusive use through &mut self.
        unsafe { sys::ghost_context_reset(self.raw()) }
    }
}

/// Cancelled is a normal outcome (Ok); every other non-zero code is an Error.
unsafe fn convert_response(r: &sys::ghost_response) -> Result<Response> {
    let code = r.error_code as sys::ghost_status;
    if code != sys::GHOST_OK && code != sys::GHOST_ERR_CANCELLED {
        return Err(Error::new(code, cstr_lossy(r.error_message)));
    }
    let count = |n: i32| usize::try_from(n).unwrap_or(0);
    Ok(Response {
        text: cstr_lossy(r.text),
        finish_reason: FinishReason::from_raw(r.finish_reason),
        prompt_tokens: count(r.prompt_tokens),
        completion_tokens: count(r.completion_tokens),
        cached_tokens: count(r.cached_tokens),
        prompt_ms: r.prompt_ms,
        generation_ms: r.generation_ms,
    })
}

impl std::fmt::Debug for GhostLLM {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GhostLLM").field("model", &self.model_info().name).finish_non_exhaustive()
    }
}
