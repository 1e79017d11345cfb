import { openCaptureFile } from '../capture/writer.js';
import type { CaptureWriter } from '../capture/writer.js';
import type { Clock } from '../clock.js';
import type { HciTransport, TransportReceiver } from './types.js';

/**
 * A transport decorator that tees every packet, both ways, into a capture writer (btsnoop, pcap or
 * pcapng) with its direction and a µs timestamp. The writer writes each record synchronously, so the
 * file can be followed live and the bytes are copied before anyone could change them (STYLE c.7).
 * A host → controller packet is recorded before it is sent, and a controller → host packet before it
 * is delivered, so the file shows each request before the answer it causes. The writer is closed when
 * the transport closes, either way round.
 */
export interface RecordOptions {
  /**
   * µs since the Unix epoch for each record. Default: the wall clock, with sub-ms resolution; for a
   * transport that runs on its own clock (the simulator) the start time plus that clock's time, so
   * the capture shows simulated timing.
   */
  nowUs?: () => number;
}

const wallClockUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

export class RecordingTransport implements HciTransport {
  readonly description: string;
  /** The inner transport's own clock, passed through so the host still runs on it. */
  readonly clock?: Clock;
  private readonly nowUs: () => number;

  constructor(private readonly inner: HciTransport, readonly writer: CaptureWriter, options: RecordOptions = {}) {
    this.description = `${inner.description} (recording ${writer.format})`;
    const clock = inner.clock;
    if (clock) {
      this.clock = clock;
      const startUs = wallClockUs() - Math.round(clock.now() * 1000);
      this.nowUs = options.nowUs ?? (() => startUs + Math.round(clock.now() * 1000));
    } else {
      this.nowUs = options.nowUs ?? wallClockUs;
    }
  }

  send(packet: Uint8Array): void {
    this.writer.write({ dir: 'tx', timeUs: this.nowUs(), packet });
    this.inner.send(packet);
  }

  setReceiver(receiver: TransportReceiver): void {
    this.inner.setReceiver({
      packet: packet => {
        this.writer.write({ dir: 'rx', timeUs: this.nowUs(), packet });
        receiver.packet(packet);
      },
      closed: error => {
        this.writer.close();
        receiver.closed(error);
      },
    });
  }

  async close(): Promise<void> {
    try {
      await this.inner.close();
    } finally {
      this.writer.close();
    }
  }
}

/** Wrap `inner` so everything it carries is recorded into `writer`. */
export function recordTransport(inner: HciTransport, writer: CaptureWriter, options: RecordOptions = {}): RecordingTransport {
  return new RecordingTransport(inner, writer, options);
}

/**
 * Expand a capture path: `{ts}` becomes the local time as YYYYMMDD-HHMMSS, so BLEWIRE_CAPTURE can name
 * a fresh file per run. A `btsnoop:`/`pcap:`/`pcapng:` prefix picks the format whatever the extension.
 */
export function openRecordingFile(spec: string, now = new Date()): CaptureWriter {
  const m = /^(btsnoop|pcapng|pcap):(.*)$/.exec(spec);
  const format = m?.[1] as 'btsnoop' | 'pcap' | 'pcapng' | undefined;
  const pad = (n: number) => String(n).padStart(2, '0');
  const ts = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
  const path = (m ? m[2]! : spec).replaceAll('{ts}', ts);
  return openCaptureFile(path, format ? { format } : {});
}
