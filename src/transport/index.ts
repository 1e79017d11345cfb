export { H4, type H4Type, type HciTransport, type TransportReceiver } from './types.js';
export { H4Framer, type H4FramerSink } from './h4-framer.js';
export { ReceiverSlot } from './receiver-slot.js';
export { StreamTransport, openUnixTransport, openTcpTransport, openSerialTransport, type SerialOptions } from './stream.js';
export {
  UserChannelTransport, openUserChannel, userChannelError, loadHciSocketModule, USER_CHANNEL_ERROR, HCI_SOCKET_PACKAGES,
  type UserChannelOptions, type HciSocketLike, type HciSocketModule,
} from './user-channel.js';
export { CaptureSourceTransport, type CaptureSourceOptions } from './capture-source.js';
export { RecordingTransport, recordTransport, openRecordingFile, type RecordOptions } from './record.js';
export { memoryTransportPair, type MemoryPairOptions } from './memory.js';
export { openTransport, registerTransport, transportForms, type OpenTransportOptions, type TransportFactory } from './open.js';
export { WebSocketTransport, type WebSocketLike, type WebSocketClass, type WebSocketTransportOptions } from './websocket.js';
