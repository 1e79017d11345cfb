/**
 * Environment variables (BLEWIRE_TRANSPORT, BLEWIRE_CAPTURE): `process.env` where there is one, and
 * nothing elsewhere (a browser has no environment; the caller's options are then the only source).
 */
export function envVar(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env?.[name];
}
