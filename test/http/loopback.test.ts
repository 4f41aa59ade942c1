// Plain http is allowed to the local simulator only: the rule every client asks before sending a token over http.
import { describe, expect, test } from 'vitest';
import { isLoopbackHttp } from '../../src/http/loopback.js';

describe('isLoopbackHttp', () => {
  test.each(['http://127.0.0.1:7071/v1', 'http://localhost/x', 'http://LOCALHOST:1/', 'http://[::1]:8080/x'])(
    '%s is loopback http',
    (url) => expect(isLoopbackHttp(url)).toBe(true),
  );

  test.each([
    'https://127.0.0.1/x',
    'http://127.0.0.2/x',
    'http://localhost.example.test/x',
    'http://api.partnercenter.microsoft.com/v1',
    'ftp://localhost/x',
    // Not a URL at all: refused, never taken for loopback.
    'not a url',
    '',
    'http://[::1/x',
  ])('%j is not', (url) => expect(isLoopbackHttp(url)).toBe(false));
});
