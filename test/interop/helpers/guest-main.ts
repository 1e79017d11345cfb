/**
 * The end of a run-mode guest program (helpers/guest-*-main.ts, bundled by stageForGuest): its result as
 * one JSON line on stdout and exit 0, or a failure as `{ error, code, stack }` and exit 1. On the host,
 * guestOutcome (guest-stage.ts) reads that line.
 */
export function reportToHost(main: () => Promise<unknown>): void {
  main().then(
    result => {
      process.stdout.write(JSON.stringify(result) + '\n');
      process.exit(0);
    },
    (e: unknown) => {
      const err = e as Error & { code?: string };
      process.stdout.write(JSON.stringify({ error: err?.message ?? String(e), code: err?.code, stack: err?.stack }) + '\n');
      process.exit(1);
    },
  );
}
