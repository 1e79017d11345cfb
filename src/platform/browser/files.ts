/**
 * files for a browser build: a page has no file system. Nothing in the Web Bluetooth facade needs one
 * unless asked to (the GATT cache and bonds stay in memory, granted devices are not persisted); a path
 * given anyway fails with FileError at the call, saying why. Same exports as ../files.ts.
 */
import { FileError } from '../../errors.js';

export { FileError };

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
export const STALE_TEMP_MS = 60_000;

export interface WriteAtomicOptions { mode?: number; ensureDir?: boolean }

const WHY = 'a browser has no file system (blewire keeps caches and bonds in memory there; give no path)';
function none(operation: string, path: string): FileError { return new FileError(operation, path, WHY); }

export async function ensurePrivateDir(dir: string): Promise<void> { throw none('mkdir', dir); }
export async function writeFileAtomic(path: string, _data: Uint8Array | string, _options: WriteAtomicOptions = {}): Promise<void> { throw none('write', path); }
export async function createExclusive(path: string, _mode = PRIVATE_FILE_MODE): Promise<never> { throw none('create', path); }
export async function readFileCapped(path: string, _maxBytes: number): Promise<Uint8Array | undefined> { throw none('read', path); }
export function pathIn(dir: string, name: string): string { return `${dir.replace(/\/+$/, '')}/${name}`; }
export async function removeFile(path: string): Promise<void> { throw none('remove', path); }
export async function listFiles(dir: string): Promise<string[]> { throw none('list', dir); }
export async function removeStaleTempFiles(path: string, _now = Date.now()): Promise<number> { throw none('clean', path); }
