import { describe, expect, it } from 'vitest';
import {
  checkOpenQuery,
  decodePayload,
  encodePayload,
  eioRefusal,
  decodeEio,
  isEngineIoPath,
  openPacketEncoder,
} from '../../src/realtime/protocol/engineio.js';
import {
  decodeSocketIo,
  encodeAck,
  encodeConnect,
  encodeConnectError,
  encodeDisconnect,
  encodeEvent,
  SioType,
} from '../../src/realtime/protocol/socketio.js';

/** Strips the Engine.IO message prefix the way the engine does before decoding. */
function decodeFrame(frame: string) {
  const eio = decodeEio(frame);
  if (!eio.ok || eio.type !== 'message') throw new Error(`not a message frame: ${frame}`);
  return decodeSocketIo(eio.data);
}

describe('engine.io codec', () => {
  it('decodes every packet type', () => {
    const types = ['open', 'close', 'ping', 'pong', 'message', 'upgrade', 'noop'];
    types.forEach((type, digit) => {
      expect(decodeEio(`${digit}payload`)).toEqual({ ok: true, type, data: 'payload' });
    });
  });

  it.each(['', '7', '9x', 'x', '{"a":1}', '-1'])('rejects %j', (frame) => {
    expect(decodeEio(frame).ok).toBe(false);
  });

  it('encodes the open packet', () => {
    const open = openPacketEncoder({ pingIntervalMs: 25000, pingTimeoutMs: 20000, maxPayloadBytes: 1e6 }, [])('abc_-1');
    expect(open.startsWith('0')).toBe(true);
    expect(JSON.parse(open.slice(1))).toEqual({
      sid: 'abc_-1',
      upgrades: [],
      pingInterval: 25000,
      pingTimeout: 20000,
      maxPayload: 1000000,
    });
  });

  it('checks the query of a session-opening request in engine.io order', () => {
    const q = (s: string) => new URLSearchParams(s);
    const both = ['websocket', 'polling'];
    const err = (code: number, message: string) => ({ status: 400, body: JSON.stringify({ code, message }) });
    expect(checkOpenQuery(q('EIO=4&transport=websocket'), 'upgrade', both)).toBeUndefined();
    expect(checkOpenQuery(q('EIO=4&transport=websocket&b64=1&foo=bar'), 'upgrade', both)).toBeUndefined();
    expect(checkOpenQuery(q('EIO=4&transport=polling&t=abc'), 'http', both)).toBeUndefined();
    expect(checkOpenQuery(q('EIO=3&transport=websocket'), 'upgrade', both)).toEqual(err(5, 'Unsupported protocol version'));
    expect(checkOpenQuery(q('transport=polling'), 'http', both)).toEqual(err(5, 'Unsupported protocol version'));
    expect(checkOpenQuery(q('EIO=4&transport=polling'), 'http', ['websocket'])).toEqual(err(0, 'Transport unknown'));
    expect(checkOpenQuery(q('EIO=4&transport=flash'), 'http', both)).toEqual(err(0, 'Transport unknown'));
    expect(checkOpenQuery(q('EIO=4&transport=polling'), 'http', both, 'POST')).toEqual(err(2, 'Bad handshake method'));
    expect(checkOpenQuery(q('EIO=4&transport=websocket'), 'http', both)).toEqual(err(3, 'Bad request'));
    expect(checkOpenQuery(q('EIO=4&transport=polling'), 'upgrade', both)).toEqual(err(3, 'Bad request'));
    expect(eioRefusal(4)).toEqual({ status: 403, body: '{"code":4,"message":"Forbidden"}' });
  });

  it('joins and splits long-polling payloads with the record separator', () => {
    expect(encodePayload(['0{"sid":"a"}', '40', '2'])).toBe('0{"sid":"a"}\x1e40\x1e2');
    expect(decodePayload('40\x1e42["x","a\x1fb"]')).toEqual(['40', '42["x","a\x1fb"]']);
    expect(decodePayload('3')).toEqual(['3']);
  });

  it('recognises the Engine.IO path', () => {
    expect(isEngineIoPath('/socket.io/')).toBe(true);
    expect(isEngineIoPath('/socket.io')).toBe(true);
    expect(isEngineIoPath('/socket.iox')).toBe(false);
    expect(isEngineIoPath('/api/socket.io/')).toBe(false);
  });
});

describe('socket.io encoders', () => {
  it('encodes full websocket frames', () => {
    expect(encodeEvent('msg', [1, 'two', { three: 3 }])).toBe('42["msg",1,"two",{"three":3}]');
    expect(encodeEvent('msg', [], 7)).toBe('427["msg"]');
    expect(encodeAck(12, ['ok', null])).toBe('4312["ok",null]');
    expect(encodeAck(0, [])).toBe('430[]');
    expect(encodeConnect('sid-1')).toBe('40{"sid":"sid-1"}');
    expect(encodeConnectError({ message: 'nope', data: { code: 401 } })).toBe('44{"message":"nope","data":{"code":401}}');
    expect(encodeConnectError({ message: 'Invalid namespace' }, '/admin')).toBe('44/admin,{"message":"Invalid namespace"}');
    expect(encodeDisconnect()).toBe('41');
  });

  it('escapes event names and arguments', () => {
    const frame = encodeEvent('we"ird\n', ['"]\\', '\u2028']);
    expect(decodeFrame(frame)).toEqual({
      ok: true,
      packet: { type: SioType.EVENT, nsp: '/', id: undefined, event: 'we"ird\n', args: ['"]\\', '\u2028'] },
    });
  });
});

describe('socket.io decoder round trips', () => {
  it('EVENT with and without ack id', () => {
    expect(decodeFrame(encodeEvent('echo', ['a', 1, [true], { x: null }]))).toEqual({
      ok: true,
      packet: { type: SioType.EVENT, nsp: '/', id: undefined, event: 'echo', args: ['a', 1, [true], { x: null }] },
    });
    expect(decodeFrame(encodeEvent('echo', [], 2 ** 31))).toEqual({
      ok: true,
      packet: { type: SioType.EVENT, nsp: '/', id: 2 ** 31, event: 'echo', args: [] },
    });
  });

  it('ACK', () => {
    expect(decodeFrame(encodeAck(5, [{ ok: true }]))).toEqual({
      ok: true,
      packet: { type: SioType.ACK, nsp: '/', id: 5, args: [{ ok: true }] },
    });
  });

  it('CONNECT / CONNECT_ERROR / DISCONNECT', () => {
    expect(decodeFrame(encodeConnect('s'))).toEqual({ ok: true, packet: { type: SioType.CONNECT, nsp: '/', data: { sid: 's' } } });
    expect(decodeFrame(encodeConnectError({ message: 'm', data: 1 }))).toEqual({
      ok: true,
      packet: { type: SioType.CONNECT_ERROR, nsp: '/', data: { message: 'm', data: 1 } },
    });
    expect(decodeFrame(encodeConnectError({ message: 'm' }, '/x'))).toEqual({
      ok: true,
      packet: { type: SioType.CONNECT_ERROR, nsp: '/x', data: { message: 'm' } },
    });
    expect(decodeFrame(encodeDisconnect())).toEqual({ ok: true, packet: { type: SioType.DISCONNECT, nsp: '/' } });
  });

  it('what socket.io-client sends', () => {
    expect(decodeSocketIo('0')).toEqual({ ok: true, packet: { type: SioType.CONNECT, nsp: '/', data: undefined } });
    expect(decodeSocketIo('0{"token":"t"}')).toEqual({ ok: true, packet: { type: SioType.CONNECT, nsp: '/', data: { token: 't' } } });
    expect(decodeSocketIo('0/admin,')).toEqual({ ok: true, packet: { type: SioType.CONNECT, nsp: '/admin', data: undefined } });
    expect(decodeSocketIo('0/admin,{"a":1}')).toEqual({ ok: true, packet: { type: SioType.CONNECT, nsp: '/admin', data: { a: 1 } } });
    expect(decodeSocketIo('1')).toEqual({ ok: true, packet: { type: SioType.DISCONNECT, nsp: '/' } });
    expect(decodeSocketIo('1/admin,')).toEqual({ ok: true, packet: { type: SioType.DISCONNECT, nsp: '/admin' } });
    expect(decodeSocketIo('1/admin')).toEqual({ ok: true, packet: { type: SioType.DISCONNECT, nsp: '/admin' } });
    expect(decodeSocketIo('2/admin,3["e"]')).toEqual({
      ok: true,
      packet: { type: SioType.EVENT, nsp: '/admin', id: 3, event: 'e', args: [] },
    });
    expect(decodeSocketIo('20["e",1]')).toEqual({ ok: true, packet: { type: SioType.EVENT, nsp: '/', id: 0, event: 'e', args: [1] } });
  });
});

describe('socket.io decoder rejects malformed input', () => {
  it.each([
    ['empty', ''],
    ['unknown type 7', '7["e"]'],
    ['non-digit type', 'x'],
    ['binary event', '51-["e",{"_placeholder":true,"num":0}]'],
    ['binary ack', '61-1[{"_placeholder":true,"num":0}]'],
    ['bad JSON', '2["e",'],
    ['trailing garbage', '2["e"]x'],
    ['object EVENT payload', '2{"e":1}'],
    ['string EVENT payload', '2"e"'],
    ['empty EVENT array', '2[]'],
    ['missing EVENT payload', '2'],
    ['numeric event name', '2[1,2]'],
    ['null event name', '2[null]'],
    ['object event name', '2[{}]'],
    ['reserved event name', '2["disconnect"]'],
    ['ack id above 2^31', `2${2 ** 31 + 1}["e"]`],
    ['ack id with 11 digits', '200000000001["e"]'],
    ['huge ack id', `2${'9'.repeat(400)}["e"]`],
    ['ACK without id', '3["x"]'],
    ['ACK with object payload', '31{"x":1}'],
    ['ACK without payload', '31'],
    ['CONNECT with array payload', '0["a"]'],
    ['CONNECT with null payload', '0null'],
    ['CONNECT with string payload', '0"tok"'],
    ['CONNECT with ack id', '01{}'],
    ['DISCONNECT with payload', '1{}'],
    ['DISCONNECT with id', '12'],
    ['CONNECT_ERROR with array payload', '4[1]'],
    ['CONNECT_ERROR without payload', '4'],
    ['negative ack id', '2-1["e"]'],
    ['fractional ack id', '21.5["e"]'],
  ])('%s', (_label, text) => {
    const result = decodeSocketIo(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(typeof result.reason).toBe('string');
  });

  it('never throws, whatever the input', () => {
    const samples = ['2[', '0{', '2["e"', '\u0000', '2/', '2/,', '0/,{', '3', '2' + '['.repeat(100_000)];
    for (let n = 0; n < 500; n++) {
      const len = (n * 7) % 24;
      let s = '';
      for (let i = 0; i < len; i++) s += '0123456789[]{}",/-:ae\\ '.charAt((n * 31 + i * 17) % 24);
      samples.push(s);
    }
    for (const text of samples) expect(() => decodeSocketIo(text)).not.toThrow();
  });
});
