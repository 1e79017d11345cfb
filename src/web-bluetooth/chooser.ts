/**
 * The device chooser a person answers on a terminal: what a browser's chooser dialog is for a page
 * (Web Bluetooth 4.1, "request Bluetooth devices": the user picks one of the matching devices, or
 * cancels). It lists the candidates heard during the scan, strongest signal first, and reads a number;
 * an empty line takes the first, `q` or the end of the input cancels (requestDevice() then rejects with
 * NotFoundError, as when a person closes Chrome's chooser). createBluetooth() uses it by default when
 * stdin and stdout are both terminals; otherwise the strongest connectable device is picked.
 */
import { askLine, processStreams, type TerminalStreams } from '../platform/terminal.js';
import type { DeviceCandidate, DeviceChooser } from './bluetooth.js';

/** Lines of the list (a crowded air is cut here; the rest are counted). */
export const MAX_CHOOSER_LINES = 30;

function line(i: number, c: DeviceCandidate): string {
  const name = c.name === undefined ? '(unnamed)' : JSON.stringify(c.name).slice(1, -1); // control characters from the air escaped
  return `  ${String(i + 1).padStart(2)}) ${name.slice(0, 40).padEnd(40)} ${c.address} ${String(c.rssi).padStart(4)} dBm${c.connectable ? '' : '  (not connectable)'}\n`;
}

/** A chooser asking on `streams` (default: this process's terminal). */
export function terminalChooser(streams: TerminalStreams = processStreams()): DeviceChooser {
  return async candidates => {
    const sorted = [...candidates].sort((a, b) => Number(b.connectable) - Number(a.connectable) || b.rssi - a.rssi);
    const shown = sorted.slice(0, MAX_CHOOSER_LINES);
    let text = `\nA page wants to connect to a Bluetooth device. Devices heard:\n${shown.map((c, i) => line(i, c)).join('')}`;
    if (sorted.length > shown.length) text += `  … and ${sorted.length - shown.length} more (narrow the page's filters)\n`;
    for (;;) {
      const answer = await askLine(streams, text, `Connect to [1-${shown.length}, Enter = 1, q = cancel]: `);
      text = '';
      if (answer === undefined) return undefined;
      const a = answer.trim();
      if (a === 'q' || a === 'Q') return undefined;
      if (a === '') return shown[0];
      const n = Number(a);
      if (Number.isInteger(n) && n >= 1 && n <= shown.length) return shown[n - 1];
      streams.output.write(`  "${a.slice(0, 20)}" is not one of 1-${shown.length}.\n`);
    }
  };
}
