//! Safe Rust API of libghostflow: every prompt and every answer is stored
//! atomically in an encrypted history database (zqlite) while the engine
//! (ghostllm) streams the answer.
//!
//! ```no_run
//! use ghostflow::{Config, Conversation, LLMService};
//!
//! # async fn demo() -> ghostflow::Result<()> {
//! let mut config = Config::new(String::from("correct horse battery staple"));
//! config.db_path = Some("history.db".into());
//! config.model_path = Some("stories260K.gguf".into());
//! let service = LLMService::open(config).await?;
//!
//! let mut stream = service.stream_prompt(Conversation::New, "Once upon a time", None);
//! while let Some(piece) = stream.next_piece().await {
//!     print!("{piece}");
//! }
//! let stored = stream.response().await?;
//! println!("\n[conversation {}, prompt #{}]", stored.conversation_id, stored.prompt_id);
//! # Ok(()) }
//! ```
//!
//! [`Service`] is the blocking API (`Send + Sync`, share it with `Arc`);
//! [`LLMService`] runs it on tokio's blocking pool. The engine's and the
//! store's own crates are re-exported as [`ghostllm`] and [`zqlite`].

mod error;
mod llm_service;
mod service;

pub use error::{strerror, Error, ErrorCode, Result};
pub use ghostllm::{self, FinishReason, GenParams, Params};
pub use llm_service::{LLMService, ResponseStream};
pub use service::{Answer, Config, Conversation, ConversationInfo, Exchange, Response, Service};
pub use zqlite::{self, SecretKey};
