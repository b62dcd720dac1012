//! The wasm boundary: three exported functions that pass bytes through linear memory.
//!
//! ```text
//! let p = pg_input(len);        // Rust sizes its input buffer to len bytes; p is where it starts
//! (JS writes the request's UTF-8 bytes at p..p+len)
//! let n = pg_call();            // Rust answers the request; n is the answer's length in bytes
//! let q = pg_output();          // the answer is at q..q+n until the next pg_call
//! ```
//!
//! # Soundness
//!
//! There is no `unsafe` block here; the lint is allowed only for `#[no_mangle]`, which makes the
//! three functions visible to the page under their own names. What keeps the page's writes and
//! reads sound is that Rust never holds a reference into either buffer while the page touches
//! it:
//! - The buffers are `Vec<u8>`s in thread-locals (a wasm instance has one thread) behind
//!   `RefCell`s. Every borrow ends before the function that took it returns, so between calls
//!   no Rust reference to the bytes exists, and the page may write the input buffer (or read
//!   the output buffer) like any foreign code given a pointer.
//! - `pg_input` returns a pointer to exactly `len` initialised bytes; the page writes at most
//!   `len` bytes there. Nothing reallocates the buffer until the next `pg_input`, and `pg_call`
//!   reads it through the `RefCell`, as ordinary Rust, after the writes.
//! - `pg_output` points at the answer `pg_call` stored; it stays valid (nothing reallocates the
//!   output buffer) until the next `pg_call`. The page copies it out at once.
//! - Input bytes are decoded lossily, so any bytes are a request; [`Session::handle`] answers
//!   every request without panicking.
#![allow(unsafe_code)]

use crate::Session;
use std::cell::RefCell;

thread_local! {
    static SESSION: RefCell<Session> = RefCell::new(Session::new());
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Makes room for a request of `len` bytes; returns where the page writes them.
#[no_mangle]
pub extern "C" fn pg_input(len: usize) -> *mut u8 {
    INPUT.with(|b| {
        let mut b = b.borrow_mut();
        b.clear();
        b.resize(len, 0);
        b.as_mut_ptr()
    })
}

/// Answers the request in the input buffer; returns the answer's length (see [`pg_output`]).
#[no_mangle]
pub extern "C" fn pg_call() -> usize {
    let request = INPUT.with(|b| String::from_utf8_lossy(&b.borrow()).into_owned());
    let answer = SESSION.with(|s| s.borrow_mut().handle(&request));
    OUTPUT.with(|b| {
        let mut b = b.borrow_mut();
        *b = answer.into_bytes();
        b.len()
    })
}

/// Where the last answer starts.
#[no_mangle]
pub extern "C" fn pg_output() -> *const u8 {
    OUTPUT.with(|b| b.borrow().as_ptr())
}
