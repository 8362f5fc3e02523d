//! `Service`: the blocking, thread-safe wrapper of `gf_service` — generation
//! whose prompt and answer are stored in the encrypted history.

use std::ops::ControlFlow;
use std::os::raw::{c_int, c_void};
use std::path::PathBuf;
use std::ptr::{self, NonNull};
use std::sync::Arc;

use ghostflow_sys as sys;
use ghostllm::{FinishReason, GenParams, Model, Params, RawGenParams};
use zqlite::SecretKey;

use ghostflow_common::stream::PieceSink;
use ghostflow_common::{cstr_lossy, cstr_opt, cstring, path_cstring};

use crate::error::{last_error, Error, Result};

/// How to open a [`Service`] (`gf_config`). Start from [`Config::new`].
#[derive(Clone, Debug)]
pub struct Config {
    /// The history database; `None` = `$XDG_DATA_HOME/ghostflow/history.db`.
    pub db_path: Option<PathBuf>,
    /// Passphrase or raw key (required). Zeroized when the config is dropped;
    /// the library keeps its own copy in locked memory.
    pub key: SecretKey,
    /// Create the database when missing.
    pub create: bool,
    /// Argon2id cost for a new database; 0 = zqlite's strong defaults.
    pub kdf_opslimit: u64,
    pub kdf_memlimit: usize,
    /// fsync every commit (survives power loss) instead of WAL NORMAL.
    pub durable: bool,
    /// The model; `None` = history only.
    pub model_path: Option<PathBuf>,
    /// An already loaded `model_path`, shared instead of loading it again.
    pub model: Option<Arc<Model>>,
    /// Engine contexts = exchanges generated in parallel (more queue).
    pub n_contexts: i32,
    /// Settings of every pooled context (window, threads, KV type).
    pub context_params: Params,
    /// Generation settings when a call passes none.
    pub gen: GenParams,
}

impl Config {
    /// The library's defaults (`gf_default_config`) with `key`.
    pub fn new(key: impl Into<SecretKey>) -> Config {
        // SAFETY: a pure function returning a struct by value.
        let c = unsafe { sys::gf_default_config() };
        Config {
            db_path: None,
            key: key.into(),
            create: c.create,
            kdf_opslimit: c.kdf_opslimit,
            kdf_memlimit: c.kdf_memlimit,
            durable: c.durable,
            model_path: None,
            model: None,
            n_contexts: c.n_contexts,
            context_params: Params::from_raw(&c.context_params),
            gen: GenParams::from_raw(&c.gen),
        }
    }
}

/// Which conversation an exchange belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conversation {
    /// Start a new one (its id is in the [`Response`]).
    New,
    /// An existing conversation's id.
    Id(i64),
    /// The conversation with this external name, created when missing.
    Label(String),
}

impl From<i64> for Conversation {
    fn from(id: i64) -> Self {
        Conversation::Id(id)
    }
}

impl From<&str> for Conversation {
    fn from(label: &str) -> Self {
        Conversation::Label(label.to_owned())
    }
}

/// One stored exchange's outcome (`gf_result`).
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub conversation_id: i64,
    /// Row id of the stored prompt.
    pub prompt_id: i64,
    /// Row id of the stored answer.
    pub response_id: i64,
    /// The answer: the concatenation of the streamed pieces (partial when
    /// cancelled).
    pub text: String,
    pub finish_reason: FinishReason,
    /// The whole formatted conversation, in tokens.
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Prompt tokens reused from the KV cache.
    pub cached_tokens: usize,
    pub prompt_ms: f64,
    pub generation_ms: f64,
    /// Waiting for a free context.
    pub queue_ms: f64,
    /// Time spent in the database for this exchange.
    pub store_ms: f64,
}

/// An answer as stored in the history.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub response_id: i64,
    pub answered_at_ms: i64,
    pub text: String,
    pub finish_reason: FinishReason,
    /// Why generation failed (finish reason `Error`).
    pub error: Option<String>,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub cached_tokens: usize,
    pub prompt_ms: f64,
    pub generation_ms: f64,
}

/// One stored exchange (`gf_exchange`).
#[derive(Clone, Debug, PartialEq)]
pub struct Exchange {
    pub prompt_id: i64,
    pub conversation_id: i64,
    /// Unix time of the prompt, milliseconds.
    pub created_at_ms: i64,
    pub prompt: String,
    /// "" when recorded without a model.
    pub model_name: String,
    /// Hex BLAKE2b-256 of the model file, "" without a model.
    pub model_hash: String,
    /// Sampling parameters as stored (the drawn seed included; stop strings
    /// are not returned).
    pub params: GenParams,
    /// `None`: no answer stored — still generating, or the process died.
    pub answer: Option<Answer>,
}

/// A conversation of the history (`gf_conversation`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationInfo {
    pub id: i64,
    pub label: Option<String>,
    /// Start of the first prompt, or "".
    pub title: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub n_exchanges: i64,
}

fn count(n: i32) -> usize {
    usize::try_from(n).unwrap_or(0)
}

impl Exchange {
    /// # Safety
    /// `e` is the exchange handed to a gf_exchange_fn, within the callback.
    unsafe fn from_raw(e: &sys::gf_exchange) -> Exchange {
        Exchange {
            prompt_id: e.prompt_id,
            conversation_id: e.conversation_id,
            created_at_ms: e.created_at_ms,
            prompt: cstr_lossy(e.prompt),
            model_name: cstr_lossy(e.model_name),
            model_hash: cstr_lossy(e.model_hash),
            params: GenParams::from_raw(&e.params),
            answer: e.answered.then(|| Answer {
                response_id: e.response_id,
                answered_at_ms: e.answered_at_ms,
                text: cstr_lossy(e.response),
                finish_reason: FinishReason::from_raw(e.finish_reason),
                error: cstr_opt(e.error),
                prompt_tokens: count(e.prompt_tokens),
                completion_tokens: count(e.completion_tokens),
                cached_tokens: count(e.cached_tokens),
                prompt_ms: e.prompt_ms,
                generation_ms: e.generation_ms,
            }),
        }
    }
}

impl ConversationInfo {
    /// # Safety
    /// `c` is the conversation handed to a gf_conversation_fn, within the callback.
    unsafe fn from_raw(c: &sys::gf_conversation) -> ConversationInfo {
        ConversationInfo {
            id: c.id,
            label: cstr_opt(c.label),
            title: cstr_lossy(c.title),
            created_at_ms: c.created_at_ms,
            updated_at_ms: c.updated_at_ms,
            n_exchanges: c.n_exchanges,
        }
    }
}

/// Listing callbacks copy each borrowed row into a Vec. The conversions
/// only copy strings and cannot panic short of an allocation failure, which
/// aborts; nothing can unwind into C.
struct Collector<C, T> {
    items: Vec<T>,
    convert: unsafe fn(&C) -> T,
}

unsafe extern "C" fn collect<C, T>(item: *const C, user_data: *mut c_void) -> c_int {
    // SAFETY: user_data is the Collector the listing call was given; item is
    // valid for the callback.
    let collector = &mut *(user_data as *mut Collector<C, T>);
    let value = (collector.convert)(&*item);
    collector.items.push(value);
    0
}

/// Engine-side argument errors (a NUL byte in a stop string) as the service's.
fn invalid(e: ghostllm::Error) -> Error {
    e.recode(sys::GF_ERR_INVALID_ARGUMENT)
}

/// An open service: the encrypted history plus (optionally) a model and a
/// pool of engine contexts. Share it between threads (`Arc<Service>`); every
/// method takes `&self`.
pub struct Service {
    raw: NonNull<sys::gf_service>,
    /// `Config::gen`, passed explicitly on calls without parameters: the C
    /// service keeps no stop strings of its own past gf_open.
    defaults: GenParams,
    // The pooled contexts keep pointers into their default parameters' stop
    // strings and, with Config::model, to the model: both must outlive
    // gf_close, which runs in Drop before fields are dropped.
    _context_defaults: RawGenParams,
    _model: Option<Arc<Model>>,
}

// SAFETY: ghostflow.h: "a gf_service may be shared by any number of threads;
// each call is safe to make concurrently except gf_close". Error messages are
// kept per thread and per service, so concurrent callers never read each
// other's. gf_close runs only in Drop, when no reference (hence no call) is
// left.
unsafe impl Send for Service {}
unsafe impl Sync for Service {}

impl Service {
    /// Opens the history (creating it if `config.create`) and loads the
    /// model. Wrong key: [`crate::ErrorCode::WrongKey`].
    pub fn open(config: &Config) -> Result<Service> {
        let db_path = config.db_path.as_deref().map(path_cstring).transpose()?;
        let model_path = config.model_path.as_deref().map(path_cstring).transpose()?;
        let (context_params, context_defaults) = config.context_params.to_raw().map_err(invalid)?;
        let gen = config.gen.to_raw().map_err(invalid)?;
        let key = config.key.expose();
        // SAFETY: a pure function returning a struct by value.
        let mut c = unsafe { sys::gf_default_config() };
        c.db_path = db_path.as_ref().map_or(ptr::null(), |p| p.as_ptr());
        c.key = key.as_ptr().cast();
        c.key_len = key.len();
        c.create = config.create;
        c.kdf_opslimit = config.kdf_opslimit;
        c.kdf_memlimit = config.kdf_memlimit;
        c.durable = config.durable;
        c.model_path = model_path.as_ref().map_or(ptr::null(), |p| p.as_ptr());
        c.model = config.model.as_ref().map_or(ptr::null(), |m| m.as_ptr());
        c.n_contexts = config.n_contexts;
        c.context_params = context_params;
        c.gen = *gen.get();
        // SAFETY: every pointer in c is valid for the call; the key is copied
        // by the store; what the service keeps (context stop strings, the
        // shared model) is moved into the Service below.
        let raw = unsafe { sys::gf_open(&c) };
        let raw = NonNull::new(raw).ok_or_else(|| last_error(ptr::null()))?;
        Ok(Service {
            raw,
            defaults: config.gen.clone(),
            _context_defaults: context_defaults,
            _model: config.model.clone(),
        })
    }

    pub fn as_ptr(&self) -> *mut sys::gf_service {
        self.raw.as_ptr()
    }

    fn check(&self, rc: sys::gf_status) -> Result<()> {
        if rc == sys::GF_OK {
            Ok(())
        } else {
            Err(last_error(self.as_ptr()))
        }
    }

    /// Resolves a conversation to the id gf_process_prompt takes.
    pub fn conversation_id(&self, conversation: &Conversation) -> Result<i64> {
        match conversation {
            Conversation::New => Ok(sys::GF_NEW_CONVERSATION),
            Conversation::Id(id) => Ok(*id),
            Conversation::Label(label) => {
                let c_label = cstring("conversation label", label)?;
                let mut id = 0i64;
                // SAFETY: valid pointers for the call.
                self.check(unsafe {
                    sys::gf_conversation_for_label(self.as_ptr(), c_label.as_ptr(), &mut id)
                })?;
                Ok(id)
            }
        }
    }

    /// Creates an empty conversation.
    pub fn new_conversation(&self) -> Result<i64> {
        let mut id = 0i64;
        // SAFETY: valid pointers for the call.
        self.check(unsafe { sys::gf_conversation_new(self.as_ptr(), &mut id) })?;
        Ok(id)
    }

    /// Runs one exchange: stores the prompt, generates the answer (formatted
    /// with the conversation so far) streaming each piece to `on_piece`, and
    /// stores the answer. `ControlFlow::Break(())` cancels: the partial answer
    /// is stored and returned with [`FinishReason::Cancelled`]. A panic in
    /// `on_piece` cancels too, and is resumed here after the answer is stored.
    /// `params`: `None` = [`Config::gen`]. Blocks; see
    /// [`crate::LLMService`] for async use.
    pub fn process_prompt<F>(
        &self,
        conversation: &Conversation,
        prompt: &str,
        params: Option<&GenParams>,
        on_piece: F,
    ) -> Result<Response>
    where
        F: FnMut(&str) -> ControlFlow<()>,
    {
        let conversation_id = self.conversation_id(conversation)?;
        let c_prompt = cstring("prompt", prompt)?;
        let gen = params.unwrap_or(&self.defaults).to_raw().map_err(invalid)?;
        let mut sink = PieceSink::new(on_piece);
        let callback = sink.callback();
        let mut result: *mut sys::gf_result = ptr::null_mut();
        // SAFETY: svc is shared-safe for this call; prompt, params and sink
        // outlive it (the callback is only called during it); result is
        // ours to free.
        let rc = unsafe {
            sys::gf_process_prompt(
                self.as_ptr(),
                conversation_id,
                c_prompt.as_ptr(),
                gen.get(),
                Some(callback),
                sink.user_data(),
                &mut result,
            )
        };
        // SAFETY: result is NULL or the live result gf_process_prompt wrote.
        let stored = unsafe { result.as_ref() };
        let out = if let (Some(r), sys::GF_OK | sys::GF_ERR_CANCELLED) = (stored, rc) {
            // SAFETY: a live result.
            Ok(unsafe { convert_result(r) })
        } else if rc == sys::GF_OK {
            Err(Error::new(sys::GF_ERR_INTERNAL, "gf_process_prompt succeeded without a result"))
        } else {
            // SAFETY: error_message of a live result, or the thread's message.
            let message = stored.and_then(|r| unsafe { cstr_opt(r.error_message) });
            Err(message.map_or_else(|| last_error(self.as_ptr()), |m| Error::new(rc, m)))
        };
        // SAFETY: NULL or the result gf_process_prompt handed over.
        unsafe { sys::gf_free_result(result) };
        sink.finish();
        out
    }

    /// Asks every running generation to stop at its next token.
    pub fn cancel_all(&self) {
        // SAFETY: thread-safe by contract.
        unsafe { sys::gf_cancel_all(self.as_ptr()) }
    }

    /// Exchanges in chronological order, of one conversation or (`None`) of
    /// all; `limit` > 0 keeps the most recent `limit`.
    pub fn history(&self, conversation: Option<i64>, limit: usize) -> Result<Vec<Exchange>> {
        let mut collector = Collector { items: Vec::new(), convert: Exchange::from_raw };
        // SAFETY: the callback and collector match; the call is synchronous.
        let rc = unsafe {
            sys::gf_history(
                self.as_ptr(),
                conversation.unwrap_or(0),
                limit as i64,
                Some(collect::<sys::gf_exchange, Exchange>),
                &mut collector as *mut _ as *mut c_void,
            )
        };
        self.check(rc).map(|()| collector.items)
    }

    /// Exchanges whose prompt or answer contains every word of `text`, best
    /// match first; `limit` 0 = all.
    pub fn search(&self, text: &str, limit: usize) -> Result<Vec<Exchange>> {
        let c_text = cstring("search text", text)?;
        let mut collector = Collector { items: Vec::new(), convert: Exchange::from_raw };
        // SAFETY: as in history.
        let rc = unsafe {
            sys::gf_search(
                self.as_ptr(),
                c_text.as_ptr(),
                limit as i64,
                Some(collect::<sys::gf_exchange, Exchange>),
                &mut collector as *mut _ as *mut c_void,
            )
        };
        self.check(rc).map(|()| collector.items)
    }

    /// Conversations, most recently updated first; `limit` 0 = all.
    pub fn conversations(&self, limit: usize) -> Result<Vec<ConversationInfo>> {
        let mut collector = Collector { items: Vec::new(), convert: ConversationInfo::from_raw };
        // SAFETY: as in history.
        let rc = unsafe {
            sys::gf_conversations(
                self.as_ptr(),
                limit as i64,
                Some(collect::<sys::gf_conversation, ConversationInfo>),
                &mut collector as *mut _ as *mut c_void,
            )
        };
        self.check(rc).map(|()| collector.items)
    }

    /// Hex BLAKE2b-256 of the model file, when the service has a model.
    pub fn model_hash(&self) -> Option<String> {
        // SAFETY: valid until gf_close, copied now.
        unsafe { cstr_opt(sys::gf_service_model_hash(self.as_ptr())) }
    }

    /// Re-encrypts the history under `new_key` (crash-safe).
    pub fn rekey(&self, new_key: impl Into<SecretKey>) -> Result<()> {
        let key = new_key.into();
        // SAFETY: valid pointers for the call; the key is copied.
        self.check(unsafe { sys::gf_rekey(self.as_ptr(), key.expose().as_ptr().cast(), key.expose().len()) })
    }

    /// SQLite's integrity check plus the service's own consistency checks.
    pub fn check_integrity(&self) -> Result<()> {
        // SAFETY: a live service.
        self.check(unsafe { sys::gf_check(self.as_ptr()) })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // SAFETY: &mut self: no other call on the service is in flight.
        unsafe { sys::gf_close(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("model_hash", &self.model_hash()).finish_non_exhaustive()
    }
}

/// # Safety
/// `r` is a live result.
unsafe fn convert_result(r: &sys::gf_result) -> Response {
    Response {
        conversation_id: r.conversation_id,
        prompt_id: r.prompt_id,
        response_id: r.response_id,
        text: cstr_lossy(r.text),
        finish_reason: FinishReason::from_raw(r.finish_reason),
        prompt_tokens: count(r.prompt_tokens),
        completion_tokens: count(r.completion_tokens),
        cached_tokens: count(r.cached_tokens),
        prompt_ms: r.prompt_ms,
        generation_ms: r.generation_ms,
        queue_ms: r.queue_ms,
        store_ms: r.store_ms,
    }
}
