// The CLI's exit codes: one table, used by the commands, printed by `--help` and copied into the README.

export const EXIT = {
  /** run: every invoice complete; status: the ledger was printed; resync: queued; consent: token stored. */
  ok: 0,
  /** Could not do the job: a setting, storage unreachable, the ledger missing (status), an id refused (resync). */
  error: 1,
  /** run: some invoice failed, is unsettled or still in progress. */
  incomplete: 2,
  /** run: every invoice finished but at least one does not reconcile (state mismatch); none failed. */
  mismatch: 3,
} as const;

export const EXIT_CODES_HELP = [
  'Exit codes:',
  '  0  run: every invoice complete | status: the ledger was printed | resync: queued | consent: token stored',
  '  1  the command could not do its job: a setting is wrong or missing, storage is unreachable, the ledger does',
  '     not exist yet (status), Partner Center does not list the invoice (resync), a usage error',
  '  2  run: some invoice failed, is unsettled or is still in progress (see the table)',
  '  3  run: every invoice finished, none failed, but at least one is a reconciliation mismatch (✗)',
].join('\n');
