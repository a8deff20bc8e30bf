//! What a plugin instance may touch: the per-store state, the linker that
//! grants imports, and the list of imports a component may ask for.
//!
//! A plugin gets our `host` interface and the slice of WASI that Rust's std
//! on wasip2 pulls in, backed by a context with nothing in it: no preopened
//! directories, no environment, no arguments, an empty stdin, stdout and
//! stderr going to the log, no sockets or network at all, and clocks that
//! can be read but not slept on.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::adapter::llm_loadtest::plugin::host;
use super::guest_output::GuestOutput;
use super::wasi_nonblocking::{NoTimers, NoTimersData, NonBlockingIo, NonBlockingIoData};

/// The version of the interfaces every contract version shares (`types`, `host`, `tokenizer`,
/// the policies): 0.2 changed only the adapter and uses the rest from 0.1.
pub(crate) const BASE_VERSION: &str = "0.1.0";
/// The contract versions this host loads, oldest first.
pub(crate) const WIT_VERSIONS: &[&str] = &["0.1.0", "0.2.0"];
/// [`WIT_VERSIONS`] as a refusal names them.
pub(crate) const WIT_VERSIONS_TEXT: &str = "@0.1.0 and @0.2.0";
/// The package every plugin interface lives in.
pub(crate) const WIT_PACKAGE: &str = "llm-loadtest:plugin";

/// Interfaces of our own package a plugin may import.
const OWN_IMPORTS: &[&str] = &["host", "types"];

/// WASI interfaces a plugin may import (Rust std on wasip2 pulls in most of
/// these even when unused). Everything else — filesystem, sockets, http —
/// is refused at load.
const WASI_IMPORTS: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
];

/// Why an import is refused, if it is.
pub(crate) enum ImportVerdict {
    Granted,
    /// One of our interfaces, at another version of the package.
    OtherWitVersion(String),
    Forbidden,
}

/// Decide whether a component may import `name` (`ns:pkg/iface@version`).
pub(crate) fn check_import(name: &str) -> ImportVerdict {
    let (path, version) = match name.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (name, None),
    };
    if let Some(iface) = path
        .strip_prefix(WIT_PACKAGE)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        return match version {
            Some(BASE_VERSION) if OWN_IMPORTS.contains(&iface) => ImportVerdict::Granted,
            Some(v) if !WIT_VERSIONS.contains(&v) => ImportVerdict::OtherWitVersion(v.to_owned()),
            _ => ImportVerdict::Forbidden,
        };
    }
    // wasmtime-wasi implements WASI 0.2.x and links any 0.2 minor version.
    let wasi_02 = version.is_some_and(|v| v.starts_with("0.2."));
    if wasi_02 && WASI_IMPORTS.contains(&path) {
        ImportVerdict::Granted
    } else {
        ImportVerdict::Forbidden
    }
}

/// The per-instance memory cap. A refused growth is an error (so the guest
/// traps instead of seeing a failed `memory.grow` it might spin on), and the
/// flag tells the caller that the trap was the cap.
pub(crate) struct MemoryCap {
    limit: usize,
    pub(crate) hit: bool,
}

/// Table elements one instance may hold; far above what a plugin needs.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        if desired > self.limit {
            self.hit = true;
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes reached (wanted {desired})",
                self.limit
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }
}

/// Everything one plugin instance's store holds.
pub(crate) struct StoreData {
    plugin: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryCap,
    stderr: GuestOutput,
}

/// Longest `host.log` message kept; the rest is cut.
const MAX_LOG_MESSAGE: usize = 4096;

impl StoreData {
    pub(crate) fn new(plugin: Arc<str>, memory_limit: usize) -> Self {
        let stderr = GuestOutput::stderr(plugin.clone());
        let wasi = WasiCtxBuilder::new()
            .stdout(GuestOutput::stdout(plugin.clone()))
            .stderr(stderr.clone())
            .allow_blocking_current_thread(false)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        StoreData {
            plugin,
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap {
                limit: memory_limit,
                hit: false,
            },
            stderr,
        }
    }

    /// Reset per-call state before a call into the guest.
    pub(crate) fn start_call(&mut self) {
        self.memory.hit = false;
        self.stderr.start_call();
    }

    /// What the guest wrote on stderr during the current call.
    pub(crate) fn call_stderr(&self) -> String {
        self.stderr.call_text()
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl host::Host for StoreData {
    fn log(&mut self, level: host::Level, message: String) {
        let cut = (0..=MAX_LOG_MESSAGE.min(message.len()))
            .rev()
            .find(|&i| message.is_char_boundary(i))
            .unwrap_or(0);
        let message = &message[..cut];
        let plugin = &*self.plugin;
        match level {
            host::Level::Trace => tracing::trace!(plugin, "{message}"),
            host::Level::Debug => tracing::debug!(plugin, "{message}"),
            host::Level::Info => tracing::info!(plugin, "{message}"),
            host::Level::Warn => tracing::warn!(plugin, "{message}"),
            host::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// The linker every plugin is instantiated with: our `host` interface plus
/// the granted WASI interfaces, in their non-blocking form.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<StoreData>> {
    use wasmtime_wasi::p2::bindings::sync::io as sync_io;
    use wasmtime_wasi::p2::bindings::{cli, clocks, io, random};

    let mut l = Linker::new(engine);
    host::add_to_linker::<StoreData, HasSelf<StoreData>>(&mut l, |s| s)?;

    cli::environment::add_to_linker::<StoreData, WasiCli>(&mut l, StoreData::cli)?;
    cli::exit::add_to_linker::<StoreData, WasiCli>(&mut l, StoreData::cli)?;
    cli::stdin::add_to_linker::<StoreData, WasiCli>(&mut l, StoreData::cli)?;
    cli::stdout::add_to_linker::<StoreData, WasiCli>(&mut l, StoreData::cli)?;
    cli::stderr::add_to_linker::<StoreData, WasiCli>(&mut l, StoreData::cli)?;
    cli::terminal_input::add_to_linker::<StoreData, WasiCli>(&mut l, StoreData::cli)?;
    cli::terminal_output::add_to_linker::<StoreData, WasiCli>(&mut l, StoreData::cli)?;
    cli::terminal_stdin::add_to_linker::<StoreData, WasiCli>(&mut l, StoreData::cli)?;
    cli::terminal_stdout::add_to_linker::<StoreData, WasiCli>(&mut l, StoreData::cli)?;
    cli::terminal_stderr::add_to_linker::<StoreData, WasiCli>(&mut l, StoreData::cli)?;

    io::error::add_to_linker::<StoreData, HasTable>(&mut l, |s| &mut s.table)?;
    sync_io::poll::add_to_linker::<StoreData, NonBlockingIoData>(&mut l, |s| {
        NonBlockingIo(&mut s.table)
    })?;
    sync_io::streams::add_to_linker::<StoreData, NonBlockingIoData>(&mut l, |s| {
        NonBlockingIo(&mut s.table)
    })?;

    random::random::add_to_linker::<StoreData, WasiRandom>(&mut l, StoreData::random)?;
    random::insecure::add_to_linker::<StoreData, WasiRandom>(&mut l, StoreData::random)?;
    random::insecure_seed::add_to_linker::<StoreData, WasiRandom>(&mut l, StoreData::random)?;

    clocks::wall_clock::add_to_linker::<StoreData, WasiClocks>(&mut l, StoreData::clocks)?;
    clocks::monotonic_clock::add_to_linker::<StoreData, NoTimersData>(&mut l, |s| {
        NoTimers(s.clocks())
    })?;
    Ok(l)
}

/// The [`wasmtime::component::HasData`] marker for interfaces implemented
/// directly on the resource table.
struct HasTable;

impl wasmtime::component::HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(name: &str) -> bool {
        matches!(check_import(name), ImportVerdict::Granted)
    }

    #[test]
    fn imports_are_checked_by_interface_and_version() {
        assert!(granted("llm-loadtest:plugin/host@0.1.0"));
        assert!(granted("llm-loadtest:plugin/types@0.1.0"));
        assert!(granted("wasi:cli/stdout@0.2.0"));
        assert!(granted("wasi:io/streams@0.2.6"));
        assert!(!granted("wasi:filesystem/preopens@0.2.6"));
        assert!(!granted("wasi:sockets/tcp@0.2.0"));
        assert!(!granted("wasi:http/outgoing-handler@0.2.0"));
        assert!(!granted("wasi:cli/stdout@0.3.0"));
        assert!(!granted("llm-loadtest:plugin/adapter@0.1.0"));
        // 0.2 has no `host` of its own: a component asking for one is refused, not linked.
        assert!(!granted("llm-loadtest:plugin/host@0.2.0"));
        assert!(!granted("wasi:cli/stdout"));
        assert!(matches!(
            check_import("llm-loadtest:plugin/host@0.2.0"),
            ImportVerdict::Forbidden
        ));
        assert!(matches!(
            check_import("llm-loadtest:plugin/host@0.3.0"),
            ImportVerdict::OtherWitVersion(v) if v == "0.3.0"
        ));
    }
}
