// The Graph v2 export manifest (ref §6.3): where the gzip JSON Lines blobs of one export live, and how to read them.
import { z } from 'zod';

export const manifestBlobSchema = z.looseObject({
  name: z.string().min(1),
  partitionValue: z.string().optional(),
});

/** Unknown fields pass through: the service has added fields before (`ItemCount`, `SizeInBytes`). */
export const manifestSchema = z.looseObject({
  id: z.string().optional(),
  eTag: z.string(),
  rootDirectory: z.string().min(1),
  // The SAS has no leading `?` in every known manifest; tolerate one anyway.
  sasToken: z.string().transform((v) => v.replace(/^\?/, '')),
  blobCount: z.coerce.number().int().min(0),
  blobs: z.array(manifestBlobSchema),
  dataFormat: z.string().optional(),
  schemaVersion: z.coerce.string().optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestBlob = z.infer<typeof manifestBlobSchema>;

/** `${rootDirectory}/${name}?${sasToken}`, with each path segment of the blob name escaped. */
export function blobUrl(manifest: Manifest, blob: ManifestBlob): string {
  const root = manifest.rootDirectory.replace(/\/+$/, '');
  const name = blob.name.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/');
  return `${root}/${name}${manifest.sasToken ? `?${manifest.sasToken}` : ''}`;
}
