// Runs the simulator on its own for local demos and manual poking: `tsx test/simulator/main.ts --port 7071`
// prints the four URLs and serves until Ctrl-C.
import { parseArgs } from 'node:util';
import { startSimulator } from './index.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    seed: { type: 'string' },
    'rows-per-part': { type: 'string' },
    'latency-ms': { type: 'string' },
    'pdf-link-mode': { type: 'string' },
    'manifest-mode': { type: 'string' },
    'no-auth': { type: 'boolean' },
    'app-only-ok': { type: 'boolean' },
    bom: { type: 'boolean' },
    'malformed-next-links': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  process.stdout.write(
    [
      'Usage: tsx test/simulator/main.ts [options]',
      '  --port N                 first port (Partner Center N, Graph N+1, blob N+2, token N+3); default: free ports',
      '  --seed N                 dataset seed (default 1)',
      '  --rows-per-part N        rows of generated parts (default 25)',
      '  --latency-ms N           added to every Partner Center / Graph response',
      '  --pdf-link-mode M        signed (default) | relative',
      '  --manifest-mode M        link (default) | inline | both',
      '  --no-auth                accept requests without a bearer token',
      '  --app-only-ok            let app-only tokens fetch invoices by id, statements and receipts',
      '  --bom                    prefix Partner Center JSON with a UTF-8 BOM',
      '  --malformed-next-links   emit the docs-style malformed next links',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const int = (value: string | undefined) => (value === undefined ? undefined : Number.parseInt(value, 10));
const pdfLinkMode = values['pdf-link-mode'];
const manifestMode = values['manifest-mode'];
if (pdfLinkMode !== undefined && pdfLinkMode !== 'signed' && pdfLinkMode !== 'relative') {
  throw new Error(`--pdf-link-mode must be signed or relative, not ${pdfLinkMode}`);
}
if (manifestMode !== undefined && manifestMode !== 'link' && manifestMode !== 'inline' && manifestMode !== 'both') {
  throw new Error(`--manifest-mode must be link, inline or both, not ${manifestMode}`);
}

const sim = await startSimulator({
  port: int(values.port),
  seed: int(values.seed),
  dataset: { rowsPerPart: int(values['rows-per-part']) },
  latencyMs: int(values['latency-ms']),
  pdfLinkMode,
  v2: { manifestMode },
  requireAuth: !values['no-auth'],
  enforceAppUser: !values['app-only-ok'],
  bom: values.bom ?? false,
  malformedNextLinks: values['malformed-next-links'] ?? false,
});

process.stdout.write(
  [
    'Partner Center + Graph simulator running:',
    `  PARTNER_CENTER_API_URL=${sim.partnerCenterUrl}`,
    `  GRAPH_API_URL=${sim.graphUrl}`,
    `  blob host:       ${sim.blobUrl}`,
    `  token endpoint:  ${sim.authorityUrl}/{tenant}/oauth2/v2.0/token (client_credentials with any secret)`,
    `  invoices:        ${sim.dataset
      .invoices()
      .map((s) => s.id)
      .join(', ')}`,
    'Press Ctrl-C to stop.',
    '',
  ].join('\n'),
);

const shutdown = () => {
  const served = sim.requests.length;
  void sim.stop().then(() => {
    process.stdout.write(`\nStopped after ${served} requests.\n`);
    process.exit(0);
  });
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
