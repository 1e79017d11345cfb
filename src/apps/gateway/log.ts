/**
 * Structured logs: one JSON object per line on stderr (`{"time":…,"level":"info","msg":…,…}`), which
 * journald, Docker and log shippers take as is. Levels: error, warn, info, debug.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface Logger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

export function jsonLogger(level: LogLevel = 'info', write: (line: string) => void = l => process.stderr.write(l),
  now: () => number = Date.now, base: Record<string, unknown> = {}): Logger {
  const max = RANK[level];
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (RANK[lvl] > max) return;
    const rec: Record<string, unknown> = { time: new Date(now()).toISOString(), level: lvl, msg, ...base };
    if (fields) {
      for (const [k, v] of Object.entries(fields)) rec[k] = v instanceof Error ? errorFields(v) : v;
    }
    let line: string;
    try {
      line = JSON.stringify(rec, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    } catch {
      line = JSON.stringify({ time: rec['time'], level: lvl, msg });
    }
    write(line + '\n');
  };
  return {
    error: (m, f) => emit('error', m, f),
    warn: (m, f) => emit('warn', m, f),
    info: (m, f) => emit('info', m, f),
    debug: (m, f) => emit('debug', m, f),
  };
}

export function errorFields(e: unknown): Record<string, unknown> {
  if (e instanceof Error) return { name: e.name, code: (e as { code?: unknown }).code, message: e.message };
  return { message: String(e) };
}

export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };
