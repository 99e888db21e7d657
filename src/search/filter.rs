//! Filtered search: which images a search may return. The filter works inside the
//! search, not after it: the dense scan scores only allowed rows, and the beams walk
//! only trie prefixes that hold an allowed image (`vokens::trie::View`), so a search
//! returns k hits whenever k allowed images exist.

use std::borrow::Cow;

/// Which images a search may return: every one (the default), the images of an
/// allow-list, or those a host predicate accepts.
#[derive(Clone, Copy, Default)]
pub enum Filter<'a> {
    #[default]
    All,
    /// The images with these ids: unknown ids are skipped, repeated ones count once, and
    /// an empty list allows none (no hits, not an error).
    Ids(&'a [u64]),
    /// The images whose id the predicate accepts, for filters too large to list. It is
    /// called once per indexed image, on the calling thread, before the search takes the
    /// index's lock (so a slow predicate delays this search only); a panic in it is the
    /// caller's.
    Predicate(&'a (dyn Fn(u64) -> bool + Sync)),
}

impl<'a> Filter<'a> {
    /// The allowed ids, given the index's ids (read only by a predicate); `None` for
    /// `All`. A list is borrowed, not copied.
    pub(crate) fn allowed(&self, ids: impl FnOnce() -> Vec<u64>) -> Option<Cow<'a, [u64]>> {
        match *self {
            Filter::All => None,
            Filter::Ids(ids) => Some(Cow::Borrowed(ids)),
            Filter::Predicate(accept) => Some(Cow::Owned(ids().into_iter().filter(|&id| accept(id)).collect())),
        }
    }
}

impl std::fmt::Debug for Filter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Filter::All => write!(f, "All"),
            Filter::Ids(ids) => write!(f, "Ids({} ids)", ids.len()),
            Filter::Predicate(_) => write!(f, "Predicate"),
        }
    }
}

/// Filters are equal when they are the same list or the same predicate.
impl PartialEq for Filter<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Filter::All, Filter::All) => true,
            (Filter::Ids(a), Filter::Ids(b)) => std::ptr::eq(*a, *b),
            (Filter::Predicate(a), Filter::Predicate(b)) => std::ptr::addr_eq(*a, *b),
            _ => false,
        }
    }
}
