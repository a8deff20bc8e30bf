//! Integration tests of the simulator: real sockets on 127.0.0.1, a minimal client.

mod batching;
mod client;
mod faults;
mod lifecycle;
mod openai;
mod protocols;
mod timing;
