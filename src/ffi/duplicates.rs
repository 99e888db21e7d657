//! C entry points for near-duplicate groups.

use super::types::{handle, AvgIndex};
use super::{c_out, guard, AvgError, AvgStatus};

/// The groups `avg_index_near_duplicates` found. Freed by `avg_groups_free`; read-only,
/// so any thread may read it.
pub struct AvgGroups {
    groups: Vec<Vec<u64>>,
}

/// Finds groups of near-duplicate images (Rust `Index::near_duplicates`): images linked
/// by pairs whose vectors have a dot product of at least `min_similarity` (in (0, 1],
/// else `AVG_STATUS_INVALID_ARGUMENT`), found by hashing rather than by comparing every
/// pair, so that a pair at the threshold is found with probability 0.99. `*out`
/// receives the groups (none is an empty result, not an error).
///
/// Ownership: the caller frees `*out` with `avg_groups_free`. Thread-safety: any
/// thread; searches go on meanwhile, adds wait for it.
///
/// # Safety
/// `index` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn avg_index_near_duplicates(
    index: *const AvgIndex,
    min_similarity: f32,
    out: *mut *mut AvgGroups,
    err: *mut *mut AvgError,
) -> AvgStatus {
    // SAFETY: the caller keeps the contract in # Safety above.
    guard(err, || unsafe {
        let out = c_out(out, "out")?;
        let groups = handle(index)?.near_duplicates(min_similarity)?;
        *out = Box::into_raw(Box::new(AvgGroups { groups }));
        Ok(())
    })
}

/// The number of groups; 0 for NULL.
///
/// # Safety
/// `groups` is NULL or from `avg_index_near_duplicates`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn avg_groups_count(groups: *const AvgGroups) -> usize {
    // SAFETY: the caller's contract.
    unsafe { groups.as_ref() }.map_or(0, |g| g.groups.len())
}

/// Group `i`'s image ids (ascending; at least two) and, in `*len`, their number; NULL
/// (and 0) for a NULL `groups` or an `i` out of range. The ids live as long as `groups`.
///
/// # Safety
/// As `avg_groups_count`; `len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn avg_groups_get(groups: *const AvgGroups, i: usize, len: *mut usize) -> *const u64 {
    // SAFETY: the caller's contract.
    let group = unsafe { groups.as_ref() }.and_then(|g| g.groups.get(i));
    // SAFETY: the caller's contract.
    if let Some(len) = unsafe { len.as_mut() } {
        *len = group.map_or(0, Vec::len);
    }
    group.map_or(std::ptr::null(), |g| g.as_ptr())
}

/// Frees groups from `avg_index_near_duplicates`; NULL is a no-op.
///
/// # Safety
/// `groups` is NULL or from `avg_index_near_duplicates`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn avg_groups_free(groups: *mut AvgGroups) {
    if !groups.is_null() {
        // SAFETY: the caller's contract.
        drop(unsafe { Box::from_raw(groups) });
    }
}
