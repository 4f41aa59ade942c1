// The page shape every line-item source yields (Partner Center v1 pages, Graph v2 manifest blobs), so the export
// loop is one `for await` over pages whatever the source, and resumes from the checkpoint the last page carried.

/** One page of a part's rows, as a source serves it. */
export interface Page<C> {
  /** The rows as NDJSON bytes: every row verbatim (its JSON text exactly as the API sent it, line breaks
   *  between tokens removed) on one line, each line ending in "\n". Empty Buffer for a page without rows. */
  ndjson: Buffer;
  /** Rows in `ndjson`. */
  rows: number;
  /** Rows the source served from the start of the part through this page, counted by the source itself (from
   *  its own position: offset, or a count carried in its checkpoint), independently of whoever writes the rows. */
  rowsThrough: number;
  /** Where to resume after this page; null when this is the last page. */
  next: C | null;
}

const LF = 0x0a;

/** NDJSON bytes of rows that are already one line each: every row followed by "\n"; empty for no rows. */
export function ndjsonOf(rows: readonly Buffer[]): Buffer {
  let size = rows.length;
  for (const row of rows) size += row.length;
  // One allocation, each row copied once and followed by its newline.
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const row of rows) {
    at += row.copy(out, at);
    out[at++] = LF;
  }
  return out;
}
