//! A prefix trie over the voken sequences (local numbers) of the indexed images, with
//! image ids at the leaves: the constraint of the beam search. A filtered search adds a
//! constraint: its `View` walks only the prefixes that hold an allowed image.

// A filter's ids are looked up at every leaf a search reaches: a fast hash, not SipHash.
use foldhash::HashSet;

#[derive(Debug, Clone, Default)]
struct Node {
    /// Sorted tokens and, in step, the child node (or, at the last level, the image id).
    tokens: Vec<u32>,
    next: Vec<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
    /// Inner nodes unlinked by removals, reused by later inserts.
    free: Vec<u64>,
    depth: usize,
    len: usize,
}

/// The root's node number.
pub(crate) const ROOT: u32 = 0;

/// A code prefix a search reached: its node, its length and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Prefix {
    pub node: u32,
    pub len: usize,
    pub score: f32,
}

impl Trie {
    pub(crate) fn new(depth: usize) -> Self {
        Trie { nodes: vec![Node::default()], free: Vec::new(), depth, len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds `seq` for image `id`, replacing any image that had the same sequence.
    pub(crate) fn insert(&mut self, seq: &[u32], id: u64) {
        debug_assert_eq!(seq.len(), self.depth);
        let mut node = ROOT as usize;
        for (level, &tok) in seq.iter().enumerate() {
            let last = level + 1 == self.depth;
            let n = &self.nodes[node];
            match n.tokens.binary_search(&tok) {
                Ok(i) if last => self.nodes[node].next[i] = id,
                Ok(i) => node = n.next[i] as usize,
                Err(i) => {
                    let next = if last {
                        id
                    } else {
                        self.free.pop().unwrap_or_else(|| {
                            self.nodes.push(Node::default());
                            self.nodes.len() as u64 - 1
                        })
                    };
                    let n = &mut self.nodes[node];
                    n.tokens.insert(i, tok);
                    n.next.insert(i, next);
                    if last {
                        self.len += 1;
                    } else {
                        node = next as usize;
                    }
                }
            }
        }
    }

    /// Removes `seq`, and every prefix left without an image under it: a beam must never
    /// spend itself on a prefix that leads nowhere.
    pub(crate) fn remove(&mut self, seq: &[u32]) {
        if seq.len() != self.depth {
            return;
        }
        // (node, index of the token taken there) from the root down.
        let mut path = Vec::with_capacity(self.depth);
        let mut node = ROOT as usize;
        for &tok in seq {
            let Ok(i) = self.nodes[node].tokens.binary_search(&tok) else { return };
            path.push((node, i));
            node = self.nodes[node].next[i] as usize;
        }
        self.len -= 1;
        while let Some((node, i)) = path.pop() {
            let n = &mut self.nodes[node];
            n.tokens.remove(i);
            let child = n.next.remove(i);
            let emptied = n.tokens.is_empty() && node != ROOT as usize;
            if path.len() + 1 < self.depth {
                self.free.push(child);
            }
            if !emptied {
                break;
            }
        }
    }

    /// The node reached by `prefix`, if any.
    pub(crate) fn find(&self, prefix: &[u32]) -> Option<u32> {
        self.walk(prefix, |_| ())
    }

    /// Follows `prefix` from the root, showing `visit` every node it passes before the
    /// last; the node reached, if the whole prefix is in the trie.
    fn walk(&self, prefix: &[u32], mut visit: impl FnMut(u32)) -> Option<u32> {
        let mut node = ROOT;
        for &tok in prefix {
            visit(node);
            let n = &self.nodes[node as usize];
            node = n.next[n.tokens.binary_search(&tok).ok()?] as u32;
        }
        Some(node)
    }

    /// Number of leaves under each node at depth `depth - 1` (images sharing all but
    /// their last token).
    pub(crate) fn last_level_groups(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = vec![(ROOT, 0usize)];
        while let Some((node, level)) = stack.pop() {
            let n = &self.nodes[node as usize];
            if level + 1 == self.depth {
                if !n.tokens.is_empty() {
                    out.push(n.tokens.len());
                }
            } else {
                stack.extend(n.next.iter().map(|&c| (c as u32, level + 1)));
            }
        }
        out
    }

    /// Allowed next tokens at `node` and what each leads to (a node number, or at the
    /// last level an image id).
    pub(crate) fn children(&self, node: u32) -> (&[u32], &[u64]) {
        let n = &self.nodes[node as usize];
        (&n.tokens, &n.next)
    }

    /// The prefixes of images `ids`, whose voken sequences are `seqs` (the M codes are
    /// read, not the disambiguator): what a filtered search may walk. Sequences not in
    /// the trie are skipped.
    pub(crate) fn allow<'s>(&self, ids: &[u64], seqs: impl Iterator<Item = &'s [u32]>) -> Allowed {
        let mut nodes = vec![false; self.nodes.len()];
        let mut images = HashSet::with_capacity_and_hasher(ids.len(), Default::default());
        let mut path = Vec::with_capacity(self.depth);
        for (&id, seq) in ids.iter().zip(seqs) {
            // The inner nodes down to the last one, marked once the whole path is found.
            path.clear();
            let Some(last) = self.walk(&seq[..seq.len() - 1], |n| path.push(n)) else { continue };
            path.push(last);
            path.iter().for_each(|&n| nodes[n as usize] = true);
            images.insert(id);
        }
        Allowed { nodes, images }
    }
}

/// The inner nodes with an allowed image under them, and the allowed images.
pub(crate) struct Allowed {
    nodes: Vec<bool>,
    images: HashSet<u64>,
}

impl Allowed {
    /// The number of allowed images in the trie.
    pub(crate) fn len(&self) -> usize {
        self.images.len()
    }
}

/// The trie as a search walks it: all of it, or only the prefixes that hold an image
/// the search's filter allows.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    trie: &'a Trie,
    allowed: Option<&'a Allowed>,
}

impl<'a> From<&'a Trie> for View<'a> {
    fn from(trie: &'a Trie) -> Self {
        View { trie, allowed: None }
    }
}

impl<'a> View<'a> {
    pub(crate) fn new(trie: &'a Trie, allowed: Option<&'a Allowed>) -> Self {
        View { trie, allowed }
    }

    pub(crate) fn depth(&self) -> usize {
        self.trie.depth
    }

    /// No image to reach.
    pub(crate) fn is_empty(&self) -> bool {
        self.trie.len == 0 || self.allowed.is_some_and(|a| a.images.is_empty())
    }

    /// The tokens a search may take at `node`, a node at `level`, and what each leads to
    /// (a node number, or at the last level an image id).
    pub(crate) fn children(&self, node: u32, level: usize) -> impl Iterator<Item = (u32, u64)> + 'a {
        let (tokens, next) = self.trie.children(node);
        let (allowed, leaf) = (self.allowed, level + 1 == self.trie.depth);
        let keep = move |n: u64| match allowed {
            None => true,
            Some(a) if leaf => a.images.contains(&n),
            Some(a) => a.nodes[n as usize],
        };
        tokens.iter().copied().zip(next.iter().copied()).filter(move |&(_, n)| keep(n))
    }

    /// The images under `prefix` a search may return, in token order.
    pub(crate) fn images_under(&self, prefix: Prefix) -> Vec<u64> {
        let mut out = Vec::new();
        let mut stack = vec![(prefix.node, prefix.len)];
        while let Some((node, len)) = stack.pop() {
            let children = self.children(node, len);
            if len + 1 == self.trie.depth {
                out.extend(children.map(|(_, id)| id));
            } else {
                let inner: Vec<(u32, usize)> = children.map(|(_, n)| (n as u32, len + 1)).collect();
                stack.extend(inner.into_iter().rev());
            }
        }
        out
    }

    /// Prefix backoff: `kept` (a search's result, best first), then as many of
    /// `pruned` (prefixes it dropped, disjoint from `kept`), best score first, as it
    /// takes for the images under them all to number `min_images`.
    pub(crate) fn widen(&self, kept: Vec<Prefix>, mut pruned: Vec<Prefix>, min_images: usize) -> Vec<Prefix> {
        let mut images: usize = kept.iter().map(|&p| self.images_under(p).len()).sum();
        let mut out = kept;
        pruned.sort_by(|a, b| b.score.total_cmp(&a.score));
        for p in pruned {
            if images >= min_images {
                break;
            }
            images += self.images_under(p).len();
            out.push(p);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_lookup_remove() {
        let mut t = Trie::new(3);
        t.insert(&[1, 2, 0], 10);
        t.insert(&[1, 2, 1], 11);
        t.insert(&[1, 5, 0], 12);
        assert_eq!(t.len(), 3);
        let (tok, next) = t.children(ROOT);
        assert_eq!(tok, [1]);
        let (tok, next) = t.children(next[0] as u32);
        assert_eq!(tok, [2, 5]);
        let (tok, ids) = t.children(next[0] as u32);
        assert_eq!((tok, ids), (&[0, 1][..], &[10, 11][..]));
        t.remove(&[1, 2, 0]);
        t.remove(&[9, 9, 9]);
        t.remove(&[1, 2]);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn removal_prunes_empty_prefixes_and_reuses_their_nodes() {
        let mut t = Trie::new(3);
        t.insert(&[1, 2, 0], 10);
        t.insert(&[1, 5, 0], 12);
        t.insert(&[3, 4, 0], 13);
        let nodes = t.nodes.len();
        t.remove(&[1, 2, 0]);
        let one = t.find(&[1]).unwrap();
        assert_eq!(t.children(one).0, [5]);
        assert_eq!(t.find(&[1, 2]), None);
        t.remove(&[1, 5, 0]);
        assert_eq!(t.children(ROOT).0, [3]);
        assert_eq!(t.find(&[1]), None);
        t.insert(&[7, 8, 1], 14);
        t.insert(&[7, 9, 1], 15);
        assert_eq!(t.nodes.len(), nodes, "unlinked nodes are reused");
        assert_eq!(t.len(), 3);
        assert_eq!(t.children(t.find(&[7, 9]).unwrap()), (&[1][..], &[15][..]));
        t.remove(&[3, 4, 0]);
        t.remove(&[7, 8, 1]);
        t.remove(&[7, 9, 1]);
        assert_eq!((t.len(), t.children(ROOT).0.len()), (0, 0));
    }
}
