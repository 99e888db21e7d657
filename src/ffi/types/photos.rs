//! `AvgPhotoBatch`: the photos of one `avg_index_add_photos` call, their sources and
//! where their outcomes go.

use super::{AvgProgressFn, Growable};
use crate::ffi::AvgError;
use crate::ffi::AvgStatus;
use std::ffi::{c_char, c_void};
use std::mem::{offset_of, size_of};

/// Photos to add, from files (`paths`) or from encoded bytes (`data` and `lens`): set
/// exactly one of the two. Zero the struct, set `struct_size` to its `sizeof`, then fill
/// what you use; every array holds `count` entries.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AvgPhotoBatch {
    /// `sizeof(AvgPhotoBatch)`.
    pub struct_size: usize,
    pub count: usize,
    /// The photos' ids.
    pub ids: *const u64,
    /// NULL, or each photo's external key (each entry NULL or a string).
    pub keys: *const *const c_char,
    /// The photos' files, or NULL when `data` is set.
    pub paths: *const *const c_char,
    /// The photos' encoded bytes, `lens[i]` bytes at `data[i]`, or NULL when `paths` is set.
    pub data: *const *const u8,
    pub lens: *const usize,
    /// Receives each photo's status (required when `count` > 0).
    pub statuses: *mut AvgStatus,
    /// NULL, or receives NULL or an error object per photo (the caller frees each).
    pub item_errors: *mut *mut AvgError,
    /// NULL, or called after every 32 photos; returning false stops.
    pub progress: AvgProgressFn,
    pub user_data: *mut c_void,
    /// Receives the number of photos added (also when the call stops early).
    pub added: usize,
}
growable!(AvgPhotoBatch, added: usize);

impl Default for AvgPhotoBatch {
    fn default() -> Self {
        AvgPhotoBatch {
            struct_size: size_of::<Self>(),
            count: 0,
            ids: std::ptr::null(),
            keys: std::ptr::null(),
            paths: std::ptr::null(),
            data: std::ptr::null(),
            lens: std::ptr::null(),
            statuses: std::ptr::null_mut(),
            item_errors: std::ptr::null_mut(),
            progress: None,
            user_data: std::ptr::null_mut(),
            added: 0,
        }
    }
}
