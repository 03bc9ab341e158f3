#!/usr/bin/env node
import { run } from './run.js';

const interrupt = new AbortController();
process.once('SIGINT', () => {
  interrupt.abort();
  // A second Ctrl-C does not wait for the first to wind down.
  process.once('SIGINT', () => process.exit(130));
});
// `deadbolt list | head` closes the pipe early: that is no error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

const code = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  signal: interrupt.signal,
});
// Everything the run opened is closed, but a client library may keep a timer for seconds (an
// ioredis Cluster that failed to connect does): exit once the output is written.
process.stderr.write('', () => process.stdout.write('', () => process.exit(code)));
