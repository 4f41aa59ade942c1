// What the simulator's dataset says each stored file must contain, for byte-for-byte comparisons.
import { createHash } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import type { Simulator } from '../simulator/index.js';

const flat = (value: string) => value.toLowerCase().replace(/_/g, '');
export const normalizeType = (type: string) => flat(type).replace(/lineitems$/, '');
/** As the client keys parts: billed daily-rated usage is requested as provider=onetime whatever the detail says. */
export const normalizeProvider = (provider: string, type = '') =>
  flat(provider) === 'marketplace' && normalizeType(type) === 'usage' ? 'onetime' : flat(provider);

/** The NDJSON bytes a part must hold: every row exactly as served, one per line. */
export function expectedNdjson(
  sim: Simulator,
  invoiceId: string,
  part: { provider: string; lineItemType: string },
  api: 'v1' | 'v2',
): Buffer {
  const chunks: string[] = [];
  if (api === 'v2') {
    const kind = part.lineItemType.startsWith('usage') ? 'usage' : 'reconciliation';
    const n = sim.dataset.v2Rows(invoiceId, kind);
    for (let i = 0; i < n; i++) chunks.push(`${sim.dataset.v2Row(invoiceId, kind, i)}\n`);
  } else {
    const n = sim.dataset.rows(invoiceId, part.provider, part.lineItemType);
    for (let i = 0; i < n; i++) chunks.push(`${sim.dataset.row(invoiceId, part.provider, part.lineItemType, i)}\n`);
  }
  return Buffer.from(chunks.join(''), 'utf8');
}

export async function blobSnapshot(container: ContainerClient): Promise<Map<string, { etag: string; md5: string }>> {
  const snapshot = new Map<string, { etag: string; md5: string }>();
  for await (const blob of container.listBlobsFlat()) {
    snapshot.set(blob.name, {
      etag: blob.properties.etag ?? '',
      md5: Buffer.from(blob.properties.contentMD5 ?? new Uint8Array()).toString('hex'),
    });
  }
  return snapshot;
}

export const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
