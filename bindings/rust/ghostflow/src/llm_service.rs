//! `LLMService`: the service for tokio programs. Generation and database work
//! run on tokio's blocking thread pool (`spawn_blocking`), never on the async
//! workers; pieces of the answer come back through a bounded channel as a
//! `Stream`.

use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use ghostllm::GenParams;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};

use crate::error::{Error, Result};
use crate::service::{Config, Conversation, Exchange, Response, Service};

/// Pieces buffered between the generating thread and the reader; a slow
/// reader makes generation wait instead of growing memory.
const PIECE_BUFFER: usize = 64;

/// An async front of [`Service`]. Cheap to clone (an `Arc`); clones share the
/// service, its context pool and its database. Every method must be called
/// from within a tokio runtime.
#[derive(Clone, Debug)]
pub struct LLMService {
    service: Arc<Service>,
}

fn join_result<T>(joined: std::result::Result<Result<T>, JoinError>) -> Result<T> {
    match joined {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::new(
            ghostflow_sys::GF_ERR_INTERNAL,
            "the blocking task was cancelled (runtime shutting down)",
        )),
    }
}

impl LLMService {
    /// Opens the service (key derivation and model loading) on a blocking thread.
    pub async fn open(config: Config) -> Result<LLMService> {
        join_result(tokio::task::spawn_blocking(move || Service::open(&config)).await).map(LLMService::new)
    }

    pub fn new(service: Service) -> LLMService {
        LLMService { service: Arc::new(service) }
    }

    /// The blocking service underneath.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Service) -> Result<T> + Send + 'static,
    {
        let service = Arc::clone(&self.service);
        join_result(tokio::task::spawn_blocking(move || f(&service)).await)
    }

    /// Runs one exchange with the configured generation settings and returns
    /// the stored answer. The prompt is stored before generation starts and
    /// the answer after it ends, by libghostflow.
    pub async fn process_prompt(
        &self,
        conversation: impl Into<Conversation>,
        prompt: &str,
    ) -> Result<Response> {
        self.stream_prompt(conversation, prompt, None).response().await
    }

    /// Starts one exchange and streams its answer: read pieces with
    /// [`ResponseStream::next_piece`] (or as a `futures_core::Stream`), then
    /// [`ResponseStream::response`] for the stored result. Dropping the
    /// stream cancels the generation (the partial answer is still stored).
    pub fn stream_prompt(
        &self,
        conversation: impl Into<Conversation>,
        prompt: &str,
        params: Option<GenParams>,
    ) -> ResponseStream {
        let (tx, rx) = mpsc::channel::<String>(PIECE_BUFFER);
        let cancel = Arc::new(AtomicBool::new(false));
        let service = Arc::clone(&self.service);
        let conversation = conversation.into();
        let prompt = prompt.to_owned();
        let stop = Arc::clone(&cancel);
        let task = tokio::task::spawn_blocking(move || {
            service.process_prompt(&conversation, &prompt, params.as_ref(), |piece| {
                // blocking_send is for exactly this: a non-async thread
                // feeding an async reader. It fails once the reader is gone.
                if stop.load(Ordering::Relaxed) || tx.blocking_send(piece.to_owned()).is_err() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
        });
        ResponseStream { pieces: rx, task, cancel }
    }

    /// Asks every running generation of the service to stop.
    pub fn cancel_all(&self) {
        self.service.cancel_all();
    }

    pub async fn new_conversation(&self) -> Result<i64> {
        self.blocking(|s| s.new_conversation()).await
    }

    /// See [`Service::history`].
    pub async fn history(&self, conversation: Option<i64>, limit: usize) -> Result<Vec<Exchange>> {
        self.blocking(move |s| s.history(conversation, limit)).await
    }

    /// See [`Service::search`].
    pub async fn search(&self, text: &str, limit: usize) -> Result<Vec<Exchange>> {
        let text = text.to_owned();
        self.blocking(move |s| s.search(&text, limit)).await
    }
}

/// The answer of one exchange as it is generated. Yields pieces of text (whole
/// UTF-8 characters); ends when generation ends.
#[derive(Debug)]
pub struct ResponseStream {
    pieces: mpsc::Receiver<String>,
    task: JoinHandle<Result<Response>>,
    cancel: Arc<AtomicBool>,
}

impl ResponseStream {
    /// The next piece, or `None` when the answer is complete.
    pub async fn next_piece(&mut self) -> Option<String> {
        self.pieces.recv().await
    }

    /// Stops the generation before its next piece; the partial answer is
    /// stored and [`ResponseStream::response`] reports it as cancelled.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Waits for the exchange to be stored and returns it. Pieces not read
    /// yet are skipped (they are all in `Response::text`).
    pub async fn response(mut self) -> Result<Response> {
        while self.pieces.recv().await.is_some() {}
        join_result(self.task.await)
    }
}

impl futures_core::Stream for ResponseStream {
    type Item = String;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        self.pieces.poll_recv(cx)
    }
}
