//! The C ABI: opaque handles, status codes, error objects and a panic boundary.
//!
//! Conventions for every function here:
//! - A fallible call returns an [`AvgStatus`]; `AVG_STATUS_OK` is 0.
//! - When the caller passes a non-NULL `AvgError **err` and the call fails, `*err`
//!   receives a new error object that the caller frees with `avg_error_free`. On
//!   success `*err` is left untouched. There is no thread-local "last error".
//! - No panic crosses the boundary: it becomes `AVG_STATUS_PANIC`.
//! - Strings are NUL-terminated UTF-8; strings returned into caller buffers are
//!   NUL-terminated and their length (without the NUL) is written to `len_out`.

mod duplicates;
mod error;
mod index;
mod photos;
mod records;
mod search;
mod train;
mod types;

pub use duplicates::*;
pub use error::*;
pub use index::*;
pub use photos::*;
pub use records::*;
pub use search::*;
pub use train::*;
pub use types::*;

use crate::{limits, Error, Result};
use std::borrow::Cow;
use std::ffi::{c_char, c_void, CStr};
use std::mem::MaybeUninit;

/// Version of the C ABI declared in `avg.h`; bumped on any incompatible change.
pub const AVG_ABI_VERSION: u32 = 5;

/// The library version `avg_version` returns, as numbers for the preprocessor (a test
/// keeps them equal to the crate's version).
pub const AVG_VERSION_MAJOR: u32 = 0;
pub const AVG_VERSION_MINOR: u32 = 1;
pub const AVG_VERSION_PATCH: u32 = 0;

/// The library version as a static NUL-terminated string, such as "0.1.0".
/// Thread-safety: may be called from any thread at any time.
#[no_mangle]
pub extern "C" fn avg_version() -> *const c_char {
    static V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr().cast()
}

/// The C ABI version this library implements; compare it with `AVG_ABI_VERSION` from
/// the header the host was compiled against.
/// Thread-safety: may be called from any thread at any time.
#[no_mangle]
pub extern "C" fn avg_abi_version() -> u32 {
    AVG_ABI_VERSION
}

/// Whether the train calls change glibc's malloc settings for the whole process while
/// they run (true, the default): freed tensors are then reused rather than handed back
/// to the kernel and faulted in again every step (a quarter of a step's time otherwise);
/// when the last training ends, glibc's ceilings are restored and the heap trimmed. Pass
/// false if the host tunes malloc itself or must keep glibc's behaviour: turning it off
/// takes effect once the trainings running now have ended, turning it on at the next
/// training that starts. Does nothing with a libc other than glibc.
/// Thread-safety: may be called from any thread at any time.
#[no_mangle]
pub extern "C" fn avg_set_heap_tuning(enabled: bool) {
    crate::set_heap_tuning(enabled);
}

/// Sets the threads a search uses, the calling thread's included: 0 (the default) is one
/// per core, 1 keeps every search on the thread that calls it (hosts that search from
/// many threads at once, or share the cores with other work, may prefer it). Larger
/// values are capped at the number of cores. Waiting threads yield their core rather
/// than spin, and idle ones sleep. Trainings use Candle's threads, which this does not
/// change: on a machine busy with other work, set `CANDLE_NUM_THREADS=1` in the
/// environment before the first training, or Candle's element-wise ops spin against
/// the host (README, Results: Training). Thread-safety: may be called from any thread
/// at any time; searches running then finish with the previous setting.
#[no_mangle]
pub extern "C" fn avg_set_threads(threads: usize) {
    crate::set_threads(threads);
}

/// Sends the library's log messages of `min_level` and above to `callback` with
/// `user_data`; NULL turns logging off (the default). Process-wide: it replaces the
/// callback set before, once the messages it is receiving now are delivered, so that
/// when this returns the previous callback and its `user_data` are never used again.
/// The callback runs on whichever thread did the work (a training's, a search's), must
/// be quick and thread-safe, and may call into libavg, except this function.
/// Thread-safety: may be called from any thread at any time.
///
/// # Safety
/// `callback` is NULL or safe to call with `user_data` from any thread until it is
/// replaced; `min_level` is one of the `AvgLogLevel` values (another is undefined
/// behaviour, as C enums carry no check).
#[no_mangle]
pub unsafe extern "C" fn avg_set_log_callback(callback: AvgLogFn, min_level: AvgLogLevel, user_data: *mut c_void) {
    // SAFETY: the caller vouches for `callback` and `user_data` until they are replaced.
    crate::log::set_logger(callback.map(|f| unsafe { host_logger(f, user_data) }), min_level.into());
}

/// A borrowed UTF-8 string from C.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives the returned slice.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, what: impl Into<Cow<'static, str>>) -> Result<&'a str> {
    let what = what.into();
    if ptr.is_null() {
        return Err(Error::NullPointer(what));
    }
    // SAFETY: non-NULL and NUL-terminated, as the caller vouches.
    let Ok(s) = unsafe { CStr::from_ptr(ptr) }.to_str() else { return Err(Error::InvalidUtf8(what)) };
    limits::check_text(&what, s)?;
    Ok(s)
}

/// The strings of a host's array `array` of `ptrs`, errors naming the element
/// (`texts[3]`).
///
/// # Safety
/// Each pointer is NULL or points to a NUL-terminated string that outlives the slices.
pub(crate) unsafe fn c_strs<'a>(ptrs: &[*const c_char], array: &str) -> Result<Vec<&'a str>> {
    // SAFETY: the caller's contract, for each element.
    ptrs.iter().enumerate().map(|(i, &p)| unsafe { c_str(p, format!("{array}[{i}]")) }).collect()
}

/// Checks a host array's pointer and length before it is borrowed.
fn check_array<T>(ptr: *const T, len: usize, what: Cow<'static, str>) -> Result<()> {
    if ptr.is_null() {
        return Err(Error::NullPointer(what));
    }
    if len.checked_mul(std::mem::size_of::<T>()).is_none_or(|b| b > isize::MAX as usize) {
        return Err(Error::InvalidArgument(format!("{what}: {len} elements is too many")));
    }
    Ok(())
}

/// A borrowed array from C; NULL is allowed only when `len` is 0.
///
/// # Safety
/// `ptr` is NULL or points to `len` initialised values that outlive the slice.
pub(crate) unsafe fn c_slice<'a, T>(ptr: *const T, len: usize, what: impl Into<Cow<'static, str>>) -> Result<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    check_array(ptr, len, what.into())?;
    // SAFETY: non-NULL, aligned and `len` values long, as the caller vouches.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A host's array to write into, whose values may be uninitialised; NULL is allowed only
/// when `len` is 0. The one place an entry point's output arrays are made.
///
/// # Safety
/// `ptr` is NULL or valid for writes of `len` values for as long as the slice lives.
pub(crate) unsafe fn c_slice_mut<'a, T>(
    ptr: *mut T,
    len: usize,
    what: impl Into<Cow<'static, str>>,
) -> Result<&'a mut [MaybeUninit<T>]> {
    if len == 0 {
        return Ok(&mut []);
    }
    check_array(ptr, len, what.into())?;
    // SAFETY: non-NULL, aligned and writable for `len` values, as the caller vouches;
    // `MaybeUninit` asks nothing of what is there now.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<MaybeUninit<T>>(), len) })
}

/// Writes `values` to the start of a host array.
///
/// # Safety
/// As [`c_slice_mut`] for `values.len()` values.
pub(crate) unsafe fn c_write<T: Copy>(ptr: *mut T, values: &[T], what: &'static str) -> Result<()> {
    // SAFETY: the caller's contract.
    let out = unsafe { c_slice_mut(ptr, values.len(), what) }?;
    for (o, &v) in out.iter_mut().zip(values) {
        o.write(v);
    }
    Ok(())
}

/// A `count * dim` element count, checked against overflow.
pub(crate) fn matrix_len(count: usize, dim: usize) -> Result<usize> {
    count.checked_mul(dim).ok_or_else(|| Error::InvalidArgument(format!("{count} x {dim} overflows")))
}

/// A writable out-parameter.
///
/// # Safety
/// `ptr` is NULL or valid for writes.
pub(crate) unsafe fn c_out<'a, T>(ptr: *mut T, what: &'static str) -> Result<&'a mut T> {
    // SAFETY: NULL or writable, as the caller vouches.
    unsafe { ptr.as_mut() }.ok_or(Error::NullPointer(what.into()))
}

/// Copies `s` into a caller buffer of `cap` bytes with a NUL, writing its length to
/// `len_out` first so that a caller whose buffer is too small learns the size to retry with.
///
/// # Safety
/// `buf` is NULL or valid for `cap` bytes of writes; `len_out` as for [`c_out`].
pub(crate) unsafe fn write_c_str(s: &str, buf: *mut c_char, cap: usize, len_out: *mut usize) -> Result<()> {
    // SAFETY: the caller's contract.
    *unsafe { c_out(len_out, "len_out") }? = s.len();
    if cap < s.len() + 1 {
        return Err(Error::BufferTooSmall { needed: s.len() + 1, got: cap });
    }
    // SAFETY: `buf` holds `cap` bytes, at least these.
    let out = unsafe { c_slice_mut(buf.cast::<u8>(), s.len() + 1, "buf") }?;
    for (o, &b) in out.iter_mut().zip(s.as_bytes().iter().chain(&[0])) {
        o.write(b);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_macros_match_the_crate_version() {
        let numbers = format!("{AVG_VERSION_MAJOR}.{AVG_VERSION_MINOR}.{AVG_VERSION_PATCH}");
        assert_eq!(numbers, env!("CARGO_PKG_VERSION"));
        let runtime = unsafe { CStr::from_ptr(avg_version()) }.to_str().unwrap();
        assert_eq!(runtime, numbers);
    }
}
