import { open } from 'node:fs/promises';
import { CaptureParser } from './parser.js';
import type { CaptureRecord } from './types.js';

/**
 * Every record of a capture held in memory (btsnoop, pcap or pcapng, detected by magic). Packets are
 * views into `bytes`, which the caller must not modify afterwards. Records come out one at a time, so
 * a truncated or corrupt file yields every good record before the DecodeError (layer 'capture') that
 * names the record number and the byte offset.
 */
export function* parseCapture(bytes: Uint8Array): Generator<CaptureRecord, void, undefined> {
  const parser = new CaptureParser(false);
  parser.push(bytes);
  for (let rec = parser.next(); rec; rec = parser.next()) yield rec;
  parser.end();
}

export interface ReadCaptureOptions {
  /** Bytes per read (default 256 KiB). Memory stays near this plus one record, whatever the file size. */
  chunkSize?: number;
}

/**
 * Stream the records of a capture file with bounded memory: the file is read through a file handle in
 * chunks, and each packet is its own small allocation (a retained packet does not pin a read chunk).
 * Errors are as for parseCapture.
 */
export async function* readCaptureFile(path: string, options: ReadCaptureOptions = {}): AsyncGenerator<CaptureRecord, void, undefined> {
  const chunkSize = options.chunkSize ?? 256 * 1024;
  const fh = await open(path, 'r');
  try {
    const parser = new CaptureParser(true);
    for (;;) {
      // A fresh buffer per read: the parser may still hold a view of the previous one (STYLE c.7).
      const buf = new Uint8Array(chunkSize);
      const { bytesRead } = await fh.read(buf, 0, chunkSize, null);
      if (bytesRead === 0) break;
      parser.push(bytesRead === chunkSize ? buf : buf.subarray(0, bytesRead));
      for (let rec = parser.next(); rec; rec = parser.next()) yield rec;
    }
    parser.end();
  } finally {
    await fh.close();
  }
}
