//! Status codes and error objects: the one place where `Error` becomes C.

use crate::Error;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The outcome of a fallible call. Values are stable across releases.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvgStatus {
    Ok = 0,
    NullPointer = 1,
    InvalidUtf8 = 2,
    InvalidArgument = 3,
    DimensionMismatch = 4,
    NonFinite = 5,
    DuplicateId = 6,
    UnknownId = 7,
    Io = 8,
    Corrupt = 9,
    UnsupportedVersion = 10,
    ConfigMismatch = 11,
    Locked = 12,
    WrongState = 13,
    Device = 14,
    Model = 15,
    BufferTooSmall = 16,
    Limit = 17,
    Cancelled = 18,
    InvalidImage = 19,
    Panic = 99,
}

impl From<&Error> for AvgStatus {
    fn from(e: &Error) -> Self {
        match e {
            Error::NullPointer(_) => AvgStatus::NullPointer,
            Error::InvalidUtf8(_) => AvgStatus::InvalidUtf8,
            Error::InvalidArgument(_) => AvgStatus::InvalidArgument,
            Error::DimensionMismatch { .. } => AvgStatus::DimensionMismatch,
            Error::NonFinite { .. } => AvgStatus::NonFinite,
            Error::DuplicateId(_) => AvgStatus::DuplicateId,
            Error::UnknownId(_) => AvgStatus::UnknownId,
            Error::Io { .. } => AvgStatus::Io,
            Error::Corrupt { .. } => AvgStatus::Corrupt,
            Error::UnsupportedVersion { .. } => AvgStatus::UnsupportedVersion,
            Error::ConfigMismatch(_) => AvgStatus::ConfigMismatch,
            Error::Locked(_) => AvgStatus::Locked,
            Error::WrongState(_) => AvgStatus::WrongState,
            Error::Device(_) => AvgStatus::Device,
            Error::Model(_) => AvgStatus::Model,
            Error::BufferTooSmall { .. } => AvgStatus::BufferTooSmall,
            Error::Limit(_) => AvgStatus::Limit,
            Error::Cancelled => AvgStatus::Cancelled,
            Error::InvalidImage(_) => AvgStatus::InvalidImage,
        }
    }
}

/// An error: a status code and a message. Owned by the caller, freed with `avg_error_free`.
pub struct AvgError {
    status: AvgStatus,
    message: CString,
}

/// Runs the body of an entry point: catches panics, turns errors into a status and,
/// when `err` is non-NULL, an error object.
pub(crate) fn guard(err: *mut *mut AvgError, body: impl FnOnce() -> crate::Result<()>) -> AvgStatus {
    let (status, message) = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return AvgStatus::Ok,
        Ok(Err(e)) => (AvgStatus::from(&e), e.to_string()),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            (AvgStatus::Panic, format!("internal error (panic): {what}"))
        }
    };
    if !err.is_null() {
        // SAFETY: the caller passed a valid `AvgError **` (checked non-NULL above).
        unsafe { *err = AvgError::raw(status, &message) };
    }
    status
}

impl AvgError {
    /// A new error object for `e`, owned by the caller.
    pub(crate) fn new_raw(e: &Error) -> *mut AvgError {
        AvgError::raw(AvgStatus::from(e), &e.to_string())
    }

    fn raw(status: AvgStatus, message: &str) -> *mut AvgError {
        let message = CString::new(message.replace('\0', "\\0")).expect("NULs were replaced");
        Box::into_raw(Box::new(AvgError { status, message }))
    }
}

/// A status's meaning in a few words, as a static NUL-terminated string ("ok",
/// "locked", ...; "unknown status" for a value the header does not name), for logs.
/// Ownership: the string is the library's and lives for the process. Thread-safety: any
/// thread.
#[no_mangle]
pub extern "C" fn avg_status_string(status: std::ffi::c_int) -> *const c_char {
    let s = match status {
        0 => c"ok",
        1 => c"null pointer",
        2 => c"invalid UTF-8",
        3 => c"invalid argument",
        4 => c"dimension mismatch",
        5 => c"non-finite value",
        6 => c"duplicate image id",
        7 => c"unknown image id",
        8 => c"I/O error",
        9 => c"corrupt index file",
        10 => c"unsupported index format version",
        11 => c"config mismatch",
        12 => c"index locked by another handle",
        13 => c"wrong state",
        14 => c"device error",
        15 => c"model error",
        16 => c"buffer too small",
        17 => c"limit exceeded",
        18 => c"cancelled",
        19 => c"invalid image",
        99 => c"internal error (panic)",
        _ => c"unknown status",
    };
    s.as_ptr()
}

/// The status code of an error; `AVG_STATUS_INVALID_ARGUMENT` for NULL.
/// Thread-safety: any thread may read an error object that is not being freed.
///
/// # Safety
/// `err` is NULL or an error object from this library, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn avg_error_code(err: *const AvgError) -> AvgStatus {
    // SAFETY: NULL or a pointer from this library that the caller has not freed.
    unsafe { err.as_ref() }.map_or(AvgStatus::InvalidArgument, |e| e.status)
}

/// The message of an error, NUL-terminated UTF-8, valid until `avg_error_free(err)`.
/// NULL gives an empty string.
/// Thread-safety: as `avg_error_code`.
///
/// # Safety
/// As `avg_error_code`.
#[no_mangle]
pub unsafe extern "C" fn avg_error_message(err: *const AvgError) -> *const c_char {
    // SAFETY: as in avg_error_code.
    unsafe { err.as_ref() }.map_or(c"".as_ptr(), |e| e.message.as_ptr())
}

/// Frees an error object; NULL is a no-op. Ownership: takes `err`, which must not be
/// used afterwards.
///
/// # Safety
/// `err` is NULL or an error object from this library, freed only here and only once.
#[no_mangle]
pub unsafe extern "C" fn avg_error_free(err: *mut AvgError) {
    if !err.is_null() {
        // SAFETY: `err` came from Box::into_raw in `AvgError::raw` and is freed once.
        drop(unsafe { Box::from_raw(err) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_a_status_and_a_message() {
        let mut err = std::ptr::null_mut();
        let status = guard(&mut err, || panic!("boom"));
        assert_eq!(status, AvgStatus::Panic);
        assert_eq!(unsafe { avg_error_code(err) }, AvgStatus::Panic);
        let msg = unsafe { std::ffi::CStr::from_ptr(avg_error_message(err)) };
        assert!(msg.to_str().unwrap().contains("boom"));
        unsafe { avg_error_free(err) };
    }

    #[test]
    fn every_status_has_its_words() {
        let words = |s: std::ffi::c_int| unsafe { std::ffi::CStr::from_ptr(avg_status_string(s)) }.to_str().unwrap();
        assert_eq!(words(AvgStatus::Locked as _), "index locked by another handle");
        assert_eq!(words(AvgStatus::Panic as _), "internal error (panic)");
        assert_eq!(words(-1), "unknown status");
        let named: Vec<&str> = (0..=19).map(words).collect();
        assert!(named.iter().all(|w| *w != "unknown status"), "{named:?}");
    }

    #[test]
    fn success_leaves_err_untouched() {
        let mut err = std::ptr::null_mut();
        assert_eq!(guard(&mut err, || Ok(())), AvgStatus::Ok);
        assert!(err.is_null());
    }
}
