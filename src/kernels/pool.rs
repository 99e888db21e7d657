//! The worker threads of the search kernels (`kernels::small_matmul`): they share out
//! one call's blocks of work and stay out of a busy host's way.
//!
//! Candle's pool, which the kernels used before, waits for its workers by spinning
//! without end: when another program holds a core and a worker is descheduled in the
//! middle of a call, the caller spins through its own time slice waiting for it, and
//! queries took several times longer on busy cores (docs/benchmarks.md). Here every thread that runs, the
//! caller included, claims blocks from a shared counter, so a descheduled worker delays
//! only the block it holds; waits spin for microseconds, then yield the core, and idle
//! workers park. A call that finds the pool busy with another host thread's call runs on
//! its own thread: several host threads searching at once are the parallelism then.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long a waiting thread spins before it yields its core: about the gap between two
/// kernel calls of one decoder step, so workers stay awake through a query.
const SPIN: Duration = Duration::from_micros(50);
/// How long an idle worker yields before it parks.
const YIELD: Duration = Duration::from_micros(500);

/// Sets the threads a search uses, the caller's included: 0 (the default) means one per
/// core, 1 keeps a search on the calling thread. Takes effect at the next kernel call;
/// at most one per core is used. Trainings use Candle's threads, which this leaves alone
/// (`CANDLE_NUM_THREADS=1` in the environment keeps them from spinning on a busy machine).
pub fn set_threads(threads: usize) {
    pool().limit.store(threads, Relaxed);
}

/// Runs `f(0)` .. `f(blocks - 1)`, each once, on the caller and the pool's workers.
pub(crate) fn for_each_block<F: Fn(usize) + Sync>(blocks: usize, f: F) {
    let pool = pool();
    let workers = pool.workers.get().map_or(&[][..], Vec::as_slice);
    let helpers = match pool.limit.load(Relaxed) {
        0 => workers.len(),
        n => (n - 1).min(workers.len()),
    };
    if helpers == 0 || blocks < 2 || pool.busy.compare_exchange(false, true, Acquire, Relaxed).is_err() {
        (0..blocks).for_each(f);
        return;
    }
    // SAFETY: `busy` is ours and the previous call saw no worker inside, so nobody reads
    // the job; `Call` keeps `f` alive until no worker is inside again.
    unsafe { *pool.job.get() = Job { data: (&raw const f).cast(), run: run_erased::<F>, blocks } };
    let call = Call(pool);
    pool.next.store(0, Relaxed);
    pool.left.store(blocks, Relaxed);
    pool.open.store(true, SeqCst);
    pool.generation.fetch_add(1, SeqCst);
    for (worker, asleep) in workers.iter().zip(&pool.asleep).take(helpers) {
        if asleep.load(SeqCst) {
            worker.unpark();
        }
    }
    pool.work();
    wait(|| pool.left.load(Acquire) == 0);
    drop(call);
    if pool.panicked.swap(false, Relaxed) {
        panic!("a search worker thread panicked");
    }
}

/// # Safety
/// `data` points to an `F` that is alive.
unsafe fn run_erased<F: Fn(usize)>(data: *const (), block: usize) {
    // SAFETY: the caller's contract.
    unsafe { (*data.cast::<F>())(block) }
}

struct Job {
    data: *const (),
    run: unsafe fn(*const (), usize),
    blocks: usize,
}

struct Pool {
    /// Set once the workers are spawned.
    workers: OnceLock<Vec<Thread>>,
    asleep: Vec<AtomicBool>,
    /// Threads to use, 0 for one per core (`set_threads`).
    limit: AtomicUsize,
    /// One call at a time owns the workers.
    busy: AtomicBool,
    job: UnsafeCell<Job>,
    /// Workers may enter the current job.
    open: AtomicBool,
    generation: AtomicUsize,
    /// Workers inside the current job (they may read it).
    inside: AtomicUsize,
    next: AtomicUsize,
    left: AtomicUsize,
    panicked: AtomicBool,
}

// SAFETY: `job` is written only by the caller that owns `busy` while no worker is
// inside (see `for_each_block`) and read only by workers inside.
unsafe impl Sync for Pool {}

/// Ends a call, also when its closure panics: no more blocks are handed out, and the
/// closure outlives every worker that entered.
struct Call(&'static Pool);

impl Drop for Call {
    fn drop(&mut self) {
        let pool = self.0;
        pool.next.store(usize::MAX / 2, Relaxed);
        pool.open.store(false, SeqCst);
        wait(|| pool.inside.load(SeqCst) == 0);
        pool.busy.store(false, Release);
    }
}

impl Pool {
    /// Claims and runs blocks of the current job until none are left.
    fn work(&self) {
        // SAFETY: only called by the owner of `busy` or by a worker inside the open job.
        let job = unsafe { &*self.job.get() };
        loop {
            let block = self.next.fetch_add(1, Relaxed);
            if block >= job.blocks {
                return;
            }
            // SAFETY: the job's closure is alive while the call is open (`Call`).
            if catch_unwind(AssertUnwindSafe(|| unsafe { (job.run)(job.data, block) })).is_err() {
                self.panicked.store(true, Relaxed);
            }
            self.left.fetch_sub(1, Release);
        }
    }

    fn worker(&self, index: usize) {
        let mut seen = self.generation.load(SeqCst);
        loop {
            let started = Instant::now();
            while self.generation.load(SeqCst) == seen {
                let waited = started.elapsed();
                if waited < SPIN {
                    std::hint::spin_loop();
                } else if waited < YIELD {
                    std::thread::yield_now();
                } else {
                    // The caller sees `asleep` after its new generation, or this thread
                    // sees the generation: a wake-up is never lost.
                    self.asleep[index].store(true, SeqCst);
                    if self.generation.load(SeqCst) == seen {
                        std::thread::park();
                    }
                    self.asleep[index].store(false, SeqCst);
                }
            }
            seen = self.generation.load(SeqCst);
            self.inside.fetch_add(1, SeqCst);
            if self.open.load(SeqCst) && self.generation.load(SeqCst) == seen {
                self.work();
            }
            self.inside.fetch_sub(1, SeqCst);
        }
    }
}

/// Waits for `done`: spins briefly, then yields the core to whoever holds what it waits for.
fn wait(done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        match started.elapsed() < SPIN {
            true => std::hint::spin_loop(),
            false => std::thread::yield_now(),
        }
    }
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let helpers = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            workers: OnceLock::new(),
            asleep: (0..helpers).map(|_| AtomicBool::new(false)).collect(),
            limit: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
            job: UnsafeCell::new(Job { data: std::ptr::null(), run: run_erased::<fn(usize)>, blocks: 0 }),
            open: AtomicBool::new(false),
            generation: AtomicUsize::new(0),
            inside: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            left: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        }));
        // A thread the system refuses is one helper fewer, not an error.
        let workers = (0..helpers)
            .map_while(|i| {
                let spawned = std::thread::Builder::new().name(format!("avg-search-{i}")).spawn(move || pool.worker(i));
                spawned.ok().map(|h| h.thread().clone())
            })
            .collect();
        let _ = pool.workers.set(workers);
        pool
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block runs exactly once, with the workers, from several callers at once
    /// (one owns the workers, the others run inline), and with one thread.
    #[test]
    fn each_block_runs_once_whoever_runs_it() {
        let check = || {
            for blocks in [0, 1, 2, 7, 100] {
                let counts: Vec<AtomicUsize> = (0..blocks).map(|_| AtomicUsize::new(0)).collect();
                for_each_block(blocks, |b| {
                    counts[b].fetch_add(1, Relaxed);
                });
                assert!(counts.iter().all(|c| c.load(Relaxed) == 1), "{blocks} blocks");
            }
        };
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..200).for_each(|_| check()));
            }
        });
        set_threads(1);
        check();
        set_threads(0);
    }

    #[test]
    fn a_panicking_block_panics_the_caller_and_the_pool_goes_on() {
        let caught = catch_unwind(|| for_each_block(64, |b| assert!(b != 40, "block 40")));
        assert!(caught.is_err());
        let done = AtomicUsize::new(0);
        for_each_block(64, |_| {
            done.fetch_add(1, Relaxed);
        });
        assert_eq!(done.load(Relaxed), 64);
    }
}
