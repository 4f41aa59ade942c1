// Public surface of src/auth/: one TokenCredential per operation, chosen by AUTH_MODE.
export {
  type AuthSettings,
  type CredentialOptions,
  type Credentials,
  certificateProof,
  createCredentials,
  TOKEN_EXCHANGE_SCOPE,
} from './credentials.js';
export { ReconsentRequiredError, StaticTokenError } from './errors.js';
export {
  authorityMetadataFor,
  cloudDiscoveryMetadataFor,
  type OriginMap,
  originRewritingHttpClient,
  originRewritingNetworkClient,
  rewriteUrl,
} from './origin-rewrite.js';
export {
  type AuthLogger,
  ISSUED_AT_TAG,
  mapTokenError,
  PARTNER_CENTER_SCOPE,
  REFRESH_TOKEN_LIFETIME_DAYS,
  RefreshTokenCredential,
  type RefreshTokenCredentialOptions,
  rotatedRefreshToken,
} from './refresh-token.js';
export { InMemorySecretStore, KeyVaultSecretStore, type SecretStore, type StoredSecret } from './secret-store.js';
export { jwtExpiry, StaticTokenCredential } from './static-token.js';
