// The bench reports the CPU that Azurite and the source server use from /proc: a misread field would print a
// plausible wrong number in bench/results.md, so the reading is checked against this process's own account.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { cpuMsBetween, processCpuMs } from '../../bench/process-cpu.js';

describe.runIf(existsSync('/proc/self/stat'))('processCpuMs', () => {
  test('agrees with process.cpuUsage over a busy stretch', () => {
    const own = process.cpuUsage();
    const before = processCpuMs(process.pid);
    const until = Date.now() + 300;
    let spin = 0;
    while (Date.now() < until) spin++;
    const read = cpuMsBetween(before, processCpuMs(process.pid));
    const used = process.cpuUsage(own);
    const ownMs = (used.user + used.system) / 1000;
    expect(spin).toBeGreaterThan(0);
    expect(read).toBeDefined();
    // /proc counts in clock ticks (10 ms at 100 Hz): the two agree within a few ticks.
    expect(Math.abs((read as number) - ownMs)).toBeLessThan(50);
    expect(read as number).toBeGreaterThan(200);
  });

  test('reads a process whose name holds spaces and parentheses', async () => {
    // The command name is field 2 of /proc/<pid>/stat, in parentheses: the fields after it must still be found.
    // The child names itself, spins 400 ms of CPU, then says so and idles.
    const script =
      "process.title = 'a) b c d (e)'; const t = Date.now() + 400; while (Date.now() < t); " +
      "console.log('spun'); setTimeout(() => {}, 5000)";
    const child = spawn(process.execPath, ['-e', script]);
    try {
      await new Promise((resolve) => child.stdout.once('data', resolve));
      const ms = processCpuMs(child.pid);
      expect(ms).toBeDefined();
      // Its spin and its start, nothing like the other numeric fields of the line (times since boot, sizes).
      expect(ms as number).toBeGreaterThanOrEqual(350);
      expect(ms as number).toBeLessThan(3000);
    } finally {
      child.kill();
    }
  });

  test('reads nothing for a process that does not exist or no pid', () => {
    expect(processCpuMs(undefined)).toBeUndefined();
    expect(processCpuMs(2 ** 22 + 1)).toBeUndefined();
    expect(cpuMsBetween(undefined, 5)).toBeUndefined();
    expect(cpuMsBetween(5, undefined)).toBeUndefined();
    expect(cpuMsBetween(5, 7)).toBe(2);
  });
});
