//! A prefix trie over the voken sequences (local numbers) of the indexed images, with
//! image ids at the leaves: the constraint of the beam search.

#[derive(Debug, Clone, Default)]
struct Node {
    /// Sorted tokens and, in step, the child node (or, at the last level, the image id).
    tokens: Vec<u32>,
    next: Vec<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
    depth: usize,
    len: usize,
}

/// The root's node number.
pub(crate) const ROOT: u32 = 0;

impl Trie {
    pub(crate) fn new(depth: usize) -> Self {
        Trie { nodes: vec![Node::default()], depth, len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn depth(&self) -> usize {
        self.depth
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
                    let next = if last { id } else { self.nodes.len() as u64 };
                    let n = &mut self.nodes[node];
                    n.tokens.insert(i, tok);
                    n.next.insert(i, next);
                    if last {
                        self.len += 1;
                    } else {
                        self.nodes.push(Node::default());
                        node = next as usize;
                    }
                }
            }
        }
    }

    /// Removes `seq`; empty inner nodes stay (they cost little and are reused).
    pub(crate) fn remove(&mut self, seq: &[u32]) {
        let mut node = ROOT as usize;
        for (level, &tok) in seq.iter().enumerate() {
            let Ok(i) = self.nodes[node].tokens.binary_search(&tok) else { return };
            if level + 1 == self.depth {
                let n = &mut self.nodes[node];
                n.tokens.remove(i);
                n.next.remove(i);
                self.len -= 1;
                return;
            }
            node = self.nodes[node].next[i] as usize;
        }
    }

    /// The node reached by `prefix`, if any.
    pub(crate) fn find(&self, prefix: &[u32]) -> Option<u32> {
        let mut node = ROOT;
        for &tok in prefix {
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
        assert_eq!(t.len(), 2);
    }
}
