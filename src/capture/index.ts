export type { CaptureRecord, CaptureRecordInput, CaptureFormat } from './types.js';
export { parseCapture, readCaptureFile, type ReadCaptureOptions } from './read.js';
export { CaptureParser, detectFormat, BTSNOOP_DATALINK, LINKTYPE, MAX_UNIT } from './parser.js';
export { MONITOR_OPCODE, MONITOR_NO_INDEX, type MonitorOpcode } from './monitor.js';
export {
  createCaptureWriter, openCaptureFile, formatFromPath,
  type CaptureWriter, type CaptureSink, type CaptureWriterOptions,
} from './writer.js';
