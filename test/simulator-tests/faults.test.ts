// Fault rules against real HTTP: status faults with each documented body shape, resets before and during a
// body, delays, matching by host/method/path, `times`, order, and clearing.
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import { apiFault, graphThrottle, type Simulator, startSimulator, throttle } from '../simulator/index.js';

let sim: Simulator;
let token: string;
beforeAll(async () => {
  sim = await startSimulator();
  token = sim.issueToken({ audience: 'partnercenter', appUser: true });
});
afterAll(async () => {
  await sim?.stop();
});
beforeEach(() => {
  sim.faults.clear();
});

const list = (signal?: AbortSignal) =>
  fetch(`${sim.partnerCenterUrl}/v1/invoices`, { headers: { authorization: `Bearer ${token}` }, signal });

test('throttle() answers the documented 429 once, with or without Retry-After', async () => {
  sim.faults.add(throttle(7));
  const first = await list();
  expect(first.status).toBe(429);
  expect(first.headers.get('retry-after')).toBe('7');
  expect(await first.json()).toEqual({ statusCode: 429, message: 'Rate limit is exceeded. Try again in 7 seconds.' });
  expect((await list()).status).toBe(200);

  sim.faults.add(throttle(undefined));
  const bare = await list();
  expect(bare.status).toBe(429);
  expect(bare.headers.get('retry-after')).toBeNull();
});

test('times, order and path matching', async () => {
  sim.faults.add({ path: '/lineitems', kind: 'status', status: 503 });
  sim.faults.add({ path: /^\/v1\/invoices$/, times: 2, ...apiFault(500, 'InternalError') });
  sim.faults.add({ method: 'GET', kind: 'status', status: 502, body: '<html>Bad Gateway</html>' });
  const a = await list();
  expect(a.status).toBe(500);
  expect(await a.json()).toMatchObject({ code: 'InternalError', source: 'PartnerFD' });
  expect((await list()).status).toBe(500);
  const c = await list();
  expect(c.status).toBe(502);
  expect(await c.text()).toBe('<html>Bad Gateway</html>');
  expect((await list()).status).toBe(200);
  expect(sim.faults.pending.length).toBe(1);
  sim.faults.clear();
  expect(sim.faults.pending.length).toBe(0);
});

test('a numeric-code ApiFault and an empty-body 404', async () => {
  sim.faults.add(apiFault(503));
  const busy = await list();
  expect(busy.status).toBe(503);
  expect(((await busy.json()) as { code: unknown }).code).toBe(503);
  sim.faults.add({ kind: 'status', status: 404 });
  const empty = await list();
  expect(empty.status).toBe(404);
  expect(empty.headers.get('content-length')).toBe('0');
  expect(await empty.text()).toBe('');
});

test('reset drops the connection before any response; the request is recorded with status 0', async () => {
  sim.faults.add({ host: 'partnercenter', kind: 'reset' });
  const before = sim.requests.length;
  await expect(list()).rejects.toThrow();
  expect(sim.requests[before]?.status).toBe(0);
  expect((await list()).status).toBe(200);
});

test('resetMidBody sends headers and part of the body, then drops the connection', async () => {
  sim.faults.add({ kind: 'resetMidBody', path: '/lineitems' });
  const response = await fetch(
    `${sim.partnerCenterUrl}/v1/invoices/D02005YFHI/lineitems/Office/BillingLineItems?size=20`,
    { headers: { authorization: `Bearer ${token}` } },
  );
  expect(response.status).toBe(200);
  await expect(response.text()).rejects.toThrow();
});

test('delay holds the response (a client timeout fires), then answers normally', async () => {
  sim.faults.add({ kind: 'delay', ms: 3_000 });
  await expect(list(AbortSignal.timeout(200))).rejects.toThrow();
  expect((await list()).status).toBe(200);
});

test('host filter: a graph 429 does not touch Partner Center', async () => {
  sim.faults.add(graphThrottle(3));
  expect((await list()).status).toBe(200);
  const response = await fetch(`${sim.graphUrl}/v1.0/reports/partners/billing/operations/x`, {
    headers: { authorization: `Bearer ${sim.issueToken({ audience: 'graph' })}` },
  });
  expect(response.status).toBe(429);
  expect(response.headers.get('retry-after')).toBe('3');
  expect(((await response.json()) as { error: { code: string } }).error.code).toBe('TooManyRequests');
});

test('faults apply to the blob and token hosts too', async () => {
  sim.faults.add({ host: 'token', kind: 'status', status: 503 });
  const tokenResponse = await fetch(`${sim.authorityUrl}/common/oauth2/v2.0/token`, { method: 'POST', body: '' });
  expect(tokenResponse.status).toBe(503);
  sim.faults.add({ host: 'blob', kind: 'status', status: 500 });
  expect((await fetch(`${sim.blobUrl}/statements/G000024130.pdf`)).status).toBe(500);
});

test('rateLimit: over budget in the window gives the documented 429s; the window slides on the clock', async () => {
  const limited = await startSimulator({ rateLimit: { limit: 2, windowMs: 60_000 } });
  try {
    const pcToken = limited.issueToken({ audience: 'partnercenter' });
    const call = () =>
      fetch(`${limited.partnerCenterUrl}/v1/invoices`, { headers: { authorization: `Bearer ${pcToken}` } });
    expect((await call()).status).toBe(200);
    expect((await call()).status).toBe(200);
    const throttled = await call();
    expect(throttled.status).toBe(429);
    const seconds = Number(throttled.headers.get('retry-after'));
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThanOrEqual(60);
    expect(await throttled.json()).toEqual({
      statusCode: 429,
      message: `Rate limit is exceeded. Try again in ${seconds} seconds.`,
    });
    // Graph has its own budget.
    const graph = await fetch(`${limited.graphUrl}/v1.0/reports/partners/billing/operations/none`, {
      headers: { authorization: `Bearer ${limited.issueToken({ audience: 'graph' })}` },
    });
    expect(graph.status).toBe(404);
    limited.clock.advance(seconds * 1000);
    expect((await call()).status).toBe(200);
  } finally {
    await limited.stop();
  }
});
