//! The plugin runtime: one wasmtime engine, one linker, the compiled
//! components, and the loaded plugins, each compiled once per process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use super::PluginIdentity;
use super::adapter::{Adapter, AdapterPre};
use super::bindings::{
    adapter::AdapterPluginPre, adapter_v2, recommend::RecommendPluginPre, slo::SloPluginPre,
    tokenizer::TokenizerPluginPre,
};
use super::disk_cache::{CacheStats, Counters, DiskCache};
use super::embedded;
use super::epoch::EpochTicker;
use super::error::PluginError;
use super::inspect::{self, ComponentFacts, PluginKind};
use super::pool::{Pool, PoolConfig, World};
use super::recommend::RecommendPolicy;
use super::sandbox::{self, StoreData};
use super::slo::SloPolicy;

/// How the runtime runs plugins.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled plugins are cached; `None` compiles on every start.
    /// The default is [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// How long one call into a plugin may run before it is interrupted.
    pub call_deadline: Duration,
    /// The most linear memory one plugin instance may use, in bytes.
    pub memory_limit: usize,
    /// Instances per plugin (each holds many stream parsers).
    pub pool_size: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: default_cache_dir(),
            call_deadline: Duration::from_secs(1),
            memory_limit: 64 * 1024 * 1024,
            pool_size: std::thread::available_parallelism().map_or(4, |n| n.get()),
        }
    }
}

/// The per-user cache of compiled plugins (e.g. `~/.cache/llm-loadtest/plugins`).
pub fn default_cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("llm-loadtest").join("plugins"))
}

/// A plugin of any kind, as `plugin check` loads it.
#[derive(Debug, Clone)]
pub enum LoadedPlugin {
    Adapter(Arc<Adapter>),
    Slo(Arc<SloPolicy>),
    Recommend(Arc<RecommendPolicy>),
}

impl LoadedPlugin {
    pub fn kind(&self) -> PluginKind {
        match self {
            LoadedPlugin::Adapter(_) => PluginKind::Adapter,
            LoadedPlugin::Slo(_) => PluginKind::Slo,
            LoadedPlugin::Recommend(_) => PluginKind::Recommend,
        }
    }

    pub fn identity(&self) -> &PluginIdentity {
        match self {
            LoadedPlugin::Adapter(a) => a.identity(),
            LoadedPlugin::Slo(s) => s.identity(),
            LoadedPlugin::Recommend(r) => r.identity(),
        }
    }

    /// Makes one instance of an adapter, as a run's first request would (policies already
    /// made one to be loaded).
    pub fn probe(&self) -> Result<(), PluginError> {
        match self {
            LoadedPlugin::Adapter(a) => a.probe_instance(),
            _ => Ok(()),
        }
    }

    /// What the plugin says it is for.
    pub fn description(&self) -> &str {
        match self {
            LoadedPlugin::Adapter(a) => &a.info().description,
            LoadedPlugin::Slo(s) => &s.info().description,
            LoadedPlugin::Recommend(r) => &r.info().description,
        }
    }
}

/// Where a plugin's bytes came from.
enum Source {
    Embedded(&'static embedded::EmbeddedPlugin),
    File(PathBuf, Vec<u8>),
    /// Bytes not yet on disk (an upload being checked), under the name errors use.
    Bytes(String, Vec<u8>),
}

impl Source {
    fn bytes(&self) -> &[u8] {
        match self {
            Source::Embedded(p) => p.bytes,
            Source::File(_, bytes) | Source::Bytes(_, bytes) => bytes,
        }
    }

    /// The name errors use before the plugin has said its own.
    fn label(&self) -> String {
        match self {
            Source::Embedded(p) => p.name.to_owned(),
            Source::File(path, _) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            Source::Bytes(label, _) => label.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::Embedded(_) => "embedded".to_owned(),
            Source::File(path, _) => path.display().to_string(),
            Source::Bytes(..) => "uploaded".to_owned(),
        }
    }
}

/// A component checked against the contract and linked, not yet pooled.
struct Prepared {
    label: Arc<str>,
    kind: PluginKind,
    identity: PluginIdentity,
    facts: ComponentFacts,
    pre: wasmtime::component::InstancePre<StoreData>,
}

/// Runs plugins. Make one per process and share it (`Arc`).
pub struct Runtime {
    engine: Engine,
    linker: Linker<StoreData>,
    cfg: RuntimeConfig,
    ticker: Arc<EpochTicker>,
    disk: Option<DiskCache>,
    counters: Counters,
    /// Compiled components by wasm sha256: the same bytes compile once.
    components: Mutex<HashMap<String, Component>>,
    adapters: Mutex<HashMap<String, Arc<Adapter>>>,
    policies: Mutex<HashMap<String, Arc<SloPolicy>>>,
    recommenders: Mutex<HashMap<String, Arc<RecommendPolicy>>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    pub fn new(cfg: RuntimeConfig) -> Result<Arc<Runtime>, PluginError> {
        let engine_err = |e: wasmtime::Error| PluginError::Engine {
            message: e.to_string(),
        };
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        let engine = Engine::new(&config).map_err(engine_err)?;
        let linker = sandbox::linker(&engine).map_err(engine_err)?;
        let ticker = EpochTicker::start(engine.clone(), EpochTicker::tick_for(cfg.call_deadline))
            .map_err(|e| PluginError::Engine {
            message: format!("cannot start the epoch thread: {e}"),
        })?;
        let disk = match &cfg.cache_dir {
            Some(dir) => Some(DiskCache::open(dir, &engine)?),
            None => None,
        };
        Ok(Arc::new(Runtime {
            engine,
            linker,
            cfg,
            ticker: Arc::new(ticker),
            disk,
            counters: Counters::default(),
            components: Mutex::new(HashMap::new()),
            adapters: Mutex::new(HashMap::new()),
            policies: Mutex::new(HashMap::new()),
            recommenders: Mutex::new(HashMap::new()),
        }))
    }

    /// The configuration this runtime was made with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.cfg
    }

    /// Cache hits, compiles and writes so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.counters.snapshot()
    }

    /// The plugin loaded for `spec` in `loaded`, or the one `make` makes from it now (the
    /// map's lock held meanwhile, so one spec is prepared once).
    fn cached<T>(
        &self,
        loaded: &Mutex<HashMap<String, Arc<T>>>,
        spec: &str,
        kind: PluginKind,
        make: impl FnOnce(&Self, Prepared) -> Result<T, PluginError>,
    ) -> Result<Arc<T>, PluginError> {
        let mut loaded = lock(loaded);
        if let Some(p) = loaded.get(spec) {
            return Ok(p.clone());
        }
        let plugin = Arc::new(make(self, self.prepare(spec, Some(kind))?)?);
        loaded.insert(spec.to_owned(), plugin.clone());
        Ok(plugin)
    }

    /// Load a server adapter: an embedded name (`openai`, `vllm`, ...) or a
    /// path to a `.wasm` component. Loaded once per spec per runtime.
    pub fn load_adapter(&self, spec: &str) -> Result<Arc<Adapter>, PluginError> {
        self.cached(
            &self.adapters,
            spec,
            PluginKind::Adapter,
            Self::make_adapter,
        )
    }

    /// Load an SLO policy: `slo` (embedded) or a path to a `.wasm` component.
    pub fn load_slo_policy(&self, spec: &str) -> Result<Arc<SloPolicy>, PluginError> {
        self.cached(&self.policies, spec, PluginKind::Slo, Self::make_policy)
    }

    /// Load a recommendation policy: `recommend` (embedded) or a path to a `.wasm` component.
    pub fn load_recommend_policy(&self, spec: &str) -> Result<Arc<RecommendPolicy>, PluginError> {
        self.cached(
            &self.recommenders,
            spec,
            PluginKind::Recommend,
            Self::make_recommender,
        )
    }

    /// Load a plugin of whichever kind it is (for `plugin check`).
    pub fn load_any(&self, spec: &str) -> Result<LoadedPlugin, PluginError> {
        if let Some(a) = lock(&self.adapters).get(spec) {
            return Ok(LoadedPlugin::Adapter(a.clone()));
        }
        if let Some(p) = lock(&self.policies).get(spec) {
            return Ok(LoadedPlugin::Slo(p.clone()));
        }
        if let Some(p) = lock(&self.recommenders).get(spec) {
            return Ok(LoadedPlugin::Recommend(p.clone()));
        }
        let loaded = self.make_any(self.prepare(spec, None)?)?;
        match &loaded {
            LoadedPlugin::Adapter(a) => {
                lock(&self.adapters).insert(spec.to_owned(), a.clone());
            }
            LoadedPlugin::Slo(p) => {
                lock(&self.policies).insert(spec.to_owned(), p.clone());
            }
            LoadedPlugin::Recommend(p) => {
                lock(&self.recommenders).insert(spec.to_owned(), p.clone());
            }
        }
        Ok(loaded)
    }

    /// Check a component given as bytes (an upload) as [`Runtime::load_any`] would load it;
    /// nothing is kept under a name (the compiled form is kept by hash, so a later load of the
    /// same bytes does not compile them again).
    pub fn check_bytes(&self, label: &str, bytes: Vec<u8>) -> Result<LoadedPlugin, PluginError> {
        let source = Source::Bytes(label.to_owned(), bytes);
        self.make_any(self.prepare_source(&source, None)?)
    }

    fn make_any(&self, prepared: Prepared) -> Result<LoadedPlugin, PluginError> {
        Ok(match prepared.kind {
            PluginKind::Adapter => LoadedPlugin::Adapter(Arc::new(self.make_adapter(prepared)?)),
            PluginKind::Slo => LoadedPlugin::Slo(Arc::new(self.make_policy(prepared)?)),
            PluginKind::Recommend => {
                LoadedPlugin::Recommend(Arc::new(self.make_recommender(prepared)?))
            }
        })
    }

    fn pool_config(&self) -> PoolConfig {
        PoolConfig {
            size: self.cfg.pool_size,
            deadline: self.cfg.call_deadline,
            memory_limit: self.cfg.memory_limit,
        }
    }

    /// A pool of `size` instances of one prepared world.
    fn pool<W: World>(&self, label: Arc<str>, pre: W, size: usize) -> Pool<W> {
        Pool::new(
            label,
            self.engine.clone(),
            pre,
            self.ticker.clone(),
            &PoolConfig {
                size,
                ..self.pool_config()
            },
        )
    }

    fn make_adapter(&self, p: Prepared) -> Result<Adapter, PluginError> {
        // Tokenize calls come before a run, never on its hot path: two instances suffice.
        let tokenizer = if p.facts.exports.contains(&inspect::tokenizer_export_name()) {
            let pre =
                TokenizerPluginPre::new(p.pre.clone()).map_err(|e| instantiate_err(&p.label, e))?;
            Some(self.pool(p.label.clone(), pre, 2))
        } else {
            None
        };
        let pre = if p.identity.wit_version == "0.1.0" {
            AdapterPluginPre::new(p.pre).map(AdapterPre::V1)
        } else {
            adapter_v2::AdapterPluginPre::new(p.pre).map(AdapterPre::V2)
        }
        .map_err(|e| instantiate_err(&p.label, e))?;
        let pool = self.pool(p.label, pre, self.cfg.pool_size);
        Adapter::new(pool, tokenizer, p.identity, p.facts)
    }

    fn make_policy(&self, p: Prepared) -> Result<SloPolicy, PluginError> {
        let pre = SloPluginPre::new(p.pre).map_err(|e| instantiate_err(&p.label, e))?;
        let pool = self.pool(p.label, pre, self.cfg.pool_size);
        SloPolicy::new(pool, p.identity, p.facts)
    }

    fn make_recommender(&self, p: Prepared) -> Result<RecommendPolicy, PluginError> {
        let pre = RecommendPluginPre::new(p.pre).map_err(|e| instantiate_err(&p.label, e))?;
        // One probe at a time asks it: one instance.
        let pool = self.pool(p.label, pre, 1);
        RecommendPolicy::new(pool, p.identity, p.facts)
    }

    fn resolve(&self, spec: &str) -> Result<Source, PluginError> {
        if let Some(p) = embedded::find(spec) {
            return Ok(Source::Embedded(p));
        }
        let path = Path::new(spec);
        match std::fs::read(path) {
            Ok(bytes) => Ok(Source::File(path.to_path_buf(), bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(PluginError::NotFound {
                spec: spec.to_owned(),
                known: embedded::names(),
            }),
            Err(source) => Err(PluginError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Read, check, compile (or fetch from cache) and link one plugin.
    fn prepare(&self, spec: &str, want: Option<PluginKind>) -> Result<Prepared, PluginError> {
        self.prepare_source(&self.resolve(spec)?, want)
    }

    fn prepare_source(
        &self,
        source: &Source,
        want: Option<PluginKind>,
    ) -> Result<Prepared, PluginError> {
        let label = source.label();
        let bytes = source.bytes();
        inspect::check_header(&label, bytes)?;
        let sha256 = hex::encode(Sha256::digest(bytes));
        let component = self.component(&label, &sha256, bytes)?;
        let facts = inspect::facts(&self.engine, &component);
        let kind = inspect::check_contract(&label, &facts, want)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| instantiate_err(&label, e))?;
        Ok(Prepared {
            identity: PluginIdentity {
                name: label.clone(),
                version: String::new(),
                wit_version: facts.contract_version().to_owned(),
                sha256,
                source: source.describe(),
            },
            label: Arc::from(label),
            kind,
            facts,
            pre,
        })
    }

    /// The compiled component for these bytes: from memory, the disk cache,
    /// or Cranelift (then cached).
    fn component(&self, label: &str, sha256: &str, bytes: &[u8]) -> Result<Component, PluginError> {
        if let Some(c) = lock(&self.components).get(sha256) {
            return Ok(c.clone());
        }
        let cached = self
            .disk
            .as_ref()
            .and_then(|d| d.load(&self.engine, sha256, &self.counters));
        let component = match cached {
            Some(c) => c,
            None => {
                let c = Component::new(&self.engine, bytes).map_err(|e| PluginError::Compile {
                    plugin: label.to_owned(),
                    message: format!("{e:#}"),
                })?;
                self.counters
                    .compiles
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Some(d) = &self.disk {
                    d.store(sha256, &c, &self.counters);
                }
                c
            }
        };
        lock(&self.components).insert(sha256.to_owned(), component.clone());
        Ok(component)
    }

    /// Where the compiled form of a plugin with this wasm hash is cached.
    pub fn cache_path(&self, wasm_sha256: &str) -> Option<PathBuf> {
        self.disk.as_ref().map(|d| d.path_for(wasm_sha256))
    }
}

fn instantiate_err(label: &str, e: wasmtime::Error) -> PluginError {
    PluginError::Instantiate {
        plugin: label.to_owned(),
        message: e.to_string(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // These maps stay consistent whatever panicked while they were held.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
