//! A fake NVML: the functions nvml-wrapper calls for llm-loadtest's `gpu` command and sampler,
//! answering scripted values. What a real driver does and this library imitates:
//!
//! - `FAKE_NVML_FAIL_INIT=1`: `nvmlInit_v2` fails as with no driver loaded.
//! - `FAKE_NVML_GPUS=N` GPUs (default 1; 0 is a driver with no GPU).
//! - `FAKE_NVML_NAME` (default `Fake H100 80GB`), `FAKE_NVML_POWER_MW` (default 250000).
//! - `FAKE_NVML_LOST_AFTER=K`: after K power readings every device call answers
//!   `NVML_ERROR_GPU_IS_LOST`, as a GPU that falls off the bus mid-run.
//! - An old driver: `nvmlDeviceGetTotalEnergyConsumption` (Volta and later) is not exported at
//!   all, so the host must mark energy unavailable and integrate power instead.
//!
//! Everything else is constant: 80 GiB of memory with 10 GiB + index GiB used, 75 % SM and 40 %
//! memory utilisation, a 700 W limit, 65 °C, 1980 MHz SM and 2619 MHz memory clocks, the
//! software power cap as the throttle reason, and one process (pid 4242, 9 GiB).
#![allow(unsafe_code, non_snake_case, clippy::missing_safety_doc)]

use std::ffi::{c_char, c_uint, c_ulonglong, c_void};
use std::sync::atomic::{AtomicU64, Ordering};

type Ret = c_uint;
const SUCCESS: Ret = 0;
const INVALID_ARGUMENT: Ret = 2;
const INSUFFICIENT_SIZE: Ret = 7;
const DRIVER_NOT_LOADED: Ret = 9;
const GPU_IS_LOST: Ret = 15;

const GIB: u64 = 1 << 30;

static POWER_READS: AtomicU64 = AtomicU64::new(0);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The index behind a handle, or the error the call answers.
fn device(handle: *mut c_void) -> Result<u64, Ret> {
    let index = (handle as usize as u64).wrapping_sub(1);
    if index >= env_u64("FAKE_NVML_GPUS", 1) {
        return Err(INVALID_ARGUMENT);
    }
    if let Ok(after) = std::env::var("FAKE_NVML_LOST_AFTER")
        && let Ok(after) = after.trim().parse::<u64>()
        && POWER_READS.load(Ordering::Relaxed) >= after
    {
        return Err(GPU_IS_LOST);
    }
    Ok(index)
}

/// Copies `text` into a C buffer of `len` bytes, NUL-terminated.
unsafe fn put_str(text: &str, buf: *mut c_char, len: c_uint) -> Ret {
    let bytes = text.as_bytes();
    if buf.is_null() || bytes.len() + 1 > len as usize {
        return INSUFFICIENT_SIZE;
    }
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), buf, bytes.len());
        *buf.add(bytes.len()) = 0;
    }
    SUCCESS
}

/// Writes `value` through `out` for device `handle`.
unsafe fn answer<T>(handle: *mut c_void, out: *mut T, value: impl FnOnce(u64) -> T) -> Ret {
    match device(handle) {
        Ok(index) if !out.is_null() => {
            unsafe { out.write(value(index)) };
            SUCCESS
        }
        Ok(_) => INVALID_ARGUMENT,
        Err(e) => e,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlInit_v2() -> Ret {
    if std::env::var_os("FAKE_NVML_FAIL_INIT").is_some() {
        DRIVER_NOT_LOADED
    } else {
        SUCCESS
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlShutdown() -> Ret {
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlErrorString(_result: Ret) -> *const c_char {
    c"fake NVML error".as_ptr()
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(buf: *mut c_char, len: c_uint) -> Ret {
    unsafe { put_str("550.54.15", buf, len) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion_v2(version: *mut i32) -> Ret {
    if version.is_null() {
        return INVALID_ARGUMENT;
    }
    unsafe { version.write(12040) };
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(count: *mut c_uint) -> Ret {
    if count.is_null() {
        return INVALID_ARGUMENT;
    }
    unsafe { count.write(env_u64("FAKE_NVML_GPUS", 1) as c_uint) };
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    handle: *mut *mut c_void,
) -> Ret {
    if handle.is_null() || u64::from(index) >= env_u64("FAKE_NVML_GPUS", 1) {
        return INVALID_ARGUMENT;
    }
    unsafe { handle.write((index as usize + 1) as *mut c_void) };
    SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetName(h: *mut c_void, buf: *mut c_char, len: c_uint) -> Ret {
    if let Err(e) = device(h) {
        return e;
    }
    let name = std::env::var("FAKE_NVML_NAME").unwrap_or_else(|_| "Fake H100 80GB".into());
    unsafe { put_str(&name, buf, len) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetUUID(h: *mut c_void, buf: *mut c_char, len: c_uint) -> Ret {
    match device(h) {
        Ok(i) => unsafe { put_str(&format!("GPU-fake-{i}"), buf, len) },
        Err(e) => e,
    }
}

/// nvmlMemory_v2_t.
#[repr(C)]
pub struct Memory {
    version: c_uint,
    total: c_ulonglong,
    reserved: c_ulonglong,
    free: c_ulonglong,
    used: c_ulonglong,
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo_v2(h: *mut c_void, m: *mut Memory) -> Ret {
    unsafe {
        answer(h, m, |i| {
            let used = (10 + i) * GIB;
            Memory {
                version: (*m).version,
                total: 80 * GIB,
                reserved: 0,
                free: 80 * GIB - used,
                used,
            }
        })
    }
}

/// nvmlUtilization_t.
#[repr(C)]
pub struct Utilization {
    gpu: c_uint,
    memory: c_uint,
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetUtilizationRates(h: *mut c_void, u: *mut Utilization) -> Ret {
    unsafe {
        answer(h, u, |_| Utilization {
            gpu: 75,
            memory: 40,
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetPowerUsage(h: *mut c_void, mw: *mut c_uint) -> Ret {
    let ret = unsafe { answer(h, mw, |_| env_u64("FAKE_NVML_POWER_MW", 250_000) as c_uint) };
    POWER_READS.fetch_add(1, Ordering::Relaxed);
    ret
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetEnforcedPowerLimit(h: *mut c_void, mw: *mut c_uint) -> Ret {
    unsafe { answer(h, mw, |_| 700_000) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTemperature(
    h: *mut c_void,
    _sensor: c_uint,
    c: *mut c_uint,
) -> Ret {
    unsafe { answer(h, c, |_| 65) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetClockInfo(
    h: *mut c_void,
    clock: c_uint,
    mhz: *mut c_uint,
) -> Ret {
    // 0 graphics, 1 SM, 2 memory, 3 video.
    unsafe { answer(h, mhz, |_| if clock == 2 { 2619 } else { 1980 }) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCurrentClocksThrottleReasons(
    h: *mut c_void,
    reasons: *mut c_ulonglong,
) -> Ret {
    // nvmlClocksThrottleReasonSwPowerCap.
    unsafe { answer(h, reasons, |_| 0x4) }
}

/// nvmlProcessInfo_t (v2 layout, used by the _v3 call).
#[repr(C)]
pub struct Process {
    pid: c_uint,
    used_gpu_memory: c_ulonglong,
    gpu_instance_id: c_uint,
    compute_instance_id: c_uint,
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeRunningProcesses_v3(
    h: *mut c_void,
    count: *mut c_uint,
    infos: *mut Process,
) -> Ret {
    if let Err(e) = device(h) {
        return e;
    }
    if count.is_null() {
        return INVALID_ARGUMENT;
    }
    unsafe {
        if infos.is_null() || *count < 1 {
            count.write(1);
            return INSUFFICIENT_SIZE;
        }
        infos.write(Process {
            pid: 4242,
            used_gpu_memory: 9 * GIB,
            gpu_instance_id: u32::MAX,
            compute_instance_id: u32::MAX,
        });
        count.write(1);
    }
    SUCCESS
}
