import { createConnection, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeReply, encodeCommand, type RespValue } from '../src/harness/resp.js';
import { type FaultProxy, type RedisServer, startFaultProxy, startRedis } from '../src/index.js';

/** A bare RESP connection whose replies can be awaited one by one, and whose close is seen. */
class RawClient {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  #buffer = Buffer.alloc(0);
  readonly #replies: RespValue[] = [];
  readonly #waiting: ((value: RespValue) => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      for (;;) {
        const reply = decodeReply(this.#buffer);
        if (reply === undefined) break;
        this.#buffer = this.#buffer.subarray(reply.end);
        const waiter = this.#waiting.shift();
        if (waiter) waiter(reply.value);
        else this.#replies.push(reply.value);
      }
    });
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () =>
        resolve(new RawClient(socket)),
      );
      socket.once('error', reject);
    });
  }

  /** Sends a command; the promise settles with the next value received, its reply. */
  send(...args: string[]): Promise<RespValue> {
    this.socket.write(encodeCommand(args));
    return this.next();
  }

  /** The next value received: a reply, or a message on a subscribed channel. */
  next(): Promise<RespValue> {
    const ready = this.#replies.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
}

/** Lets I/O run until `condition` holds; fake timers leave setImmediate alone. */
async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let turn = 0; turn < 20_000; turn++) {
    if (await condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`never happened: ${what}`);
}

/** Whether `promise` has settled, seen after the I/O that is already queued has run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('startFaultProxy against a real redis-server', () => {
  let redis: RedisServer;
  let proxy: FaultProxy;
  const clients: RawClient[] = [];
  const connect = async () => {
    const client = await RawClient.connect(proxy.port);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    vi.stubEnv('REDIS_URL', '');
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
    vi.unstubAllEnvs();
  });
  beforeEach(async () => {
    await redis.command('FLUSHALL');
    proxy = await startFaultProxy(redis);
  });
  afterEach(async () => {
    vi.useRealTimers();
    for (const client of clients.splice(0)) client.socket.destroy();
    await proxy.close();
  });

  it('passes traffic through unchanged when no fault is set', async () => {
    const client = await connect();
    expect(proxy.url).toBe(`redis://127.0.0.1:${proxy.port}`);
    expect(await client.send('SET', 'k', 'through the proxy')).toBe('OK');
    expect(await redis.call('GET', 'k')).toBe('through the proxy');
    expect(await client.send('GET', 'k')).toBe('through the proxy');
    expect(proxy.connections).toBe(1);
  });

  it('latency holds each chunk for the set time in each direction, in order', async () => {
    const client = await connect();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    proxy.setLatency(1_000);
    const reply = client.send('SET', 'k', 'late');
    await until('the request reaches the proxy', () => proxy.heldBytes > 0);
    await vi.advanceTimersByTimeAsync(999);
    expect(await redis.call('EXISTS', 'k')).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    await until('the request reaches redis', async () => (await redis.call('EXISTS', 'k')) === 1);
    // Now the reply waits its own second on the way back.
    await until('the reply reaches the proxy', () => proxy.heldBytes > 0);
    await vi.advanceTimersByTimeAsync(999);
    expect(await settled(reply)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await reply).toBe('OK');
    // Two requests in a row keep their order even when the latency drops between them.
    const first = client.send('INCR', 'n');
    await until('the first request reaches the proxy', () => proxy.heldBytes > 0);
    proxy.setLatency(0);
    const second = client.send('INCR', 'n');
    await vi.advanceTimersByTimeAsync(2_000);
    expect([await first, await second]).toEqual([1, 2]);
  });

  it('dropConnections resets open connections and keeps accepting new ones', async () => {
    const client = await connect();
    expect(await client.send('PING')).toBe('PONG');
    const before = Number(await redis.call('CLIENT', 'LIST').then((list) => countClients(list)));
    proxy.dropConnections();
    await client.closed;
    expect(client.socket.destroyed).toBe(true);
    expect(proxy.connections).toBe(0);
    // The target's side of the link is closed too.
    await until(
      'redis sees the proxied connection go',
      async () => countClients(await redis.call('CLIENT', 'LIST')) < before,
    );
    const again = await connect();
    expect(await again.send('PING')).toBe('PONG');
  });

  it('blackhole holds traffic of open and new connections until heal, then delivers it', async () => {
    const open = await connect();
    expect(await open.send('PING')).toBe('PONG');
    proxy.blackhole();
    const write = open.send('SET', 'k', 'held');
    await until('the request is held', () => proxy.heldBytes > 0);
    const late = await connect();
    const read = late.send('PING');
    await until('the second request is held too', () => proxy.heldBytes > 30);
    expect(await redis.call('EXISTS', 'k')).toBe(0);
    expect(await settled(write)).toBe(false);
    expect(await settled(read)).toBe(false);
    proxy.heal();
    expect(await write).toBe('OK');
    expect(await read).toBe('PONG');
    expect(await redis.call('GET', 'k')).toBe('held');
  });

  it('a timed blackhole heals by itself', async () => {
    const client = await connect();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    proxy.blackhole(5_000);
    const reply = client.send('PING');
    await until('the request is held', () => proxy.heldBytes > 0);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(await settled(reply)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await reply).toBe('PONG');
  });

  it('a target that goes away closes the client side too', async () => {
    const client = await connect();
    expect(await client.send('PING')).toBe('PONG');
    await redis.kill();
    await client.closed;
    expect(proxy.connections).toBe(0);
    await redis.restart();
  });

  describe('message faults', () => {
    /** A client subscribed to `channel` through the proxy. */
    const subscriber = async (channel: string) => {
      const client = await connect();
      expect(await client.send('SUBSCRIBE', channel)).toEqual(['subscribe', channel, 1]);
      return client;
    };
    // The server writes a message to its subscribers before it answers PUBLISH, so anything the
    // subscriber asks after that is answered behind the message on the same connection.
    const publish = async (channel: string, message: string) =>
      expect(await redis.call('PUBLISH', channel, message)).toBe(1);
    const PONG = ['pong', ''];

    it('drop loses a whole message and lets every other reply through', async () => {
      const client = await subscriber('ch');
      proxy.setMessageFaults({ drop: 1 });
      await publish('ch', 'lost');
      // Had the message come through, it would be the next value, before PING's reply.
      expect(await client.send('PING')).toEqual(PONG);
      proxy.setMessageFaults(undefined);
      await publish('ch', 'kept');
      expect(await client.next()).toEqual(['message', 'ch', 'kept']);
      expect(proxy.messageFaults).toEqual({ dropped: 1, duplicated: 0, delayed: 0 });
    });

    it('duplicate delivers a message twice, whole even when it spans many chunks', async () => {
      const client = await subscriber('ch');
      const large = 'x'.repeat(300_000);
      proxy.setMessageFaults({ duplicate: 1 });
      await publish('ch', large);
      expect(await client.next()).toEqual(['message', 'ch', large]);
      expect(await client.next()).toEqual(['message', 'ch', large]);
      proxy.setMessageFaults(undefined);
      // No third copy: the next value is PING's reply.
      expect(await client.send('PING')).toEqual(PONG);
      expect(proxy.messageFaults).toEqual({ dropped: 0, duplicated: 1, delayed: 0 });
    });

    it('delay holds a message for delayMs, and what follows waits behind it', async () => {
      const client = await subscriber('ch');
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      proxy.setMessageFaults({ delay: 1, delayMs: 1_000 });
      await publish('ch', 'late');
      await until('the message is held', () => proxy.heldBytes > 0);
      const message = client.next();
      const pong = client.send('PING');
      await until('the reply to PING is held behind it', () => proxy.heldBytes > 40);
      await vi.advanceTimersByTimeAsync(999);
      expect(await settled(message)).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await message).toEqual(['message', 'ch', 'late']);
      expect(await pong).toEqual(PONG);
      expect(proxy.messageFaults).toEqual({ dropped: 0, duplicated: 0, delayed: 1 });
    });

    it('one draw per message decides: drop below drop, duplicate below drop + duplicate', async () => {
      const client = await subscriber('ch');
      const draws = [0.1, 0.3, 0.9];
      proxy.setMessageFaults({ drop: 0.2, duplicate: 0.2, random: () => draws.shift() ?? 1 });
      for (const message of ['one', 'two', 'three']) await publish('ch', message);
      expect(await client.next()).toEqual(['message', 'ch', 'two']);
      expect(await client.next()).toEqual(['message', 'ch', 'two']);
      expect(await client.next()).toEqual(['message', 'ch', 'three']);
      expect(proxy.messageFaults).toEqual({ dropped: 1, duplicated: 1, delayed: 0 });
    });

    it('rejects shares outside 0 to 1 or adding up to more than 1', () => {
      expect(() => proxy.setMessageFaults({ drop: 1.5 })).toThrow(RangeError);
      expect(() => proxy.setMessageFaults({ drop: 0.6, delay: 0.6 })).toThrow(RangeError);
      expect(() => proxy.setMessageFaults({ delay: 1, delayMs: -1 })).toThrow(RangeError);
    });
  });

  it('rejects a latency that is not a finite number >= 0', () => {
    expect(() => proxy.setLatency(-1)).toThrow(RangeError);
    expect(() => proxy.setLatency(Number.NaN)).toThrow(RangeError);
  });
});

function countClients(list: RespValue): number {
  return String(list)
    .split('\n')
    .filter((line) => line.startsWith('id=')).length;
}
