// Seek continuation tokens (ref §5.3): opaque, carrying `,` `/` `=` as real ones do, signed so a foreign or edited
// token is refused, and remembered so tests can see how often each one was handed out and sent. By default a token
// names its position only (the same page gives the same token again) and may be sent any number of times; under
// `seekTokens.singleUse` every issue is a new token accepted once (the reference calls them "stateful and server-side").

/** A continuation token the simulator issued, and how often a request carried it. */
export interface IssuedSeekToken {
  token: string;
  invoiceId: string;
  /** `onetime|billing` or `onetime|usage`. */
  part: string;
  /** Row index the token resumes at. */
  from: number;
  /** Simulator clock when it was first issued. */
  issuedAt: number;
  /** Times a page handed it out (always 1 under singleUse: every issue is a new token). */
  issues: number;
  /** Requests that carried it (accepted or not). */
  sends: number;
}

/** A request that carried a token more often than pages handed it out (a resend of an already used token). */
export interface SeekTokenReuse {
  token: string;
  invoiceId: string;
  from: number;
  /** Simulator clock of the repeated request. */
  at: number;
  /** Whether it was served anyway (`singleUse: false`) or refused with 400. */
  accepted: boolean;
}

export interface SeekTokenLog {
  readonly issued: readonly IssuedSeekToken[];
  readonly reuses: readonly SeekTokenReuse[];
}

const PREFIX = 'd19617b8-fbe5-4684-a5d8-0230972fb0cf,';
const TOKEN = /^d19617b8-fbe5-4684-a5d8-0230972fb0cf,([A-Za-z0-9+/=]+)_a4ayc\/80\/([A-Za-z0-9+/=]+),0d81c700$/;

export type SeekCheck = { ok: true; from: number } | { ok: false; reason: 'invalid' | 'reused' };

export class SeekTokens implements SeekTokenLog {
  readonly issued: IssuedSeekToken[] = [];
  readonly reuses: SeekTokenReuse[] = [];
  readonly #byToken = new Map<string, IssuedSeekToken>();

  constructor(
    private readonly sign: (text: string) => string,
    private readonly singleUse: () => boolean,
  ) {}

  issue(invoiceId: string, part: string, from: number, now: number): string {
    // Single-use tokens carry a serial so that each issue is distinct; reusable ones name the position only.
    const serial = this.singleUse() ? String(this.issued.length) : '';
    const payload = Buffer.from(serial ? `${from}.${serial}` : String(from)).toString('base64');
    const mac = this.sign(`${invoiceId}|${part}|${from}|${serial}`);
    const token = `${PREFIX}${payload}_a4ayc/80/${mac},0d81c700`;
    const known = this.#byToken.get(token);
    if (known) {
      known.issues++;
      return token;
    }
    const entry = { token, invoiceId, part, from, issuedAt: now, issues: 1, sends: 0 };
    this.issued.push(entry);
    this.#byToken.set(token, entry);
    return token;
  }

  /** Checks a token sent for (invoice, part): it must be ours, for this part, and (singleUse) not sent before. */
  redeem(token: string | undefined, invoiceId: string, part: string, now: number): SeekCheck {
    const match = TOKEN.exec(token ?? '');
    const entry = token === undefined ? undefined : this.#byToken.get(token);
    if (!match || !entry) return { ok: false, reason: 'invalid' };
    const [fromText, serialText = ''] = Buffer.from(match[1] ?? '', 'base64')
      .toString('utf8')
      .split('.');
    const valid =
      entry.invoiceId === invoiceId &&
      entry.part === part &&
      String(entry.from) === fromText &&
      this.sign(`${invoiceId}|${part}|${entry.from}|${serialText}`) === match[2];
    if (!valid) return { ok: false, reason: 'invalid' };
    entry.sends++;
    if (entry.sends > entry.issues) {
      const accepted = !this.singleUse();
      this.reuses.push({ token: entry.token, invoiceId, from: entry.from, at: now, accepted });
      if (!accepted) return { ok: false, reason: 'reused' };
    }
    return { ok: true, from: entry.from };
  }
}
