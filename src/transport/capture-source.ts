import { readCaptureFile } from '../capture/read.js';
import { TransportError } from '../errors.js';
import { log } from '../log.js';
import { ReceiverSlot } from './receiver-slot.js';
import type { HciTransport, TransportReceiver } from './types.js';

/**
 * A controller played from a capture file: the controller → host packets (rx records) are delivered in
 * file order, so the decoder, the CLI or a scanner can be pointed at `capture:file.btsnoop`. This is
 * the simple, reusable player; byte-exact replay with expectations on what the host sends is the
 * replay transport's job.
 *
 * Pacing: packets are delivered one per macrotask (setImmediate), never synchronously from
 * setReceiver(), so the consumer's own promises and timers interleave as with a real controller.
 * With `lockstep`, each host → controller record in the file waits for the host to have sent one
 * packet (any packet) before the player moves past it: the controller's answers then come after the
 * host's requests, as in the recording. At the end of the file the transport closes without error.
 */
export interface CaptureSourceOptions {
  /** Only records of this controller index (monitor captures hold several). */
  adapter?: number;
  /** Wait for one host send per tx record of the file. Default false. */
  lockstep?: boolean;
  /** Called (with the tx record's frame number) each time lockstep playback stops to wait for the host. */
  onWaitForHost?: (frame: number) => void;
}

export class CaptureSourceTransport implements HciTransport {
  readonly description: string;
  private readonly slot = new ReceiverSlot();
  private started = false;
  private stopped = false;
  private credits = 0;
  private wake: (() => void) | undefined;
  /** Packets the host sent, in order (what a test or tool may want to look at). */
  readonly sent: Uint8Array[] = [];

  constructor(readonly path: string, private readonly options: CaptureSourceOptions = {}) {
    this.description = `capture:${path}${options.adapter !== undefined ? ` (hci${options.adapter})` : ''}`;
  }

  send(packet: Uint8Array): void {
    if (this.stopped) throw new TransportError(`${this.description}: cannot send, the transport is closed`, 'ETRANSPORT_CLOSED');
    this.sent.push(packet);
    this.credits++;
    this.wake?.();
  }

  setReceiver(receiver: TransportReceiver): void {
    this.slot.set(receiver);
    if (!this.started) {
      this.started = true;
      void this.play();
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.slot.close();
  }

  private async play(): Promise<void> {
    try {
      for await (const rec of readCaptureFile(this.path)) {
        if (this.stopped) return;
        if (!rec.packet) continue;
        if (this.options.adapter !== undefined && rec.adapter !== this.options.adapter) continue;
        if (rec.dir === 'tx') {
          if (this.options.lockstep) {
            if (this.credits === 0) this.options.onWaitForHost?.(rec.frame);
            while (this.credits === 0 && !this.stopped) await new Promise<void>(r => (this.wake = r));
            this.wake = undefined;
            this.credits--;
          }
          continue;
        }
        await new Promise(r => setImmediate(r));
        if (this.stopped) return;
        this.slot.packet(rec.packet);
      }
      log.transport('%s: end of capture', this.description);
      this.stopped = true;
      this.slot.close();
    } catch (e) {
      this.stopped = true;
      this.slot.close(new TransportError(`${this.description}: ${(e as Error).message}`,
        (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'ETRANSPORT_CONNECT' : 'ETRANSPORT_CAPTURE', { cause: e }));
    }
  }
}
