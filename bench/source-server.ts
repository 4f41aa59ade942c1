// The source of the throughput figures, in a process of its own: the simulator with `replay` (every line-item page
// and export blob rendered once, then served from memory over real HTTP), so neither its rendering nor its CPU
// counts against the exporter, which runs in yet another process. `node source-server.mjs <config.json>`: prints
// one JSON line (the app settings that point at it, and a Partner Center token for raw fetches), then serves until
// its stdin closes (`latency <ms>` lines on stdin change its latency meanwhile).
import { readFile } from 'node:fs/promises';
import { type SimulatorOptions, startSimulator } from '../test/simulator/index.js';
import type { Azurite } from '../test/support/azurite.js';
import { simulatorEnvironment } from '../test/support/sim-env.js';

export interface SourceConfig {
  options: SimulatorOptions;
  connectionString: string;
  settings: Record<string, string>;
}

export interface SourceReady {
  settings: Record<string, string>;
  partnerCenterUrl: string;
  token: string;
  /** This process, so the bench can read the CPU time the source used. */
  pid: number;
}

const [configPath] = process.argv.slice(2);
if (!configPath) throw new Error('usage: source-server <config.json>');
const config = JSON.parse(await readFile(configPath, 'utf8')) as SourceConfig;
const sim = await startSimulator(config.options);
const env = await simulatorEnvironment(sim, { connectionString: config.connectionString } as Azurite, config.settings);
const ready: SourceReady = {
  settings: env.settings,
  partnerCenterUrl: sim.partnerCenterUrl,
  token: sim.issueToken({ audience: 'partnercenter', ttlSeconds: 3600 }),
  pid: process.pid,
};
process.stdout.write(`${JSON.stringify(ready)}\n`);
// `latency <ms>` on stdin sets the latency of every later Partner Center and Graph response (answered `latency <ms>`):
// the pages are rendered once at no latency, then the measured export reads them at the latency it is timed against.
let input = '';
process.stdin.on('data', (chunk: Buffer) => {
  input += chunk.toString('utf8');
  for (let newline = input.indexOf('\n'); newline >= 0; newline = input.indexOf('\n')) {
    const command = /^latency (\d+)$/.exec(input.slice(0, newline).trim());
    input = input.slice(newline + 1);
    if (!command?.[1]) continue;
    sim.setLatency(Number(command[1]));
    process.stdout.write(`latency ${command[1]}\n`);
  }
});
process.stdin.resume();
process.stdin.on('end', () => {
  sim.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
