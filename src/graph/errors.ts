// Errors specific to the Graph v2 exports; HTTP failures use the shared error type.

/** The manifest's SAS has expired (blob host 403 AuthenticationFailed): re-poll the operation for a fresh manifest. */
export class SasExpiredError extends Error {
  override name = 'SasExpiredError';
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
}
