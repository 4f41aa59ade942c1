// A throwaway self-signed certificate + key in one PEM file (as PARTNER_CLIENT_CERTIFICATE_PATH expects), via openssl.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function makeTestCertificate(): { dir: string; pemPath: string; certOnlyPath: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cert-'));
  const keyPath = path.join(dir, 'key.pem');
  const certOnlyPath = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=csp-sync-test',
      '-days',
      '2',
      '-keyout',
      keyPath,
      '-out',
      certOnlyPath,
    ],
    { stdio: 'ignore' },
  );
  const pemPath = path.join(dir, 'app.pem');
  writeFileSync(pemPath, readFileSync(keyPath, 'utf8') + readFileSync(certOnlyPath, 'utf8'));
  return { dir, pemPath, certOnlyPath };
}
