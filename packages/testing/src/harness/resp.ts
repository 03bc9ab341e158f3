import { createConnection } from 'node:net';

/** An error reply (`-ERR ...`), kept apart from strings so callers can tell them from data. */
export class RespError extends Error {
  override readonly name = 'RespError';
}

/** A decoded RESP2 reply: simple and bulk strings, integers, nil, errors and arrays of them. */
export type RespValue = string | number | null | RespError | RespValue[];

/** Encodes one command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly string[]): Buffer {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
  return Buffer.from(parts.join(''), 'utf8');
}

/**
 * Decodes one reply starting at `offset`; undefined while `buffer` does not yet hold all of it.
 * Works on bytes, because bulk lengths count bytes and a chunk may end inside a character.
 */
export function decodeReply(
  buffer: Buffer,
  offset = 0,
): { value: RespValue; end: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buffer[offset] ?? 0);
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new RespError(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buffer.length < next + length + 2) return undefined;
      return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: RespValue[] = [];
      let end = next;
      for (let index = 0; index < count; index++) {
        const item = decodeReply(buffer, end);
        if (item === undefined) return undefined;
        items.push(item.value);
        end = item.end;
      }
      return { value: items, end };
    }
    default:
      throw new Error(`[deadbolt] [testing] not a RESP2 reply: ${JSON.stringify(line)}`);
  }
}

/** Where {@link sendCommands} connects. */
export interface RespTarget {
  host: string;
  port: number;
  /** Sent as `AUTH` before the commands, for servers named by a URL with credentials. */
  username?: string | undefined;
  password?: string | undefined;
  /** Sent as `SELECT` before the commands. */
  db?: number | undefined;
}

/**
 * Sends `commands` pipelined over one fresh connection (after `AUTH`/`SELECT` when `target` asks
 * for them) and resolves every reply, raw and decoded. Plain `node:net`, so the harness needs no
 * Redis client; error replies are returned, not thrown.
 */
export function sendCommands(
  target: RespTarget,
  commands: readonly (readonly string[])[],
  timeoutMs = 2_000,
): Promise<{ raw: string; value: RespValue }[]> {
  const setup: string[][] = [];
  if (target.password !== undefined) {
    setup.push(
      target.username ? ['AUTH', target.username, target.password] : ['AUTH', target.password],
    );
  }
  if (target.db !== undefined && target.db !== 0) setup.push(['SELECT', String(target.db)]);
  const all = [...setup, ...commands];
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: target.host, port: target.port });
    let buffer = Buffer.alloc(0);
    const replies: { raw: string; value: RespValue }[] = [];
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () =>
      fail(new Error(`[deadbolt] [testing] no reply from ${target.host}:${target.port}`)),
    );
    socket.once('error', fail);
    // A proxy (Docker's) may accept and then close when nothing listens behind it.
    socket.once('close', () =>
      fail(new Error(`[deadbolt] [testing] ${target.host}:${target.port} closed the connection`)),
    );
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      let decoded = decodeReply(buffer);
      while (decoded !== undefined) {
        replies.push({ raw: buffer.toString('utf8', 0, decoded.end), value: decoded.value });
        buffer = buffer.subarray(decoded.end);
        decoded = buffer.length > 0 ? decodeReply(buffer) : undefined;
      }
      if (replies.length < all.length) return;
      socket.end();
      const failedSetup = replies
        .slice(0, setup.length)
        .find((reply) => reply.value instanceof RespError);
      if (failedSetup) fail(failedSetup.value as RespError);
      else resolve(replies.slice(setup.length));
    });
    socket.write(Buffer.concat(all.map(encodeCommand)));
  });
}
