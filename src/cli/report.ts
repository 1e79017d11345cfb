/** How the `blewire` command ends on an error (main.ts): one line on stderr and an exit code. */
import { ArgumentError, BlewireError, FileError } from '../errors.js';
import { describeFsError } from './fs-errors.js';

/**
 * A failure as one line, never a stack trace: a usage mistake exits 2, anything else 1. Only an error
 * that is none of ours (a bug) also prints its stack, and only with DEBUG set.
 */
export function report(name: string, err: unknown): number {
  if (err instanceof ArgumentError || (err instanceof BlewireError && err.code === 'ETRANSPORT_SPEC')) {
    console.error(`blewire ${name}: ${err.message}\nRun \`blewire ${name} --help\` for its usage.`);
    return 2;
  }
  if (err instanceof BlewireError) {
    const cause = err instanceof FileError ? undefined : describeFsError(err.cause);
    console.error(`blewire ${name}: ${err.message}${cause ? ` (${cause})` : ''}`);
    return 1;
  }
  const fs = describeFsError(err);
  if (fs) {
    console.error(`blewire ${name}: ${fs}`);
    return 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  console.error(`blewire ${name}: unexpected error: ${message}`);
  if (process.env['DEBUG'] && err instanceof Error && err.stack) console.error(err.stack);
  else console.error('This is a bug in blewire; DEBUG=blewire:* shows the stack. Please report it with the command you ran.');
  return 1;
}
