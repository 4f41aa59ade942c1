// Graph unbilled exports (current and last month, by currency): the billed flow (202 + Location, operation,
// manifest, SAS gzip blobs), data that grows day by day on the simulator clock, the dataset helpers that predict it
// byte for byte, body validation in Graph's error shape, and the same faults as the billed exports.
import { gunzipSync } from 'node:zlib';
import { afterAll, expect, test } from 'vitest';
import { graphThrottle, type Simulator, type SimulatorOptions, startSimulator } from '../simulator/index.js';

const sims: Simulator[] = [];
afterAll(async () => {
  await Promise.all(sims.map((s) => s.stop()));
});
async function start(options: SimulatorOptions = {}): Promise<Simulator> {
  // The default clock start (2026-11-21T00:00:00Z): "today" is the 21st of November 2026.
  const started = await startSimulator({
    ...options,
    v2: { pollsBeforeDone: 0, manifestMode: 'inline', ...options.v2 },
  });
  sims.push(started);
  return started;
}

const DAY = 24 * 3600_000;
type Kind = 'usage' | 'reconciliation';
interface Manifest {
  rootDirectory: string;
  sasToken: string;
  eTag: string;
  blobCount: number;
  blobs: { name: string }[];
}
interface Operation {
  '@odata.type': string;
  status: string;
  error?: { code: string; message: string };
  resourceLocation?: Manifest;
}

const auth = (s: Simulator) => ({ authorization: `Bearer ${s.issueToken({ audience: 'graph' })}` });
const post = (s: Simulator, kind: Kind, body: unknown, action = 'export') =>
  fetch(`${s.graphUrl}/v1.0/reports/partners/billing/${kind}/unbilled/${action}`, {
    method: 'POST',
    headers: { ...auth(s), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
async function poll(s: Simulator, location: string): Promise<Operation> {
  const response = await fetch(location, { headers: auth(s) });
  expect(response.status).toBe(200);
  return (await response.json()) as Operation;
}
async function exportOf(s: Simulator, kind: Kind, currencyCode: string, billingPeriod: string) {
  const started = await post(s, kind, { currencyCode, billingPeriod, attributeSet: 'full' });
  expect(started.status).toBe(202);
  const location = started.headers.get('location') ?? '';
  return { location, operation: await poll(s, location) };
}
async function blobText(manifest: Manifest): Promise<string> {
  let text = '';
  for (const blob of manifest.blobs) {
    const response = await fetch(`${manifest.rootDirectory}/${blob.name}?${manifest.sasToken}`);
    expect(response.status).toBe(200);
    text += gunzipSync(Buffer.from(await response.arrayBuffer())).toString('utf8');
  }
  return text;
}
/** What the dataset says the export holds: every line and its newline. */
function expectedText(s: Simulator, kind: Kind, currency: string, period: 'current' | 'last', at: number): string {
  const view = s.dataset.unbilled(kind, currency, period, at);
  if (!view) throw new Error('no unbilled data');
  return Array.from({ length: view.rows }, (_, i) => `${view.row(i)}\n`).join('');
}

test('current usage: the billed flow, rows for every day of the month up to today, byte for byte', async () => {
  const s = await start({ v2: { rowsPerBlob: 40 } });
  const started = await post(s, 'usage', { currencyCode: 'USD', billingPeriod: 'current' });
  expect(started.status).toBe(202);
  expect(await started.text()).toBe('');
  const location = started.headers.get('location') ?? '';
  expect(location).toMatch(/\/v1\.0\/reports\/partners\/billing\/operations\/[0-9a-f-]{36}$/);
  const operation = await poll(s, location);
  expect(operation['@odata.type']).toBe('#microsoft.graph.partners.billing.exportSuccessOperation');
  const manifest = operation.resourceLocation as Manifest;
  expect(manifest.rootDirectory).toMatch(
    /\/unbilledusagefastpath\/v1\/PartnerTenantId=[0-9a-f-]+\/BillingMonth=202611\/BillingPeriod=current\/Currency=USD\/AsOf=20261121\/Fragment=full\/PartitionType=default$/,
  );
  const view = s.dataset.unbilled('usage', 'usd', 'current', s.clock.now());
  expect(view).toMatchObject({ month: '2026-11', days: 21, currency: 'USD' });
  expect(manifest.blobCount).toBe(Math.ceil((view?.rows ?? 0) / 40));
  expect(manifest.blobCount).toBeGreaterThan(1);

  const text = await blobText(manifest);
  expect(text).toBe(expectedText(s, 'usage', 'USD', 'current', s.clock.now()));
  const rows = text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(rows.length).toBe(view?.rows);
  expect(Object.keys(rows[0] ?? {}).every((k) => /^[A-Z]/.test(k))).toBe(true);
  const days = new Set(rows.map((r) => String(r.UsageDate).slice(0, 10)));
  expect([...days].sort()).toEqual(Array.from({ length: 21 }, (_, d) => `2026-11-${String(d + 1).padStart(2, '0')}`));
  expect(rows.every((r) => r.BillingCurrency === 'USD' && r.InvoiceNumber === '')).toBe(true);
  const cents = rows.reduce((sum, r) => sum + Math.round(Number(r.BillingPreTaxTotal) * 100), 0);
  expect(cents / 100).toBe(view?.total);
  // Customers come from the one customer table.
  const table = new Map(s.dataset.customers().map((c) => [c.id, c]));
  expect(rows.every((r) => table.get(String(r.CustomerId))?.name === r.CustomerName)).toBe(true);
});

test('current grows from day to day and only grows; a started export keeps its own day', async () => {
  const s = await start();
  const first = await exportOf(s, 'usage', 'EUR', 'current');
  const before = await blobText(first.operation.resourceLocation as Manifest);
  const at21 = s.clock.now();

  s.clock.advance(DAY);
  const next = await exportOf(s, 'usage', 'EUR', 'current');
  const after = await blobText(next.operation.resourceLocation as Manifest);
  expect(s.dataset.unbilled('usage', 'EUR', 'current', s.clock.now())?.days).toBe(22);
  expect(after).toBe(expectedText(s, 'usage', 'EUR', 'current', s.clock.now()));
  expect(after.length).toBeGreaterThan(before.length);
  expect(after.startsWith(before)).toBe(true);
  expect((next.operation.resourceLocation as Manifest).eTag).not.toBe(
    (first.operation.resourceLocation as Manifest).eTag,
  );

  // Polling the first operation again (a fresh SAS) still serves the data as of the 21st.
  const again = await poll(s, first.location);
  expect(await blobText(again.resourceLocation as Manifest)).toBe(expectedText(s, 'usage', 'EUR', 'current', at21));
});

test('last is the previous month, complete, and stops growing; at a month change current becomes last', async () => {
  const s = await start();
  const october = await blobText(
    (await exportOf(s, 'reconciliation', 'GBP', 'last')).operation.resourceLocation as Manifest,
  );
  const view = s.dataset.unbilled('reconciliation', 'GBP', 'last', s.clock.now());
  expect(view).toMatchObject({ month: '2026-10', days: 31 });
  expect(october).toBe(expectedText(s, 'reconciliation', 'GBP', 'last', s.clock.now()));
  const rows = october
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(rows.every((r) => r.Currency === 'GBP' && String(r.ChargeStartDate).startsWith('2026-10-'))).toBe(true);
  const cents = rows.reduce((sum, r) => sum + Math.round(Number(r.TotalForCustomer) * 100), 0);
  expect(cents / 100).toBe(view?.total);

  const novemberSoFar = expectedText(s, 'reconciliation', 'GBP', 'current', s.clock.now());
  s.clock.advance(5 * DAY);
  // Still November: last has not moved.
  expect(
    await blobText((await exportOf(s, 'reconciliation', 'GBP', 'last')).operation.resourceLocation as Manifest),
  ).toBe(october);
  s.clock.advance(10 * DAY); // 6 December
  const november = await blobText(
    (await exportOf(s, 'reconciliation', 'GBP', 'last')).operation.resourceLocation as Manifest,
  );
  expect(s.dataset.unbilled('reconciliation', 'GBP', 'last', s.clock.now())).toMatchObject({
    month: '2026-11',
    days: 30,
  });
  expect(november.startsWith(novemberSoFar)).toBe(true);
  expect(november.length).toBeGreaterThan(novemberSoFar.length);
  expect(s.dataset.unbilled('reconciliation', 'GBP', 'current', s.clock.now())).toMatchObject({
    month: '2026-12',
    days: 6,
  });
});

test('the body is validated in Graph error shape; billingPeriod is current or last only', async () => {
  const s = await start();
  for (const body of [
    { currencyCode: 'USD', billingPeriod: 'previous' },
    { currencyCode: 'USD', billingPeriod: 'Current' },
    { currencyCode: 'USD' },
    { billingPeriod: 'current' },
    { currencyCode: '', billingPeriod: 'current' },
    { currencyCode: 840, billingPeriod: 'current' },
    { currencyCode: 'USD', billingPeriod: 'current', attributeSet: 'everything' },
  ]) {
    const response = await post(s, 'usage', body);
    expect(response.status, JSON.stringify(body)).toBe(400);
    const error = ((await response.json()) as { error: { code: string; message: string; innerError: object } }).error;
    expect(error.code).toBe('BadRequest');
    expect(error.message).not.toBe('');
    expect(error.innerError).toHaveProperty('request-id');
  }
  const action = await post(
    s,
    'reconciliation',
    { currencyCode: 'CHF', billingPeriod: 'last' },
    'microsoft.graph.partners.billing.export',
  );
  expect(action.status).toBe(202);
});

test('a currency without unbilled data fails with code 5000; unbilled.currencies chooses which have data', async () => {
  const s = await start({ dataset: { unbilled: { currencies: ['JPY'], rowsPerDay: 3 } } });
  for (const currency of ['USD', 'US Dollar']) {
    const other = await exportOf(s, 'usage', currency, 'current');
    expect(other.operation['@odata.type']).toBe('#microsoft.graph.partners.billing.failedOperation');
    expect(other.operation.error?.code).toBe('5000');
    expect(other.operation.error?.message).toContain(currency.toUpperCase());
  }
  const jpy = await exportOf(s, 'usage', 'JPY', 'current');
  expect(jpy.operation.status).not.toBe('failed');
  const view = s.dataset.unbilled('usage', 'JPY', 'current', s.clock.now());
  expect(view?.perDay.every((n) => n >= 2 && n <= 4)).toBe(true);
  expect(await blobText(jpy.operation.resourceLocation as Manifest)).toBe(
    expectedText(s, 'usage', 'JPY', 'current', s.clock.now()),
  );
});

test('faults: 429 with Retry-After, failed 5000 then success, SAS expiry, reset mid-blob', async () => {
  const s = await start({ v2: { sasTtlMs: 10 * 60_000 } });
  s.faults.add(graphThrottle(4, { path: '/unbilled/' }));
  const throttled = await post(s, 'usage', { currencyCode: 'USD', billingPeriod: 'current' });
  expect(throttled.status).toBe(429);
  expect(throttled.headers.get('retry-after')).toBe('4');

  s.faults.add({ kind: 'v2NoData', polls: 1 });
  const started = await post(s, 'usage', { currencyCode: 'USD', billingPeriod: 'current' });
  const location = started.headers.get('location') ?? '';
  expect((await poll(s, location)).error?.code).toBe('5000');
  const manifest = (await poll(s, location)).resourceLocation as Manifest;
  const url = `${manifest.rootDirectory}/${manifest.blobs[0]?.name}?${manifest.sasToken}`;

  s.faults.add({ host: 'blob', kind: 'resetMidBody' });
  const cut = await fetch(url);
  expect(cut.status).toBe(200);
  await expect(cut.arrayBuffer()).rejects.toThrow();
  expect((await fetch(url)).status).toBe(200);

  s.clock.advance(11 * 60_000);
  const expired = await fetch(url);
  expect(expired.status).toBe(403);
  expect(await expired.text()).toContain('<Code>AuthenticationFailed</Code>');
});

test('the same seed gives the same unbilled rows; another seed different ones', async () => {
  const a = await start({ seed: 21 });
  const b = await start({ seed: 21 });
  const c = await start({ seed: 22 });
  const at = a.clock.now();
  const text = (s: Simulator) => expectedText(s, 'usage', 'USD', 'current', at);
  expect(text(b)).toBe(text(a));
  expect(text(c)).not.toBe(text(a));
});
