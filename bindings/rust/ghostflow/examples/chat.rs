//! Streams one answer and stores the exchange in the encrypted history.
//!
//!     GHOSTFLOW_KEY=secret cargo run --example chat -- MODEL.gguf HISTORY.db "Once upon a time"
use std::io::Write;

use ghostflow::{Config, Conversation, GenParams, LLMService};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, db, prompt] = match <[String; 3]>::try_from(args) {
        Ok(args) => args,
        Err(_) => return Err("usage: chat MODEL.gguf HISTORY.db PROMPT (key in GHOSTFLOW_KEY)".into()),
    };
    let mut config = Config::new(std::env::var("GHOSTFLOW_KEY")?); // zeroized on drop
    config.model_path = Some(model.into());
    config.db_path = Some(db.into());
    let service = LLMService::open(config).await?;

    // Stream the answer as it is generated...
    let mut stream =
        service.stream_prompt(Conversation::Label("example".into()), &prompt, Some(GenParams::greedy(64)));
    while let Some(piece) = stream.next_piece().await {
        print!("{piece}");
        std::io::stdout().flush()?;
    }
    // ...then get what was stored.
    let stored = stream.response().await?;
    println!(
        "\n[{:?}; conversation {}, prompt #{}]",
        stored.finish_reason, stored.conversation_id, stored.prompt_id
    );

    for exchange in service.history(Some(stored.conversation_id), 5).await? {
        let answer = exchange.answer.map(|a| a.text).unwrap_or_default();
        println!("> {}\n{}", exchange.prompt, answer);
    }
    Ok(())
}
