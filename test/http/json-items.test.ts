import { describe, expect, it } from 'vitest';
import { splitJsonItems } from '../../src/http/index.js';

describe('splitJsonItems', () => {
  it('returns each items element verbatim (no re-serialization) and the parsed envelope', () => {
    const a =
      '{"unitPrice":6.0,"mpnId":"4870137","big":12345678901234567890,"s":"a,]}[{\\"q\\"","nested":{"x":[1,{"y":2}]}}';
    const b = '{"mpnId":4391507,"quantity":1.50}';
    const text = `\uFEFF{"continuationToken":"t","items":[\r\n  ${a},\n${b}\n],"links":{"next":{"uri":"/x","headers":[{"key":"k","value":"v"}]}},"items2":[{"no":1}]}`;
    const { envelope, items } = splitJsonItems(text);
    expect(items).toEqual([a, b]);
    expect(envelope.continuationToken).toBe('t');
    expect((envelope.items as unknown[]).length).toBe(2);
  });

  it('removes line breaks between tokens so each item is one NDJSON line', () => {
    const { items } = splitJsonItems('{"items":[{\n"a": 1,\r\n"b": [\n2\n]\n}]}');
    expect(items).toEqual(['{"a": 1,"b": [2]}']);
    expect(JSON.parse(items[0] ?? '')).toEqual({ a: 1, b: [2] });
  });

  it('handles empty and missing items, scalars, and items not first in the envelope', () => {
    expect(splitJsonItems('{"totalCount":0,"items":[]}').items).toEqual([]);
    expect(splitJsonItems('{"totalCount":0}').items).toEqual([]);
    expect(splitJsonItems('{"links":{"items":[9]},"items":[1,"two",null,[3]]}').items).toEqual([
      '1',
      '"two"',
      'null',
      '[3]',
    ]);
  });

  it('rejects text that is not a JSON object', () => {
    expect(() => splitJsonItems('<html>')).toThrow();
    expect(() => splitJsonItems('[1,2]')).toThrow();
  });
});
