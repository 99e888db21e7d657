//! Every type the header declares besides statuses and errors, with its conversions to
//! and from the safe types: the entry points see only these and the safe API.
//!
//! Structs a host fills (`AvgIndexConfig`, `AvgSearchOptions`, `AvgTokenizerTrainConfig`,
//! `AvgGeneratorTrainConfig`) or receives into its own memory (`AvgTokenizerStats`)
//! begin with `struct_size`, their size in the host's header, so that later versions can
//! append fields without breaking binaries built against older headers: the library
//! touches only that many bytes, and fields past them keep their defaults. Fields are
//! only ever appended, and each of these structs ends without tail padding (checked
//! below), so an appended field never lands in bytes an older host left undefined.
//! `AvgProgress` is only read by hosts, through a pointer, and also only grows at its
//! end; `AvgHit` fills arrays and never changes.

use super::c_str;
use crate::log::{Level, Logger};
use crate::{Error, Index, IndexConfig, Progress, Result, SearchWeights, Stage, VectorStorage};
use std::ffi::{c_char, c_void};
use std::mem::{offset_of, size_of};

/// An open index. Created by `avg_index_open`, freed by `avg_index_free`.
/// Safe to share between threads: every call on it may run concurrently with any other,
/// except `avg_index_free`, which must be the last call.
pub struct AvgIndex {
    pub(crate) inner: Index,
}

/// The index behind a handle.
///
/// # Safety
/// `ptr` is NULL or a live handle.
pub(crate) unsafe fn handle<'a>(ptr: *const AvgIndex) -> Result<&'a Index> {
    // SAFETY: NULL or live, as the caller vouches.
    unsafe { ptr.as_ref() }.map(|i| &i.inner).ok_or(Error::NullPointer("index".into()))
}

/// A struct that begins with `struct_size` and only grows at its end.
pub(crate) trait Growable: Copy + Default {
    /// Its size when `struct_size` was introduced (ABI 5): no host's is smaller.
    const FIRST_SIZE: usize;
}

fn check_size<T: Growable>(size: usize, what: &'static str) -> Result<()> {
    // A C compiler's sizeof is a multiple of the struct's alignment: any other size ends
    // inside a field, which would be read half from the host and half from the defaults.
    if size < T::FIRST_SIZE || size > size_of::<T>() || !size.is_multiple_of(align_of::<T>()) {
        return Err(Error::InvalidArgument(format!(
            "{what}: struct_size {size}, this libavg takes {} to {}, a multiple of {} (sizeof the struct in its header)",
            T::FIRST_SIZE,
            size_of::<T>(),
            align_of::<T>()
        )));
    }
    Ok(())
}

/// A host's struct: its `struct_size` bytes, the defaults past them.
///
/// # Safety
/// `ptr` is NULL or points to a struct of the size its first field states.
pub(crate) unsafe fn read_sized<T: Growable>(ptr: *const T, what: &'static str) -> Result<T> {
    if ptr.is_null() {
        return Err(Error::NullPointer(what.into()));
    }
    // SAFETY: every such struct begins with its size, a `usize`.
    let size = unsafe { ptr.cast::<usize>().read() };
    check_size::<T>(size, what)?;
    let mut value = T::default();
    // SAFETY: the host's struct holds `size` bytes, and `value` at least as many.
    unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), (&raw mut value).cast::<u8>(), size) };
    Ok(value)
}

/// Writes the first `size` bytes of `value` into a host's struct, `struct_size` = `size`.
///
/// # Safety
/// `ptr` is NULL or writable for `size` bytes.
pub(crate) unsafe fn write_sized<T: Growable>(ptr: *mut T, size: usize, value: T, what: &'static str) -> Result<()> {
    if ptr.is_null() {
        return Err(Error::NullPointer(what.into()));
    }
    check_size::<T>(size, what)?;
    // SAFETY: the host's struct is writable for `size` bytes, at most `value`'s, and
    // begins with its size.
    unsafe {
        std::ptr::copy_nonoverlapping((&raw const value).cast::<u8>(), ptr.cast::<u8>(), size);
        ptr.cast::<usize>().write(size);
    }
    Ok(())
}

/// Declares `$t` growable from the size it had in ABI 5 (up to `$first`, by default its
/// last field), and checks that it begins with `struct_size` and ends at `$last` without
/// tail padding.
macro_rules! growable {
    ($t:ty, $last:ident: $last_ty:ty) => {
        growable!($t, $last: $last_ty, first ends at $last: $last_ty);
    };
    ($t:ty, $last:ident: $last_ty:ty, first ends at $first:ident: $first_ty:ty) => {
        impl Growable for $t {
            const FIRST_SIZE: usize = offset_of!($t, $first) + size_of::<$first_ty>();
        }
        const _: () = assert!(offset_of!($t, struct_size) == 0);
        const _: () = assert!(offset_of!($t, $last) + size_of::<$last_ty>() == size_of::<$t>());
    };
}

/// The shape of a new index and the device to compute on.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AvgIndexConfig {
    /// `sizeof(AvgIndexConfig)`; `avg_index_config_default` sets it.
    pub struct_size: usize,
    /// Length of every image and caption vector (1 to 16384); 0 with
    /// `image_encoder_dir`: the encoder's `projection_dim`.
    pub dim: usize,
    /// N, the codebook size (1 to 65536).
    pub codebook_size: usize,
    /// M, the codes per image (1 to 32); each image also gets a disambiguator voken.
    pub voken_len: usize,
    /// "cpu" (also when NULL), "cuda" or "cuda:N".
    pub device: *const c_char,
    /// NULL, or a CLIP checkpoint directory (Hugging Face layout: config.json,
    /// model.safetensors or pytorch_model.bin, tokenizer.json, optionally
    /// preprocessor_config.json) whose `projection_dim` is `dim`. With it, photos are
    /// added from files or bytes, captions and attached texts get text vectors, and
    /// searches compute the query's vector. Name it at every open: the index records
    /// the first one's fingerprint (a CRC-32 of its files) and refuses a checkpoint of
    /// other bytes with `AVG_STATUS_CONFIG_MISMATCH`.
    pub image_encoder_dir: *const c_char,
    /// How the generator that answers searches keeps its weights, chosen at each open:
    /// `AVG_SEARCH_WEIGHTS_DEFAULT` (0), `AVG_SEARCH_WEIGHTS_F32` or
    /// `AVG_SEARCH_WEIGHTS_INT8` (also int8 with one scale per row: a quarter of the
    /// bytes a search step reads; a quarter more memory for the model). Hosts built
    /// against a header without this field get the default.
    pub search_weights: u64,
    /// How image vectors are kept in memory for searching, chosen at each open:
    /// `AVG_VECTOR_STORAGE_F32` (0), `AVG_VECTOR_STORAGE_F16` (half the memory and of
    /// the bytes a dense scan reads) or `AVG_VECTOR_STORAGE_INT8` (a quarter, and a
    /// scale per vector). The index stores f32 on disk either way, and `avg_index_image`
    /// and saves return and write those. Hosts built against a header without this
    /// field get f32.
    pub vector_storage: u64,
}
growable!(AvgIndexConfig, vector_storage: u64, first ends at image_encoder_dir: *const c_char);

/// `AvgIndexConfig.search_weights`: libavg's default (int8 where the CPU has AVX2 and FMA).
pub const AVG_SEARCH_WEIGHTS_DEFAULT: u64 = 0;
/// `AvgIndexConfig.search_weights`: the f32 weights as trained.
pub const AVG_SEARCH_WEIGHTS_F32: u64 = 1;
/// `AvgIndexConfig.search_weights`: int8 weights with one f32 scale per row, f32 sums.
pub const AVG_SEARCH_WEIGHTS_INT8: u64 = 2;

/// `AvgIndexConfig.vector_storage`: image vectors as given (see `VectorStorage::F32`).
pub const AVG_VECTOR_STORAGE_F32: u64 = 0;
/// `AvgIndexConfig.vector_storage`: image vectors rounded to f16 (see `VectorStorage::F16`).
pub const AVG_VECTOR_STORAGE_F16: u64 = 1;
/// `AvgIndexConfig.vector_storage`: int8 image vectors, a scale each (see `VectorStorage::Int8`).
pub const AVG_VECTOR_STORAGE_INT8: u64 = 2;

impl Default for AvgIndexConfig {
    fn default() -> Self {
        let d = IndexConfig::default();
        AvgIndexConfig {
            struct_size: size_of::<Self>(),
            dim: d.dim,
            codebook_size: d.codebook_size,
            voken_len: d.voken_len,
            device: c"cpu".as_ptr(),
            image_encoder_dir: std::ptr::null(),
            search_weights: AVG_SEARCH_WEIGHTS_DEFAULT,
            vector_storage: AVG_VECTOR_STORAGE_F32,
        }
    }
}

impl AvgIndexConfig {
    /// # Safety
    /// The strings are NULL or NUL-terminated.
    pub(crate) unsafe fn to_rust(self) -> Result<IndexConfig> {
        // SAFETY: the strings are NULL or NUL-terminated, as the caller vouches.
        let device = if self.device.is_null() { "cpu" } else { unsafe { c_str(self.device, "config.device") }? };
        let encoder = match self.image_encoder_dir.is_null() {
            true => None,
            false => Some(unsafe { c_str(self.image_encoder_dir, "config.image_encoder_dir") }?.into()),
        };
        let search_weights = match self.search_weights {
            AVG_SEARCH_WEIGHTS_DEFAULT => SearchWeights::default(),
            AVG_SEARCH_WEIGHTS_F32 => SearchWeights::F32,
            AVG_SEARCH_WEIGHTS_INT8 => SearchWeights::Int8,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "config.search_weights {other}: expected 0 (default), 1 (f32) or 2 (int8)"
                )))
            }
        };
        let vector_storage = match self.vector_storage {
            AVG_VECTOR_STORAGE_F32 => VectorStorage::F32,
            AVG_VECTOR_STORAGE_F16 => VectorStorage::F16,
            AVG_VECTOR_STORAGE_INT8 => VectorStorage::Int8,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "config.vector_storage {other}: expected 0 (f32), 1 (f16) or 2 (int8)"
                )))
            }
        };
        Ok(IndexConfig {
            dim: self.dim,
            codebook_size: self.codebook_size,
            voken_len: self.voken_len,
            device: device.to_owned(),
            image_encoder: encoder,
            search_weights,
            vector_storage,
        })
    }
}

/// Which long call is reporting.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvgStage {
    Tokenizer = 0,
    Generator = 1,
    /// Photos being added: one report per batch of photos, no losses.
    Images = 2,
}

/// One progress report, after every optimiser step (or batch of photos). Losses of the
/// other stage are 0. Valid during the callback only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AvgProgress {
    pub stage: AvgStage,
    /// 0-based epoch, out of `epochs`.
    pub epoch: usize,
    pub epochs: usize,
    /// 0-based step within the epoch, out of `steps_per_epoch`.
    pub step: usize,
    pub steps_per_epoch: usize,
    /// The weighted total that was minimised.
    pub loss: f32,
    pub loss_recon: f32,
    pub loss_commit: f32,
    pub loss_align: f32,
    pub loss_gen: f32,
    pub loss_dis: f32,
    pub samples_per_second: f32,
}

impl From<&Progress> for AvgProgress {
    fn from(p: &Progress) -> Self {
        let stage = match p.stage {
            Stage::Tokenizer => AvgStage::Tokenizer,
            Stage::Generator => AvgStage::Generator,
            Stage::Images => AvgStage::Images,
        };
        AvgProgress {
            stage,
            epoch: p.epoch,
            epochs: p.epochs,
            step: p.step,
            steps_per_epoch: p.steps_per_epoch,
            loss: p.loss,
            loss_recon: p.loss_recon,
            loss_commit: p.loss_commit,
            loss_align: p.loss_align,
            loss_gen: p.loss_gen,
            loss_dis: p.loss_dis,
            samples_per_second: p.samples_per_second,
        }
    }
}

/// Called after every training step (or batch of photos added) with the host's
/// `user_data`; return false to stop cleanly. Runs on the thread that called the
/// training function.
pub type AvgProgressFn = Option<unsafe extern "C" fn(user_data: *mut c_void, progress: *const AvgProgress) -> bool>;

/// The host's progress callback (NULL: never stop) as the safe API takes it.
///
/// # Safety
/// `progress` is NULL or safe to call with `user_data` for as long as the closure lives.
pub(crate) unsafe fn host_callback(progress: AvgProgressFn, user_data: *mut c_void) -> impl FnMut(&Progress) -> bool {
    // SAFETY: the caller of the entry point vouches for `progress` and `user_data`.
    move |p| progress.is_none_or(|f| unsafe { f(user_data, &AvgProgress::from(p)) })
}

/// How much a log message matters (`avg_set_log_callback`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvgLogLevel {
    /// Per-operation detail: each search's time.
    Debug = 0,
    /// Opens, saves, trainings finished.
    Info = 1,
    /// Something the library worked around that the host may want to know of (an index
    /// in an older format, which its next save rewrites).
    Warn = 2,
}

impl From<AvgLogLevel> for Level {
    fn from(l: AvgLogLevel) -> Self {
        match l {
            AvgLogLevel::Debug => Level::Debug,
            AvgLogLevel::Info => Level::Info,
            AvgLogLevel::Warn => Level::Warn,
        }
    }
}

impl From<Level> for AvgLogLevel {
    fn from(l: Level) -> Self {
        match l {
            Level::Debug => AvgLogLevel::Debug,
            Level::Info => AvgLogLevel::Info,
            Level::Warn => AvgLogLevel::Warn,
        }
    }
}

/// Receives a log message (NUL-terminated UTF-8, valid during the call) with the host's
/// `user_data`, on whichever thread did the work: it must be quick and thread-safe.
pub type AvgLogFn = Option<unsafe extern "C" fn(user_data: *mut c_void, level: AvgLogLevel, message: *const c_char)>;

/// The host's log callback as the safe API takes it.
///
/// # Safety
/// `callback` is safe to call with `user_data` from any thread until it is replaced.
pub(crate) unsafe fn host_logger(
    callback: unsafe extern "C" fn(*mut c_void, AvgLogLevel, *const c_char),
    user_data: *mut c_void,
) -> Logger {
    /// The host's pointer, which it vouches may be used from any thread.
    struct UserData(*mut c_void);
    // SAFETY: see `host_logger`'s contract.
    unsafe impl Send for UserData {}
    unsafe impl Sync for UserData {}
    impl UserData {
        // A method, so that the closure captures the whole (Send) value, not its field.
        fn get(&self) -> *mut c_void {
            self.0
        }
    }
    let data = UserData(user_data);
    std::sync::Arc::new(move |level: Level, message: &str| {
        let text = std::ffi::CString::new(message.replace('\0', "")).expect("NULs removed");
        // SAFETY: the host vouched for the callback and its data.
        unsafe { callback(data.get(), level.into(), text.as_ptr()) }
    })
}

mod info;
mod photos;
mod search;
mod train;
pub use info::*;
pub use photos::*;
pub use search::*;
pub use train::*;
