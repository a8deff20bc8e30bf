//! The WASI `io` and `monotonic-clock` interfaces, made never to block.
//!
//! wasmtime-wasi's synchronous bindings run their blocking calls through
//! `Handle::block_on` on the ambient tokio runtime, which panics when the
//! caller is itself a tokio task — exactly where the load engine calls a
//! parser. Here every operation is driven by one poll with a no-op waker:
//! our streams (guest output, closed stdin) are always ready, so a blocking
//! call completes at once, and anything that would really wait (a timer, an
//! empty poll list) traps instead. A plugin has nothing to wait for, and a
//! wait could not be cut short by the epoch deadline.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::clocks::WasiClocksCtxView;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::bindings::io::{poll as async_poll, streams as async_streams};
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, StreamError, StreamResult};

// Both the async traits (implemented by wasmtime-wasi-io on the table) and
// the sync ones (implemented below) have these method names, so calls name
// their trait.
use async_poll::{Host as APoll, HostPollable as APollable};
use async_streams::{Host as AStreams, HostInputStream as AIn, HostOutputStream as AOut};

/// Run `fut` to completion if it is ready on its first poll; otherwise the
/// guest asked to wait, which traps.
fn now_or_trap<F: Future>(what: &str, fut: F) -> wasmtime::Result<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => Ok(out),
        Poll::Pending => Err(wasmtime::format_err!(
            "the plugin tried to wait in {what}; plugins may not block"
        )),
    }
}

fn stream_now<T, F: Future<Output = StreamResult<T>>>(what: &str, fut: F) -> StreamResult<T> {
    now_or_trap(what, fut).map_err(StreamError::Trap)?
}

/// `wasi:io/poll` and `wasi:io/streams` over the store's resource table.
pub(crate) struct NonBlockingIo<'a>(pub(crate) &'a mut ResourceTable);

/// The [`HasData`] marker for [`NonBlockingIo`].
pub(crate) struct NonBlockingIoData;

impl HasData for NonBlockingIoData {
    type Data<'a> = NonBlockingIo<'a>;
}

impl poll::Host for NonBlockingIo<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        now_or_trap("wasi:io/poll.poll", APoll::poll(self.0, pollables))?
    }
}

impl poll::HostPollable for NonBlockingIo<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        now_or_trap(
            "wasi:io/poll.pollable.ready",
            APollable::ready(self.0, pollable),
        )?
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        now_or_trap(
            "wasi:io/poll.pollable.block",
            APollable::block(self.0, pollable),
        )?
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        APollable::drop(self.0, pollable)
    }
}

impl streams::Host for NonBlockingIo<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        Ok(match AStreams::convert_stream_error(self.0, err)? {
            async_streams::StreamError::LastOperationFailed(e) => {
                streams::StreamError::LastOperationFailed(e)
            }
            async_streams::StreamError::Closed => streams::StreamError::Closed,
        })
    }
}

impl streams::HostOutputStream for NonBlockingIo<'_> {
    fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        now_or_trap(
            "wasi:io/streams.output-stream.drop",
            AOut::drop(self.0, stream),
        )?
    }

    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        AOut::check_write(self.0, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        AOut::write(self.0, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        stream_now(
            "wasi:io/streams.blocking-write-and-flush",
            AOut::blocking_write_and_flush(self.0, stream, bytes),
        )
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        stream_now(
            "wasi:io/streams.blocking-write-zeroes-and-flush",
            AOut::blocking_write_zeroes_and_flush(self.0, stream, len),
        )
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        AOut::subscribe(self.0, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        AOut::write_zeroes(self.0, stream, len)
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        AOut::flush(self.0, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        stream_now(
            "wasi:io/streams.blocking-flush",
            AOut::blocking_flush(self.0, stream),
        )
    }

    fn splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        AOut::splice(self.0, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        stream_now(
            "wasi:io/streams.blocking-splice",
            AOut::blocking_splice(self.0, dst, src, len),
        )
    }
}

impl streams::HostInputStream for NonBlockingIo<'_> {
    fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        now_or_trap(
            "wasi:io/streams.input-stream.drop",
            AIn::drop(self.0, stream),
        )?
    }

    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        AIn::read(self.0, stream, len)
    }

    fn blocking_read(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        stream_now(
            "wasi:io/streams.blocking-read",
            AIn::blocking_read(self.0, stream, len),
        )
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        AIn::skip(self.0, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        stream_now(
            "wasi:io/streams.blocking-skip",
            AIn::blocking_skip(self.0, stream, len),
        )
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        AIn::subscribe(self.0, stream)
    }
}

/// `wasi:clocks/monotonic-clock` that reads time but cannot sleep: a timer
/// would park the host thread where no deadline reaches it.
pub(crate) struct NoTimers<'a>(pub(crate) WasiClocksCtxView<'a>);

/// The [`HasData`] marker for [`NoTimers`].
pub(crate) struct NoTimersData;

impl HasData for NoTimersData {
    type Data<'a> = NoTimers<'a>;
}

impl monotonic_clock::Host for NoTimers<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        monotonic_clock::Host::now(&mut self.0)
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        monotonic_clock::Host::resolution(&mut self.0)
    }

    fn subscribe_instant(
        &mut self,
        _when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        Err(wasmtime::format_err!(
            "the plugin asked for a timer (wasi:clocks/monotonic-clock.subscribe-instant); plugins may not sleep"
        ))
    }

    fn subscribe_duration(
        &mut self,
        _duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        Err(wasmtime::format_err!(
            "the plugin asked for a timer (wasi:clocks/monotonic-clock.subscribe-duration); plugins may not sleep"
        ))
    }
}
