import { describe, expect, it } from 'vitest';
import { ndjsonItems, rawTopLevelValue, splitJsonArray, splitJsonItems } from '../../src/http/json-items.js';

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

describe('splitJsonItems on awkward text', () => {
  it('respects escapes, brackets inside strings and nested items keys', () => {
    const items = [
      '{"a":"quote \\" inside","b":"ends with backslash \\\\","c":"[{,}]"}',
      '{"items":[1,2,{"items":[]}],"d":"\\\\\\"x"}',
      '"a bare string with , and ]"',
      '-1.2500000000000000001e+10',
      '[{"x":"}"},null,true]',
    ];
    const page = `{"meta":{"items":["decoy"]},"\\u0069tems" : [ ${items.join(' ,\n ')} ],"links":{}}`;
    const { items: split, envelope } = splitJsonItems(page);
    expect(split).toEqual(items);
    expect(split.map((raw) => JSON.parse(raw))).toEqual(envelope.items);
  });

  it('matches JSON.parse element for element on generated pages', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const alphabet = ['a', '"', '\\', '{', '}', '[', ']', ',', ':', ' ', 'é', '☃', '\n', '\t'];
    const randomString = () =>
      Array.from({ length: Math.floor(random() * 12) }, () => alphabet[Math.floor(random() * alphabet.length)]).join(
        '',
      );
    for (let round = 0; round < 50; round++) {
      const values = Array.from({ length: Math.floor(random() * 20) }, () => ({
        s: randomString(),
        n: random() * 1e6,
        nested: { list: [randomString(), { k: randomString() }] },
      }));
      const text = JSON.stringify({
        totalCount: values.length,
        items: values,
        links: { self: { uri: randomString() } },
      });
      const { items } = splitJsonItems(text);
      expect(items.map((raw) => JSON.parse(raw))).toEqual(values);
      for (const raw of items) expect(text.includes(raw)).toBe(true);
    }
  });
});

describe('rawTopLevelValue', () => {
  const text =
    '\uFEFF{ "id" : "G1", "totalCharges": 12345678901234567.89 ,"paid":-0.10e+2,"nested":{"totalCharges":1},' +
    '"list":[1, {"a":"]"}],"s":"x\\"y","t":true,"n":null,"big":12345678901234567890}';

  it('returns the exact text of a top-level value, numbers with every digit', () => {
    expect(rawTopLevelValue(text, 'totalCharges')).toBe('12345678901234567.89');
    expect(rawTopLevelValue(text, 'paid')).toBe('-0.10e+2');
    expect(rawTopLevelValue(text, 'big')).toBe('12345678901234567890');
    expect(rawTopLevelValue(text, 'id')).toBe('"G1"');
    expect(rawTopLevelValue(text, 'nested')).toBe('{"totalCharges":1}');
    expect(rawTopLevelValue(text, 'list')).toBe('[1, {"a":"]"}]');
    expect(rawTopLevelValue(text, 's')).toBe('"x\\"y"');
    expect(rawTopLevelValue(text, 't')).toBe('true');
    expect(rawTopLevelValue(text, 'n')).toBe('null');
  });

  it('ignores nested keys of the same name and says undefined for an absent key', () => {
    expect(rawTopLevelValue('{"a":{"totalCharges":1}}', 'totalCharges')).toBeUndefined();
    expect(rawTopLevelValue('{"a":1}', 'b')).toBeUndefined();
    expect(rawTopLevelValue('{"\\u0074otal":7}', 'total')).toBe('7');
    expect(rawTopLevelValue('{"last":3.0}', 'last')).toBe('3.0');
  });

  it('agrees with JSON.parse on every top-level value of generated objects', () => {
    const value = {
      a: 'x,}]"\\',
      b: [1, { c: '}' }],
      d: { e: [null, true] },
      f: -1.5e-7,
      g: '',
    };
    const text = JSON.stringify(value, null, 2);
    for (const [key, expected] of Object.entries(value)) {
      expect(JSON.parse(rawTopLevelValue(text, key) ?? 'undefined')).toEqual(expected);
    }
  });
});

describe('splitJsonArray', () => {
  it('returns each element verbatim, line breaks between tokens removed', () => {
    expect(splitJsonArray('[ {"a":1.50},\r\n null , "x,]" ,[2] ]')).toEqual(['{"a":1.50}', 'null', '"x,]"', '[2]']);
    expect(splitJsonArray('[]')).toEqual([]);
    expect(() => splitJsonArray('{"a":1}')).toThrow(/expected a JSON array/);
  });
});

describe('ndjsonItems (a page as bytes)', () => {
  const lines = (text: string) => {
    const { items } = splitJsonItems(text);
    return items.length === 0 ? '' : `${items.join('\n')}\n`;
  };

  it('gives the bytes splitJsonItems gives as text, and the envelope without its elements', () => {
    const pages = [
      '\uFEFF{"continuationToken":"t","items":[\r\n  {"s":"a,]}[{\\"q\\"","n":{"x":[1,{"y":2}]}},\n{"m":1.50}\n],"links":{"next":{"uri":"/x","headers":[{"key":"k","value":"v"}]}}}',
      '{"items":[{\n"a": 1,\r\n"b": [\n2\n]\n}]}',
      '{"totalCount":0,"items":[]}',
      '{"totalCount":0}',
      '{"links":{"items":[9]},"items":[1,"two",null,[3],{},[]]}',
      '{"meta":{"items":["decoy"]},"\\u0069tems" : [ {"d":"\\\\\\"x"} , "é☃ \\ud83d\\ude00" ,\n -1.25e+10 ],"links":{}}',
      '  {"items":[true,false],"z":{"a":[{"b":[]}]}}  ',
    ];
    for (const page of pages) {
      const { envelope, ndjson, rows } = ndjsonItems(Buffer.from(page, 'utf8'));
      expect(ndjson.toString('utf8')).toBe(lines(page));
      expect(rows).toBe(splitJsonItems(page).items.length);
      const expected = splitJsonItems(page).envelope;
      expect(envelope).toEqual(Array.isArray(expected.items) ? { ...expected, items: [] } : expected);
    }
  });

  it('matches splitJsonItems on generated pages with every awkward character', () => {
    let seed = 11;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const alphabet = [
      'a',
      '"',
      '\\',
      '{',
      '}',
      '[',
      ']',
      ',',
      ':',
      ' ',
      'é',
      '☃',
      '😀',
      '\n',
      '\t',
      '\u0001',
      '\u2028',
    ];
    const randomString = () =>
      Array.from({ length: Math.floor(random() * 12) }, () => alphabet[Math.floor(random() * alphabet.length)]).join(
        '',
      );
    for (let round = 0; round < 50; round++) {
      const values = Array.from({ length: Math.floor(random() * 20) }, () => ({
        s: randomString(),
        n: random() * 1e6 - 5e5,
        nested: { list: [randomString(), { k: randomString() }, null, true] },
      }));
      const text = JSON.stringify(
        { totalCount: values.length, items: values, links: { self: { uri: randomString() } } },
        null,
        round % 3,
      );
      const { ndjson, rows } = ndjsonItems(Buffer.from(text, 'utf8'));
      expect(rows).toBe(values.length);
      expect(ndjson.toString('utf8')).toBe(lines(text));
      const parsed = ndjson
        .toString('utf8')
        .split('\n')
        .slice(0, -1)
        .map((line) => JSON.parse(line));
      expect(parsed).toEqual(values);
    }
  });

  it('copies the bytes as sent, even where a decoder would change them', () => {
    // A lone surrogate escape stays an escape; bytes are never decoded and re-encoded.
    const page = Buffer.from('{"items":[{"a":"\\udc00","b":"\u00e9"}]}', 'utf8');
    expect(ndjsonItems(page).ndjson.equals(Buffer.from('{"a":"\\udc00","b":"\u00e9"}\n', 'utf8'))).toBe(true);
  });

  it('a line break between a key and its colon stays out of the row; whitespace before a comma or ] is not kept', () => {
    // Regression: a line break after a key (before its colon) was copied into the NDJSON, splitting the row in two.
    const page = Buffer.from('{"items":[ \r\n{"a"\n:1},[1,2] \n, 3 \r ]}', 'utf8');
    const { ndjson, rows } = ndjsonItems(page);
    expect(rows).toBe(3);
    expect(ndjson.toString('utf8')).toBe('{"a":1}\n[1,2]\n3\n');
  });

  it('reads a page that is not valid UTF-8 as the text reader does (U+FFFD)', () => {
    const page = Buffer.concat([Buffer.from('{"items":[{"a":"'), Buffer.from([0xff]), Buffer.from('"}]}')]);
    expect(ndjsonItems(page).ndjson.toString('utf8')).toBe('{"a":"\ufffd"}\n');
  });

  it('refuses a page that names its items twice at the top level, whatever the values, as bytes and as text', () => {
    // JSON.parse keeps the last of two equal keys; a scan keeps the first: either reading could lose or invent rows.
    const pages = [
      '{"items":[1],"items":[2,3]}',
      '{"items":[1,2],"items":5}',
      '{"items":5,"items":[1]}',
      '{"items":null,"items":[1]}',
      '{"items":[{"a":1}],"items":[]}',
      '{"items":[1],"links":{},"it\\u0065ms":[2]}',
    ];
    for (const page of pages) {
      expect(() => ndjsonItems(Buffer.from(page)), page).toThrow('the page has two top-level items keys');
      expect(() => splitJsonItems(page), page).toThrow('the page has two top-level items keys');
      // Not valid UTF-8: the text reader's path refuses it too.
      const notUtf8 = Buffer.concat([
        Buffer.from(page.slice(0, -1)),
        Buffer.from(',"x":"'),
        Buffer.from([0xff]),
        Buffer.from('"}'),
      ]);
      expect(() => ndjsonItems(notUtf8), `${page} (not UTF-8)`).toThrow('the page has two top-level items keys');
    }
    // An items key inside another member is not the page's: one top-level key, read as usual.
    expect(ndjsonItems(Buffer.from('{"links":{"items":[9]},"items":[1]}')).rows).toBe(1);
    expect(splitJsonItems('{"links":{"items":[9]},"items":[1]}').items).toEqual(['1']);
  });

  it('reads a page whose items is not an array as a page without rows, as bytes and as text', () => {
    for (const page of ['{"items":5}', '{"items":null}', '{"items":{"a":[1]}}', '{"items":"[1]"}']) {
      expect(ndjsonItems(Buffer.from(page)).rows, page).toBe(0);
      expect(splitJsonItems(page).items, page).toEqual([]);
    }
  });

  it('the text reader refuses a page that is not an object, naming it', () => {
    for (const page of ['[1,2]', 'null', '5', '"page"', 'true']) {
      expect(() => splitJsonItems(page), page).toThrow('expected a JSON object page');
    }
  });

  it('rejects a page that is not JSON, whatever is wrong with it', () => {
    const bad = [
      '{"items":[{"a":}]}',
      '{"items":[{"a":"x\ny"}]}',
      '{"items":[{"a":"x\ty"}]}',
      '{"items":[1,]}',
      '{"items":[01]}',
      '{"items":[1.]}',
      '{"items":[-]}',
      '{"items":[1e]}',
      '{"items":[tru]}',
      '{"items":[nul]}',
      '{"items":[1]} x',
      '{"a":"\\x"}',
      '{"a":"\\u12g4"}',
      '{"items":[1]',
      '{"items":[1}}',
      // A bracket closing the other kind inside a row: the envelope without its rows would parse, the row must not land.
      '{"items":[{"a":[1}]}]}',
      '{"items":[[1}]]}',
      '{"items":[{"a":1]]}',
      '{"a" 1}',
      '{a:1}',
      '{"a":1,}',
      '{"items":["unterminated]}',
      '[1,2]',
      '"text"',
      '<html>',
      '',
      '{"items":[1],"items":[2]}',
    ];
    for (const text of bad) expect(() => ndjsonItems(Buffer.from(text)), text).toThrow(SyntaxError);
  });
});
