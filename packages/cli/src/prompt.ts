import { createInterface } from 'node:readline';
import type { CliIo } from './context.js';

/**
 * Asks `question` on the terminal (written to stderr, so stdout keeps only the result) and
 * resolves true for `y` or `yes`, in any case. Anything else, Ctrl-C and Ctrl-D resolve false.
 */
export function confirm(io: Pick<CliIo, 'stdin' | 'stderr'>, question: string): Promise<boolean> {
  const prompt = createInterface({
    input: io.stdin,
    output: io.stderr,
    terminal: true,
  });
  return new Promise((resolve) => {
    let answered = false;
    const answer = (yes: boolean) => {
      if (answered) return;
      answered = true;
      prompt.close();
      resolve(yes);
    };
    // On a terminal in raw mode, Ctrl-C reaches readline as a key, not as a signal.
    prompt.on('SIGINT', () => {
      io.stderr.write('\n');
      answer(false);
    });
    prompt.on('close', () => answer(false));
    prompt.question(question, (text) => answer(/^y(es)?$/i.test(text.trim())));
  });
}
