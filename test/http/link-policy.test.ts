// The one link policy: which absolute links the app follows. Every branch of the rule, on both sides.
import { describe, expect, test } from 'vitest';
import { BLOB_HOST_PATTERN, createLinkPolicy, linkPolicy } from '../../src/http/link-policy.js';

const policy = createLinkPolicy({
  hostPatterns: [' *.Blob.Core.Windows.NET ', 'files.example.com', '', '  '],
  origins: ['https://pc.example.org:8443/some/path'],
});
const allowed = (url: string) => policy(new URL(url));

describe('createLinkPolicy', () => {
  test.each([
    ['https://acct.blob.core.windows.net/c/b.pdf?sig=x', true],
    ['https://ACCT.BLOB.core.windows.net/c/b.pdf', true],
    ['https://a.b.blob.core.windows.net/c', true],
    // The bare suffix and an empty label are not a host under the pattern.
    ['https://blob.core.windows.net/c', false],
    ['https://.blob.core.windows.net/c', false],
    ['https://acct.blob.core.windows.net.evil.com/c', false],
    ['https://files.example.com/x', true],
    ['https://x.files.example.com/x', false],
    ['https://afiles.example.com/x', false],
    // A configured origin is allowed whatever its host, on its exact scheme, host and port only.
    ['https://pc.example.org:8443/v1/invoices', true],
    ['https://pc.example.org/v1/invoices', false],
    ['https://pc.example.org:8444/v1/invoices', false],
  ])('%s → %s', (url, expected) => {
    expect(allowed(url)).toBe(expected);
  });

  test('https only: any other scheme to an allowed host is refused', () => {
    for (const url of [
      'http://acct.blob.core.windows.net/c',
      'ftp://acct.blob.core.windows.net/c',
      'wss://acct.blob.core.windows.net/c',
      'http://pc.example.org:8443/v1/invoices',
    ]) {
      expect(allowed(url), url).toBe(false);
    }
  });

  test('credentials in the URL are refused, a user name or a password alone too', () => {
    expect(allowed('https://user:pw@acct.blob.core.windows.net/c')).toBe(false);
    expect(allowed('https://user@acct.blob.core.windows.net/c')).toBe(false);
    expect(allowed('https://:pw@acct.blob.core.windows.net/c')).toBe(false);
    expect(allowed('https://user@pc.example.org:8443/v1')).toBe(false);
  });

  test('empty patterns allow nothing', () => {
    const none = createLinkPolicy({ hostPatterns: ['', ' '] });
    expect(none(new URL('https://acct.blob.core.windows.net/c'))).toBe(false);
    expect(none(new URL('https://pc.example.org:8443/v1'))).toBe(false);
  });

  test('plain http only to loopback, only when allowed, and never with credentials', () => {
    const local = createLinkPolicy({ hostPatterns: [], allowInsecureLoopback: true });
    for (const url of ['http://127.0.0.1:1234/x', 'http://localhost:1/x', 'http://[::1]:2/x']) {
      expect(local(new URL(url)), url).toBe(true);
      expect(policy(new URL(url)), url).toBe(false);
    }
    expect(local(new URL('http://10.0.0.1/x'))).toBe(false);
    expect(local(new URL('http://127.0.0.2/x'))).toBe(false);
    expect(local(new URL('http://u:p@127.0.0.1:1234/x'))).toBe(false);
    // Loopback over https is not special: it needs a pattern or an origin like any host.
    expect(local(new URL('https://127.0.0.1:1234/x'))).toBe(false);
    const truthy = createLinkPolicy({ hostPatterns: [], allowInsecureLoopback: 'yes' as unknown as boolean });
    expect(truthy(new URL('http://127.0.0.1:1234/x'))).toBe(false);
  });
});

describe('linkPolicy (the settings)', () => {
  const settings = {
    ALLOWED_LINK_HOSTS: `${BLOB_HOST_PATTERN},downloads.example.net`,
    ALLOW_INSECURE_LOOPBACK: false,
    PARTNER_CENTER_API_URL: 'https://pc.example.org',
    GRAPH_API_URL: 'https://graph.example.org:444',
  };
  test('ALLOWED_LINK_HOSTS is a comma list, and both API origins are allowed', () => {
    const allow = linkPolicy(settings);
    expect(allow(new URL('https://x.blob.core.windows.net/c'))).toBe(true);
    expect(allow(new URL('https://downloads.example.net/c'))).toBe(true);
    expect(allow(new URL('https://pc.example.org/v1/invoices'))).toBe(true);
    expect(allow(new URL('https://graph.example.org:444/v1.0/x'))).toBe(true);
    expect(allow(new URL('https://graph.example.org/v1.0/x'))).toBe(false);
    expect(allow(new URL('http://127.0.0.1/x'))).toBe(false);
    expect(linkPolicy({ ...settings, ALLOW_INSECURE_LOOPBACK: true })(new URL('http://127.0.0.1/x'))).toBe(true);
  });
  test('the blob pattern is the Azure Blob Storage suffix', () => {
    expect(BLOB_HOST_PATTERN).toBe('*.blob.core.windows.net');
  });
});
