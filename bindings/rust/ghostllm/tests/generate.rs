//! Generation through the safe API on the real stories260K model.

#[path = "../../test-support/common.rs"]
mod common;

use std::ops::ControlFlow;
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::thread;

use ghostllm::{Canceller, ErrorCode, FinishReason, GenParams, GhostLLM, Model, Params};

const PROMPT: &str = "Once upon a time";

fn collect(llm: &mut GhostLLM, prompt: &str, params: &GenParams) -> (ghostllm::Response, Vec<String>) {
    let mut pieces = Vec::new();
    let resp = llm
        .generate_with(prompt, params, |p| {
            pieces.push(p.to_owned());
            ControlFlow::Continue(())
        })
        .expect("generation succeeds");
    (resp, pieces)
}

#[test]
fn greedy_text_matches_the_c_cli_and_llama_cpp() {
    let model = common::stories260k();
    let out = Command::new(common::ghostflow_cli())
        .args(["run", "-m"])
        .arg(&model)
        .args(["--temp", "0", "-n", "32", PROMPT])
        .output()
        .expect("running the ghostflow CLI");
    assert!(
        out.status.success(),
        "ghostflow run failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_text = String::from_utf8(out.stdout).expect("CLI output is UTF-8");

    let mut llm = GhostLLM::new(&model).unwrap();
    let (resp, pieces) = collect(&mut llm, PROMPT, &GenParams::greedy(32));
    assert_eq!(resp.completion_tokens, 32);
    assert_eq!(resp.finish_reason, FinishReason::Length);
    assert!(!resp.text.is_empty());
    // The CLI ends its output with a newline after the streamed text.
    assert_eq!(cli_text, format!("{}\n", resp.text));
    assert_eq!(pieces.concat(), resp.text);
    let reference = common::reference_text("stories260K.gguf", PROMPT);
    assert!(
        reference.starts_with(&resp.text),
        "32 greedy tokens {:?} are not a prefix of llama.cpp's 64 {:?}",
        resp.text,
        reference
    );
}

#[test]
fn closure_that_breaks_after_five_pieces_gets_exactly_five() {
    let mut llm = GhostLLM::new(common::stories260k()).unwrap();
    let mut pieces = Vec::new();
    let resp =
        llm.generate_with(PROMPT, &GenParams::greedy(64), common::break_after(5, &mut pieces)).unwrap();
    assert_eq!(pieces.len(), 5);
    assert_eq!(resp.finish_reason, FinishReason::Cancelled);
    assert_eq!(resp.text, pieces.concat());
    assert!(common::reference_text("stories260K.gguf", PROMPT).starts_with(&resp.text));
}

#[test]
fn panic_in_the_closure_reaches_the_caller_and_the_context_stays_usable() {
    let mut llm = GhostLLM::new(common::stories260k()).unwrap();
    let mut calls = 0;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        llm.generate_with(PROMPT, &GenParams::greedy(16), |_| {
            calls += 1;
            panic!("closure failed on purpose");
        })
    }));
    let payload = caught.expect_err("the panic is resumed after the C call");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"closure failed on purpose"));
    assert_eq!(calls, 1, "generation stopped at the panicking piece");

    let (resp, _) = collect(&mut llm, PROMPT, &GenParams::greedy(8));
    assert_eq!(resp.completion_tokens, 8);
}

#[test]
fn canceller_stops_a_generation_from_another_thread() {
    let mut llm = GhostLLM::new(common::stories260k()).unwrap();
    let canceller: Canceller = llm.canceller();
    let (seen_tx, seen_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let other = thread::spawn(move || {
        seen_rx.recv().unwrap();
        canceller.cancel();
        done_tx.send(()).unwrap();
    });
    let mut n = 0;
    let resp = llm
        .generate_with(PROMPT, &GenParams::greedy(-1), |_| {
            n += 1;
            if n == 2 {
                // Wait until the other thread has cancelled: the engine must
                // then stop at its next token.
                seen_tx.send(()).unwrap();
                done_rx.recv().unwrap();
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    other.join().unwrap();
    assert_eq!(resp.finish_reason, FinishReason::Cancelled);
    assert!(n <= 3, "{n} pieces arrived after cancelling at the second");
    assert!(resp.completion_tokens < 64, "stopped early, not at the end of the window");
}

#[test]
fn stop_string_ends_the_answer_and_is_not_streamed() {
    let mut llm = GhostLLM::new(common::stories260k()).unwrap();
    let params = GenParams { stop: vec!["Lily".to_owned()], ..GenParams::greedy(64) };
    let (resp, pieces) = collect(&mut llm, PROMPT, &params);
    assert_eq!(resp.finish_reason, FinishReason::Stop);
    assert_eq!(resp.text, ", there was a little girl named ");
    assert_eq!(pieces.concat(), resp.text);
}

#[test]
fn one_model_serves_contexts_on_several_threads() {
    let model = Arc::new(Model::load(common::stories260k()).unwrap());
    let params = Params { n_threads: 1, ..Params::default() };
    let texts: Vec<String> = (0..2)
        .map(|_| {
            let mut llm = GhostLLM::with_model(Arc::clone(&model), &params).unwrap();
            thread::spawn(move || collect(&mut llm, PROMPT, &GenParams::greedy(16)).0.text)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(texts[0], texts[1]);
    // The contexts (moved into the threads) are gone; the model is ours alone.
    assert_eq!(Arc::strong_count(&model), 1);
}

#[test]
fn context_defaults_come_from_with_params() {
    // The context keeps pointers to its default stop strings: they must stay
    // alive after with_params returns.
    let params =
        Params { gen: GenParams { stop: vec![".".into()], ..GenParams::greedy(64) }, ..Params::default() };
    let mut llm = GhostLLM::with_params(common::stories260k(), &params).unwrap();
    drop(params);
    let resp = llm.generate(PROMPT, |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(resp.finish_reason, FinishReason::Stop);
    assert_eq!(resp.text, ", there was a little girl named Lily");
    let resp = llm.generate_with(PROMPT, &GenParams::greedy(4), |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(resp.completion_tokens, 4);
    assert_eq!(resp.finish_reason, FinishReason::Length);
}

#[test]
fn missing_model_is_an_io_error_naming_the_file() {
    let err = GhostLLM::new("/nonexistent/model.gguf").expect_err("loading fails");
    assert_eq!(err.code(), ErrorCode::Io);
    assert!(err.message().contains("/nonexistent/model.gguf"), "message: {}", err.message());
}

#[test]
fn malformed_model_is_a_format_error() {
    let dir = common::TempDir::new("bad-gguf");
    let path = dir.join("bad.gguf");
    std::fs::write(&path, b"GGUF\x03\x00\x00\x00 truncated").unwrap();
    let err = Model::load(&path).expect_err("loading fails");
    assert_eq!(err.code(), ErrorCode::Format, "{err}");
}

#[test]
fn prompt_with_a_nul_byte_is_rejected() {
    let mut llm = GhostLLM::new(common::stories260k()).unwrap();
    let err = llm.generate("a\0b", |_| ControlFlow::Continue(())).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.message().contains("offset 1"), "{err}");
}

#[test]
fn prompt_larger_than_the_window_is_context_full() {
    let params = Params { n_ctx: 16, ..Params::default() };
    let mut llm = GhostLLM::with_params(common::stories260k(), &params).unwrap();
    let err = llm.generate(&"Once upon a time ".repeat(20), |_| ControlFlow::Continue(())).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ContextFull, "{err}");
}

#[test]
fn tokenize_and_detokenize_round_trip() {
    let model = Model::load(common::stories260k()).unwrap();
    let info = model.info();
    assert_eq!(info.architecture, "llama");
    assert_eq!(info.n_vocab, 512);
    let tokens = model.tokenize(PROMPT, false, false).unwrap();
    assert_eq!(tokens, vec![403, 407, 261, 378]);
    let with_bos = model.tokenize(PROMPT, true, false).unwrap();
    assert_eq!(with_bos.first().copied(), info.bos_token);
    assert_eq!(model.detokenize(&tokens).unwrap().trim_start(), PROMPT);
}

#[test]
fn thread_safety_markers() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Model>();
    send_sync::<Canceller>();
    send::<GhostLLM>();
}
