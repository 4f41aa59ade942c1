import { describe, expect, it } from 'vitest';
import {
  DisallowedLinkError,
  LineTooLongError,
  ManifestMismatchError,
  SasExpiredError,
  UnexpectedOperationError,
  UnsupportedDataFormatError,
} from '../../src/graph/errors.js';

describe('graph error types', () => {
  it('SasExpiredError names the blob URL, is retriable and keeps its name', () => {
    const e = new SasExpiredError('https://a.blob.core.windows.net/c/part-0.json.gz', 3);
    expect(e.name).toBe('SasExpiredError');
    expect(e.retriable).toBe(true);
    expect(e.blobIndex).toBe(3);
    expect(e.message).toContain('https://a.blob.core.windows.net/c/part-0.json.gz');
    expect(e.message).toContain('poll the operation again');
  });

  it('DisallowedLinkError is final and explains the default link policy', () => {
    const e = new DisallowedLinkError('Location', 'http://evil.example/x');
    expect(e.name).toBe('DisallowedLinkError');
    expect(e.retriable).toBe(false);
    expect(e.message).toBe(
      'Refusing to follow Location http://evil.example/x: not allowed by the link policy ' +
        '(https to graph.microsoft.com or *.blob.core.windows.net by default)',
    );
    expect(new DisallowedLinkError('rootDirectory', 'u', 'custom').message).toBe(
      'Refusing to follow rootDirectory u: custom',
    );
  });

  it('UnexpectedOperationError is retriable and keeps its name', () => {
    const e = new UnexpectedOperationError('odd body');
    expect(e.name).toBe('UnexpectedOperationError');
    expect(e.retriable).toBe(true);
  });

  it('UnsupportedDataFormatError is final and quotes at most 80 characters of the format', () => {
    const e = new UnsupportedDataFormatError('x'.repeat(200));
    expect(e.name).toBe('UnsupportedDataFormatError');
    expect(e.retriable).toBe(false);
    expect(e.message).toContain(`"${'x'.repeat(80)}"`);
    expect(e.message).not.toContain('x'.repeat(81));
    expect(e.message).toContain('expected compressedJSON or compressedJSONLines');
  });

  it('ManifestMismatchError is retriable and carries the detail', () => {
    const e = new ManifestMismatchError('blobCount 2 but 3 blobs');
    expect(e.name).toBe('ManifestMismatchError');
    expect(e.retriable).toBe(true);
    expect(e.message).toBe('Export manifest check failed: blobCount 2 but 3 blobs');
  });

  it('LineTooLongError is final and names the line, the cap and the source', () => {
    const e = new LineTooLongError(7, 1024);
    expect(e.name).toBe('LineTooLongError');
    expect(e.retriable).toBe(false);
    expect(e.message).toBe(
      'Line 7 of export blob is longer than maxLineBytes = 1024 bytes (setting MAX_LINE_BYTES); not read further',
    );
    expect(new LineTooLongError(1, 5, 'manifest').message).toContain('Line 1 of manifest ');
  });
});
