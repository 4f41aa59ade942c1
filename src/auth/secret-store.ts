// Where the App+User refresh token is kept: Key Vault in Azure (SecretStore is the seam tests and local runs use).
import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { SecretClient } from '@azure/keyvault-secrets';

export interface StoredSecret {
  value: string;
  updatedOn?: Date;
  createdOn?: Date;
  tags?: Record<string, string>;
}

export interface SecretStore {
  get(name: string): Promise<StoredSecret | undefined>;
  set(name: string, value: string, tags?: Record<string, string>): Promise<void>;
}

export interface KeyVaultSecretStoreOptions {
  vaultUrl: string;
  credential: TokenCredential;
  /** Test and local-demo hook only (e.g. a Key Vault fake behind an origin rewrite). */
  httpClient?: HttpClient;
  disableChallengeResourceVerification?: boolean;
}

export class KeyVaultSecretStore implements SecretStore {
  readonly #client: SecretClient;

  constructor(options: KeyVaultSecretStoreOptions) {
    this.#client = new SecretClient(options.vaultUrl, options.credential, {
      httpClient: options.httpClient,
      disableChallengeResourceVerification: options.disableChallengeResourceVerification,
      retryOptions: { maxRetries: 3 },
    });
  }

  async get(name: string): Promise<StoredSecret | undefined> {
    try {
      const secret = await this.#client.getSecret(name);
      if (secret.value === undefined) return undefined;
      return {
        value: secret.value,
        updatedOn: secret.properties.updatedOn,
        createdOn: secret.properties.createdOn,
        tags: secret.properties.tags,
      };
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw error;
    }
  }

  async set(name: string, value: string, tags?: Record<string, string>): Promise<void> {
    await this.#client.setSecret(name, value, { tags, contentType: 'application/x-refresh-token' });
  }
}

/** A process-local store (local demo without Key Vault); a restart loses the rotated token. */
export class InMemorySecretStore implements SecretStore {
  readonly #secrets = new Map<string, StoredSecret>();

  constructor(initial: Record<string, string> = {}, now: () => number = Date.now) {
    for (const [name, value] of Object.entries(initial)) this.#secrets.set(name, { value, updatedOn: new Date(now()) });
  }

  async get(name: string): Promise<StoredSecret | undefined> {
    const secret = this.#secrets.get(name);
    return secret ? { ...secret } : undefined;
  }

  async set(name: string, value: string, tags?: Record<string, string>): Promise<void> {
    this.#secrets.set(name, { value, tags, updatedOn: new Date() });
  }
}
