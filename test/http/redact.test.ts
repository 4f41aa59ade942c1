import { describe, expect, it } from 'vitest';
import { ApiError, parseErrorBody, redactText, redactUrl } from '../../src/http/index.js';

const jwt = 'eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0.c2lnbmF0dXJl';

describe('redactUrl', () => {
  it('drops the whole query of a signed link', () => {
    const url = 'https://acct.blob.core.windows.net/c/Invoice.pdf?sv=2021-08-06&se=2026-01-01&sp=r&sig=abc%2Bdef%3D';
    expect(redactUrl(url)).toBe('https://acct.blob.core.windows.net/c/Invoice.pdf?REDACTED');
  });

  it('keeps harmless parameters and redacts sensitive ones', () => {
    expect(redactUrl('https://h/t?client_secret=s3cr3t&grant_type=x&refresh_token=rt')).toBe(
      'https://h/t?client_secret=REDACTED&grant_type=x&refresh_token=REDACTED',
    );
    expect(redactUrl('/v1/invoices?size=2&offset=4')).toBe('/v1/invoices?size=2&offset=4');
  });
});

describe('redactText', () => {
  it('removes bearer tokens, JWTs, SAS signatures, sasToken, refresh tokens and client secrets', () => {
    const text = [
      `Authorization: Bearer ${jwt}`,
      `token ${jwt}`,
      'see https://x.blob.core.windows.net/d/f.json.gz?sv=1&sig=SIGVALUE&se=2 now',
      '{"rootDirectory":"https://x/y","sasToken":"sv=1&sig=SASSIG","refresh_token":"RTVALUE"}',
      'body client_secret=CSVALUE&client_id=abc',
      'sig=LOOSESIG',
    ].join('\n');
    const out = redactText(text);
    for (const secret of [jwt, 'SIGVALUE', 'SASSIG', 'RTVALUE', 'CSVALUE', 'LOOSESIG'])
      expect(out).not.toContain(secret);
    expect(out).toContain('client_id=abc');
    expect(out).toContain('https://x.blob.core.windows.net/d/f.json.gz?REDACTED');
  });
});

describe('ApiError', () => {
  it('never carries a signature or token in message, url or description', () => {
    const error = new ApiError({
      status: 403,
      description: `denied for https://a.blob.core.windows.net/s.pdf?se=1&sig=TOPSECRET with Bearer ${jwt}`,
      url: 'https://a.blob.core.windows.net/s.pdf?se=1&sig=TOPSECRET',
      retriable: false,
    });
    for (const text of [error.message, error.url ?? '', error.description]) {
      expect(text).not.toContain('TOPSECRET');
      expect(text).not.toContain(jwt);
    }
  });
});

describe('parseErrorBody', () => {
  it.each([
    ['{"code":3000,"description":"Partner not found","data":[],"source":"PartnerFD"}', '3000', 'Partner not found'],
    [
      '{"code":"InvalidInput","description":"Invoice Line Item type is not valid"}',
      'InvalidInput',
      'Invoice Line Item type is not valid',
    ],
    ['{"message":"The request is invalid."}', undefined, 'The request is invalid.'],
    [
      '{"statusCode":429,"message":"Rate limit is exceeded. Try again in 5 seconds."}',
      '429',
      'Rate limit is exceeded. Try again in 5 seconds.',
    ],
    ['{"error":{"code":"TooManyRequests","message":"Slow down"}}', 'TooManyRequests', 'Slow down'],
    [
      '\uFEFF<?xml version="1.0"?><Error><Code>AuthenticationFailed</Code><Message>Bad sig</Message></Error>',
      'AuthenticationFailed',
      'Bad sig',
    ],
    ['Service Unavailable', undefined, 'Service Unavailable'],
    ['', undefined, 'no error description in the response body'],
    ['{"code":1000}', '1000', 'no error description in the response body'],
  ])('%s', (body, code, description) => {
    expect(parseErrorBody(body, 404)).toEqual(code === undefined ? { description } : { code, description });
  });
});
