//! A fixed pool of instances of one plugin, each a Store behind a Mutex.
//!
//! Instances are made lazily from an `InstancePre` (~15 µs). Each call sets
//! an epoch deadline and resets the per-call state; a call that fails inside
//! wasmtime (trap, deadline, memory cap) leaves the instance unusable, so the
//! slot drops its Store at once, bumps its generation, and re-instantiates on
//! the next call. Stream parsers remember the generation they were made in:
//! a parser from an earlier generation reports `InstanceLost`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wasmtime::component::ResourceAny;
use wasmtime::{Engine, Store, Trap};

use super::bindings::{recommend, slo, tokenizer};
use super::epoch::EpochTicker;
use super::error::PluginError;
use super::sandbox::StoreData;

/// A world's pre-linked component: how to make its bindings in a Store.
pub(crate) trait World: Send + Sync + 'static {
    type Bindings: Send + 'static;
    fn instantiate(&self, store: &mut Store<StoreData>) -> wasmtime::Result<Self::Bindings>;
}

impl World for tokenizer::TokenizerPluginPre<StoreData> {
    type Bindings = tokenizer::TokenizerPlugin;
    fn instantiate(&self, store: &mut Store<StoreData>) -> wasmtime::Result<Self::Bindings> {
        tokenizer::TokenizerPluginPre::instantiate(self, store)
    }
}

impl World for slo::SloPluginPre<StoreData> {
    type Bindings = slo::SloPlugin;
    fn instantiate(&self, store: &mut Store<StoreData>) -> wasmtime::Result<Self::Bindings> {
        slo::SloPluginPre::instantiate(self, store)
    }
}

impl World for recommend::RecommendPluginPre<StoreData> {
    type Bindings = recommend::RecommendPlugin;
    fn instantiate(&self, store: &mut Store<StoreData>) -> wasmtime::Result<Self::Bindings> {
        recommend::RecommendPluginPre::instantiate(self, store)
    }
}

/// A live instance: its Store and the typed exports.
pub(crate) struct Live<B> {
    pub(crate) store: Store<StoreData>,
    pub(crate) bindings: B,
}

struct SlotState<B> {
    live: Option<Live<B>>,
    /// Bumped each time the live instance is thrown away.
    generation: u64,
}

struct Slot<B> {
    state: Mutex<SlotState<B>>,
    /// Stream parsers pinned here (for least-loaded placement).
    parsers: AtomicUsize,
}

/// Per-pool settings.
pub(crate) struct PoolConfig {
    pub(crate) size: usize,
    pub(crate) deadline: Duration,
    pub(crate) memory_limit: usize,
}

pub(crate) struct Pool<W: World> {
    plugin: Arc<str>,
    engine: Engine,
    pre: W,
    deadline: Duration,
    deadline_ticks: u64,
    memory_limit: usize,
    // Kept alive by every pool: without ticks, deadlines never fire.
    _ticker: Arc<EpochTicker>,
    slots: Box<[Slot<W::Bindings>]>,
    next: AtomicUsize,
}

/// Where a call runs.
#[derive(Clone, Copy)]
enum Target {
    /// The slot's instance, instantiating one if it has none.
    Current,
    /// The slot's instance only if it is still the one of this generation.
    Pinned(u64),
}

impl<W: World> Pool<W> {
    pub(crate) fn new(
        plugin: Arc<str>,
        engine: Engine,
        pre: W,
        ticker: Arc<EpochTicker>,
        cfg: &PoolConfig,
    ) -> Self {
        let size = cfg.size.max(1);
        Pool {
            plugin,
            engine,
            pre,
            deadline: cfg.deadline,
            deadline_ticks: ticker.ticks_for(cfg.deadline),
            memory_limit: cfg.memory_limit,
            _ticker: ticker,
            slots: (0..size)
                .map(|_| Slot {
                    state: Mutex::new(SlotState {
                        live: None,
                        generation: 0,
                    }),
                    parsers: AtomicUsize::new(0),
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    pub(crate) fn plugin(&self) -> &str {
        &self.plugin
    }

    pub(crate) fn size(&self) -> usize {
        self.slots.len()
    }

    fn lock(&self, slot: usize) -> MutexGuard<'_, SlotState<W::Bindings>> {
        match self.slots[slot].state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                // A host panic mid-call: the instance may be half-way through
                // anything, so it is not reused.
                let mut guard = poisoned.into_inner();
                if guard.live.take().is_some() {
                    guard.generation += 1;
                }
                self.slots[slot].state.clear_poison();
                guard
            }
        }
    }

    /// A fresh Store + instance (not pooled), with the deadline already set:
    /// with epoch interruption on, the default deadline traps at once.
    pub(crate) fn instantiate(&self) -> Result<Live<W::Bindings>, PluginError> {
        let mut store = Store::new(
            &self.engine,
            StoreData::new(self.plugin.clone(), self.memory_limit),
        );
        store.limiter(|data| &mut data.memory);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks);
        store.data_mut().start_call();
        match self.pre.instantiate(&mut store) {
            Ok(bindings) => Ok(Live { store, bindings }),
            Err(err) => Err(match self.classify("instantiate", &err, store.data()) {
                PluginError::Trap { message, .. } => PluginError::Instantiate {
                    plugin: self.plugin.to_string(),
                    message,
                },
                other => other,
            }),
        }
    }

    /// Run `f` on any instance: the first free slot from a rotating start,
    /// or (all busy) the start slot once it frees up.
    pub(crate) fn call_any<R>(
        &self,
        call: &'static str,
        f: impl FnOnce(&mut Live<W::Bindings>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            let slot = (start + i) % n;
            if let Ok(guard) = self.slots[slot].state.try_lock() {
                return self.run(guard, Target::Current, call, f).map(|(r, _)| r);
            }
        }
        self.run(self.lock(start), Target::Current, call, f)
            .map(|(r, _)| r)
    }

    /// Run `f` on the given slot, instantiating it if needed; returns the
    /// generation of the instance it ran on.
    pub(crate) fn call_on<R>(
        &self,
        slot: usize,
        call: &'static str,
        f: impl FnOnce(&mut Live<W::Bindings>) -> wasmtime::Result<R>,
    ) -> Result<(R, u64), PluginError> {
        self.run(self.lock(slot), Target::Current, call, f)
    }

    /// Run `f` on the instance of `generation` in `slot`; `InstanceLost` if
    /// that instance has been replaced.
    pub(crate) fn call_pinned<R>(
        &self,
        slot: usize,
        generation: u64,
        call: &'static str,
        f: impl FnOnce(&mut Live<W::Bindings>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        self.run(self.lock(slot), Target::Pinned(generation), call, f)
            .map(|(r, _)| r)
    }

    fn run<R>(
        &self,
        mut guard: MutexGuard<'_, SlotState<W::Bindings>>,
        target: Target,
        call: &'static str,
        f: impl FnOnce(&mut Live<W::Bindings>) -> wasmtime::Result<R>,
    ) -> Result<(R, u64), PluginError> {
        let state = &mut *guard;
        match target {
            Target::Pinned(generation) => {
                if state.generation != generation || state.live.is_none() {
                    return Err(PluginError::InstanceLost {
                        plugin: self.plugin.to_string(),
                    });
                }
            }
            Target::Current => {
                if state.live.is_none() {
                    state.live = Some(self.instantiate()?);
                }
            }
        }
        let generation = state.generation;
        let Some(live) = state.live.as_mut() else {
            return Err(PluginError::InstanceLost {
                plugin: self.plugin.to_string(),
            });
        };
        live.store.set_epoch_deadline(self.deadline_ticks);
        live.store.data_mut().start_call();
        match f(live) {
            Ok(r) => Ok((r, generation)),
            Err(err) => {
                let classified = self.classify(call, &err, live.store.data());
                tracing::debug!(
                    plugin = &*self.plugin,
                    call,
                    "{classified}; replacing the instance"
                );
                state.live = None;
                state.generation += 1;
                Err(classified)
            }
        }
    }

    /// Turn a wasmtime error from a call into what the user is told.
    fn classify(&self, call: &'static str, err: &wasmtime::Error, data: &StoreData) -> PluginError {
        let plugin = self.plugin.to_string();
        if data.memory.hit {
            return PluginError::MemoryLimit {
                plugin,
                call,
                limit: self.memory_limit,
            };
        }
        if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return PluginError::Timeout {
                plugin,
                call,
                deadline: self.deadline,
            };
        }
        let mut message = err.root_cause().to_string();
        let printed = data.call_stderr();
        if !printed.is_empty() {
            message.push_str(" (the plugin wrote: ");
            message.push_str(&printed);
            message.push(')');
        }
        PluginError::Trap {
            plugin,
            call,
            message,
        }
    }

    /// The slot with the fewest parsers (ties broken by rotation); the
    /// caller pins a new parser there.
    pub(crate) fn least_loaded(&self) -> usize {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n)
            .map(|i| (start + i) % n)
            .min_by_key(|&s| self.slots[s].parsers.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    pub(crate) fn parser_added(&self, slot: usize) {
        self.slots[slot].parsers.fetch_add(1, Ordering::Relaxed);
    }

    /// Drop a guest resource made in `generation` of `slot` (its destructor
    /// runs under the deadline like any call), and unpin it.
    pub(crate) fn drop_resource(&self, slot: usize, generation: u64, handle: ResourceAny) {
        self.slots[slot].parsers.fetch_sub(1, Ordering::Relaxed);
        let result = self.call_pinned(slot, generation, "stream-parser drop", |live| {
            handle.resource_drop(&mut live.store)
        });
        match result {
            // Its instance is gone, and the resource with it.
            Ok(()) | Err(PluginError::InstanceLost { .. }) => {}
            Err(e) => tracing::warn!(plugin = &*self.plugin, "dropping a stream parser: {e}"),
        }
    }

    /// Parsers pinned per slot and the slots' generations (for tests and
    /// diagnostics).
    pub(crate) fn slot_stats(&self) -> Vec<(usize, u64)> {
        (0..self.slots.len())
            .map(|s| {
                let generation = self.lock(s).generation;
                (self.slots[s].parsers.load(Ordering::Relaxed), generation)
            })
            .collect()
    }
}
