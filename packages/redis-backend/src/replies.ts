import { BackendError } from '@deadbolt/core';

/**
 * Decodes an array-of-integers reply. Lua integers arrive as numbers from ioredis and node-redis
 * alike, but as strings or bigints under a client's type mapping, and as Buffers from ioredis's
 * `*Buffer` commands or a node-redis client mapped to Buffers; all are accepted.
 */
export function integers(reply: unknown, script: string): number[] {
  return array(reply, script).map((value) => toInteger(value, script));
}

/** An array reply, or the error that says which script answered something else. */
export function array(reply: unknown, script: string): unknown[] {
  if (!Array.isArray(reply)) throw unexpected(script, reply);
  return reply;
}

export function toInteger(value: unknown, script: string): number {
  let number: unknown = value;
  if (typeof value === 'string' || value instanceof Uint8Array) number = Number(toText(value));
  else if (typeof value === 'bigint') number = Number(value);
  if (typeof number !== 'number' || !Number.isSafeInteger(number)) throw unexpected(script, value);
  return number;
}

/** A bulk string as text, whether the client gave a string or bytes. */
export function toText(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  return String(value);
}

function unexpected(script: string, reply: unknown): BackendError {
  return new BackendError(`unexpected reply from the ${script} script`, toText(reply));
}
