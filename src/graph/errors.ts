// Errors specific to the Graph v2 exports; HTTP failures use the shared error type. `retriable` says whether a
// later attempt (a fresh poll, a new export) may succeed; failureKind() in src/http/errors.ts reads it.

/** The manifest's SAS has expired (blob host 403 AuthenticationFailed): re-poll the operation for a fresh manifest. */
export class SasExpiredError extends Error {
  override name = 'SasExpiredError';
  readonly retriable = true;
  constructor(
    /** The blob URL without its query string (the SAS signature is never shown). */
    readonly url: string,
    readonly blobIndex: number,
  ) {
    super(
      `The export manifest's SAS token was rejected for ${url} (expired?); poll the operation again for a fresh manifest`,
    );
  }
}

/** A link from the service (Location, manifest navigation link, rootDirectory) that the allow-list refuses. */
export class DisallowedLinkError extends Error {
  override name = 'DisallowedLinkError';
  readonly retriable = false;
  constructor(
    readonly what: string,
    readonly url: string,
    reason = 'not allowed by the link policy (https to graph.microsoft.com or *.blob.core.windows.net by default)',
  ) {
    super(`Refusing to follow ${what} ${url}: ${reason}`);
  }
}

/** The operation answered with a body this client cannot classify. */
export class UnexpectedOperationError extends Error {
  override name = 'UnexpectedOperationError';
  readonly retriable = true;
}

/** A manifest whose blobs are in a format this reader does not know: refused before any blob is fetched. */
export class UnsupportedDataFormatError extends Error {
  override name = 'UnsupportedDataFormatError';
  readonly retriable = false;
  constructor(readonly dataFormat: string) {
    super(
      `The export manifest's dataFormat ${JSON.stringify(dataFormat.slice(0, 80))} is not supported ` +
        '(expected compressedJSON or compressedJSONLines: gzip JSON Lines); no blob was read',
    );
  }
}

/** The manifest contradicts itself or its blobs (blobCount, ItemCount, a checkpoint past the data). */
export class ManifestMismatchError extends Error {
  override name = 'ManifestMismatchError';
  /** A fresh manifest (a new poll or export) may be consistent again. */
  readonly retriable = true;
  constructor(detail: string) {
    super(`Export manifest check failed: ${detail}`);
  }
}

/** A JSON line longer than the cap: refused instead of buffering it. */
export class LineTooLongError extends Error {
  override name = 'LineTooLongError';
  readonly retriable = false;
  constructor(
    readonly lineNumber: number,
    readonly maxLineBytes: number,
    what = 'export blob',
  ) {
    super(
      `Line ${lineNumber} of ${what} is longer than maxLineBytes = ${maxLineBytes} bytes (setting MAX_LINE_BYTES); ` +
        'not read further',
    );
  }
}
