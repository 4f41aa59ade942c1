// The standalone simulator: its clock starts at the real current time (or where --start-time pins it), and the
// tokens it prints are valid now on both the simulator's clock and the real one, whatever today's date is. The
// banner carries the settings the app needs, Azurite's connection string included.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BlobServiceClient } from '@azure/storage-blob';
import { expect, test } from 'vitest';
import { parseStandaloneArgs, startStandalone } from '../simulator/standalone.js';

const claims = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

test('the clock starts at the real time; printed App+User tokens work by id now and for --token-hours', async () => {
  const running = await startStandalone(['--seed', '3', '--token-hours', '2']);
  try {
    const { sim, settings, banner } = running;
    expect(Math.abs(sim.clock.now() - Date.now())).toBeLessThan(5_000);
    expect(settings).toMatchObject({
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      PARTNER_CENTER_API_URL: sim.partnerCenterUrl,
      GRAPH_API_URL: sim.graphUrl,
      AUTH_MODE: 'static-token',
      ALLOW_INSECURE_LOOPBACK: 'true',
    });
    for (const [name, value] of Object.entries(settings)) expect(banner).toContain(`  ${name}=${value}\n`);
    const pc = settings.PARTNER_CENTER_ACCESS_TOKEN ?? '';
    const exp = Number(claims(pc).exp) * 1000;
    expect(exp).toBeGreaterThan(Date.now() + 2 * 3600_000 - 10_000);
    expect(exp).toBeLessThan(Date.now() + 2 * 3600_000 + 10_000);
    expect(claims(pc).scp).toBeTruthy();
    const byId = await fetch(`${sim.partnerCenterUrl}/v1/invoices/G000024130`, {
      headers: { authorization: `Bearer ${pc}` },
    });
    expect(byId.status).toBe(200);
    const graph = await fetch(`${sim.graphUrl}/v1.0/reports/partners/billing/usage/billed/export`, {
      method: 'POST',
      headers: { authorization: `Bearer ${settings.GRAPH_ACCESS_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ invoiceId: 'G016907411' }),
    });
    expect(graph.status).toBe(202);
    expect(banner).toContain('(real time)');
    expect(banner).toMatch(/npx azurite/);
  } finally {
    await running.stop();
  }
});

test('--start-time pins the clock; the printed tokens still hold on the real clock and on the simulator', async () => {
  for (const start of ['2021-03-01T00:00:00Z', '2099-01-01T00:00:00Z']) {
    const running = await startStandalone(['--start-time', start]);
    try {
      const { sim, settings } = running;
      expect(Math.abs(sim.clock.now() - Date.parse(start))).toBeLessThan(5_000);
      const exp = Number(claims(settings.PARTNER_CENTER_ACCESS_TOKEN ?? '').exp) * 1000;
      expect(exp).toBeGreaterThan(Math.max(Date.now(), sim.clock.now()) + 11 * 3600_000);
      const list = await fetch(`${sim.partnerCenterUrl}/v1/invoices`, {
        headers: { authorization: `Bearer ${settings.PARTNER_CENTER_ACCESS_TOKEN}` },
      });
      expect(list.status).toBe(200);
      expect(running.banner).toContain('pinned by --start-time');
    } finally {
      await running.stop();
    }
  }
});

test('--azurite starts Azurite and prints a connection string that works', async () => {
  const running = await startStandalone(['--azurite']);
  try {
    const connection = running.settings.AzureWebJobsStorage ?? '';
    expect(connection).toMatch(
      /^DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;.*BlobEndpoint=http:\/\/127\.0\.0\.1:\d+\//,
    );
    const blobs = BlobServiceClient.fromConnectionString(connection);
    await blobs.createContainer('standalone-check');
    const names: string[] = [];
    for await (const container of blobs.listContainers()) names.push(container.name);
    expect(names).toContain('standalone-check');
  } finally {
    await running.stop();
  }
}, 60_000);

test('flags map to options and are checked', () => {
  const { options, tokenHours, azurite } = parseStandaloneArgs([
    '--next-link-style',
    'absolute',
    '--billing-period-fields',
    'both',
    '--amendments',
    'both',
    '--single-use-seek-tokens',
    '--data-format',
    'compressedJSONLines',
    '--item-count',
    'exact',
    '--token-hours',
    '3',
  ]);
  expect(options).toMatchObject({
    nextLinkStyle: 'absolute',
    dataset: { billingPeriodFields: 'both', amendments: 'both' },
    seekTokens: { singleUse: true },
    v2: { dataFormat: 'compressedJSONLines', itemCount: 'exact' },
  });
  expect([tokenHours, azurite]).toEqual([3, false]);
  expect(() => parseStandaloneArgs(['--next-link-style', 'sideways'])).toThrow(/relative, relativeV1, absolute/);
  expect(() => parseStandaloneArgs(['--start-time', 'yesterday'])).toThrow(/ISO date/);
  expect(() => parseStandaloneArgs(['--token-hours', '0'])).toThrow(/at least 1/);
});

test('main.ts runs on its own, prints the banner and stops on SIGTERM', async () => {
  const main = fileURLToPath(new URL('../simulator/main.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', main, '--seed', '4'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 30_000;
    while (!out.includes('Press Ctrl-C to stop.') && Date.now() < deadline && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(out, err).toContain('Press Ctrl-C to stop.');
    const url = /PARTNER_CENTER_API_URL=(\S+)/.exec(out)?.[1] ?? '';
    const pcToken = /PARTNER_CENTER_ACCESS_TOKEN=(\S+)/.exec(out)?.[1] ?? '';
    const response = await fetch(`${url}/v1/invoices/G016907411`, { headers: { authorization: `Bearer ${pcToken}` } });
    expect(response.status).toBe(200);
  } finally {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
  }
  expect(await exited).toBe(0);
  expect(out).toMatch(/Stopped after \d+ requests\./);
}, 60_000);
