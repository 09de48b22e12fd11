//! Helpers shared by the fuzz targets: splitting a byte stream into fuzzer-chosen chunks and
//! damaging a byte stream at fuzzer-chosen places.

/// Splits `data` into consecutive chunks whose lengths come from `sizes`.
///
/// Each size is taken modulo `max_chunk` and a zero becomes one byte, so every chunk is
/// non-empty and at most `max_chunk` bytes; once `sizes` runs out, the rest is one last chunk.
/// The chunks always cover `data` exactly, in order.
pub fn chunks<'a>(data: &'a [u8], sizes: &[u16], max_chunk: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let max_chunk = max_chunk.max(1);
    for &size in sizes {
        if rest.is_empty() {
            break;
        }
        let n = (usize::from(size) % max_chunk).max(1).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Applies `(position, xor)` edits to `stream` (positions taken modulo its length; a zero xor
/// is no edit) and returns the lowest position actually changed, or `None` when the stream is
/// unchanged.
pub fn flip(stream: &mut [u8], edits: &[(u32, u8)]) -> Option<usize> {
    if stream.is_empty() {
        return None;
    }
    // Edits at one position may cancel each other out: apply their net xor.
    let mut net = std::collections::BTreeMap::<usize, u8>::new();
    for &(position, xor) in edits {
        *net.entry(position as usize % stream.len()).or_default() ^= xor;
    }
    let mut first = None;
    for (at, xor) in net {
        if xor != 0
            && let Some(byte) = stream.get_mut(at)
        {
            *byte ^= xor;
            first = first.or(Some(at));
        }
    }
    first
}
