/**
 * `blewire decode x.btsnoop | head`: when the reader of stdout goes away, writes fail with EPIPE.
 * That is how a pipeline says "enough", not an error: the command stops what it is doing (a
 * subscription is ended, a link disconnected, the adapter closed) and exits 0 without a word.
 * main() calls watchStdout() once; commands ask stdoutClosed() or pass stdoutSignal() to their loops.
 */
let closed = new AbortController();
let watching = false;

export function watchStdout(stream: NodeJS.WritableStream = process.stdout): void {
  if (watching) return;
  watching = true;
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') {
      // Anything else (a full disk behind a redirection) is a failure, said once on stderr.
      if (!closed.signal.aborted) process.stderr.write(`blewire: cannot write the output: ${e.message}\n`);
      process.exitCode = 1;
    }
    markStdoutClosed();
  });
}

/** The reader is gone (the stream's error handler; tests simulate `| head` with it). */
export function markStdoutClosed(): void {
  if (!closed.signal.aborted) closed.abort();
}

/** Tests: stdout is open again. */
export function resetStdoutForTest(): void {
  closed = new AbortController();
}

/** Aborted once stdout's reader has gone away. */
export function stdoutSignal(): AbortSignal {
  return closed.signal;
}

export function stdoutClosed(): boolean {
  return closed.signal.aborted;
}
