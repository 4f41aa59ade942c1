// Auth failures an operator must act on; messages never contain a token or a secret.

/** The App+User refresh token is missing, expired or revoked: only a new interactive consent fixes it. */
export class ReconsentRequiredError extends Error {
  override name = 'ReconsentRequiredError';
  constructor(
    reason: string,
    /** The AADSTS code or OAuth error, when the token endpoint gave one. */
    readonly code?: string,
  ) {
    super(
      `${reason}. The App+User refresh token must be renewed: run \`npm run sync -- consent\` as a partner user with ` +
        'MFA (see README, "App+User consent"), which stores a fresh refresh token in Key Vault.',
    );
  }
}

/** A static token (PARTNER_CENTER_ACCESS_TOKEN / GRAPH_ACCESS_TOKEN) is absent or past its `exp`. */
export class StaticTokenError extends Error {
  override name = 'StaticTokenError';
}
