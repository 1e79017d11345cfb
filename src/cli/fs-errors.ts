/**
 * A failed file operation in words (ENOENT, EISDIR, EACCES, …). Its own module so that report.ts,
 * which every command loads, does not load args.ts and with it the UUID name tables.
 */
const FS_REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory', EISDIR: 'it is a directory, not a file', EACCES: 'permission denied',
  EPERM: 'operation not permitted', ENOTDIR: 'a part of the path is not a directory', EMFILE: 'too many open files',
  ENOSPC: 'no space left on the device', EROFS: 'read-only file system', ELOOP: 'too many symbolic links',
};

/** Why a file operation failed, for a person: `no such file or directory (ENOENT)`; undefined if not one. */
export function fsReason(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && FS_REASONS[code] ? `${FS_REASONS[code]} (${code})` : undefined;
}

/** A failed file operation as one line: `cannot open x.btsnoop: no such file or directory (ENOENT)`. */
export function describeFsError(e: unknown): string | undefined {
  const reason = fsReason(e);
  if (!reason) return undefined;
  const { path, syscall } = e as { path?: unknown; syscall?: unknown };
  const op = typeof syscall === 'string' ? `cannot ${syscall === 'scandir' ? 'list' : syscall}` : 'cannot use';
  return `${op}${typeof path === 'string' ? ` ${path}` : ''}: ${reason}`;
}
