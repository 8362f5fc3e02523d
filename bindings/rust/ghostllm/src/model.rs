//! A loaded GGUF model (`ghost_model`): weights mmapped once, shared
//! read-only by any number of contexts and threads.

use std::os::raw::c_char;
use std::path::Path;
use std::ptr::{self, NonNull};

use ghostllm_sys as sys;

use ghostflow_common::{cstr_lossy, cstring, path_cstring};

use crate::error::{last_error, Result};

/// A loaded model. Share it between contexts with `Arc<Model>`.
pub struct Model {
    raw: NonNull<sys::ghost_model>,
}

// SAFETY: ghostllm.h: "Read-only after load: one model may be shared by any
// number of contexts and threads." Every method takes &self and only reads;
// errors of model-level calls are kept per thread (ghost_errmsg(NULL)), so
// concurrent callers never see each other's messages. Dropping needs the
// value itself, i.e. no other reference, so ghost_model_free never races.
unsafe impl Send for Model {}
unsafe impl Sync for Model {}

/// `ghost_model_info`, with owned strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    pub architecture: String,
    pub name: String,
    pub chat_template: Option<String>,
    pub n_vocab: i32,
    pub n_ctx_train: i32,
    pub n_embd: i32,
    pub n_layer: i32,
    pub n_head: i32,
    pub n_head_kv: i32,
    pub n_ff: i32,
    pub bos_token: Option<i32>,
    pub eos_token: Option<i32>,
    pub n_params: u64,
    pub file_size: u64,
    pub file_type: String,
}

/// One message of a conversation for [`Model::chat_format`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage { role: role.into(), content: content.into() }
    }
}

/// The description of a model.
///
/// # Safety
/// `raw` is a live model.
pub(crate) unsafe fn info_of(raw: *const sys::ghost_model) -> ModelInfo {
    let mut i = sys::ghost_model_info::default();
    // The strings it fills are owned by the model and copied here.
    let rc = sys::ghost_model_get_info(raw, &mut i);
    debug_assert_eq!(rc, sys::GHOST_OK, "ghost_model_get_info on a live model");
    ModelInfo {
        architecture: cstr_lossy(i.architecture),
        name: cstr_lossy(i.name),
        chat_template: (!i.chat_template.is_null()).then(|| cstr_lossy(i.chat_template)),
        n_vocab: i.n_vocab,
        n_ctx_train: i.n_ctx_train,
        n_embd: i.n_embd,
        n_layer: i.n_layer,
        n_head: i.n_head,
        n_head_kv: i.n_head_kv,
        n_ff: i.n_ff,
        bos_token: (i.bos_token >= 0).then_some(i.bos_token),
        eos_token: (i.eos_token >= 0).then_some(i.eos_token),
        n_params: i.n_params,
        file_size: i.file_size,
        file_type: cstr_lossy(i.file_type),
    }
}

/// Takes a string the library allocated for the caller (freed with ghost_free).
///
/// # Safety
/// `p` was returned by ghost_detokenize / ghost_chat_format and not yet freed.
unsafe fn take_ghost_string(p: *mut c_char) -> String {
    let s = cstr_lossy(p);
    sys::ghost_free(p.cast());
    s
}

impl Model {
    /// Maps and validates a GGUF file.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        let c_path = path_cstring(path.as_ref())?;
        // SAFETY: c_path is a valid C string for the call.
        let raw = unsafe { sys::ghost_model_load(c_path.as_ptr()) };
        NonNull::new(raw).map(|raw| Model { raw }).ok_or_else(|| last_error(ptr::null()))
    }

    pub fn as_ptr(&self) -> *const sys::ghost_model {
        self.raw.as_ptr()
    }

    pub fn info(&self) -> ModelInfo {
        // SAFETY: the model is live.
        unsafe { info_of(self.as_ptr()) }
    }

    /// Token ids of `text`. `add_special`: BOS/EOS as the model's metadata
    /// asks; `parse_special`: text such as `<|im_start|>` becomes its token.
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<i32>> {
        let mut tokens = vec![0i32; text.len() + 2];
        loop {
            let mut n = 0usize;
            // SAFETY: text is len readable bytes (no NUL needed); tokens has
            // room for tokens.len() ids; n is a valid out-pointer.
            let rc = unsafe {
                sys::ghost_tokenize(
                    self.as_ptr(),
                    text.as_ptr().cast(),
                    text.len(),
                    add_special,
                    parse_special,
                    tokens.as_mut_ptr(),
                    tokens.len(),
                    &mut n,
                )
            };
            match rc {
                sys::GHOST_OK => {
                    tokens.truncate(n);
                    return Ok(tokens);
                }
                sys::GHOST_ERR_BUFFER_TOO_SMALL if n > tokens.len() => tokens.resize(n, 0),
                _ => return Err(last_error(ptr::null())),
            }
        }
    }

    /// The text of `tokens`.
    pub fn detokenize(&self, tokens: &[i32]) -> Result<String> {
        let mut text: *mut c_char = ptr::null_mut();
        // SAFETY: tokens is a valid slice; text is a valid out-pointer and,
        // on success, an allocation we own and free in take_ghost_string.
        unsafe {
            match sys::ghost_detokenize(self.as_ptr(), tokens.as_ptr(), tokens.len(), &mut text) {
                sys::GHOST_OK => Ok(take_ghost_string(text)),
                _ => Err(last_error(ptr::null())),
            }
        }
    }

    /// Formats a conversation with the model's chat template (plain
    /// continuation when it has none). `add_assistant` ends with the opening
    /// of the assistant's turn.
    pub fn chat_format(&self, messages: &[ChatMessage], add_assistant: bool) -> Result<String> {
        let owned = messages
            .iter()
            .map(|m| Ok((cstring("chat role", &m.role)?, cstring("chat content", &m.content)?)))
            .collect::<Result<Vec<_>>>()?;
        let raw: Vec<sys::ghost_chat_message> = owned
            .iter()
            .map(|(role, content)| sys::ghost_chat_message { role: role.as_ptr(), content: content.as_ptr() })
            .collect();
        let mut out: *mut c_char = ptr::null_mut();
        // SAFETY: raw points to raw.len() messages whose strings live in
        // `owned` for the call; out is freed in take_ghost_string.
        unsafe {
            match sys::ghost_chat_format(self.as_ptr(), raw.as_ptr(), raw.len(), add_assistant, &mut out) {
                sys::GHOST_OK => Ok(take_ghost_string(out)),
                _ => Err(last_error(ptr::null())),
            }
        }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: we own the model; every context using it holds an
        // Arc<Model>, so none is left when this runs.
        unsafe { sys::ghost_model_free(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("name", &self.info().name).finish()
    }
}
