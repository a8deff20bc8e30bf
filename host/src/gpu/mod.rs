//! Local NVIDIA GPUs through NVML (nvml-wrapper): what `gpu` prints, what `info` lists, and
//! the samples a run stores, with each level's energy per output token.
//!
//! NVML is loaded at run time, never linked: a machine without a driver gets a one-line reason
//! ([`GpuError`]) and everything else works. Every reading is optional and carries its own reason
//! when missing ([`GpuState::unavailable`]), because drivers differ in what they implement
//! (the total-energy counter needs Volta and a recent driver; processes need permissions) and a
//! GPU can fall off the bus between two readings: one missing function must never cost the
//! other fields. `LLM_LOADTEST_NVML_LIB` loads another library than `libnvidia-ml.so.1`, which is
//! how the tests run this code against a scripted fake (`tests/fake-nvml`) on machines without a
//! GPU.

pub mod dcgm;
mod level;
mod locality;
mod nvml;
mod sampler;
mod state;

pub use level::{GpuLevel, LevelGpu, level};
pub use locality::is_loopback;
pub use nvml::{GpuError, NVML_LIB_ENV, Nvml, open, read};
pub use sampler::{Reading, Sample, Sampler};
pub use state::{GpuProcess, GpuReport, GpuState, table};
