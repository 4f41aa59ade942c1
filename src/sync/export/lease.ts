// The part lease: one export invocation at a time owns a part, recorded in the ledger (owner, until when, and the
// claim number, "epoch", that its block ids carry). The lease is short (LEASE_SECONDS) and renewed while the export
// works, so a crashed worker's part is free again within about a minute; every write of the owner is conditional
// on still holding it, and it is checked before each block is staged.
import type { PartEntity, PartPatch } from '../../storage/parts.js';
import type { SyncDeps } from '../deps.js';

/** A lease is treated as lost this long before it runs out, so a block is never staged in the last seconds. */
const SAFETY_MS = 5_000;

/** Someone else owns the part (or took it over): this invocation must stop and leave it alone. */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
  constructor(
    message: string,
    /** Until when the other owner holds it (ISO), when known. */
    readonly leaseUntil: string | undefined,
    readonly owner: string | undefined,
  ) {
    super(message);
  }
}

export type ClaimResult =
  | { kind: 'claimed'; lease: PartLease }
  /** A live lease of another invocation: try again once it may have ended. */
  | { kind: 'held'; leaseUntil: string; owner: string }
  /** The message is behind the part's message chain: a stale duplicate. */
  | { kind: 'stale'; turn: number };

export class PartLease {
  #part: PartEntity;
  /** Until when this owner may act (local clock, from the last successful write). */
  #validUntil: number;
  #renewal: NodeJS.Timeout | undefined;
  #renewing: Promise<unknown> = Promise.resolve();
  #lost: LeaseLostError | undefined;

  private constructor(
    private readonly deps: SyncDeps,
    part: PartEntity,
    readonly owner: string,
    validUntil: number,
  ) {
    this.#part = part;
    this.#validUntil = validUntil;
  }

  /**
   * Takes the part for `owner`: refused while another owner's lease is live, or when `turn` is behind the part's.
   * A claim starts a new epoch and counts an attempt.
   */
  static async claim(
    deps: SyncDeps,
    ids: { invoiceId: string; partId: string },
    owner: string,
    turn: number,
  ): Promise<ClaimResult> {
    const leaseMs = deps.settings.LEASE_SECONDS * 1000;
    let refused: ClaimResult | undefined;
    let startedAt = 0;
    const part = await deps.storage.ledger.updatePart(ids.invoiceId, ids.partId, (current) => {
      refused = undefined;
      startedAt = deps.now();
      if (turn < current.turn) {
        refused = { kind: 'stale', turn: current.turn };
        return undefined;
      }
      // An absent leaseUntil parses to NaN: no live lease.
      const until = Date.parse(String(current.leaseUntil));
      if (current.leaseOwner && current.leaseOwner !== owner && until > startedAt) {
        refused = { kind: 'held', leaseUntil: String(current.leaseUntil), owner: current.leaseOwner };
        return undefined;
      }
      const nowIso = new Date(startedAt).toISOString();
      return {
        leaseOwner: owner,
        leaseUntil: new Date(startedAt + leaseMs).toISOString(),
        epoch: current.epoch + 1,
        turn,
        attempts: current.attempts + 1,
        firstAttemptAt: current.firstAttemptAt ?? nowIso,
        updatedAt: nowIso,
      };
    });
    if (refused) return refused;
    return { kind: 'claimed', lease: new PartLease(deps, part, owner, startedAt + leaseMs) };
  }

  /** The part as this owner last wrote it. */
  get part(): PartEntity {
    return this.#part;
  }

  get epoch(): number {
    return this.#part.epoch;
  }

  /** Throws LeaseLostError unless the lease is surely still ours for a few more seconds (local check, no I/O). */
  assertHeld(): void {
    if (this.#lost) throw this.#lost;
    if (this.deps.now() > this.#validUntil - SAFETY_MS) {
      this.#lost = new LeaseLostError(
        `the lease on ${this.describe()} ran out (not renewed since ${new Date(this.#validUntil).toISOString()})`,
        undefined,
        undefined,
      );
      throw this.#lost;
    }
  }

  /** Writes `patch` while still the owner (and extends the lease); throws LeaseLostError otherwise. */
  async update(patch: (current: PartEntity) => PartPatch, options: { release?: boolean } = {}): Promise<PartEntity> {
    if (this.#lost) throw this.#lost;
    const leaseMs = this.deps.settings.LEASE_SECONDS * 1000;
    let startedAt = 0;
    try {
      this.#part = await this.deps.storage.ledger.updatePart(this.#part.invoiceId, this.#part.partId, (current) => {
        startedAt = this.deps.now();
        if (current.leaseOwner !== this.owner || current.epoch !== this.#part.epoch) {
          throw new LeaseLostError(
            `lost the lease on ${this.describe()} to ${current.leaseOwner ?? 'nobody'} (epoch ${current.epoch})`,
            current.leaseUntil,
            current.leaseOwner,
          );
        }
        const nowIso = new Date(startedAt).toISOString();
        return {
          ...patch(current),
          ...(options.release
            ? { leaseOwner: undefined, leaseUntil: undefined }
            : { leaseUntil: new Date(startedAt + leaseMs).toISOString() }),
          updatedAt: nowIso,
        };
      });
    } catch (error) {
      if (error instanceof LeaseLostError) this.#lost = error;
      throw error;
    }
    this.#validUntil = options.release ? 0 : startedAt + leaseMs;
    return this.#part;
  }

  /** Writes `patch` and gives the part up. */
  async release(patch: PartPatch = {}): Promise<PartEntity> {
    this.stopRenewal();
    await this.#renewing;
    return this.update(() => patch, { release: true });
  }

  /** Renews the lease in the background (a third of its length apart) until released or stopped. */
  startRenewal(): void {
    if (this.#renewal) return;
    const every = Math.max(1000, (this.deps.settings.LEASE_SECONDS * 1000) / 3);
    this.#renewal = setInterval(() => {
      this.#renewing = this.update(() => ({})).catch((error: unknown) => {
        // A failed renewal is not yet a lost lease (the ledger may have blipped): assertHeld decides by the clock.
        if (!(error instanceof LeaseLostError)) {
          this.deps.log.warn('Lease renewal failed; will try again', {
            invoiceId: this.#part.invoiceId,
            partId: this.#part.partId,
            error: error instanceof Error ? error.message : String(error),
          });
        }
      });
    }, every);
    this.#renewal.unref();
  }

  stopRenewal(): void {
    // clearInterval(undefined) does nothing: no need to ask first.
    clearInterval(this.#renewal);
    this.#renewal = undefined;
  }

  private describe(): string {
    return `part ${this.#part.invoiceId}/${this.#part.partId}`;
  }
}
