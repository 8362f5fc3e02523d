//! The service through the safe API: stored exchanges, streaming, the tokio
//! front, keys.

#[path = "../../test-support/common.rs"]
mod common;

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use ghostflow::{Config, Conversation, ErrorCode, FinishReason, GenParams, LLMService, Service};

const ONCE: &str = "Once upon a time";
const DOG: &str = "The little dog";

/// A service over stories260K with a fresh database in `dir`, Argon2id at
/// its minimum cost (these tests check behaviour, not KDF strength).
fn config(dir: &common::TempDir, key: &str, n_contexts: i32) -> Config {
    let mut c = Config::new(key);
    c.db_path = Some(dir.join("history.db"));
    c.kdf_opslimit = 1;
    c.kdf_memlimit = 8192;
    c.model_path = Some(common::stories260k());
    c.n_contexts = n_contexts;
    c.context_params.n_threads = 1;
    c.gen = GenParams::greedy(24);
    c
}

fn reference(prompt: &str) -> String {
    common::reference_text("stories260K.gguf", prompt)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_service_handles_four_concurrent_prompts() {
    let dir = common::TempDir::new("gf-concurrent");
    let service = LLMService::open(config(&dir, "k", 4)).await.unwrap();
    let prompts = [ONCE, DOG, ONCE, DOG];
    let tasks: Vec<_> = prompts
        .iter()
        .map(|&prompt| {
            let service = service.clone();
            tokio::spawn(async move { (prompt, service.process_prompt(Conversation::New, prompt).await) })
        })
        .collect();
    let mut conversations = Vec::new();
    for task in tasks {
        let (prompt, result) = task.await.unwrap();
        let r = result.unwrap();
        assert_eq!(r.finish_reason, FinishReason::Length);
        assert_eq!(r.completion_tokens, 24);
        assert!(
            reference(prompt).starts_with(&r.text) && !r.text.is_empty(),
            "{prompt:?} → {:?} is not llama.cpp's greedy text",
            r.text
        );
        let stored = service.history(Some(r.conversation_id), 0).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].prompt, prompt);
        assert_eq!(stored[0].prompt_id, r.prompt_id);
        let answer = stored[0].answer.as_ref().expect("the answer is stored");
        assert_eq!(answer.text, r.text);
        assert_eq!(answer.response_id, r.response_id);
        assert_eq!(answer.finish_reason, FinishReason::Length);
        conversations.push(r.conversation_id);
    }
    conversations.sort_unstable();
    conversations.dedup();
    assert_eq!(conversations.len(), 4, "each prompt got its own conversation");
    assert_eq!(service.history(None, 0).await.unwrap().len(), 4);
    service.service().check_integrity().unwrap();
}

#[tokio::test]
async fn streamed_pieces_make_up_the_stored_answer() {
    let dir = common::TempDir::new("gf-stream");
    let service = LLMService::open(config(&dir, "k", 1)).await.unwrap();
    let mut stream = service.stream_prompt(Conversation::New, ONCE, Some(GenParams::greedy(32)));
    let mut pieces = Vec::new();
    while let Some(piece) = stream.next_piece().await {
        pieces.push(piece);
    }
    let r = stream.response().await.unwrap();
    assert!(pieces.len() > 1);
    assert_eq!(pieces.concat(), r.text);
    assert_eq!(r.completion_tokens, 32);
    assert!(reference(ONCE).starts_with(&r.text));
    let stored = service.history(Some(r.conversation_id), 0).await.unwrap();
    assert_eq!(stored[0].answer.as_ref().unwrap().text, r.text);
    assert_eq!(stored[0].params.max_tokens, 32);
    assert_eq!(stored[0].params.temperature, 0.0);
    assert_eq!(stored[0].model_hash, service.service().model_hash().unwrap());
}

#[tokio::test]
async fn cancelling_a_stream_stores_the_partial_answer() {
    let dir = common::TempDir::new("gf-cancel");
    let mut c = config(&dir, "k", 1);
    c.context_params.n_ctx = 256;
    let service = LLMService::open(c).await.unwrap();
    let mut stream = service.stream_prompt(Conversation::New, ONCE, Some(GenParams::greedy(-1)));
    let mut read = String::new();
    for _ in 0..5 {
        read.push_str(&stream.next_piece().await.expect("a piece"));
    }
    stream.cancel();
    let r = stream.response().await.unwrap();
    assert_eq!(r.finish_reason, FinishReason::Cancelled);
    assert!(r.text.starts_with(&read));
    assert!(r.completion_tokens < 200, "stopped before the window filled");
    let stored = service.history(Some(r.conversation_id), 0).await.unwrap();
    let answer = stored[0].answer.as_ref().unwrap();
    assert_eq!(answer.finish_reason, FinishReason::Cancelled);
    assert_eq!(answer.text, r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stream_cancels_the_generation() {
    let dir = common::TempDir::new("gf-drop");
    let mut c = config(&dir, "k", 1);
    c.context_params.n_ctx = 256;
    let service = LLMService::open(c).await.unwrap();
    let mut stream = service.stream_prompt("dropped", ONCE, Some(GenParams::greedy(-1)));
    stream.next_piece().await.expect("a piece");
    drop(stream);
    // The blocking task notices at its next piece and stores what it has.
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let stored = service.history(None, 0).await.unwrap();
        if let Some(a) = stored.first().and_then(|e| e.answer.clone()) {
            break a;
        }
        assert!(Instant::now() < deadline, "the answer was never stored");
        tokio::task::yield_now().await;
    };
    assert_eq!(answer.finish_reason, FinishReason::Cancelled);
    assert!(answer.completion_tokens < 200);
}

#[test]
fn closure_that_breaks_after_five_pieces_stores_exactly_five() {
    let dir = common::TempDir::new("gf-five");
    let service = Service::open(&config(&dir, "k", 1)).unwrap();
    let mut pieces = Vec::new();
    let r = service
        .process_prompt(
            &Conversation::New,
            ONCE,
            Some(&GenParams::greedy(64)),
            common::break_after(5, &mut pieces),
        )
        .unwrap();
    assert_eq!(pieces.len(), 5);
    assert_eq!(r.finish_reason, FinishReason::Cancelled);
    assert_eq!(r.text, pieces.concat());
    let stored = service.history(Some(r.conversation_id), 0).unwrap();
    assert_eq!(stored[0].answer.as_ref().unwrap().text, pieces.concat());
}

#[test]
fn panic_in_the_closure_is_resumed_after_the_answer_is_stored() {
    let dir = common::TempDir::new("gf-panic");
    let service = Service::open(&config(&dir, "k", 1)).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        service.process_prompt(&Conversation::New, ONCE, None, |_| panic!("closure failed on purpose"))
    }));
    assert!(caught.is_err());
    let stored = service.history(None, 0).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].answer.as_ref().unwrap().finish_reason, FinishReason::Cancelled);
    // The service still works.
    let r = service.process_prompt(&Conversation::New, DOG, None, |_| ControlFlow::Continue(())).unwrap();
    assert!(reference(DOG).starts_with(&r.text));
}

#[test]
fn labelled_conversation_collects_its_exchanges() {
    let dir = common::TempDir::new("gf-label");
    let service = Service::open(&config(&dir, "k", 1)).unwrap();
    let alice = Conversation::Label("alice".into());
    let first = service.process_prompt(&alice, ONCE, None, |_| ControlFlow::Continue(())).unwrap();
    let second = service.process_prompt(&alice, DOG, None, |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(first.conversation_id, second.conversation_id);
    let stored = service.history(Some(first.conversation_id), 0).unwrap();
    let prompts: Vec<&str> = stored.iter().map(|e| e.prompt.as_str()).collect();
    assert_eq!(prompts, [ONCE, DOG]);
    let listed = service.conversations(0).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].label.as_deref(), Some("alice"));
    assert_eq!(listed[0].n_exchanges, 2);
    let found = service.search("dog", 0).unwrap();
    assert!(found.iter().any(|e| e.prompt == DOG), "search finds the stored prompt");
    assert_eq!(
        service
            .process_prompt(&Conversation::Id(9999), ONCE, None, |_| ControlFlow::Continue(()))
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );
}

#[test]
fn wrong_key_is_rejected() {
    let dir = common::TempDir::new("gf-key");
    drop(Service::open(&config(&dir, "right", 0)).unwrap());
    let err = Service::open(&config(&dir, "wrong", 0)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongKey);
    assert!(!err.message().is_empty());
    let svc = Service::open(&config(&dir, "right", 0)).unwrap();
    svc.rekey("newer").unwrap();
    drop(svc);
    assert_eq!(Service::open(&config(&dir, "right", 0)).unwrap_err().code(), ErrorCode::WrongKey);
    Service::open(&config(&dir, "newer", 0)).unwrap();
}

#[test]
fn thread_safety_markers() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Service>();
    send_sync::<LLMService>();
}
