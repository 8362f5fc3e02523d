//! Carrying a Rust closure through a C streaming callback.
//!
//! libghostllm and libghostflow both stream with
//! `int fn(const char *piece, size_t len, void *user_data)`: 0 goes on,
//! non-zero cancels. [`PieceSink`] is the `user_data`: it holds the closure and,
//! if the closure panics, the panic payload. The panic is caught before it can
//! unwind into C, the generation is cancelled, and [`PieceSink::finish`]
//! resumes the panic on the Rust side once the C call has returned and its
//! resources were freed.

use std::any::Any;
use std::ops::ControlFlow;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{self, AssertUnwindSafe};

/// The `user_data` of one streaming call. Keep it alive (and unmoved) for
/// the whole call, then call [`PieceSink::finish`].
pub struct PieceSink<F> {
    on_piece: F,
    panic: Option<Box<dyn Any + Send + 'static>>,
}

/// A C callback that forwards to a [`PieceSink`]; `user_data` must be
/// [`PieceSink::user_data`] of a live sink of the same `F`.
pub type RawStreamFn = unsafe extern "C" fn(*const c_char, usize, *mut c_void) -> c_int;

impl<F: FnMut(&str) -> ControlFlow<()>> PieceSink<F> {
    pub fn new(on_piece: F) -> Self {
        PieceSink { on_piece, panic: None }
    }

    /// The callback to hand to C together with [`PieceSink::user_data`].
    pub fn callback(&self) -> RawStreamFn {
        trampoline::<F>
    }

    pub fn user_data(&mut self) -> *mut c_void {
        self as *mut Self as *mut c_void
    }

    /// Resumes the closure's panic, if it panicked. Call after the C call has
    /// returned and its results were freed or copied.
    pub fn finish(self) {
        if let Some(payload) = self.panic {
            panic::resume_unwind(payload);
        }
    }
}

unsafe extern "C" fn trampoline<F: FnMut(&str) -> ControlFlow<()>>(
    piece: *const c_char,
    len: usize,
    user_data: *mut c_void,
) -> c_int {
    // SAFETY: user_data is the PieceSink<F> the caller of the C function
    // passed in, alive and exclusively ours for the duration of the call
    // (C calls the callback synchronously, from the calling thread's call).
    let sink = &mut *(user_data as *mut PieceSink<F>);
    if sink.panic.is_some() {
        return 1;
    }
    let bytes: &[u8] = if piece.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: C passes len readable bytes at piece, borrowed for the call.
        std::slice::from_raw_parts(piece as *const u8, len)
    };
    // Pieces are whole UTF-8 characters by contract; a model that emits
    // invalid bytes gets U+FFFD, exactly as the final text is converted.
    let text = String::from_utf8_lossy(bytes);
    let on_piece = &mut sink.on_piece;
    match panic::catch_unwind(AssertUnwindSafe(|| on_piece(&text))) {
        Ok(ControlFlow::Continue(())) => 0,
        Ok(ControlFlow::Break(())) => 1,
        Err(payload) => {
            sink.panic = Some(payload);
            1
        }
    }
}
