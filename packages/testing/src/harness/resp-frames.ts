/**
 * Splits a stream of RESP (2 or 3) replies into whole values without decoding them, so a proxy
 * can act on one reply at a time. Bytes of a value that has not fully arrived are kept until it
 * has.
 */
export class RespFrames {
  #pending: Buffer = Buffer.alloc(0);

  /**
   * Adds `chunk` and returns every value it completed, in order, each as its own buffer; throws
   * {@link NotRespError} when the stream is not RESP.
   */
  push(chunk: Buffer): Buffer[] {
    const data = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const frames: Buffer[] = [];
    let start = 0;
    for (;;) {
      const end = valueEnd(data, start);
      if (end === undefined) break;
      frames.push(data.subarray(start, end));
      start = end;
    }
    // A copy: the rest of `data` must not pin the whole chunk while it waits.
    this.#pending = Buffer.from(data.subarray(start));
    return frames;
  }
}

/** The stream holds a byte that starts no RESP value. */
export class NotRespError extends Error {
  override readonly name = 'NotRespError';
}

const CR_LF = '\r\n';

/** Offset just past the value starting at `offset`; undefined while it is incomplete. */
function valueEnd(data: Buffer, offset: number): number | undefined {
  if (offset >= data.length) return undefined;
  const lineEnd = data.indexOf(CR_LF, offset);
  if (lineEnd < 0) return undefined;
  const next = lineEnd + 2;
  const type = String.fromCharCode(data[offset] as number);
  const header = () => Number(data.toString('latin1', offset + 1, lineEnd));
  switch (type) {
    // Simple string, error, integer; RESP3 null, boolean, double, big number.
    case '+':
    case '-':
    case ':':
    case '_':
    case '#':
    case ',':
    case '(':
      return next;
    // Bulk string; RESP3 blob error and verbatim string.
    case '$':
    case '!':
    case '=': {
      const length = header();
      if (length < 0) return next;
      const end = next + length + 2;
      return data.length >= end ? end : undefined;
    }
    // Array; RESP3 push, set, map (two values per entry), attribute (a map before a value).
    case '*':
    case '>':
    case '~':
    case '%':
    case '|': {
      const count = header();
      if (count < 0) return next;
      let end: number | undefined = next;
      const values = type === '%' || type === '|' ? count * 2 : count;
      for (let index = 0; index < values && end !== undefined; index++) {
        end = valueEnd(data, end);
      }
      if (end === undefined) return undefined;
      return type === '|' ? valueEnd(data, end) : end;
    }
    default:
      throw new NotRespError(`not RESP: a value cannot start with ${JSON.stringify(type)}`);
  }
}

/** How a published message starts, as RESP2 arrays and RESP3 pushes, for each kind. */
const MESSAGE_STARTS = ['*3', '>3'].flatMap((size) => [
  Buffer.from(`${size}\r\n$7\r\nmessage\r\n`),
  Buffer.from(`${size}\r\n$8\r\nsmessage\r\n`),
  Buffer.from(`${size === '*3' ? '*4' : '>4'}\r\n$8\r\npmessage\r\n`),
]);

/**
 * Whether `frame` is a message published to a subscribed channel (`message`, `pmessage` or
 * `smessage`), as opposed to a reply to a command. On a connection that is not subscribed, a
 * command reply of the same shape (an LRANGE of those words) would look alike.
 */
export function isPublishedMessage(frame: Buffer): boolean {
  return MESSAGE_STARTS.some(
    (start) => frame.length > start.length && frame.subarray(0, start.length).equals(start),
  );
}
